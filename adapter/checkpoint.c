#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "adapter/checkpoint.h"
#include "adapter/util/buf.h"

/* A snapshot points at objects without touching them: taking one costs a
 * pass over the tables' entries, not a write to every object (a cache miss
 * each: tens of ms on the loop thread for 50,000 objects), and freeing one
 * costs nothing per object. Instead, while any snapshot is alive, objects the
 * loop frees wait in a list, freed with the last snapshot: O(changes). Both
 * live on the loop thread only. */
struct snap_object {
	size_t key_off; /* in keys */
	struct checkpoint_object *o;
};

static unsigned snapshots_alive;
static struct checkpoint_object *freed;

/* The last snapshot's arrays, kept for the next one: their pages are already
 * mapped, so filling them costs no page faults on the loop thread. */
static struct {
	struct snap_object *objs;
	size_t cap_objs;
	struct buf keys;
} spare;

static void free_now(struct checkpoint_object *o) {
	free(o->rv);
	free(o->name);
	free(o->ns);
	free(o->json);
	free(o->kind);
	free(o->api_version);
	free(o);
}

void checkpoint_object_free(struct checkpoint_object *o) {
	if (!o)
		return;
	if (snapshots_alive) {
		o->next_freed = freed;
		freed = o;
		return;
	}
	free_now(o);
}

void checkpoint_objects_clear(struct hashmap *objects) {
	struct hashmap_iter it = { 0 };
	void *v;

	while (hashmap_next(objects, &it, NULL, &v))
		checkpoint_object_free(v);
	hashmap_finish(objects);
}

/* ---------------- snapshots ---------------- */

struct snap_watch {
	char *key;
	char *rv;
	bool relist;
	size_t first, n; /* its objects in objs[] */
	struct checkpoint_source src; /* and those of a source, read by the writer */
};

struct checkpoint_snapshot {
	bool counted; /* in snapshots_alive */
	char *dir;
	struct snap_watch *watches;
	size_t n_watches;
	struct snap_object *objs;
	size_t n_objs, cap_objs;
	struct buf keys; /* every object's key, NUL-terminated, back to back */
	struct checkpoint_file *events; /* EVENT lines, in memory, until sealed */
	char *event_lines;
	size_t event_len, n_events;
};

int checkpoint_snapshot_create(const char *dir, struct checkpoint_snapshot **ret_snapshot) {
	struct checkpoint_snapshot *s = calloc(1, sizeof(*s));
	int r = -ENOMEM;

	if (!s)
		return r;
	/* Reuses the last snapshot's arrays. */
	s->objs = spare.objs;
	s->cap_objs = spare.cap_objs;
	s->keys = spare.keys;
	buf_reset(&s->keys);
	spare.objs = NULL;
	spare.cap_objs = 0;
	buf_init(&spare.keys, 0);
	snapshots_alive++;
	s->counted = true;
	s->dir = strdup(dir);
	if (!s->dir)
		goto fail;
	r = checkpoint_file_open_memory(&s->events);
	if (r < 0)
		goto fail;
	*ret_snapshot = s;
	return 0;
fail:
	checkpoint_snapshot_free(s);
	return r;
}

void checkpoint_snapshot_free(struct checkpoint_snapshot *s) {
	if (!s)
		return;
	if (s->counted && --snapshots_alive == 0)
		while (freed) {
			struct checkpoint_object *o = freed;

			freed = o->next_freed;
			free_now(o);
		}
	if (!spare.objs && !spare.keys.data) {
		spare.objs = s->objs;
		spare.cap_objs = s->cap_objs;
		spare.keys = s->keys;
		buf_init(&s->keys, 0);
	} else {
		free(s->objs);
	}
	for (size_t i = 0; i < s->n_watches; i++) {
		if (s->watches[i].src.release)
			s->watches[i].src.release(s->watches[i].src.data);
		free(s->watches[i].key);
		free(s->watches[i].rv);
	}
	free(s->watches);
	buf_finish(&s->keys);
	checkpoint_file_abort(s->events);
	free(s->event_lines);
	free(s->dir);
	free(s);
}

