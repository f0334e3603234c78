#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>

#include "adapter/kcall.h"
#include "adapter/leader.h"
#include "adapter/log.h"
#include "adapter/util/json.h"

/* The election itself (rules in leader.h). One request at a time; a timer
 * schedules the next try. */

#define ANSWER_MAX (64u * 1024u)
#define JITTER_FACTOR 1.2 /* client-go's JitterFactor for candidates */

enum step {
	STEP_NONE,
	STEP_GET,
	STEP_CREATE,
	STEP_UPDATE,
	STEP_FAST,
	STEP_RELEASE_GET,
	STEP_RELEASE
};

struct leader {
	struct kube *kube;
	struct http *http;
	struct loop *loop;
	char *ns, *name, *identity;
	char *collection_path, *item_path;
	uint64_t lease_usec, renew_usec, retry_usec;
	const struct leader_ops *ops;
	void *userdata;
	struct kcall call;
	struct loop_timer timer;
	enum step step;
	struct leader_record observed; /* the Lease as last read or written */
	char observed_spec[512];       /* its spec, to notice a change */
	uint64_t observed_usec;        /* when it last changed, on our clock */
	struct leader_record writing;  /* what the request in flight writes */
	bool leading;
	uint64_t poll_start_usec; /* the first renewal attempt since the last success */
	char last_holder_logged[256];
	unsigned failures;
	/* leader_release() */
	bool releasing;
	leader_fn release_done;
	void *release_userdata;
	struct loop_timer release_timer;
};

static void try_now(struct leader *l);

