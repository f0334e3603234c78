#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "adapter/changes.h"
#include "adapter/util/json.h"

/* Both states are parsed into yajl trees with json_parse_bounded() (its
 * iterative pre-pass refuses anything deeper than max_depth before a tree is
 * built), then walked together. The walk recurses once per level, so its
 * depth is the bound's too. Maps are compared by key through sorted member
 * lists, so a map of n keys costs n log n, not n squared. */

struct member {
	const char *key;
	yajl_val value;
};

struct differ {
	struct buf *out;
	size_t start; /* out->len before: what failure restores */
	struct buf path;
	size_t n_paths;
	bool full; /* the marker is written: nothing more is listed */
	int err;
};

static int by_key(const void *a, const void *b) {
	return strcmp(((const struct member *)a)->key, ((const struct member *)b)->key);
}

/* The members of a map (v may be NULL: none), sorted by key; NULL with
 * *ret_n == 0 for an empty map, NULL with -ENOMEM in err otherwise. */
static struct member *sorted_members(yajl_val v, size_t *ret_n, int *err) {
	struct member *m;
	size_t n = v ? v->u.object.len : 0;

	*ret_n = 0;
	if (!n)
		return NULL;
	m = calloc(n, sizeof(*m));
	if (!m) {
		*err = -ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		m[i] = (struct member){ v->u.object.keys[i], v->u.object.values[i] };
	qsort(m, n, sizeof(*m), by_key);
	*ret_n = n;
	return m;
}

static bool equal(yajl_val a, yajl_val b);

static bool equal_maps(yajl_val a, yajl_val b) {
	struct member *ma = NULL, *mb = NULL;
	size_t n = a->u.object.len, na, nb;
	bool same = true;
	int err = 0;

	if (n != b->u.object.len)
		return false;
	/* The API server writes a map's keys in the same order every time. */
	for (size_t i = 0; i < n && same; i++)
		same = strcmp(a->u.object.keys[i], b->u.object.keys[i]) == 0 &&
			equal(a->u.object.values[i], b->u.object.values[i]);
	if (same)
		return true;
	ma = sorted_members(a, &na, &err);
	mb = sorted_members(b, &nb, &err);
	same = !err && na == nb;
	for (size_t i = 0; same && i < na; i++)
		same = strcmp(ma[i].key, mb[i].key) == 0 && equal(ma[i].value, mb[i].value);
	free(ma);
	free(mb);
	return same; /* out of memory: "changed" is the safe answer */
}

static bool equal(yajl_val a, yajl_val b) {
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case yajl_t_string:
		return strcmp(a->u.string, b->u.string) == 0;
	case yajl_t_number:
		/* The text as written: 1 and 1.0 differ, as they do to a reader. */
		return strcmp(a->u.number.r, b->u.number.r) == 0;
	case yajl_t_object:
		return equal_maps(a, b);
	case yajl_t_array:
		if (a->u.array.len != b->u.array.len)
			return false;
		for (size_t i = 0; i < a->u.array.len; i++)
			if (!equal(a->u.array.values[i], b->u.array.values[i]))
				return false;
		return true;
	default: /* true, false, null: the type says it all */
		return true;
	}
}