int checkpoint_snapshot_watch(struct checkpoint_snapshot *s, const char *key, const char *rv,
	bool relist) {
	struct snap_watch *n = realloc(s->watches, (s->n_watches + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	s->watches = n;
	n = &n[s->n_watches];
	*n = (struct snap_watch){ .key = strdup(key), .rv = strdup(rv), .relist = relist,
		.first = s->n_objs };
	s->n_watches++;
	return n->key && n->rv ? 0 : -ENOMEM;
}

static int reserve(struct checkpoint_snapshot *s, size_t more) {
	size_t cap = s->cap_objs ? s->cap_objs : 1024;
	struct snap_object *n;

	if (s->n_objs + more <= s->cap_objs)
		return 0;
	while (cap < s->n_objs + more)
		cap *= 2;
	n = realloc(s->objs, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	s->objs = n;
	s->cap_objs = cap;
	return 0;
}

int checkpoint_snapshot_object(struct checkpoint_snapshot *s, const char *key,
	struct checkpoint_object *o) {
	size_t off = s->keys.len;
	int r;

	if (!s->n_watches)
		return -EINVAL;
	r = reserve(s, 1);
	if (r == 0)
		r = buf_append(&s->keys, key, strlen(key) + 1);
	if (r < 0)
		return r;
	s->objs[s->n_objs++] = (struct snap_object){ .key_off = off, .o = o };
	s->watches[s->n_watches - 1].n++;
	return 0;
}

int checkpoint_snapshot_table(struct checkpoint_snapshot *s, const struct hashmap *objects) {
	/* A walk of the slots rather than hashmap_next(): the entries are
	 * scattered on the heap, and fetching the next slots' ahead of time
	 * overlaps the cache misses that otherwise make up the whole cost. */
	enum { AHEAD = 16 };
	int r;

	if (!s->n_watches)
		return -EINVAL;
	r = reserve(s, objects->count);
	for (size_t i = 0; r == 0 && i < objects->nslots; i++) {
		if (i + AHEAD < objects->nslots && objects->slots[i + AHEAD])
			__builtin_prefetch(objects->slots[i + AHEAD]);
		for (const struct hashmap_entry *e = objects->slots[i]; r == 0 && e; e = e->next)
			r = checkpoint_snapshot_object(s, e->key, e->value);
	}
	return r;
}

int checkpoint_snapshot_event(struct checkpoint_snapshot *s, const struct cevent *ev) {
	return checkpoint_file_event(s->events, ev);
}

size_t checkpoint_snapshot_objects(const struct checkpoint_snapshot *s) {
	size_t n = s->n_objs;

	for (size_t i = 0; i < s->n_watches; i++)
		n += s->watches[i].src.count;
	return n;
}

int checkpoint_snapshot_unadopted(struct checkpoint_snapshot *s, struct checkpoint_state *cp) {
	int r = 0;

	for (size_t i = 0; r == 0 && cp && i < cp->n_watches; i++) {
		struct checkpoint_watch *w = &cp->watches[i];

		if (w->adopted)
			continue;
		r = checkpoint_snapshot_watch(s, w->key, w->rv, w->relist);
		if (r == 0)
			r = checkpoint_snapshot_table(s, &w->objects);
	}
	return r;
}

int checkpoint_snapshot_source(struct checkpoint_snapshot *s, const struct checkpoint_source *src) {
	struct snap_watch *sw = s->n_watches ? &s->watches[s->n_watches - 1] : NULL;

	if (!sw || sw->src.release) {
		src->release(src->data);
		return -EINVAL;
	}
	sw->src = *src;
	return 0;
}

int checkpoint_snapshot_write(struct checkpoint_snapshot *s) {
	struct checkpoint_file *w = NULL;
	int r = 0;

	if (s->events) {
		r = checkpoint_file_take_memory(s->events, &s->event_lines, &s->event_len,
			&s->n_events);
		s->events = NULL;
	}
	if (r == 0)
		r = checkpoint_file_open(s->dir, &w);
	for (size_t i = 0; r == 0 && i < s->n_watches; i++) {
		const struct snap_watch *sw = &s->watches[i];

		r = checkpoint_file_watch(w, sw->key, sw->rv, sw->relist);
		for (size_t j = sw->first; r == 0 && j < sw->first + sw->n; j++)
			r = checkpoint_file_object(w, s->keys.data + s->objs[j].key_off, s->objs[j].o);
		for (size_t j = 0; r == 0 && j < sw->src.count; j++) {
			struct checkpoint_object o = { 0 };
			const char *key;

			r = sw->src.read(sw->src.data, j, &key, &o);
			if (r == 0)
				r = checkpoint_file_object(w, key, &o);
		}
	}
	if (r == 0)
		r = checkpoint_file_raw(w, s->event_lines, s->event_len, s->n_events);
	if (r == 0)
		return checkpoint_file_commit(w);
	checkpoint_file_abort(w);
	return r;
}

/* ---------------- the worker ---------------- */

struct checkpoint_writer {
	struct loop *loop;
	struct loop_io io;
	int efd;
	checkpoint_done_fn done;
	void *userdata;
	pthread_t thread;
	bool running;
	/* Handed to the thread at start, read back after the join. */
	struct checkpoint_snapshot *snapshot;
	int result;
};

/* The write only has to be done by the next interval; delivery is what must
 * not wait. On a loaded machine (a few cores shared with the API server and
 * the sink) a thread serialising, hashing and writing ~100 MB competes for
 * CPU with everything that delivers an event: the writer runs only on CPU
 * time nothing else wants (SCHED_IDLE, else the lowest nice value). */
static void yield_cpu(void) {
	struct sched_param sp = { 0 };

	if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0 &&
		setpriority(PRIO_PROCESS, (id_t)gettid(), 19) < 0) {
		/* Not allowed: the write competes as before. */
	}
}

static void *run(void *arg) {
	struct checkpoint_writer *w = arg;
	uint64_t one = 1;

	yield_cpu();
	w->result = checkpoint_snapshot_write(w->snapshot);
	/* The join that follows orders the thread's writes before the loop's
	 * reads; the eventfd only wakes the loop. */
	if (write(w->efd, &one, sizeof(one)) < 0) {
		/* An eventfd counter cannot overflow from one write. */
	}
	return NULL;
}

/* Joins the thread and releases the snapshot. Returns the write's result. */
static int reap(struct checkpoint_writer *w) {
	uint64_t n;

	pthread_join(w->thread, NULL);
	w->running = false;
	if (read(w->efd, &n, sizeof(n)) < 0) {
		/* Already read (EAGAIN): nothing to clear. */
	}
	checkpoint_snapshot_free(w->snapshot);
	w->snapshot = NULL;
	return w->result;
}

static void handle_written(struct loop_io *io, uint32_t events, void *userdata) {
	struct checkpoint_writer *w = userdata;
	int r;

	(void)io;
	(void)events;
	if (!w->running)
		return;
	r = reap(w);
	w->done(r, w->userdata);
}

int checkpoint_writer_create(struct loop *loop, checkpoint_done_fn done, void *userdata,
	struct checkpoint_writer **ret_writer) {
	struct checkpoint_writer *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->loop = loop;
	w->done = done;
	w->userdata = userdata;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		r = -errno;
		free(w);
		return r;
	}
	r = loop_io_add(loop, &w->io, w->efd, EPOLLIN, handle_written, w);
	if (r < 0) {
		close(w->efd);
		free(w);
		return r;
	}
	*ret_writer = w;
	return 0;
}

void checkpoint_writer_destroy(struct checkpoint_writer *w) {
	if (!w)
		return;
	if (w->running)
		reap(w);
	loop_io_remove(w->loop, &w->io);
	close(w->efd);
	free(w);
}

int checkpoint_writer_start(struct checkpoint_writer *w, struct checkpoint_snapshot *s) {
	int r;

	if (w->running)
		return -EBUSY;
	w->snapshot = s;
	r = -pthread_create(&w->thread, NULL, run, w);
	if (r < 0) {
		w->snapshot = NULL;
		return r;
	}
	w->running = true;
	return 0;
}

bool checkpoint_writer_busy(const struct checkpoint_writer *w) {
	return w && w->running;
}

void checkpoint_writer_wait(struct checkpoint_writer *w) {
	int r;

	if (!w || !w->running)
		return;
	r = reap(w);
	w->done(r, w->userdata);
}
