#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter/kube.h"
#include "adapter/leader.h"
#include "adapter/leader_state.h"
#include "adapter/log.h"
#include "adapter/nsselector.h"
#include "adapter/sink.h"
#include "adapter/util/buf.h"
#include "adapter/util/fileio.h"
#include "adapter/watcher.h"

#include "main_internal.h"

/* --leader-elect: the adapter's side of leader election. Standbys hold the
 * Lease's loop and nothing else; the leader loads what its predecessor
 * recorded, starts the watches, and records the checkpoint (written to a
 * private directory by the --state-dir machinery) in a ConfigMap after each
 * change, at most every second. */

#define LEASE_USEC (15ull * 1000000ull)
#define RENEW_USEC (10ull * 1000000ull)
#define RETRY_USEC (2ull * 1000000ull)
#define STATE_INTERVAL_USEC (1000ull * 1000ull)
/* Compressing runs on the loop: a large state is recorded less often, so
 * that it takes at most 1/STATE_COST_SHARE of the loop's time. */
#define STATE_COST_SHARE 20u
#define FINAL_SAVE_USEC (5ull * 1000000ull)
#define RELEASE_USEC (3ull * 1000000ull)
#define DEFAULT_LEASE "apiserversource-adapter"
#define STATE_SUFFIX "-state"

struct adapter_leader {
	struct adapter *a;
	struct leader *leader;
	struct leader_state *state;
	char *dir; /* the private checkpoint directory */
	char *identity;
	char *lease;
	char *state_name;
	const char *ns;
	bool loaded;         /* the predecessor's state is in; the watches run */
	bool fenced;         /* lost the lead: record nothing more */
	bool upload_pending; /* a checkpoint newer than the one being saved */
	bool final;          /* the drain's last state: release the Lease once saved */
	bool too_big_logged;
	bool releasing;
	unsigned save_failures;
	struct loop_timer timer; /* retries the load; bounds the final save */
};

static void stop_leading(struct adapter *a, const char *why) {
	struct adapter_leader *al = a->leader;

	al->fenced = true;
	for (size_t i = 0; i < a->n_watchers; i++)
		watcher_stop(a->watchers[i]);
	nsselector_stop(a->nssel);
	loop_timer_disarm(a->loop, &a->checkpoint_timer);
	log_error("main", why, LOG_STR("lease", al->lease));
	loop_quit(a->loop, EXIT_RUNTIME);
}

static void handle_stopped(struct leader *l, void *userdata) {
	(void)l;
	/* client-go's OnStoppedLeading: the pod restarts and stands by. What
	 * is queued is in the last recorded state; the successor sends it. */
	stop_leading(userdata,
		"exiting: this replica no longer leads; the successor resumes from "
		"the recorded state");
}

static void released(struct leader *l, void *userdata) {
	struct adapter *a = userdata;

	(void)l;
	loop_quit(a->loop, 0);
}

static void release(struct adapter *a) {
	if (a->leader->releasing)
		return;
	a->leader->releasing = true;
	loop_timer_disarm(a->loop, &a->leader->timer);
	leader_release(a->leader->leader, RELEASE_USEC, released, a);
}

static void upload(struct adapter *a);

static void handle_saved(int r, void *userdata) {
	struct adapter *a = userdata;
	struct adapter_leader *al = a->leader;

	if (al->fenced)
		return;
	if (r == -EBUSY) {
		stop_leading(a,
			"exiting: another replica wrote the recorded state (409); this one no "
			"longer leads");
		return;
	}
	if (r == 0) {
		if (al->save_failures)
			log_info("main", "recording the state in the cluster again",
				LOG_STR("configmap", al->state_name));
		al->save_failures = 0;
	} else {
		a->checkpointed_signature = 0; /* the next interval tries again */
		if (r == -E2BIG && !al->too_big_logged) {
			al->too_big_logged = true;
			log_error("main",
				"the state does not fit in one ConfigMap (1 MiB); not recorded: a "
				"successor relists without it and cannot report deletes made "
				"meanwhile (use --object-state reference to shrink it)",
				LOG_STR("configmap", al->state_name));
		} else if (r != -E2BIG && al->save_failures++ == 0) {
			log_warn("main",
				"cannot record the state in the cluster, retrying at the next "
				"interval",
				LOG_STR("configmap", al->state_name),
				LOG_STR("error", strerror(-r)));
		}
	}
	if (al->upload_pending) {
		upload(a);
		return;
	}
	if (al->final)
		release(a);
}

/* Sends the checkpoint file just written. */
static void upload(struct adapter *a) {
	struct adapter_leader *al = a->leader;
	char *path = NULL, *data = NULL;
	size_t len = 0;
	uint64_t started = loop_now_usec(), cost;
	int r;

	al->upload_pending = false;
	if (asprintf(&path, "%s/checkpoint.ndjson", al->dir) < 0)
		path = NULL;
	r = path ? file_read_all(path, (size_t)1 << 31, &data, &len) : -ENOMEM;
	if (r == 0)
		r = leader_state_save(al->state, data, len, len, handle_saved, a);
	free(path);
	free(data);
	cost = (loop_now_usec() - started) * STATE_COST_SHARE;
	a->cfg.checkpoint_interval_usec = cost > STATE_INTERVAL_USEC ? cost : STATE_INTERVAL_USEC;
	if (r < 0)
		handle_saved(r, a);
}

