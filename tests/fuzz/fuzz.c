#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter/log.h"
#include "fuzz.h"

void fuzz_quiet_logs(void) {
	static int fd = -1;

	if (fd >= 0)
		return;
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		abort();
	log_setup(LOG_DEBUG, fd);
}

char *fuzz_cstr(const uint8_t *data, size_t size) {
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static char dir[PATH_MAX];

static void remove_dir(void) {
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

const char *fuzz_dir(void) {
	if (!dir[0]) {
		const char *tmp = getenv("TMPDIR");
		int n = snprintf(dir, sizeof(dir), "%s/adapter-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (n < 0 || (size_t)n >= sizeof(dir) - 64 || !mkdtemp(dir))
			abort();
		atexit(remove_dir);
	}
	return dir;
}

const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size) {
	static char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fuzz_dir(), name);
	/* A new file each time, not O_TRUNC: ext4 (auto_da_alloc) flushes a
	 * file truncated while dirty, which made runs 30 times slower. */
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	while (size) {
		ssize_t n = write(fd, data, size);
		if (n <= 0)
			abort();
		data += n;
		size -= (size_t)n;
	}
	close(fd);
	return path;
}

const struct cevent *fuzz_event(void) {
	static struct cevent *ev;
	static const char json[] = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
				   "\"namespace\":\"default\",\"uid\":\"u-1\",\"resourceVersion\":\"7\"}}";

	if (!ev) {
		struct kobj obj = { .json = json, .json_len = sizeof(json) - 1, .kind = "Pod",
			.api_version = "v1", .name = "p", .namespace = "default", .uid = "u-1",
			.resource_version = "7" };
		struct cevent_params params = { .mode = CONFIG_MODE_RESOURCE,
			.source = "https://10.96.0.1:443" };
		if (cevent_create(&params, &obj, CEVENT_ADD, &ev) < 0)
			abort();
	}
	return ev;
}

void fuzz_on_error(const char *field, const char *message, void *userdata) {
}
