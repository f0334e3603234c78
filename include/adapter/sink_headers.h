#ifndef ADAPTER_SINK_HEADERS_H
#define ADAPTER_SINK_HEADERS_H

#include <curl/curl.h>

#include "adapter/config.h"
#include "adapter/http.h"

/* The headers --header and --header-file add to every POST to the sink (not
 * to the dead-letter sink, which may belong to someone else: a credential for
 * the sink stays with the sink). A file's value (a mounted Secret) is read at
 * start and again by sink_headers_reload() (SIGHUP), one trailing line break
 * (LF or CRLF) dropped. Values are never logged; messages name the header and
 * the file. */

#define SINK_HEADERS_FILE_MAX 8192

struct sink_headers;

/* Reads every --header-file. A file that cannot be read, is over
 * SINK_HEADERS_FILE_MAX bytes or holds a control character is reported
 * through on_error ("--header-file", one line naming the header and the
 * file) and fails the whole: -EINVAL (or -ENOMEM). Borrows cfg, which must
 * outlive the result. */
int sink_headers_create(const struct config *cfg, config_error_fn on_error, void *userdata,
	struct sink_headers **ret_headers);
void sink_headers_destroy(struct sink_headers *h);
/* Reads the files again. A file that fails keeps its previous value and gets
 * a warning; returns the number of files that failed. */
int sink_headers_reload(struct sink_headers *h);
/* Appends "Name: value" lines (or "Name;" for an empty value) to `to`
 * (marked secret: a header file may hold a credential).
 * Returns 0 or -ENOMEM. */
int sink_headers_append(const struct sink_headers *h, struct http_headers *to);

#endif
