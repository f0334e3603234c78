#ifndef ADAPTER_OIDC_H
#define ADAPTER_OIDC_H

#include <stdbool.h>
#include <stdint.h>

#include "adapter/http.h"
#include "adapter/kube.h"
#include "adapter/loop.h"

/* OIDC to the sink, as Knative's adapter does it: a token for one service
 * account with one audience, from the TokenRequest API (POST
 * .../namespaces/NS/serviceaccounts/NAME/token), kept until shortly before
 * it expires and fetched again then, or at once when the sink rejects it.
 * The token is never logged. */

struct oidc;

typedef void (*oidc_ready_fn)(void *userdata);

/* Borrows kube, http and loop; copies the strings. The first fetch starts
 * at once; fn is called each time a new token is ready. */
int oidc_create(struct kube *kube, struct http *http, struct loop *loop, const char *namespace,
	const char *service_account, const char *audience, oidc_ready_fn fn, void *userdata,
	struct oidc **ret_oidc);
void oidc_destroy(struct oidc *o);
/* The current token, or NULL while there is none (a fetch is under way). */
const char *oidc_token(const struct oidc *o);
/* A serial number of the current token: 0 before the first. */
uint64_t oidc_generation(const struct oidc *o);
/* The sink answered 401 to the token of this generation: drop it and fetch
 * a new one (once per generation; later calls for it do nothing). */
void oidc_token_rejected(struct oidc *o, uint64_t generation);
/* Why there is no token yet (for readiness), or NULL when there is one. */
const char *oidc_problem(const struct oidc *o);

/* Reads a TokenRequest answer: status.token and status.expirationTimestamp
 * (RFC 3339). Returns 0, or -EBADMSG. Exposed for tests. */
int oidc_parse_answer(const char *body, char **ret_token, int64_t *ret_expires_unix);

#endif
