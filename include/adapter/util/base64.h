#ifndef ADAPTER_UTIL_BASE64_H
#define ADAPTER_UTIL_BASE64_H

#include <stddef.h>

/* Decodes standard base64 (RFC 4648 section 4) as strictly as Go's
 * base64.StdEncoding, which kubectl uses for a kubeconfig's *-data fields:
 * only A-Z a-z 0-9 + /, line breaks (CR, LF) ignored, the length a multiple of
 * four, and '=' only as the last one or two characters of the last quantum.
 * On success *ret_data is a malloc'd, NUL-terminated copy of the *ret_len
 * decoded bytes (the caller wipes and frees it). Returns 0, -ENOMEM, or
 * -EINVAL with *ret_pos set to the 0-based offset in `in` of the first
 * offending character (len when the length is wrong). Borrows in. */
int base64_decode(const char *in, size_t len, char **ret_data, size_t *ret_len, size_t *ret_pos);

#endif