static void now_micro(char out[64]) {
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

static void copy_str(char *dst, size_t size, const char *s) {
	snprintf(dst, size, "%s", s ? s : "");
}

int leader_record_parse(const char *json, size_t len, struct leader_record *ret) {
	char err[128];
	yajl_val root = json_parse_bounded(json, len, JSON_MAX_DEPTH, err, sizeof(err));
	yajl_val spec = json_get(root, "spec"), v;
	struct leader_record rec = { 0 };

	if (!root || !YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		return -EBADMSG;
	}
	copy_str(rec.rv, sizeof(rec.rv),
		json_get_str(json_get(root, "metadata"), "resourceVersion"));
	copy_str(rec.holder, sizeof(rec.holder), json_get_str(spec, "holderIdentity"));
	copy_str(rec.acquire_time, sizeof(rec.acquire_time), json_get_str(spec, "acquireTime"));
	copy_str(rec.renew_time, sizeof(rec.renew_time), json_get_str(spec, "renewTime"));
	if ((v = json_get(spec, "leaseDurationSeconds")) && YAJL_IS_INTEGER(v))
		rec.duration_sec = YAJL_GET_INTEGER(v);
	if ((v = json_get(spec, "leaseTransitions")) && YAJL_IS_INTEGER(v))
		rec.transitions = YAJL_GET_INTEGER(v);
	yajl_tree_free(root);
	*ret = rec;
	return 0;
}

char *leader_record_json(const char *ns, const char *name, const struct leader_record *rec) {
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *out;
	size_t len;
	char *s = NULL;

#define S(str) yajl_gen_string(g, (const unsigned char *)(str), strlen(str))
	if (!g)
		return NULL;
	yajl_gen_map_open(g);
	S("apiVersion");
	S("coordination.k8s.io/v1");
	S("kind");
	S("Lease");
	S("metadata");
	yajl_gen_map_open(g);
	S("name");
	S(name);
	S("namespace");
	S(ns);
	if (rec->rv[0]) {
		S("resourceVersion");
		S(rec->rv);
	}
	yajl_gen_map_close(g);
	S("spec");
	yajl_gen_map_open(g);
	S("holderIdentity");
	S(rec->holder);
	S("leaseDurationSeconds");
	yajl_gen_integer(g, rec->duration_sec);
	if (rec->acquire_time[0]) {
		S("acquireTime");
		S(rec->acquire_time);
	}
	if (rec->renew_time[0]) {
		S("renewTime");
		S(rec->renew_time);
	}
	S("leaseTransitions");
	yajl_gen_integer(g, rec->transitions);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
#undef S
	if (yajl_gen_get_buf(g, &out, &len) == yajl_gen_status_ok)
		s = strndup((const char *)out, len);
	yajl_gen_free(g);
	return s;
}

/* A change of the spec restarts the observed time (client-go compares the
 * raw record; the spec is what it holds). */
static void observe(struct leader *l, const struct leader_record *rec) {
	char spec[sizeof(l->observed_spec)];

	snprintf(spec, sizeof(spec), "%s|%lld|%s|%s|%lld", rec->holder, rec->duration_sec,
		rec->acquire_time, rec->renew_time, rec->transitions);
	if (strcmp(spec, l->observed_spec) != 0 || !l->observed_usec) {
		memcpy(l->observed_spec, spec, sizeof(spec));
		l->observed_usec = loop_now_usec();
	}
	l->observed = *rec;
}

static bool lease_valid(const struct leader *l, uint64_t now) {
	return l->observed_usec &&
		l->observed_usec + (uint64_t)l->observed.duration_sec * 1000000ull > now;
}

static uint64_t jittered(uint64_t usec) {
	unsigned int r = 0;

	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (unsigned int)rand();
	return usec + (uint64_t)((double)usec * JITTER_FACTOR * ((double)r / 4294967296.0));
}

static void schedule(struct leader *l, uint64_t delay) {
	loop_timer_arm_in(l->loop, &l->timer, delay);
}

static void succeeded(struct leader *l) {
	uint64_t now = loop_now_usec();

	/* What we wrote is what we observe, from now. */
	l->observed_spec[0] = '\0';
	observe(l, &l->writing);
	l->failures = 0;
	l->poll_start_usec = now + l->retry_usec;
	if (!l->leading) {
		l->leading = true;
		log_info("leader", "acquired the lease; this replica leads",
			LOG_STR("lease", l->name), LOG_STR("namespace", l->ns),
			LOG_STR("identity", l->identity),
			LOG_INT("transitions", l->writing.transitions));
		copy_str(l->last_holder_logged, sizeof(l->last_holder_logged), l->identity);
		if (l->ops->started)
			l->ops->started(l, l->userdata);
	}
	schedule(l, l->retry_usec);
}

static void failed(struct leader *l, const char *why, long status) {
	uint64_t now = loop_now_usec();

	if (l->leading) {
		if (now >= l->poll_start_usec + l->renew_usec) {
			l->leading = false;
			log_error("leader",
				"lost the lease: no renewal within the renew deadline; "
				"stopping watches and delivery",
				LOG_STR("lease", l->name), LOG_STR("error", why),
				LOG_INT("status", status),
				LOG_INT("renew_deadline_s", l->renew_usec / 1000000u));
			if (l->ops->stopped)
				l->ops->stopped(l, l->userdata);
			return;
		}
		if (l->failures++ == 0)
			log_warn("leader", "cannot renew the lease, retrying",
				LOG_STR("lease", l->name), LOG_STR("error", why),
				LOG_INT("status", status),
				LOG_INT("retry_in_ms", l->retry_usec / 1000u));
		schedule(l, l->retry_usec);
		return;
	}
	if (why && l->failures++ == 0)
		log_warn("leader", "cannot read or take the lease, retrying",
			LOG_STR("lease", l->name), LOG_STR("error", why),
			LOG_INT("status", status));
	schedule(l, jittered(l->retry_usec));
}

/* What a request may take: for the leader, no more than what is left of the
 * renew deadline (a hung request must not keep it leading). */
static long timeout_ms(const struct leader *l) {
	uint64_t now = loop_now_usec(), end = l->poll_start_usec + l->renew_usec;

	if (l->leading && !l->releasing)
		return end > now + 1000000ull ? (long)((end - now) / 1000u) : 1000L;
	return (long)(l->renew_usec / 1000u);
}

static void handle_answer(
	int err, long status, const char *body, size_t len, const char *errbuf, void *userdata);

static int request(
	struct leader *l, enum step step, const char *method, const char *path, bool with_body) {
	char *body = NULL;
	int r;

	if (with_body) {
		body = leader_record_json(l->ns, l->name, &l->writing);
		if (!body)
			return -ENOMEM;
	}
	l->step = step;
	r = kcall_start(&l->call, method, path, body, timeout_ms(l), handle_answer, l);
	if (r < 0)
		l->step = STEP_NONE;
	return r;
}

static void write_record(struct leader *l, const struct leader_record *old) {
	char now[64];

	now_micro(now);
	l->writing =
		(struct leader_record){ .duration_sec = (long long)(l->lease_usec / 1000000u) };
	copy_str(l->writing.holder, sizeof(l->writing.holder), l->identity);
	copy_str(l->writing.renew_time, sizeof(l->writing.renew_time), now);
	if (old && l->leading) {
		copy_str(l->writing.acquire_time, sizeof(l->writing.acquire_time),
			old->acquire_time);
		l->writing.transitions = old->transitions;
	} else {
		copy_str(l->writing.acquire_time, sizeof(l->writing.acquire_time), now);
		l->writing.transitions = old ? old->transitions + 1 : 0;
	}
	if (old)
		copy_str(l->writing.rv, sizeof(l->writing.rv), old->rv);
}

static void release_finished(struct leader *l, bool released) {
	leader_fn done = l->release_done;

	l->release_done = NULL;
	l->step = STEP_NONE;
	loop_timer_disarm(l->loop, &l->release_timer);
	if (released)
		log_info("leader", "released the lease", LOG_STR("lease", l->name));
	l->leading = false;
	if (done)
		done(l, l->release_userdata);
}

static void release_put(struct leader *l, const struct leader_record *old) {
	char now[64];

	now_micro(now);
	l->writing = (struct leader_record){ .duration_sec = 1, .transitions = old->transitions };
	copy_str(l->writing.acquire_time, sizeof(l->writing.acquire_time), now);
	copy_str(l->writing.renew_time, sizeof(l->writing.renew_time), now);
	copy_str(l->writing.rv, sizeof(l->writing.rv), old->rv);
	if (request(l, STEP_RELEASE, "PUT", l->item_path, true) < 0)
		release_finished(l, false);
}

static void handle_release_answer(
	struct leader *l, enum step step, int err, long status, const struct leader_record *rec) {
	if (err || (status != 200)) {
		/* A conflict: read again and retry (client-go does). */
		if (!err && status == 409 &&
			request(l, STEP_RELEASE_GET, "GET", l->item_path, false) == 0)
			return;
		log_warn("leader", "cannot release the lease; a standby takes it when it expires",
			LOG_STR("lease", l->name), LOG_INT("status", status));
		release_finished(l, false);
		return;
	}
	if (step == STEP_RELEASE_GET) {
		if (strcmp(rec->holder, l->identity) != 0) {
			release_finished(l, false); /* not ours (any more) */
			return;
		}
		release_put(l, rec);
		return;
	}
	release_finished(l, true);
}

static void handle_answer(
	int err, long status, const char *body, size_t len, const char *errbuf, void *userdata) {
	struct leader *l = userdata;
	enum step step = l->step;
	struct leader_record rec = { 0 };
	char why[300];
	bool parsed = !err && (status == 200 || status == 201) &&
		leader_record_parse(body, len, &rec) == 0;

	l->step = STEP_NONE;
	if (err)
		snprintf(why, sizeof(why), "%s", errbuf[0] ? errbuf : strerror(-err));
	else
		snprintf(why, sizeof(why), "the API server answered %ld", status);
	if (step == STEP_RELEASE_GET || step == STEP_RELEASE) {
		handle_release_answer(l, step, err, parsed ? status : (err ? 0 : status), &rec);
		return;
	}
	if (l->releasing)
		return;
	if (!err && status == 403)
		snprintf(why, sizeof(why),
			"forbidden (403): the service account needs get, create and "
			"update on leases in its namespace (rbac/leader-election.yaml)");
	switch (step) {
	case STEP_FAST:
		if (parsed && status == 200) {
			l->writing.rv[0] = '\0';
			copy_str(l->writing.rv, sizeof(l->writing.rv), rec.rv);
			succeeded(l);
			return;
		}
		/* The slow path: read, then decide. */
		if (request(l, STEP_GET, "GET", l->item_path, false) < 0)
			failed(l, "out of memory", 0);
		return;
	case STEP_GET:
		if (!err && status == 404) {
			write_record(l, NULL);
			if (request(l, STEP_CREATE, "POST", l->collection_path, true) < 0)
				failed(l, "out of memory", 0);
			return;
		}
		if (!parsed) {
			failed(l, why, status);
			return;
		}
		observe(l, &rec);
		if (rec.holder[0] && strcmp(rec.holder, l->identity) != 0 &&
			lease_valid(l, loop_now_usec())) {
			if (l->leading) {
				/* Someone else holds it: we lost it. */
				l->poll_start_usec = 0;
				failed(l, "another replica holds the lease", status);
				return;
			}
			if (strcmp(l->last_holder_logged, rec.holder) != 0) {
				copy_str(l->last_holder_logged, sizeof(l->last_holder_logged),
					rec.holder);
				log_info("leader", "standing by: another replica leads",
					LOG_STR("lease", l->name), LOG_STR("holder", rec.holder));
			}
			l->failures = 0;
			schedule(l, jittered(l->retry_usec));
			return;
		}
		write_record(l, &rec);
		if (request(l, STEP_UPDATE, "PUT", l->item_path, true) < 0)
			failed(l, "out of memory", 0);
		return;
	case STEP_CREATE:
	case STEP_UPDATE:
		if (parsed) {
			copy_str(l->writing.rv, sizeof(l->writing.rv), rec.rv);
			succeeded(l);
			return;
		}
		if (!err && status == 409)
			snprintf(why, sizeof(why), "another replica changed the lease first (409)");
		failed(l, why, status);
		return;
	default:
		return;
	}
}

static void try_now(struct leader *l) {
	if (l->releasing)
		return;
	if (l->leading && lease_valid(l, loop_now_usec()) && l->observed.rv[0]) {
		/* The fast path: renew what we wrote last, optimistically. */
		write_record(l, &l->observed);
		if (request(l, STEP_FAST, "PUT", l->item_path, true) == 0)
			return;
	}
	if (request(l, STEP_GET, "GET", l->item_path, false) < 0)
		failed(l, "cannot start a request", 0);
}

static void handle_timer(struct loop_timer *t, void *userdata) {
	(void)t;
	try_now(userdata);
}

static void handle_release_timer(struct loop_timer *t, void *userdata) {
	struct leader *l = userdata;

	(void)t;
	kcall_cancel(&l->call);
	log_warn("leader", "releasing the lease timed out; a standby takes it when it expires",
		LOG_STR("lease", l->name));
	release_finished(l, false);
}

void leader_release(struct leader *l, uint64_t timeout_usec, leader_fn done, void *userdata) {
	bool was_leading = l->leading;

	l->releasing = true;
	loop_timer_disarm(l->loop, &l->timer);
	kcall_cancel(&l->call);
	l->step = STEP_NONE;
	l->release_done = done;
	l->release_userdata = userdata;
	if (!was_leading) {
		release_finished(l, false);
		return;
	}
	loop_timer_arm_in(l->loop, &l->release_timer, timeout_usec);
	if (request(l, STEP_RELEASE_GET, "GET", l->item_path, false) < 0)
		release_finished(l, false);
}

int leader_create(struct kube *kube, struct http *http, struct loop *loop,
	const struct leader_params *p, const struct leader_ops *ops, void *userdata,
	struct leader **ret_leader) {
	struct leader *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->kube = kube;
	l->http = http;
	l->loop = loop;
	l->ops = ops;
	l->userdata = userdata;
	l->lease_usec = p->lease_usec;
	l->renew_usec = p->renew_usec;
	l->retry_usec = p->retry_usec;
	kcall_init(&l->call, kube, http, ANSWER_MAX);
	loop_timer_init(&l->timer, handle_timer, l);
	loop_timer_init(&l->release_timer, handle_release_timer, l);
	l->ns = strdup(p->ns);
	l->name = strdup(p->name);
	l->identity = strdup(p->identity);
	if (!l->ns || !l->name || !l->identity ||
		asprintf(&l->collection_path, "/apis/coordination.k8s.io/v1/namespaces/%s/leases",
			p->ns) < 0) {
		l->collection_path = NULL;
		leader_destroy(l);
		return -ENOMEM;
	}
	if (asprintf(&l->item_path, "%s/%s", l->collection_path, p->name) < 0) {
		l->item_path = NULL;
		leader_destroy(l);
		return -ENOMEM;
	}
	log_info("leader", "trying to acquire the lease", LOG_STR("lease", l->name),
		LOG_STR("namespace", l->ns), LOG_STR("identity", l->identity));
	schedule(l, 0);
	*ret_leader = l;
	return 0;
}

void leader_destroy(struct leader *l) {
	if (!l)
		return;
	loop_timer_disarm(l->loop, &l->timer);
	loop_timer_disarm(l->loop, &l->release_timer);
	kcall_finish(&l->call);
	free(l->ns);
	free(l->name);
	free(l->identity);
	free(l->collection_path);
	free(l->item_path);
	free(l);
}

bool leader_leading(const struct leader *l) {
	return l && l->leading;
}

const char *leader_holder(const struct leader *l) {
	return l ? l->observed.holder : "";
}
