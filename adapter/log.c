#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "adapter/log.h"
#include "adapter/util/json.h"

/* Knative's key names, JSON on stderr, info and up. */
#define LOG_OPTIONS_DEFAULT                                                                       \
	((struct log_options){ .level = LOG_INFO,                                                 \
		.fd = STDERR_FILENO,                                                              \
		.format = LOG_FORMAT_JSON,                                                        \
		.time = LOG_TIME_ISO8601,                                                         \
		.level_key = "level",                                                             \
		.time_key = "ts",                                                                 \
		.logger_key = "logger",                                                           \
		.caller_key = "caller",                                                           \
		.msg_key = "msg" })

static struct log_options opts = LOG_OPTIONS_DEFAULT;

static const char *const level_names[] = { "debug", "info", "warn", "error" };
static const char *const level_capitals[] = { "DEBUG", "INFO", "WARN", "ERROR" };

void log_options_default(struct log_options *ret_opts) {
	*ret_opts = LOG_OPTIONS_DEFAULT;
}

void log_configure(const struct log_options *o) {
	opts = *o;
}

void log_setup(enum log_level min, int fd) {
	opts.level = min;
	opts.fd = fd;
}

int log_level_from_string(const char *s, enum log_level *ret_level) {
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(s, level_names[i]) == 0) {
			*ret_level = (enum log_level)i;
			return 0;
		}
	if (strcasecmp(s, "warning") == 0) {
		*ret_level = LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

bool log_enabled(enum log_level level) {
	return level >= opts.level;
}

bool log_ratelimit_below(struct log_ratelimit *rl, uint64_t now_usec) {
	if (!rl->interval_usec || !rl->burst)
		return true;
	if (!rl->begin_usec || now_usec - rl->begin_usec >= rl->interval_usec) {
		rl->begin_usec = now_usec ? now_usec : 1;
		rl->num = 0;
	}
	if (rl->num < rl->burst) {
		rl->num++;
		return true;
	}
	rl->suppressed++;
	return false;
}

unsigned log_ratelimit_take_suppressed(struct log_ratelimit *rl) {
	unsigned n = rl->suppressed;

	rl->suppressed = 0;
	return n;
}

static int set_key(char *dst, yajl_val enc, const char *name, char *errbuf, size_t errlen) {
	yajl_val v = json_get(enc, name);

	if (!v)
		return 0;
	if (!YAJL_IS_STRING(v) || strlen(v->u.string) >= LOG_KEY_MAX) {
		snprintf(errbuf, errlen, "encoderConfig.%s: not a string of at most %d bytes", name,
			LOG_KEY_MAX - 1);
		return -EINVAL;
	}
	snprintf(dst, LOG_KEY_MAX, "%s", v->u.string);
	return 0;
}

/* zap's names for its time encoders; "" and unknown names mean epoch, as in
 * zapcore.TimeEncoder's UnmarshalText. */
static enum log_time time_encoder(const char *s) {
	if (strcasecmp(s, "iso8601") == 0 || strcasecmp(s, "ISO8601") == 0)
		return LOG_TIME_ISO8601;
	if (strcasecmp(s, "rfc3339") == 0)
		return LOG_TIME_RFC3339;
	if (strcasecmp(s, "rfc3339nano") == 0)
		return LOG_TIME_RFC3339NANO;
	if (strcasecmp(s, "millis") == 0)
		return LOG_TIME_MILLIS;
	if (strcasecmp(s, "nanos") == 0)
		return LOG_TIME_NANOS;
	return LOG_TIME_EPOCH;
}

static int apply_zap(yajl_val zap, struct log_options *o, char *errbuf, size_t errlen) {
	yajl_val enc = json_get(zap, "encoderConfig"), out = json_get(zap, "outputPaths");
	const char *s;
	int r = 0;

	if (!YAJL_IS_OBJECT(zap)) {
		snprintf(errbuf, errlen, "zap-logger-config: not a JSON object");
		return -EINVAL;
	}
	if ((s = json_get_str(zap, "level")) && log_level_from_string(s, &o->level) < 0) {
		snprintf(errbuf, errlen, "level: \"%.64s\" is not debug, info, warn or error", s);
		return -EINVAL;
	}
	if ((s = json_get_str(zap, "encoding"))) {
		if (strcmp(s, "json") == 0) {
			o->format = LOG_FORMAT_JSON;
		} else if (strcmp(s, "console") == 0) {
			o->format = LOG_FORMAT_TEXT;
		} else {
			snprintf(errbuf, errlen, "encoding: \"%.64s\" is not json or console", s);
			return -EINVAL;
		}
	}
	if (YAJL_IS_ARRAY(out) && out->u.array.len) {
		/* One output: the first that is stdout or stderr. A file path cannot
		 * be honoured on a read-only root file system. */
		yajl_val first = out->u.array.values[0];
		if (!YAJL_IS_STRING(first) ||
			(strcmp(first->u.string, "stdout") != 0 && strcmp(first->u.string, "stderr") != 0)) {
			snprintf(errbuf, errlen, "outputPaths: only \"stdout\" or \"stderr\" is supported");
			return -EINVAL;
		}
		o->fd = strcmp(first->u.string, "stdout") == 0 ? STDOUT_FILENO : STDERR_FILENO;
	}
	if (enc && !YAJL_IS_OBJECT(enc)) {
		snprintf(errbuf, errlen, "encoderConfig: not a JSON object");
		return -EINVAL;
	}
	if (enc) {
		r = set_key(o->time_key, enc, "timeKey", errbuf, errlen);
		if (r == 0)
			r = set_key(o->level_key, enc, "levelKey", errbuf, errlen);
		if (r == 0)
			r = set_key(o->logger_key, enc, "nameKey", errbuf, errlen);
		if (r == 0)
			r = set_key(o->caller_key, enc, "callerKey", errbuf, errlen);
		if (r == 0)
			r = set_key(o->msg_key, enc, "messageKey", errbuf, errlen);
		if (r == 0 && (s = json_get_str(enc, "timeEncoder")))
			o->time = time_encoder(s);
		if (r == 0 && (s = json_get_str(enc, "levelEncoder")))
			o->capital_level = strncmp(s, "capital", 7) == 0;
	}
	return r;
}

int log_options_from_zap(const char *json, const char *component, struct log_options *o,
	char *errbuf, size_t errlen) {
	char err[256], key[128];
	yajl_val root, inner = NULL;
	const char *zap_text, *lvl;
	int r;

	root = json_parse(json, err, sizeof(err));
	if (!root) {
		snprintf(errbuf, errlen, "%s", err);
		return -EINVAL;
	}
	zap_text = json_get_str(root, "zap-logger-config");
	if (zap_text) {
		inner = json_parse(zap_text, err, sizeof(err));
		if (!inner) {
			snprintf(errbuf, errlen, "zap-logger-config: %s", err);
			r = -EINVAL;
			goto out;
		}
		r = apply_zap(inner, o, errbuf, errlen);
	} else if (json_get(root, "zap-logger-config")) {
		snprintf(errbuf, errlen, "zap-logger-config: not a string");
		r = -EINVAL;
	} else if (json_get(root, "encoding") || json_get(root, "level") ||
		   json_get(root, "encoderConfig") || json_get(root, "outputPaths")) {
		r = apply_zap(root, o, errbuf, errlen); /* a zap configuration itself */
	} else {
		r = 0; /* {} or only level overrides: the defaults */
	}
	snprintf(key, sizeof(key), "loglevel.%s", component);
	if (r == 0 && (lvl = json_get_str(root, key)) && log_level_from_string(lvl, &o->level) < 0) {
		snprintf(errbuf, errlen, "%s: \"%.64s\" is not debug, info, warn or error", key, lvl);
		r = -EINVAL;
	}
out:
	yajl_tree_free(inner);
	yajl_tree_free(root);
	return r;
}

static void put_str(yajl_gen g, const char *s) {
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void format_time(char *out, size_t len) {
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	switch (opts.time) {
	case LOG_TIME_ISO8601:
		snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			(int)(now.tv_nsec / 1000000));
		break;
	case LOG_TIME_RFC3339:
		snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
			tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		break;
	case LOG_TIME_RFC3339NANO:
		snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec);
		break;
	case LOG_TIME_MILLIS:
		snprintf(out, len, "%lld.%06ld", (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000,
			now.tv_nsec % 1000000);
		break;
	case LOG_TIME_NANOS:
		snprintf(out, len, "%lld%09ld", (long long)now.tv_sec, now.tv_nsec);
		break;
	case LOG_TIME_EPOCH:
		snprintf(out, len, "%lld.%09ld", (long long)now.tv_sec, now.tv_nsec);
		break;
	}
}

/* Numbers go out as numbers, the ISO and RFC forms as strings. */
static bool time_is_number(void) {
	return opts.time == LOG_TIME_EPOCH || opts.time == LOG_TIME_MILLIS ||
	       opts.time == LOG_TIME_NANOS;
}

static void put_field(yajl_gen g, const struct log_field *f) {
	switch (f->type) {
	case LOG_FIELD_STR:
		if (f->s)
			put_str(g, f->s);
		else
			yajl_gen_null(g);
		break;
	case LOG_FIELD_INT:
		yajl_gen_integer(g, f->i);
		break;
	case LOG_FIELD_BOOL:
		yajl_gen_bool(g, (int)f->i);
		break;
	default:
		yajl_gen_null(g);
	}
}

/* zap's console layout: time, level, logger, caller, message separated by
 * tabs, then the fields as one JSON object. */
static void emit_text(yajl_gen g, const char *level, const char *ts, const char *logger,
	const char *caller, const char *msg, const struct log_field *fields, size_t n) {
	const unsigned char *out;
	size_t outlen;
	char *line = NULL;
	size_t linelen = 0;
	FILE *f = open_memstream(&line, &linelen);

	if (!f)
		return;
	if (*opts.time_key)
		fprintf(f, "%s\t", ts);
	if (*opts.level_key)
		fprintf(f, "%s\t", level);
	if (*opts.logger_key)
		fprintf(f, "%s\t", logger);
	if (*opts.caller_key)
		fprintf(f, "%s\t", caller);
	fputs(msg, f);
	if (n) {
		yajl_gen_map_open(g);
		for (size_t i = 0; i < n; i++) {
			put_str(g, fields[i].key);
			put_field(g, &fields[i]);
		}
		yajl_gen_map_close(g);
		if (yajl_gen_get_buf(g, &out, &outlen) == yajl_gen_status_ok)
			fprintf(f, "\t%.*s", (int)outlen, (const char *)out);
	}
	fputc('\n', f);
	if (fclose(f) == 0)
		(void)!write(opts.fd, line, linelen);
	free(line);
}

#define LOG_MAX_FIELDS 32

void log_emit(enum log_level level, const char *logger, const char *file, int line, const char *msg,
	...) {
	struct log_field fields[LOG_MAX_FIELDS];
	char ts[64], caller[128];
	const unsigned char *out;
	const char *base, *lvl;
	size_t outlen, n = 0;
	yajl_gen g;
	va_list ap;

	if (level < opts.level)
		return;
	va_start(ap, msg);
	for (;;) {
		struct log_field f = va_arg(ap, struct log_field);
		if (f.type == LOG_FIELD_END)
			break;
		if (n < LOG_MAX_FIELDS)
			fields[n++] = f;
	}
	va_end(ap);
	g = yajl_gen_alloc(NULL);
	if (!g)
		return;
	/* Invalid UTF-8 in a value (an object name from a broken server, say)
	 * must not silently drop the whole line. */
	yajl_gen_config(g, yajl_gen_validate_utf8, 0);
	format_time(ts, sizeof(ts));
	base = strrchr(file, '/');
	snprintf(caller, sizeof(caller), "%s:%d", base ? base + 1 : file, line);
	lvl = opts.capital_level ? level_capitals[level] : level_names[level];
	if (opts.format == LOG_FORMAT_TEXT) {
		emit_text(g, lvl, ts, logger, caller, msg, fields, n);
		yajl_gen_free(g);
		return;
	}
	yajl_gen_map_open(g);
	if (*opts.level_key) {
		put_str(g, opts.level_key);
		put_str(g, lvl);
	}
	if (*opts.time_key) {
		put_str(g, opts.time_key);
		if (time_is_number())
			yajl_gen_number(g, ts, strlen(ts));
		else
			put_str(g, ts);
	}
	if (*opts.logger_key) {
		put_str(g, opts.logger_key);
		put_str(g, logger);
	}
	if (*opts.caller_key) {
		put_str(g, opts.caller_key);
		put_str(g, caller);
	}
	if (*opts.msg_key) {
		put_str(g, opts.msg_key);
		put_str(g, msg);
	}
	for (size_t i = 0; i < n; i++) {
		put_str(g, fields[i].key);
		put_field(g, &fields[i]);
	}
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &out, &outlen) == yajl_gen_status_ok) {
		struct iovec iov[2] = { { (void *)out, outlen }, { "\n", 1 } };
		/* One system call per line, so lines from a crash handler or a
		 * child never interleave inside ours. */
		(void)!writev(opts.fd, iov, 2);
	}
	yajl_gen_free(g);
}
