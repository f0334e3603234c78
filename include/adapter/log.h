#ifndef ADAPTER_LOG_H
#define ADAPTER_LOG_H

#include <stdbool.h>
#include <stdint.h>

/* JSON-lines logger: one object per line on stderr, keys as Knative's
 * components emit them (level, ts, logger, caller, msg, then fields). Each line
 * is written with one write(2). Never pass tokens or Authorization headers. */

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

/* Sets the minimum level and the fd lines go to (default stderr). */
void log_setup(enum log_level min, int fd);
/* Parses "debug", "info", "warn"/"warning", "error". Returns -EINVAL otherwise. */
int log_level_from_string(const char *s, enum log_level *ret_level);
bool log_enabled(enum log_level level);

/* The varargs are struct log_field values terminated by LOG_END; use the macros. */
void log_emit(enum log_level level, const char *logger, const char *file, int line, const char *msg,
	...);

#define log_at(lvl, logger, ...) log_emit((lvl), (logger), __FILE__, __LINE__, __VA_ARGS__, LOG_END)
#define log_debug(logger, ...) log_at(LOG_DEBUG, logger, __VA_ARGS__)
#define log_info(logger, ...) log_at(LOG_INFO, logger, __VA_ARGS__)
#define log_warn(logger, ...) log_at(LOG_WARN, logger, __VA_ARGS__)
#define log_error(logger, ...) log_at(LOG_ERROR, logger, __VA_ARGS__)

#endif
