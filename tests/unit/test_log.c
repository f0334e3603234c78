#include <errno.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "adapter/log.h"

/* K_LOGGING_CONFIG as Knative's controller writes it from its shipped
 * config-logging ConfigMap. */
static const char knative[] =
	"{\"zap-logger-config\":\"{\\n  \\\"level\\\": \\\"info\\\",\\n  \\\"development\\\": false,"
	"\\n  \\\"outputPaths\\\": [\\\"stdout\\\"],\\n  \\\"errorOutputPaths\\\": [\\\"stderr\\\"],"
	"\\n  \\\"encoding\\\": \\\"json\\\",\\n  \\\"encoderConfig\\\": {\\n    \\\"timeKey\\\": "
	"\\\"ts\\\",\\n    \\\"levelKey\\\": \\\"level\\\",\\n    \\\"nameKey\\\": \\\"logger\\\",\\n"
	"    \\\"callerKey\\\": \\\"caller\\\",\\n    \\\"messageKey\\\": \\\"msg\\\",\\n    "
	"\\\"stacktraceKey\\\": \\\"stacktrace\\\",\\n    \\\"timeEncoder\\\": \\\"iso8601\\\"\\n  "
	"}\\n}\\n\"}";

Test(log, knative_config) {
	struct log_options o;
	char err[256] = "";

	log_options_default(&o);
	cr_assert_eq(log_options_from_zap(knative, "apiserversource", &o, err, sizeof(err)), 0,
		"%s", err);
	cr_assert_eq(o.fd, STDOUT_FILENO);
	cr_assert_eq(o.format, LOG_FORMAT_JSON);
	cr_assert_eq(o.level, LOG_INFO);
	cr_assert_eq(o.time, LOG_TIME_ISO8601);
	cr_assert_str_eq(o.time_key, "ts");
	cr_assert_str_eq(o.msg_key, "msg");
}

Test(log, zap_object_keys_and_level_override) {
	struct log_options o;
	char err[256] = "";
	const char *cfg = "{\"zap-logger-config\":\"{\\\"level\\\":\\\"error\\\",\\\"encoding\\\":"
			  "\\\"console\\\",\\\"encoderConfig\\\":{\\\"nameKey\\\":\\\"\\\","
			  "\\\"levelEncoder\\\":\\\"capital\\\",\\\"timeEncoder\\\":\\\"nanos\\\"}}\","
			  "\"loglevel.apiserversource\":\"debug\"}";

	log_options_default(&o);
	cr_assert_eq(log_options_from_zap(cfg, "apiserversource", &o, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(o.level, LOG_DEBUG, "loglevel.<component> wins");
	cr_assert_eq(o.format, LOG_FORMAT_TEXT);
	cr_assert_str_eq(o.logger_key, "");
	cr_assert(o.capital_level);
	cr_assert_eq(o.time, LOG_TIME_NANOS);
	cr_assert_eq(o.fd, STDERR_FILENO, "no outputPaths: unchanged");
}

Test(log, bad_configs_name_the_key) {
	static const struct {
		const char *json, *words;
	} cases[] = {
		{ "not json", "not valid JSON" },
		{ "{\"zap-logger-config\": 5}", "zap-logger-config: not a string" },
		{ "{\"zap-logger-config\": \"{\\\"level\\\": \\\"loud\\\"}\"}", "level" },
		{ "{\"zap-logger-config\": \"{\\\"encoding\\\": \\\"xml\\\"}\"}", "encoding" },
		{ "{\"zap-logger-config\": \"{\\\"outputPaths\\\": [\\\"/tmp/x\\\"]}\"}", "outputPaths" },
		{ "{\"zap-logger-config\": \"{\\\"encoderConfig\\\": {\\\"timeKey\\\": 1}}\"}",
			"encoderConfig.timeKey" },
		{ "{\"loglevel.apiserversource\": \"noisy\"}", "loglevel.apiserversource" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct log_options o;
		char err[256] = "";
		log_options_default(&o);
		cr_assert_eq(log_options_from_zap(cases[i].json, "apiserversource", &o, err, sizeof(err)),
			-EINVAL, "%s", cases[i].json);
		cr_assert(strstr(err, cases[i].words), "%s: %s", cases[i].json, err);
	}
}

Test(log, json_line_with_configured_keys) {
	struct log_options o;
	char buf[1024] = "";
	int fds[2];
	ssize_t n;

	cr_assert_eq(pipe(fds), 0);
	log_options_default(&o);
	o.fd = fds[1];
	snprintf(o.msg_key, sizeof(o.msg_key), "message");
	o.caller_key[0] = '\0';
	log_configure(&o);
	log_warn("test", "a \"quoted\" message", LOG_STR("k", "v"), LOG_INT("n", 7));
	n = read(fds[0], buf, sizeof(buf) - 1);
	cr_assert_gt(n, 0);
	cr_assert(strstr(buf, "{\"level\":\"warn\",\"ts\":\""), "%s", buf);
	cr_assert(strstr(buf, "\"logger\":\"test\",\"message\":\"a \\\"quoted\\\" message\","
			      "\"k\":\"v\",\"n\":7}\n"), "%s", buf);
	cr_assert_null(strstr(buf, "caller"));
	log_options_default(&o);
	log_configure(&o);
	close(fds[0]);
	close(fds[1]);
}

Test(log, ratelimit_burst_per_interval_counts_the_rest) {
	struct log_ratelimit rl = { .interval_usec = 10000000, .burst = 3 };
	uint64_t t = 5000000;

	for (int i = 0; i < 3; i++)
		cr_assert(log_ratelimit_below(&rl, t + (uint64_t)i));
	for (int i = 0; i < 100; i++)
		cr_assert_not(log_ratelimit_below(&rl, t + 9999999));
	cr_assert_eq(log_ratelimit_take_suppressed(&rl), 100);
	cr_assert_eq(log_ratelimit_take_suppressed(&rl), 0);
	/* A new interval: another burst. */
	cr_assert(log_ratelimit_below(&rl, t + 10000000));
	cr_assert(log_ratelimit_below(&rl, t + 10000001));
	cr_assert(log_ratelimit_below(&rl, t + 10000002));
	cr_assert_not(log_ratelimit_below(&rl, t + 10000003));
	cr_assert_eq(log_ratelimit_take_suppressed(&rl), 1);
}

Test(log, ratelimit_zero_is_no_limit) {
	struct log_ratelimit rl = { 0 };

	for (int i = 0; i < 1000; i++)
		cr_assert(log_ratelimit_below(&rl, 1));
	cr_assert_eq(log_ratelimit_take_suppressed(&rl), 0);
}
