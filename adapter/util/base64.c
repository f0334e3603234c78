#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/util/base64.h"

static bool in_alphabet(char c) {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '+' || c == '/';
}

int base64_decode(const char *in, size_t len, char **ret_data, size_t *ret_len, size_t *ret_pos) {
	char *clean = NULL, *out = NULL;
	size_t n = 0, pad = 0;
	int dec, r = -EINVAL;

	if (len > (size_t)INT_MAX / 4 * 3)
		return -E2BIG;
	clean = malloc(len + 1);
	if (!clean)
		return -ENOMEM;
	/* The check OpenSSL leaves out: EVP_DecodeBlock() skips blanks and takes
	 * '=' anywhere in the last quantum, so "====" decodes to bytes. */
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '\n' || c == '\r')
			continue;
		if (c == '=' ? ++pad > 2 : pad > 0 || !in_alphabet(c)) {
			*ret_pos = i;
			goto out;
		}
		clean[n++] = c;
	}
	if (n % 4 != 0) {
		*ret_pos = len;
		goto out;
	}
	r = -ENOMEM;
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		goto out;
	dec = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)clean, (int)n);
	if (dec < 0 || (size_t)dec < pad) {
		r = -EINVAL;
		*ret_pos = 0;
		goto out;
	}
	*ret_len = (size_t)dec - pad; /* EVP_DecodeBlock() counts padding as zero bytes */
	out[*ret_len] = '\0';
	*ret_data = out;
	out = NULL;
	r = 0;
out:
	if (out) {
		OPENSSL_cleanse(out, n / 4 * 3 + 1);
		free(out);
	}
	OPENSSL_cleanse(clean, len + 1);
	free(clean);
	return r;
}
