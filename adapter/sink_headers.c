#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/http.h"
#include "adapter/log.h"
#include "adapter/sink_headers.h"
#include "adapter/util/fileio.h"

struct sink_headers {
	const struct config *cfg;
	char **lines; /* per cfg->headers[i], as curl takes it */
};

/* The header line, or a negative errno: -E2BIG, -EILSEQ (a control
 * character), -ENOMEM, or the file's. */
static int make_line(const struct config_header *ch, char **ret_line) {
	char *text = NULL, *line = NULL;
	const char *value = ch->value;
	size_t len = 0;
	int r;

	if (ch->path) {
		r = file_read_all(ch->path, SINK_HEADERS_FILE_MAX, &text, &len);
		if (r < 0)
			return r;
		if (len && text[len - 1] == '\n')
			text[--len] = '\0';
		if (len && text[len - 1] == '\r')
			text[--len] = '\0';
		value = text ? text : "";
		/* A NUL inside would cut the value short without a word. */
		if (text && strlen(text) != len) {
			r = -EILSEQ;
			goto out;
		}
	}
	r = -EILSEQ;
	if (!http_header_value_valid(value))
		goto out;
	r = -ENOMEM;
	/* curl sends "Name;" as an empty header; "Name:" would remove one. */
	if ((*value ? asprintf(&line, "%s: %s", ch->name, value) : asprintf(&line, "%s;", ch->name)) <
		0)
		goto out;
	*ret_line = line;
	r = 0;
out:
	if (text) {
		explicit_bzero(text, len);
		free(text);
	}
	return r;
}

static void free_line(char *line) {
	if (!line)
		return;
	explicit_bzero(line, strlen(line));
	free(line);
}

static const char *why(int r) {
	switch (r) {
	case -E2BIG:
		return "larger than 8192 bytes";
	case -EILSEQ:
		return "the value holds a control character (after one trailing line break)";
	default:
		return strerror(-r);
	}
}

int sink_headers_create(const struct config *cfg, config_error_fn on_error, void *userdata,
	struct sink_headers **ret_headers) {
	struct sink_headers *h = NULL;
	int r = -ENOMEM, failed = 0;

	h = calloc(1, sizeof(*h));
	if (!h)
		goto out;
	h->cfg = cfg;
	h->lines = calloc(cfg->n_headers ? cfg->n_headers : 1, sizeof(*h->lines));
	if (!h->lines)
		goto out;
	for (size_t i = 0; i < cfg->n_headers; i++) {
		const struct config_header *ch = &cfg->headers[i];
		char msg[600];

		r = make_line(ch, &h->lines[i]);
		if (r == -ENOMEM)
			goto out;
		if (r < 0) {
			snprintf(msg, sizeof(msg), "%s=%s: %s", ch->name, ch->path ? ch->path : "",
				why(r));
			on_error(ch->path ? "--header-file" : "--header", msg, userdata);
			failed++;
		}
	}
	r = failed ? -EINVAL : 0;
	if (r == 0) {
		*ret_headers = h;
		h = NULL;
	}
out:
	sink_headers_destroy(h);
	return r;
}

void sink_headers_destroy(struct sink_headers *h) {
	if (!h)
		return;
	for (size_t i = 0; h->lines && i < h->cfg->n_headers; i++)
		free_line(h->lines[i]);
	free(h->lines);
	free(h);
}

int sink_headers_reload(struct sink_headers *h) {
	int failed = 0, files = 0;

	for (size_t i = 0; i < h->cfg->n_headers; i++) {
		const struct config_header *ch = &h->cfg->headers[i];
		char *line = NULL;
		int r;

		if (!ch->path)
			continue;
		files++;
		r = make_line(ch, &line);
		if (r < 0) {
			log_warn("sink", "cannot read a header file again, keeping its previous value",
				LOG_STR("header", ch->name), LOG_STR("file", ch->path),
				LOG_STR("error", why(r)));
			failed++;
			continue;
		}
		free_line(h->lines[i]);
		h->lines[i] = line;
	}
	if (files)
		log_info("sink", "header files read again", LOG_INT("files", files),
			LOG_INT("failed", failed));
	return failed;
}

int sink_headers_append(const struct sink_headers *h, struct http_headers *to) {
	int r = 0;

	/* A header file may hold a credential: zeroed when the request ends. */
	to->secret = to->secret || h->cfg->n_headers > 0;
	for (size_t i = 0; r == 0 && i < h->cfg->n_headers; i++)
		r = http_headers_add(to, h->lines[i]);
	return r;
}
