#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "adapter/kobj.h"
#include "adapter/util/buf.h"
#include "adapter/util/json_arena.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* Keys are remembered this deep; the fields read are all shallower. */
#define MAXD 16
/* A value still arriving outside items is held raw; escapes make it at most
 * this many times longer than its decoded form, which is what is bounded. */
#define RAW_PER_DECODED 6

enum mode { MODE_EVENT, MODE_LIST };

/* The small state comes first: an event's parse clears only up to keys
 * (kobj_parse_event), not the ~14 KiB the whole struct holds. */
struct kparse {
	yajl_handle h;
	enum mode mode;
	int depth;
	bool is_array[MAXD];
	size_t offset_base; /* absolute offset of the buffer passed to yajl_parse */
	/* the event's type, and a checkpoint line's id and time */
	char type[32];
	char id[40];
	char time[64];
	bool have_object;
	/* a checkpoint line's top-level "data" */
	bool in_data, have_data;
	size_t data_start, data_end;
	/* the object being read */
	bool in_obj;
	int base;
	size_t obj_start, obj_end;
	bool ref_ctrl;
	int cb_error;
	long long list_code;
	/* Not cleared for an event: each is written before it is read. */
	char keys[MAXD][64];
	struct kobj obj; /* obj_clear()ed */
	char ref_api[KOBJ_NAME_MAX], ref_kind[256];
	/* list state */
	char list_rv[64];
	char list_continue[KOBJ_CONTINUE_MAX + 1];
	char list_kind[64];
	char list_message[512];
};

/* An empty object: every field reads as absent. Its strings are cleared
 * by their first byte, not memset (3 KiB per object). */
static void obj_clear(struct kobj *o) {
	o->json = NULL;
	o->json_len = 0;
	o->kind[0] = o->api_version[0] = o->name[0] = o->namespace[0] = '\0';
	o->uid[0] = o->resource_version[0] = '\0';
	o->has_controller = false;
	o->controller_api_version[0] = o->controller_kind[0] = '\0';
	o->code = 0;
	o->reason[0] = o->message[0] = '\0';
	o->truncated = false;
	o->changed_paths = NULL;
}

static size_t pos(struct kparse *p) {
	return p->offset_base + yajl_get_bytes_consumed(p->h);
}

static bool key_is(struct kparse *p, int d, const char *k) {
	return d > 0 && d < MAXD && !p->is_array[d] && strcmp(p->keys[d], k) == 0;
}

