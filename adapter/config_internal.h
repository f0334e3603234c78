#ifndef ADAPTER_CONFIG_INTERNAL_H
#define ADAPTER_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "adapter/config.h"

/* Shared by config.c (defaults, validation, precedence), config_flags.c (the
 * option table), config_env.c (Knative's environment) and config_manifest.c
 * (an ApiServerSource manifest). Not part of the config module's interface. */

#define MAX_FILE_BYTES (4u * 1024u * 1024u)

struct ctx {
	struct config *cfg;
	config_error_fn on_error;
	void *error_userdata;
	unsigned errors;
	/* Out of memory somewhere: config_load() returns -ENOMEM, and nothing
	 * more is reported (what follows would be guesses). */
	bool nomem;
	/* Where the sink and dead-letter sink came from, for messages about them. */
	char sink_origin[256];
	char dead_letter_origin[256];
	bool sink_rejected; /* a sink value was reported as invalid */
	bool mode_from_file;
	/* What the command line said about resources and namespaces, for the
	 * checks that involve several flags. */
	size_t flag_resources;
	/* Resources reported as invalid (a --resource, or a K_SOURCE_CONFIG or
	 * manifest with problems): "nothing to watch" would only mislead. */
	unsigned bad_resources;
	bool flag_namespaces;
	/* Sink references: where the reference came from, and which of the sink
	 * and the reference the command line gave (it replaces lower sources'
	 * sink as a whole). */
	char sink_ref_origin[256];
	bool flag_sink, flag_sink_ref;
};

/* struct config's member, checked at compile time to have type T: the option
 * tables write fields through these offsets. */
#define CONFIG_FIELD(member, T)                                                               \
	(offsetof(struct config, member) +                                                    \
		0 * sizeof(struct {                                                           \
			_Static_assert(_Generic(((struct config *)0)->member, T: 1, default: 0), \
				"struct config." #member " is not " #T);                      \
			int unused;                                                           \
		}))

void config_report(struct ctx *c, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Records that memory ran out; returns -ENOMEM. */
int config_oom(struct ctx *c);
/* strdup(s ? s : ""), or NULL after config_oom(). */
char *config_strdup(struct ctx *c, const char *s);
/* Replaces *dst with a copy of s; on failure *dst is unchanged. */
int config_set_str(struct ctx *c, char **dst, const char *s);
/* Takes ownership of res's strings (freed on failure too). */
int config_add_resource(struct ctx *c, struct config_resource *res);
int config_add_extension(struct ctx *c, const char *name, const char *value);
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
/* Returns 0, -EINVAL or -ENOMEM. */
int config_split_api_version(const char *api_version, struct config_resource *res);
int config_parse_mode(const char *s, enum config_mode *ret);
int config_parse_uint(const char *s, unsigned long long max, unsigned long long *ret);
/* The byte offset of the first control character in s (tabs, CR and LF
 * allowed when multiline), or -1. */
long config_find_control(const char *s, bool multiline);
/* config_find_control(), reported against origin ("control character 0xNN at
 * byte N of the value"); false after reporting. */
bool config_check_control(struct ctx *c, const char *origin, const char *s, bool multiline);
/* Reports addr naming field unless it is HOST:PORT. */
void config_check_addr(struct ctx *c, const char *addr, const char *field);
/* 1 for an http:// or https:// URL with a host, 0 if not, -ENOMEM. */
int config_valid_http_url(const char *url);
/* A state directory: exists, is a directory, and a file can be created in
 * it. Problems are reported naming origin. */
void config_check_state_dir(struct ctx *c, const char *origin, const char *dir);

/* ---- --header, --header-file, --with-changes (config_headers.c) ---- */

/* The option table's setters for --header NAME=VALUE and --header-file
 * NAME=PATH: each occurrence adds one header (the first replaces none: these
 * come only from flags). */
void config_set_header(struct ctx *c, const char *origin, const char *value, bool first);
void config_set_header_file(struct ctx *c, const char *origin, const char *value, bool first);
/* Whole-config checks: the names against the headers the adapter sets
 * itself (Authorization with OIDC), --header without an HTTP sink,
 * --with-changes with --object-state reference. */
void config_check_headers_changes(struct ctx *c);
void config_free_headers(struct config *cfg);
/* Sink references (config_sinkref.c). The setter of --sink-ref. */
void config_set_sink_ref(struct ctx *c, const char *origin, const char *value, bool first);
/* What is wrong with a reference, or NULL; *ret_field names the part
 * (apiVersion, kind, namespace, name). */
const char *config_sink_ref_problem(const struct config_sink_ref *ref, const char **ret_field);
/* Validates the sink given beside a reference (a relative reference). */
void config_check_sink_with_ref(struct ctx *c);

/* ---- the option table (config_flags.c) ---- */

/* What the command line said: every occurrence, applied last by config_load(). */
struct config_flags;

/* Parses argv (reporting unknown flags and missing values). --help and
 * --version are set in c->cfg at once. Returns 0 or -ENOMEM. */
int config_flags_parse(struct ctx *c, int argc, char **argv, struct config_flags **ret_flags);
/* Applies the flags over what the manifest and environment set. */
void config_flags_apply(struct ctx *c, const struct config_flags *f);
void config_flags_free(struct config_flags *f);
/* Applies the variables that set an option (K_SINK, NAME, ...) from the table. */
void config_env_options_apply(struct ctx *c, config_getenv_fn get, void *ud);

/* The lowest precedence: an ApiServerSource manifest (YAML). */
void config_load_source_file(struct ctx *c, const char *file);
/* Then Knative's environment. */
void config_load_env(struct ctx *c, config_getenv_fn get, void *ud);

#endif