void adapter_leader_checkpointed(struct adapter *a, int r) {
	struct adapter_leader *al = a->leader;

	if (!al || al->fenced || r < 0 || !leader_leading(al->leader) || !al->loaded)
		return;
	if (leader_state_busy(al->state)) {
		al->upload_pending = true;
		return;
	}
	upload(a);
}

static void start_watching(struct adapter *a) {
	a->wctx.checkpoint = a->checkpoint;
	for (size_t i = 0; i < a->n_watchers; i++)
		watcher_start(a->watchers[i]);
	if (!a->cfg.all_namespaces)
		nsselector_start(a->nssel);
	a->first_checkpoint_due = true;
	a->checkpoint_next_usec = loop_now_usec() + a->cfg.checkpoint_interval_usec;
	loop_timer_arm_in(a->loop, &a->checkpoint_timer, CHECKPOINT_POLL_USEC);
}

/* The predecessor's checkpoint becomes ours: its undelivered events are
 * queued again (same ids), its watches resume from their versions (or
 * relist and diff when those expired). */
static int adopt(struct adapter *a, const char *data, size_t len) {
	struct adapter_leader *al = a->leader;
	char *path = NULL;
	FILE *f;
	int r = 0;

	if (asprintf(&path, "%s/checkpoint.ndjson", al->dir) < 0)
		return -ENOMEM;
	f = fopen(path, "we");
	if (!f || fwrite(data, 1, len, f) != len)
		r = -errno;
	if (f && fclose(f) != 0 && r == 0)
		r = -errno;
	free(path);
	if (r == 0)
		r = adapter_checkpoint_load(a);
	return r;
}

static void load(struct adapter *a);

static void handle_loaded(int r, const char *data, size_t len, void *userdata) {
	struct adapter *a = userdata;
	struct adapter_leader *al = a->leader;

	if (al->fenced || !leader_leading(al->leader))
		return;
	if (r < 0 && r != -EBADMSG && r != -E2BIG) {
		log_warn("main", "cannot read the recorded state; retrying before watching",
			LOG_STR("configmap", al->state_name), LOG_STR("error", strerror(-r)));
		loop_timer_arm_in(a->loop, &al->timer, RETRY_USEC);
		return;
	}
	if (r == 0 && len)
		r = adopt(a, data, len);
	if (r < 0)
		log_error("main",
			"the recorded state is damaged; listing afresh (changes made while "
			"no replica led are reported from the relist only)",
			LOG_STR("configmap", al->state_name), LOG_STR("error", strerror(-r)));
	else if (!len)
		log_info("main", "no recorded state yet, starting afresh",
			LOG_STR("configmap", al->state_name));
	al->loaded = true;
	start_watching(a);
}

static void load(struct adapter *a) {
	int r = leader_state_load(a->leader->state, handle_loaded, a);

	if (r < 0)
		handle_loaded(r, NULL, 0, a);
}

static void handle_timer(struct loop_timer *t, void *userdata) {
	struct adapter *a = userdata;

	(void)t;
	if (a->leader->final) {
		log_warn("main", "recording the last state timed out; releasing the lease");
		a->leader->upload_pending = false;
		release(a);
		return;
	}
	load(a);
}

static void handle_started(struct leader *l, void *userdata) {
	(void)l;
	load(userdata);
}

bool adapter_leader_standby(struct adapter *a, char *reason, size_t len) {
	const char *holder;

	if (!a->leader || leader_leading(a->leader->leader))
		return false;
	holder = leader_holder(a->leader->leader);
	if (holder[0] && strcmp(holder, a->leader->identity) != 0)
		snprintf(reason, len, "standby: %s leads", holder);
	else
		snprintf(reason, len, "standby: waiting for the lease");
	return true;
}

bool adapter_leader_finish(struct adapter *a) {
	struct adapter_leader *al = a->leader;

	if (!al || al->fenced)
		return false;
	if (!leader_leading(al->leader)) {
		if (al->leader)
			leader_release(al->leader, 0, NULL, NULL); /* stops trying */
		return false;
	}
	al->final = true;
	loop_timer_disarm(a->loop, &a->checkpoint_timer);
	loop_timer_arm_in(a->loop, &al->timer, FINAL_SAVE_USEC);
	if (!al->loaded) {
		release(a);
		return true;
	}
	/* Written in place; the hook starts its upload (or queues it behind the
	 * one in flight); the Lease is released once it is saved. */
	if (adapter_checkpoint_write(a) < 0 && !leader_state_busy(al->state))
		release(a);
	return true;
}

