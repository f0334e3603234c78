#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "adapter/log.h"

static enum log_level min_level = LOG_INFO;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_setup(enum log_level min, int fd) {
	min_level = min;
	log_fd = fd;
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
	return level >= min_level;
}

static void put_str(yajl_gen g, const char *s) {
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

void log_emit(enum log_level level, const char *logger, const char *file, int line, const char *msg,
	...) {
	char ts[64], caller[128];
	struct timespec now;
	struct tm tm;
	const unsigned char *out;
	size_t outlen;
	const char *base;
	yajl_gen g;
	va_list ap;

	if (level < min_level)
		return;
	g = yajl_gen_alloc(NULL);
	if (!g)
		return;
	/* Invalid UTF-8 in a value (an object name from a broken server, say)
	 * must not silently drop the whole line. */
	yajl_gen_config(g, yajl_gen_validate_utf8, 0);

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now.tv_nsec / 1000000));
	base = strrchr(file, '/');
	snprintf(caller, sizeof(caller), "%s:%d", base ? base + 1 : file, line);

	yajl_gen_map_open(g);
	put_str(g, "level");
	put_str(g, level_names[level]);
	put_str(g, "ts");
	put_str(g, ts);
	put_str(g, "logger");
	put_str(g, logger);
	put_str(g, "caller");
	put_str(g, caller);
	put_str(g, "msg");
	put_str(g, msg);
	va_start(ap, msg);
	for (;;) {
		struct log_field f = va_arg(ap, struct log_field);
		if (f.type == LOG_FIELD_END)
			break;
		put_str(g, f.key);
		switch (f.type) {
		case LOG_FIELD_STR:
			if (f.s)
				put_str(g, f.s);
			else
				yajl_gen_null(g);
			break;
		case LOG_FIELD_INT:
			yajl_gen_integer(g, f.i);
			break;
		case LOG_FIELD_BOOL:
			yajl_gen_bool(g, (int)f.i);
			break;
		default:
			yajl_gen_null(g);
		}
	}
	va_end(ap);
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &out, &outlen) == yajl_gen_status_ok) {
		struct iovec iov[2] = { { (void *)out, outlen }, { "\n", 1 } };
		/* One system call per line, so lines from a crash handler or a
		 * child never interleave inside ours. */
		(void)!writev(log_fd, iov, 2);
	}
	yajl_gen_free(g);
}
