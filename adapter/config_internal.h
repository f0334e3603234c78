#ifndef ADAPTER_CONFIG_INTERNAL_H
#define ADAPTER_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <yajl/yajl_tree.h>

#include "adapter/config.h"

/* Shared by config.c (defaults, flags, validation), config_env.c (Knative's
 * environment) and config_manifest.c (an ApiServerSource manifest). Not part
 * of the config module's interface. */

#define MAX_FILE_BYTES (4u * 1024u * 1024u)

struct ctx {
	struct config *cfg;
	config_error_fn on_error;
	void *error_userdata;
	unsigned errors;
	/* Where the sink and dead-letter sink came from, for messages about them. */
	char sink_origin[256];
	char dead_letter_origin[256];
	bool mode_from_file;
};

void config_report(struct ctx *c, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Out of memory while reading the configuration aborts: it is tiny. */
char *config_xstrdup(const char *s);
void config_set_str(char **dst, const char *s);
void config_add_resource(struct config *cfg, struct config_resource *res);
void config_add_extension(struct config *cfg, const char *name, const char *value);
/* ANDs filters into cfg->filter: a JSON array (one false), or one --filter
 * (one true: a JSON object or a CESQL expression). Errors name field. */
void config_add_filter(struct ctx *c, const char *field, const char *text, size_t len, bool one);
/* Takes ownership of f and warnings (malloc'd lines, or NULL). */
void config_take_filter(struct ctx *c, struct filter *f, char *warnings);
void config_free_resources(struct config *cfg);
void config_free_namespaces(struct config *cfg);
void config_free_extensions(struct config *cfg);
bool config_valid_dns_label(const char *s);
bool config_valid_extension_name(const char *s);
bool config_valid_api_version(const char *group, const char *version);
int config_split_api_version(const char *api_version, struct config_resource *res);
int config_parse_mode(const char *s, enum config_mode *ret);
int config_parse_uint(const char *s, unsigned long long max, unsigned long long *ret);

/* What the command line said, applied last by config_load(). */
#define N_NUMERIC 11
struct flag_values {
	struct config_resource *resources;
	size_t n_resources;
	unsigned bad_resources; /* --resource values reported as invalid */
	char **namespaces;
	size_t n_namespaces;
	bool all_namespaces;
	const char *selector;
	const char *mode, *sink, *kubeconfig, *context, *name, *source_file, *log_level;
	const char *dead_letter, *state_dir, *object_state;
	const char *probes_addr, *metrics_addr, *log_format;
	const char *numeric[N_NUMERIC];
	bool initial_events, fail_fast;
	const char **filters; /* --filter, repeatable */
	size_t n_filters;
};

void config_parse_flags(struct ctx *c, int argc, char **argv, struct flag_values *f);
void config_flag_values_finish(struct flag_values *f);
/* Whole-number flags: range-checked and written into c->cfg. */
void config_apply_numeric_flags(struct ctx *c, const struct flag_values *f);

/* The lowest precedence: an ApiServerSource manifest (YAML). */
void config_load_source_file(struct ctx *c, const char *file);
/* Then Knative's environment. */
void config_load_env(struct ctx *c, config_getenv_fn get, void *ud);

#endif