/* Appends one key to the path, escaped (see changes.h). */
static int push_key(struct buf *path, const char *key) {
	int r = path->len ? buf_append(path, ".", 1) : 0;

	for (const unsigned char *p = (const unsigned char *)key; r == 0 && *p; p++) {
		if (*p == '.' || *p == ',' || *p == '\\') {
			char esc[2] = { '\\', (char)*p };
			r = buf_append(path, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			r = buf_printf(path, "\\x%02X", *p);
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			/* U+0080..U+009F, which a CloudEvents String may not hold. */
			r = buf_printf(path, "\\x%02X\\x%02X", p[0], p[1]);
			p++;
		} else {
			r = buf_append(path, p, 1);
		}
	}
	return r;
}

/* Lists the current path, or the marker once the bounds are reached. */
static void list_path(struct differ *d) {
	size_t sep = d->n_paths ? 1 : 0;
	size_t used = d->out->len - d->start;
	int r;

	if (d->full || d->err)
		return;
	/* Room is kept for the marker, so it always fits. */
	if (d->n_paths == CHANGES_MAX_PATHS ||
		used + sep + d->path.len + 1 + strlen(CHANGES_TRUNCATED) > CHANGES_MAX_BYTES) {
		d->full = true;
		r = buf_append(d->out, ",", sep);
		if (r == 0)
			r = buf_append_str(d->out, CHANGES_TRUNCATED);
	} else {
		r = buf_append(d->out, ",", sep);
		if (r == 0)
			r = buf_append(d->out, d->path.data ? d->path.data : "", d->path.len);
		if (r == 0)
			d->n_paths++;
	}
	if (r < 0)
		d->err = r;
}

static bool ignored(unsigned depth, bool in_metadata, const char *key) {
	return depth == 1 && in_metadata &&
		(strcmp(key, "resourceVersion") == 0 || strcmp(key, "managedFields") == 0 ||
			strcmp(key, "generation") == 0);
}

static void walk(struct differ *d, yajl_val a, yajl_val b, unsigned depth, bool in_metadata);

/* Two maps (either may be NULL: absent, seen as empty), merged by key. */
static void walk_maps(struct differ *d, yajl_val a, yajl_val b, unsigned depth, bool in_metadata) {
	struct member *ma = NULL, *mb = NULL;
	size_t na, nb, i = 0, j = 0;

	ma = sorted_members(a, &na, &d->err);
	mb = sorted_members(b, &nb, &d->err);
	if (!na && !nb && !d->err && (!a || !b)) {
		/* An empty map that appeared or went: its own path. */
		list_path(d);
		return;
	}
	while (!d->err && !d->full && (i < na || j < nb)) {
		int c = i == na ? 1 : j == nb ? -1 : strcmp(ma[i].key, mb[j].key);
		const struct member *m = c <= 0 ? &ma[i] : &mb[j];
		size_t mark = d->path.len;

		if (!ignored(depth, in_metadata, m->key)) {
			d->err = push_key(&d->path, m->key);
			if (!d->err)
				walk(d, c <= 0 ? ma[i].value : NULL, c >= 0 ? mb[j].value : NULL,
					depth + 1, depth == 0 && strcmp(m->key, "metadata") == 0);
			d->path.len = mark;
			if (d->path.data)
				d->path.data[mark] = '\0';
		}
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	free(ma);
	free(mb);
}

/* One value on each side, either NULL when absent (not both). */
static void walk(struct differ *d, yajl_val a, yajl_val b, unsigned depth, bool in_metadata) {
	bool map_a = a && YAJL_IS_OBJECT(a), map_b = b && YAJL_IS_OBJECT(b);

	if (d->err || d->full)
		return;
	if ((map_a && map_b) || (map_a && !b) || (!a && map_b))
		walk_maps(d, a, b, depth, in_metadata);
	else if (!a || !b || !equal(a, b))
		list_path(d);
}

int changes_diff(const char *old_json, size_t old_len, const char *new_json, size_t new_len,
	unsigned max_depth, struct buf *out) {
	struct differ d = { .out = out, .start = out->len };
	yajl_val a = NULL, b = NULL;
	int r = -EBADMSG;

	buf_init(&d.path, 0);
	a = json_parse_bounded(old_json, old_len, max_depth, NULL, 0);
	if (!a) {
		r = errno == ENOMEM ? -ENOMEM : -EBADMSG;
		goto out;
	}
	b = json_parse_bounded(new_json, new_len, max_depth, NULL, 0);
	if (!b) {
		r = errno == ENOMEM ? -ENOMEM : -EBADMSG;
		goto out;
	}
	walk(&d, a, b, 0, false);
	r = d.err ? d.err : (int)d.n_paths;
out:
	if (r < 0 && out->len > d.start) {
		out->len = d.start;
		out->data[out->len] = '\0';
	}
	yajl_tree_free(a);
	yajl_tree_free(b);
	buf_finish(&d.path);
	return r;
}