static void copy_field(struct kparse *p, char *dst, size_t cap, const unsigned char *s, size_t n,
	bool required) {
	if (n >= cap) {
		if (required)
			p->obj.truncated = true;
		n = cap - 1;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static bool in_owner_ref(struct kparse *p, int d) {
	return p->in_obj && d == p->base + 3 && key_is(p, p->base, "metadata") &&
		key_is(p, p->base + 1, "ownerReferences") && p->depth < MAXD &&
		p->is_array[p->base + 2];
}

/* Outside a list's items nothing is bounded by max_item: each key and value
 * is bounded by itself (quotes counted). Returns 0 to stop the parse. */
static int value_fits(struct kparse *p, size_t n, bool is_string) {
	if (p->mode != MODE_LIST || p->in_obj || n + (is_string ? 2 : 0) <= KOBJ_LIST_VALUE_MAX)
		return 1;
	p->cb_error = -EMSGSIZE;
	return 0;
}

static int on_scalar(struct kparse *p, const unsigned char *s, size_t n, bool is_string) {
	int d = p->depth;

	if (!value_fits(p, n, is_string))
		return 0;
	if (p->mode == MODE_EVENT && d == 1 && is_string) {
		if (key_is(p, 1, "type"))
			copy_field(p, p->type, sizeof(p->type), s, n, false);
		else if (key_is(p, 1, "id"))
			copy_field(p, p->id, sizeof(p->id), s, n, false);
		else if (key_is(p, 1, "time"))
			copy_field(p, p->time, sizeof(p->time), s, n, false);
		return 1;
	}
	if (p->in_obj) {
		int r = d - p->base;
		if (r == 0) {
			if (is_string && key_is(p, d, "kind"))
				copy_field(p, p->obj.kind, sizeof(p->obj.kind), s, n, true);
			else if (is_string && key_is(p, d, "apiVersion"))
				copy_field(p, p->obj.api_version, sizeof(p->obj.api_version), s, n, true);
			else if (is_string && key_is(p, d, "reason"))
				copy_field(p, p->obj.reason, sizeof(p->obj.reason), s, n, false);
			else if (is_string && key_is(p, d, "message"))
				copy_field(p, p->obj.message, sizeof(p->obj.message), s, n, false);
			else if (!is_string && key_is(p, d, "code")) {
				char tmp[32];
				copy_field(p, tmp, sizeof(tmp), s, n, false);
				p->obj.code = strtoll(tmp, NULL, 10);
			}
		} else if (r == 1 && is_string && key_is(p, p->base, "metadata")) {
			if (key_is(p, d, "name"))
				copy_field(p, p->obj.name, sizeof(p->obj.name), s, n, true);
			else if (key_is(p, d, "namespace"))
				copy_field(p, p->obj.namespace, sizeof(p->obj.namespace), s, n, true);
			else if (key_is(p, d, "uid"))
				copy_field(p, p->obj.uid, sizeof(p->obj.uid), s, n, true);
			else if (key_is(p, d, "resourceVersion"))
				copy_field(p, p->obj.resource_version, sizeof(p->obj.resource_version), s,
					n, true);
		} else if (r == 3 && is_string && in_owner_ref(p, d)) {
			if (key_is(p, d, "apiVersion"))
				copy_field(p, p->ref_api, sizeof(p->ref_api), s, n, false);
			else if (key_is(p, d, "kind"))
				copy_field(p, p->ref_kind, sizeof(p->ref_kind), s, n, false);
		}
		return 1;
	}
	if (p->mode == MODE_LIST && is_string) {
		if (d == 2 && key_is(p, 1, "metadata")) {
			if (key_is(p, 2, "resourceVersion")) {
				/* A cut version would start the watch from one the
				 * server never gave. */
				if (n >= sizeof(p->list_rv)) {
					p->cb_error = -ERANGE;
					return 0;
				}
				copy_field(p, p->list_rv, sizeof(p->list_rv), s, n, false);
			}
			else if (key_is(p, 2, "continue")) {
				/* A cut token would ask for a page the server never gave. */
				if (n > KOBJ_CONTINUE_MAX) {
					p->cb_error = -EOVERFLOW;
					return 0;
				}
				copy_field(p, p->list_continue, sizeof(p->list_continue), s, n, false);
			}
		} else if (d == 1 && key_is(p, 1, "kind")) {
			copy_field(p, p->list_kind, sizeof(p->list_kind), s, n, false);
		} else if (d == 1 && key_is(p, 1, "message")) {
			copy_field(p, p->list_message, sizeof(p->list_message), s, n, false);
		}
	} else if (p->mode == MODE_LIST && d == 1 && key_is(p, 1, "code")) {
		char tmp[32];
		copy_field(p, tmp, sizeof(tmp), s, n, false);
		p->list_code = strtoll(tmp, NULL, 10);
	}
	return 1;
}

static int cb_null(void *ctx) {
	(void)ctx;
	return 1;
}

static int cb_bool(void *ctx, int v) {
	struct kparse *p = ctx;

	if (in_owner_ref(p, p->depth) && key_is(p, p->depth, "controller"))
		p->ref_ctrl = v;
	return 1;
}

static int cb_number(void *ctx, const char *s, size_t n) {
	return on_scalar(ctx, (const unsigned char *)s, n, false);
}

static int cb_string(void *ctx, const unsigned char *s, size_t n) {
	return on_scalar(ctx, s, n, true);
}

static int cb_map_key(void *ctx, const unsigned char *s, size_t n) {
	struct kparse *p = ctx;

	if (!value_fits(p, n, true))
		return 0;
	if (p->depth > 0 && p->depth < MAXD) {
		if (n >= sizeof(p->keys[0]))
			n = sizeof(p->keys[0]) - 1;
		memcpy(p->keys[p->depth], s, n);
		p->keys[p->depth][n] = '\0';
	}
	return 1;
}

/* yajl's parser is iterative; the bound protects what walks the object later
 * (and keeps yajl's own stack of states small). */
static int too_deep(struct kparse *p) {
	if (p->depth < KOBJ_MAX_DEPTH)
		return 0;
	p->cb_error = -ELOOP;
	return 1;
}

static int cb_start_map(void *ctx) {
	struct kparse *p = ctx;
	bool begin = false;

	if (too_deep(p))
		return 0;
	if (p->depth == 1 && p->mode == MODE_EVENT && key_is(p, 1, "object"))
		begin = true;
	else if (p->depth == 1 && p->mode == MODE_EVENT && key_is(p, 1, "data") && !p->in_obj) {
		p->in_data = true;
		p->data_start = pos(p) - 1;
	}
	else if (p->depth == 2 && p->mode == MODE_LIST && key_is(p, 1, "items") && p->is_array[2])
		begin = true;
	p->depth++;
	if (p->depth < MAXD) {
		p->is_array[p->depth] = false;
		p->keys[p->depth][0] = '\0';
	}
	if (begin) {
		p->in_obj = true;
		p->base = p->depth;
		p->obj_start = pos(p) - 1;
		obj_clear(&p->obj);
	} else if (in_owner_ref(p, p->depth)) {
		p->ref_api[0] = p->ref_kind[0] = '\0';
		p->ref_ctrl = false;
	}
	return 1;
}

static int emit_item(struct kparse *p);

static int cb_end_map(void *ctx) {
	struct kparse *p = ctx;

	if (in_owner_ref(p, p->depth) && p->ref_ctrl && !p->obj.has_controller) {
		p->obj.has_controller = true;
		snprintf(p->obj.controller_api_version, sizeof(p->obj.controller_api_version), "%s",
			p->ref_api);
		snprintf(p->obj.controller_kind, sizeof(p->obj.controller_kind), "%s", p->ref_kind);
	}
	if (p->in_data && p->depth == 2) {
		p->in_data = false;
		p->have_data = true;
		p->data_end = pos(p);
	}
	if (p->in_obj && p->depth == p->base) {
		p->in_obj = false;
		p->obj_end = pos(p);
		p->have_object = true;
		if (p->mode == MODE_LIST && emit_item(p) < 0) {
			p->depth--;
			return 0;
		}
	}
	p->depth--;
	return 1;
}

static int cb_start_array(void *ctx) {
	struct kparse *p = ctx;

	if (too_deep(p))
		return 0;
	p->depth++;
	if (p->depth < MAXD) {
		p->is_array[p->depth] = true;
		p->keys[p->depth][0] = '\0';
	}
	return 1;
}

static int cb_end_array(void *ctx) {
	struct kparse *p = ctx;

	p->depth--;
	return 1;
}

static const yajl_callbacks callbacks = {
	.yajl_null = cb_null,
	.yajl_boolean = cb_bool,
	.yajl_number = cb_number,
	.yajl_string = cb_string,
	.yajl_start_map = cb_start_map,
	.yajl_map_key = cb_map_key,
	.yajl_end_map = cb_end_map,
	.yajl_start_array = cb_start_array,
	.yajl_end_array = cb_end_array,
};

static enum kobj_type type_from_name(const char *t) {
	if (strcmp(t, "ADDED") == 0)
		return KOBJ_ADDED;
	if (strcmp(t, "MODIFIED") == 0)
		return KOBJ_MODIFIED;
	if (strcmp(t, "DELETED") == 0)
		return KOBJ_DELETED;
	if (strcmp(t, "BOOKMARK") == 0)
		return KOBJ_BOOKMARK;
	if (strcmp(t, "ERROR") == 0)
		return KOBJ_ERROR;
	return KOBJ_UNKNOWN;
}

int kobj_parse_event(const char *line, size_t len, struct kobj_event *ret) {
	struct kparse parse, *p = &parse;
	alignas(16) char arena_mem[4096];
	struct json_arena arena;
	yajl_alloc_funcs afs;
	yajl_status st;
	int r = -EBADMSG;

	/* On the stack, cleared up to keys: this runs once per watch event. */
	memset(p, 0, offsetof(struct kparse, keys));
	obj_clear(&p->obj);
	p->mode = MODE_EVENT;
	json_arena_init(&arena, arena_mem, sizeof(arena_mem), &afs);
	p->h = yajl_alloc(&callbacks, &afs, p);
	if (!p->h)
		return -ENOMEM;
	/* Object bytes are passed through as they came; the API server sends
	 * UTF-8, and a stray byte is the sink's business, not a reason to drop. */
	yajl_config(p->h, yajl_dont_validate_strings, 1);
	st = yajl_parse(p->h, (const unsigned char *)line, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(p->h);
	if (st == yajl_status_client_canceled && p->cb_error)
		r = p->cb_error;
	if (st != yajl_status_ok || !p->type[0] || !p->have_object || p->obj.truncated)
		goto out;
	ret->obj = p->obj;
	ret->obj.json = line + p->obj_start;
	ret->obj.json_len = p->obj_end - p->obj_start;
	memcpy(ret->type_name, p->type, sizeof(ret->type_name));
	memcpy(ret->id, p->id, sizeof(ret->id));
	memcpy(ret->time, p->time, sizeof(ret->time));
	ret->data = p->have_data ? line + p->data_start : NULL;
	ret->data_len = p->have_data ? p->data_end - p->data_start : 0;
	ret->type = type_from_name(p->type);
	r = 0;
out:
	yajl_free(p->h);
	return r;
}

/* ---------------- lists ---------------- */

/* A list is fed to yajl only up to the end of its last complete token: yajl
 * keeps a token cut by the end of a chunk in its own buffer and lexes it again
 * from its start with every later chunk, so a long value arriving in many
 * chunks costs time quadratic in its length, and memory with no bound. Here a
 * cut token stays in buf (bounded: max_item inside an item, the raw form of
 * KOBJ_LIST_VALUE_MAX outside) until its end arrives, and each byte is
 * scanned once by scan() and once by yajl. */
struct kobj_list {
	struct kparse p;
	struct buf buf;	  /* the item being read, or the bytes yajl has not had */
	size_t buf_base;  /* absolute offset of buf.data[0] */
	size_t fed;	  /* absolute offset: yajl has had the bytes before it */
	size_t scanned;	  /* absolute offset: scan() has seen the bytes before it */
	size_t boundary;  /* absolute offset just after the last token's end */
	bool in_string;	  /* scan() is inside a string */
	bool escaped;	  /* ... just after its backslash */
	size_t max_item;
	size_t items;
	kobj_item_fn fn;
	void *userdata;
};

static int emit_item(struct kparse *p) {
	struct kobj_list *l = (struct kobj_list *)p; /* p is the first member */
	int r;

	if (p->obj.truncated) {
		p->cb_error = -EBADMSG;
		return -1;
	}
	if (p->obj_end - p->obj_start > l->max_item) {
		p->cb_error = -E2BIG;
		return -1;
	}
	p->obj.json = l->buf.data + (p->obj_start - l->buf_base);
	p->obj.json_len = p->obj_end - p->obj_start;
	l->items++;
	r = l->fn(&p->obj, l->userdata);
	if (r < 0) {
		p->cb_error = r;
		return -1;
	}
	return 0;
}

int kobj_list_create(size_t max_item, kobj_item_fn fn, void *userdata,
	struct kobj_list **ret_list) {
	struct kobj_list *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->p.mode = MODE_LIST;
	l->p.h = yajl_alloc(&callbacks, NULL, &l->p);
	if (!l->p.h) {
		free(l);
		return -ENOMEM;
	}
	yajl_config(l->p.h, yajl_dont_validate_strings, 1);
	buf_init(&l->buf, 0);
	l->max_item = max_item;
	l->fn = fn;
	l->userdata = userdata;
	*ret_list = l;
	return 0;
}

void kobj_list_destroy(struct kobj_list *l) {
	if (!l)
		return;
	yajl_free(l->p.h);
	buf_finish(&l->buf);
	free(l);
}

size_t kobj_list_items(const struct kobj_list *l) {
	return l->items;
}

/* Moves boundary past the last token that is complete: a string's closing
 * quote, or a structural character or whitespace outside strings (which also
 * ends a number or literal before it). */
static void scan(struct kobj_list *l) {
	const unsigned char *d = (const unsigned char *)l->buf.data;
	size_t i = l->scanned - l->buf_base, n = l->buf.len;

	for (; i < n; i++) {
		unsigned char c = d[i];

		if (l->in_string) {
			if (l->escaped)
				l->escaped = false;
			else if (c == '\\')
				l->escaped = true;
			else if (c == '"') {
				l->in_string = false;
				l->boundary = l->buf_base + i + 1;
			}
			continue;
		}
		switch (c) {
		case '"':
			l->in_string = true;
			break;
		case '{': case '}': case '[': case ']': case ',': case ':':
		case ' ': case '\t': case '\n': case '\r': case '\v': case '\f':
			l->boundary = l->buf_base + i + 1;
			break;
		default:
			break;
		}
	}
	l->scanned = l->buf_base + n;
}

/* Hands yajl the bytes from fed up to end. */
static int parse_to(struct kobj_list *l, size_t end) {
	yajl_status st;

	if (end <= l->fed)
		return 0;
	l->p.offset_base = l->fed;
	st = yajl_parse(l->p.h, (const unsigned char *)l->buf.data + (l->fed - l->buf_base),
		end - l->fed);
	l->fed = end;
	if (st == yajl_status_client_canceled)
		return l->p.cb_error ? l->p.cb_error : -ECANCELED;
	return st == yajl_status_ok ? 0 : -EBADMSG;
}

int kobj_list_feed(struct kobj_list *l, const char *data, size_t len) {
	size_t end, keep;
	int r;

	r = buf_append(&l->buf, data, len);
	if (r < 0)
		return r;
	scan(l);
	r = parse_to(l, l->boundary);
	if (r < 0)
		return r;
	end = l->buf_base + l->buf.len;
	if (l->p.in_obj) {
		/* Keep the bytes of the item being read. */
		keep = l->p.obj_start;
		if (end - keep > l->max_item)
			return -E2BIG;
	} else {
		/* Only a token still arriving is held. */
		keep = l->fed;
		if (end - keep > RAW_PER_DECODED * (size_t)KOBJ_LIST_VALUE_MAX)
			return -EMSGSIZE;
	}
	/* Dropped only once at least half of buf is dead, so that moving what
	 * is kept costs no more than the bytes dropped: linear overall. */
	if (keep - l->buf_base >= end - keep) {
		buf_consume(&l->buf, keep - l->buf_base);
		l->buf_base = keep;
	}
	return 0;
}

int kobj_list_end(struct kobj_list *l, const char **ret_resource_version,
	const char **ret_continue, long long *ret_status_code, const char **ret_message) {
	yajl_status st;
	int r;

	r = parse_to(l, l->buf_base + l->buf.len);
	if (r < 0)
		return r;
	st = yajl_complete_parse(l->p.h);
	if (st == yajl_status_client_canceled)
		return l->p.cb_error ? l->p.cb_error : -ECANCELED;
	if (st != yajl_status_ok)
		return -EBADMSG;
	*ret_resource_version = l->p.list_rv;
	*ret_continue = l->p.list_continue;
	*ret_status_code = strcmp(l->p.list_kind, "Status") == 0 ? l->p.list_code : 0;
	*ret_message = l->p.list_message;
	return 0;
}

const char *kobj_strerror(int err) {
	switch (err) {
	case -ELOOP:
		return "JSON nested deeper than " STR(KOBJ_MAX_DEPTH) " levels";
	case -EOVERFLOW:
		return "list metadata.continue token longer than " STR(KOBJ_CONTINUE_MAX) " bytes";
	case -ERANGE:
		return "list metadata.resourceVersion longer than 63 bytes";
	case -EMSGSIZE:
		return "a JSON key or value outside the list's items is longer than " STR(
			KOBJ_LIST_VALUE_MAX) " bytes";
	default:
		return strerror(err < 0 ? -err : err);
	}
}