static bool valid_name(const char *s) {
	size_t n = strlen(s);

	if (n == 0 || n > 253 - strlen(STATE_SUFFIX))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
			    *p == '.'))
			return false;
	return s[0] != '-' && s[0] != '.' && s[n - 1] != '-' && s[n - 1] != '.';
}

static char *make_identity(void) {
	const char *pod = getenv("POD_NAME");
	char host[256] = "", *id = NULL;
	unsigned char rnd[4];

	if (!pod || !*pod) {
		if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
			snprintf(host, sizeof(host), "adapter");
		pod = host;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return NULL;
	if (asprintf(&id, "%s_%02x%02x%02x%02x", pod, rnd[0], rnd[1], rnd[2], rnd[3]) < 0)
		return NULL;
	return id;
}

int adapter_leader_setup(struct adapter *a) {
	struct adapter_leader *al;
	const char *tmp = getenv("TMPDIR");
	const char *lease = a->cfg.leader_elect_lease ? a->cfg.leader_elect_lease
		: a->cfg.name                         ? a->cfg.name
						      : DEFAULT_LEASE;

	if (a->cfg.state_dir) {
		log_error("config",
			"--state-dir: not with --leader-elect, which keeps the state in the "
			"cluster (a ConfigMap)",
			LOG_STR("field", "--state-dir"));
		return -EINVAL;
	}
	if (!valid_name(lease)) {
		log_error("config",
			"--leader-elect-lease: not a valid Lease name (lower-case letters, "
			"digits, '-' and '.', at most 247 characters)",
			LOG_STR("field", "--leader-elect-lease"), LOG_STR("value", lease));
		return -EINVAL;
	}
	al = calloc(1, sizeof(*al));
	if (!al)
		return -ENOMEM;
	a->leader = al;
	al->a = a;
	al->ns = a->cfg.namespace ? a->cfg.namespace : kube_default_namespace(a->kube);
	al->lease = strdup(lease);
	al->identity = make_identity();
	if (!al->lease || !al->identity ||
		asprintf(&al->state_name, "%s" STATE_SUFFIX, lease) < 0 ||
		asprintf(&al->dir, "%s/apiserversource-leader-XXXXXX", tmp && *tmp ? tmp : "/tmp") <
			0) {
		al->state_name = NULL;
		return -ENOMEM;
	}
	if (!mkdtemp(al->dir)) {
		log_error("main",
			"--leader-elect: cannot create a private directory for the state "
			"(set TMPDIR to a writable directory)",
			LOG_STR("dir", al->dir), LOG_STR("error", strerror(errno)));
		free(al->dir);
		al->dir = NULL;
		return -EINVAL;
	}
	a->cfg.state_dir = strdup(al->dir);
	if (!a->cfg.state_dir)
		return -ENOMEM;
	a->cfg.checkpoint_interval_usec = STATE_INTERVAL_USEC;
	loop_timer_init(&al->timer, handle_timer, a);
	return 0;
}

int adapter_leader_start(struct adapter *a) {
	static const struct leader_ops ops = { .started = handle_started,
		.stopped = handle_stopped };
	struct adapter_leader *al = a->leader;
	struct leader_params p = { .ns = al->ns,
		.name = al->lease,
		.identity = al->identity,
		.lease_usec = LEASE_USEC,
		.renew_usec = RENEW_USEC,
		.retry_usec = RETRY_USEC };
	int r;

	r = leader_state_create(a->kube, a->http, al->ns, al->state_name, al->identity, &al->state);
	if (r == 0)
		r = leader_create(a->kube, a->http, a->loop, &p, &ops, a, &al->leader);
	if (r < 0)
		log_error("main", "cannot start leader election", LOG_STR("error", strerror(-r)));
	return r;
}

void adapter_leader_destroy(struct adapter *a) {
	struct adapter_leader *al = a->leader;
	char *path = NULL;

	if (!al)
		return;
	if (a->loop)
		loop_timer_disarm(a->loop, &al->timer);
	leader_destroy(al->leader);
	leader_state_destroy(al->state);
	if (al->dir) {
		if (asprintf(&path, "%s/checkpoint.ndjson", al->dir) >= 0) {
			unlink(path);
			free(path);
		}
		if (asprintf(&path, "%s/.checkpoint.ndjson.tmp", al->dir) >= 0) {
			unlink(path);
			free(path);
		}
		rmdir(al->dir);
	}
	free(al->dir);
	free(al->identity);
	free(al->lease);
	free(al->state_name);
	free(al);
	a->leader = NULL;
}

int adapter_leader_metrics(struct adapter *a, struct buf *out) {
	if (!a->leader)
		return 0;
	return buf_printf(out,
		"# HELP apiserversource_leader 1 when this replica holds the lease "
		"(--leader-elect)\n"
		"# TYPE apiserversource_leader gauge\napiserversource_leader %d\n",
		leader_leading(a->leader->leader) ? 1 : 0);
}
