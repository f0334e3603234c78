#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

/* Shared by the libFuzzer targets: each target is one small file calling the
 * public API of adapter-core; these helpers turn the fuzzer's bytes into what
 * that API reads (a NUL-terminated string, a file, an event to filter). */

#include <stddef.h>
#include <stdint.h>

#include "adapter/cevent.h"

/* Once per process: logs go to /dev/null at every level (the logging code
 * still runs), so the fuzzer's own output stays readable. */
void fuzz_quiet_logs(void);
/* A malloc'd NUL-terminated copy (the bytes may hold NULs of their own). */
char *fuzz_cstr(const uint8_t *data, size_t size);
/* Writes data to DIR/name in this process's scratch directory (created once,
 * removed at exit) and returns the path (static, overwritten by the next
 * call). Aborts when the file cannot be written: that is the harness's fault. */
const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size);
/* The scratch directory. */
const char *fuzz_dir(void);
/* A fixed CloudEvent for filters to match against (a Pod add, Resource mode). */
const struct cevent *fuzz_event(void);
/* Config errors are swallowed: the target checks only that nothing crashes. */
void fuzz_on_error(const char *field, const char *message, void *userdata);

#endif
