#ifndef ADAPTER_LOG_H
#define ADAPTER_LOG_H

#include <stdbool.h>
#include <stdint.h>

/* The logger: one line per record, written with one write(2). By default a
 * JSON object per line on stderr with the keys Knative's components emit
 * (level, ts, logger, caller, msg, then fields). Under Knative,
 * K_LOGGING_CONFIG (a zap configuration) chooses the level, the output
 * (stdout or stderr), the encoding (json or console), the key names and the
 * time encoding. Never pass tokens or Authorization headers. */

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

enum log_field_type { LOG_FIELD_END, LOG_FIELD_STR, LOG_FIELD_INT, LOG_FIELD_BOOL };

struct log_field {
	const char *key;
	enum log_field_type type;
	const char *s;
	long long i;
};

#define LOG_STR(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_STR, .s = (v) })
#define LOG_INT(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_INT, .i = (long long)(v) })
#define LOG_BOOL(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_BOOL, .i = !!(v) })
#define LOG_END ((struct log_field){ .key = 0, .type = LOG_FIELD_END })

enum log_format { LOG_FORMAT_JSON, LOG_FORMAT_TEXT };
enum log_time { LOG_TIME_ISO8601, LOG_TIME_RFC3339, LOG_TIME_RFC3339NANO, LOG_TIME_EPOCH,
	LOG_TIME_MILLIS, LOG_TIME_NANOS };

#define LOG_KEY_MAX 64

struct log_options {
	enum log_level level;
	int fd;
	enum log_format format;
	enum log_time time;
	bool capital_level;
	/* An empty key leaves that part out, as zap does. */
	char level_key[LOG_KEY_MAX], time_key[LOG_KEY_MAX], logger_key[LOG_KEY_MAX],
		caller_key[LOG_KEY_MAX], msg_key[LOG_KEY_MAX];
};

/* The defaults: info, stderr, JSON, ISO 8601, Knative's key names. */
void log_options_default(struct log_options *ret_opts);
/* Applies a zap configuration over opts: either K_LOGGING_CONFIG as Knative
 * writes it ({"zap-logger-config": "<zap JSON>", "loglevel.<component>": ...})
 * or a zap JSON object itself. component picks the loglevel.* override.
 * Returns 0, or -EINVAL with a one-line reason naming the key. */
int log_options_from_zap(const char *json, const char *component, struct log_options *opts,
	char *errbuf, size_t errlen);
void log_configure(const struct log_options *opts);
/* Sets the minimum level and the fd lines go to, keeping the rest. */
void log_setup(enum log_level min, int fd);
/* Parses "debug", "info", "warn"/"warning", "error". Returns -EINVAL otherwise. */
int log_level_from_string(const char *s, enum log_level *ret_level);
bool log_enabled(enum log_level level);

/* A rate limit for lines that repeat, modelled on systemd's RateLimit and
 * log_ratelimit_*(): at most burst lines per interval_usec, the rest counted
 * in suppressed so that a summary line can say how many were left out.
 * Zeroed but for interval_usec and burst is a fresh limit; 0 for either
 * means no limit. */
struct log_ratelimit {
	uint64_t interval_usec;
	unsigned burst;
	uint64_t begin_usec; /* start of the current interval; 0: none yet */
	unsigned num;	     /* lines let through in the current interval */
	unsigned suppressed; /* lines held back since log_ratelimit_take_suppressed() */
};

/* True when one more line may be written at now_usec (CLOCK_MONOTONIC);
 * false counts it as suppressed. */
bool log_ratelimit_below(struct log_ratelimit *rl, uint64_t now_usec);
/* Returns the lines held back so far and starts counting again from 0. */
unsigned log_ratelimit_take_suppressed(struct log_ratelimit *rl);

/* The varargs are struct log_field values terminated by LOG_END; use the macros. */
void log_emit(enum log_level level, const char *logger, const char *file, int line, const char *msg,
	...);

#define log_at(lvl, logger, ...) log_emit((lvl), (logger), __FILE__, __LINE__, __VA_ARGS__, LOG_END)
#define log_debug(logger, ...) log_at(LOG_DEBUG, logger, __VA_ARGS__)
#define log_info(logger, ...) log_at(LOG_INFO, logger, __VA_ARGS__)
#define log_warn(logger, ...) log_at(LOG_WARN, logger, __VA_ARGS__)
#define log_error(logger, ...) log_at(LOG_ERROR, logger, __VA_ARGS__)

#endif
