"""What a kubelet and Prometheus read from the adapter: probes, metrics, logs
as Knative configures them, the Kn-Namespace header, OIDC to the sink."""
import base64
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from harness import ADAPTER, wait_until

GUITAR = "kool.karmalabs.local/v1/Guitar"

# K_LOGGING_CONFIG exactly as Knative's controller writes it from the
# config-logging ConfigMap it ships (knative.dev/pkg logging.ConfigToJSON).
KNATIVE_ZAP = json.dumps({"zap-logger-config": json.dumps({
    "level": "info", "development": False, "outputPaths": ["stdout"],
    "errorOutputPaths": ["stderr"], "encoding": "json",
    "encoderConfig": {"timeKey": "ts", "levelKey": "level", "nameKey": "logger",
                      "callerKey": "caller", "messageKey": "msg",
                      "stacktraceKey": "stacktrace", "lineEnding": "", "levelEncoder": "",
                      "timeEncoder": "iso8601", "durationEncoder": "", "callerEncoder": ""}})})


def get(port, path, timeout=2.0):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metrics(port):
    """The Prometheus exposition as {'name{labels}': value}."""
    status, text = get(port, "/metrics")
    assert status == 200, text
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_probes_follow_the_watches_and_shutdown(emulator, sink_factory, adapter_factory,
                                                proxy_factory):
    """Readiness: 503 until the initial list, 503 while the API server does not
    answer, 503 from SIGTERM on; health stays 200 throughout."""
    emulator.guitars()
    emulator.guitar("g1")
    proxy = proxy_factory(emulator)
    proxy.block()
    sink = sink_factory(responses="hang")
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url,
                         "--initial-events", "--sink-timeout", "30", "--drain-timeout", "5"],
                        kubeconfig=emulator.proxied_kubeconfig(proxy))
    assert a.get("/health") == (200, "ok\n")
    status, body = a.get("/readiness")
    assert status == 503 and "initial list" in body, (status, body)
    proxy.unblock()
    wait_until(lambda: a.get("/readiness")[0] == 200, 20, "readiness after the initial list")
    assert a.get("/readiness") == (200, "ready\n")
    assert a.get("/healthz")[0] == 200 and a.get("/readyz")[0] == 200
    proxy.block()
    wait_until(lambda: a.get("/readiness")[0] == 503, 20, "readiness to fail without the API")
    assert "API server" in a.get("/readiness")[1]
    assert a.get("/health")[0] == 200
    proxy.unblock()
    wait_until(lambda: a.get("/readiness")[0] == 200, 30, "readiness once the API answers")
    # The initial event is stuck at the hung sink: SIGTERM starts a drain.
    sink.wait_requests(1)
    a.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: a.get("/readiness")[0] == 503, 5, "readiness to fail on SIGTERM")
    assert a.get("/readiness")[1] == "shutting down\n"
    assert a.get("/health")[0] == 200
    assert a.get("/metrics", metrics=True)[0] == 200
    assert a.get("/nothing")[0] == 404
    assert a.wait_exit(15) == 0


def test_raw_kubelet_paths_and_methods(emulator, sink, adapter_factory):
    """The kubelet's own request line (path from the pod spec), HEAD, and a POST."""
    emulator.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=emulator.kubeconfig)
    a.wait_watching()
    port = a.ports()[0]
    for path in ("health", "readiness"):
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(f"GET /{path} HTTP/1.1\r\nHost: x\r\nUser-Agent: kube-probe/1.37\r\n"
                  f"Connection: close\r\n\r\n".encode())
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
        s.close()
        assert reply.startswith(b"HTTP/1.1 200"), reply
    req = urllib.request.Request(f"http://127.0.0.1:{port}/health", method="HEAD")
    assert urllib.request.urlopen(req, timeout=2).status == 200
    req = urllib.request.Request(f"http://127.0.0.1:{port}/health", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=2)
    assert e.value.code == 405


def test_stalled_loop_fails_health(emulator, sink, adapter_factory):
    """The probes are answered by the event loop itself: a stopped loop stops
    answering, which is what the liveness probe's timeout catches."""
    emulator.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=emulator.kubeconfig)
    a.wait_watching()
    assert a.get("/health")[0] == 200
    a.proc.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
            a.get("/health", timeout=1.0)
    finally:
        a.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: a.get("/health")[0] == 200, 5, "health after SIGCONT")
    assert a.stop() == 0


def test_metrics_match_the_sink(emulator, sink_factory, adapter_factory):
    """Counters against the ledger: what the sink received is what the metrics
    say was sent, attempt by attempt."""
    emulator.guitars()
    sink = sink_factory(responses="503,503")
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=emulator.kubeconfig)
    a.wait_watching()
    for i in range(5):
        emulator.guitar(f"m{i}")
    emulator.kubectl("-n", "guitar-eventing", "delete", "guitar", "m0")
    sink.wait_events(6)
    port = a.ports()[1]
    m = wait_until(lambda: (lambda m: m if m["apiserversource_queue_events"] == 0 else None)(
        metrics(port)), 10, "an empty queue")
    reqs = sink.requests()
    delivered = len(sink.events())
    assert delivered == 6
    assert m['apiserversource_events_sent_total{result="delivered"}'] == delivered
    assert m['apiserversource_sink_requests_total{class="2xx"}'] == delivered
    assert m['apiserversource_sink_requests_total{class="5xx"}'] == 2
    assert m['apiserversource_sink_requests_total{class="2xx"}'] + \
        m['apiserversource_sink_requests_total{class="5xx"}'] == len(reqs)
    assert m["apiserversource_retries_total"] == 2
    assert m["apiserversource_events_accepted_total"] == 6
    assert m['apiserversource_events_sent_total{result="dropped"}'] == 0
    assert m["apiserversource_delivery_latency_seconds_count"] == 6
    assert m['apiserversource_delivery_latency_seconds_bucket{le="+Inf"}'] == 6
    res = "kool.karmalabs.local/v1/Guitar"
    assert m[f'apiserversource_watch_events_total{{resource="{res}",type="ADDED"}}'] == 5
    assert m[f'apiserversource_watch_events_total{{resource="{res}",type="DELETED"}}'] == 1
    assert m['apiserversource_build_info{version="0.1.0"}'] == 1
    assert m["apiserversource_ready"] == 1
    assert m["apiserversource_inflight_requests"] == 0
    age = m[f'apiserversource_watch_last_event_age_seconds{{resource="{res}",'
            f'namespace="guitar-eventing"}}']
    assert 0 <= age < 60
    # A forced expiry is a 410 and a relist: the watch is down while a change
    # happens and the history is dropped.
    emulator.control("faults", {"path_regex": "guitars", "watch": True, "status": 503,
                                "count": -1})
    emulator.control("reset-watches")
    emulator.guitar("m9")
    emulator.control("compact")
    emulator.control("faults", method="DELETE")
    # The relist is counted when it starts; its items, once its answer is in.
    m = wait_until(lambda: (lambda m: m if m.get(
        f'apiserversource_relists_total{{resource="{res}"}}', 0) >= 1 and m.get(
        f'apiserversource_watch_events_total{{resource="{res}",type="LISTED"}}', 0) >= 5
        else None)(metrics(port)), 15, "a relist counted")
    assert m[f'apiserversource_watch_expired_total{{resource="{res}"}}'] >= 1
    assert m[f'apiserversource_watch_restarts_total{{resource="{res}"}}'] >= 1
    assert m[f'apiserversource_watch_events_total{{resource="{res}",type="LISTED"}}'] >= 5
    assert a.stop() == 0


def test_observability_config_decides_metrics(emulator, sink, adapter_factory):
    """K_OBSERVABILITY_CONFIG as Knative's controller writes it: protocol none
    serves no metrics; prometheus serves them on its endpoint."""
    emulator.guitars()
    base = {"NAME": "src", "NAMESPACE": "guitar-eventing", "K_SINK": sink.url,
            "K_SOURCE_CONFIG": json.dumps({"namespaces": ["guitar-eventing"], "resources": [
                {"gvr": {"Group": "kool.karmalabs.local", "Version": "v1",
                         "Resource": "guitars"}}]})}
    off = adapter_factory(["--kubeconfig", emulator.kubeconfig, "--probes-addr", "127.0.0.1:0"],
                          env={**base, "K_OBSERVABILITY_CONFIG": json.dumps(
                              {"tracing": {"protocol": "none"}, "metrics": {"protocol": "none"},
                               "runtime": {}, "enableSinkEventErrorReporting": False})})
    assert off.ports()[1] == 0
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    free = port.getsockname()[1]
    port.close()
    on = adapter_factory(["--kubeconfig", emulator.kubeconfig, "--probes-addr", "127.0.0.1:0"],
                         env={**base, "K_OBSERVABILITY_CONFIG": json.dumps(
                             {"metrics": {"protocol": "prometheus",
                                          "endpoint": f"127.0.0.1:{free}"}})})
    assert on.ports()[1] == free
    assert "apiserversource_build_info" in get(free, "/metrics")[1]


def run_adapter(args, env, timeout=10):
    full = {k: v for k, v in os.environ.items() if not k.startswith("K_")}
    full.update(env)
    return subprocess.run([ADAPTER, *args], env=full, capture_output=True, text=True,
                          timeout=timeout)


def test_knative_logging_config(emulator, sink, adapter_factory, workdir):
    """Under Knative: zap JSON on stdout with the configured keys, nothing on
    stderr."""
    emulator.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        env={"K_LOGGING_CONFIG": KNATIVE_ZAP}, kubeconfig=emulator.kubeconfig)
    wait_until(lambda: any(l.get("msg") == "watching" for l in a.stdout_lines()), 15,
               "the watching line on stdout")
    assert a.stop() == 0
    lines = a.stdout_lines()
    assert lines
    for l in lines:
        assert list(l)[:5] == ["level", "ts", "logger", "caller", "msg"], l
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", l["ts"]), l
        assert l["level"] in ("debug", "info", "warn", "error")
    assert open(a.log_path).read() == ""


def test_zap_keys_encoders_and_console(emulator, sink, adapter_factory):
    emulator.guitars()
    zap = {"level": "warn", "outputPaths": ["stderr"], "encoding": "json",
           "encoderConfig": {"timeKey": "time", "levelKey": "severity", "nameKey": "",
                             "callerKey": "where", "messageKey": "message",
                             "levelEncoder": "capital", "timeEncoder": "rfc3339nano"}}
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url,
                         "--log-level", "info", "--probes-addr", "127.0.0.1:0"],
                        env={"K_LOGGING_CONFIG": json.dumps(zap)}, kubeconfig=emulator.kubeconfig)
    # --log-level overrides the configuration's level: info lines appear.
    line = a.wait_log(lambda l: l.get("message") == "watching", 15, "watching")[0]
    assert list(line)[:4] == ["severity", "time", "where", "message"], line
    assert line["severity"] == "INFO" and "logger" not in line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", line["time"]), line
    assert a.stop() == 0

    b = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url,
                         "--log-format", "text"], kubeconfig=emulator.kubeconfig)
    wait_until(lambda: "\twatching\t" in open(b.log_path).read(), 15, "a text line")
    text_line = next(l for l in open(b.log_path) if "\twatching\t" in l)
    ts, level, logger, caller, msg, fields = text_line.rstrip("\n").split("\t")
    assert level == "info" and logger == "watch" and caller.startswith("watch.c:")
    assert json.loads(fields)["namespace"] == "guitar-eventing"
    assert b.stop() == 0


@pytest.mark.parametrize("env,args,field", [
    ({"K_LOGGING_CONFIG": "{not json"}, [], "K_LOGGING_CONFIG"),
    ({"K_LOGGING_CONFIG": json.dumps({"zap-logger-config": "{\"level\":\"loud\"}"})}, [],
     "K_LOGGING_CONFIG"),
    ({"K_LOGGING_CONFIG": json.dumps({"zap-logger-config": json.dumps(
        {"outputPaths": ["/var/log/x"]})})}, [], "K_LOGGING_CONFIG"),
    ({"K_OBSERVABILITY_CONFIG": "[" * 100000}, [], "K_OBSERVABILITY_CONFIG"),
    ({"K_OBSERVABILITY_CONFIG": json.dumps({"metrics": {"protocol": "prometheus",
                                                        "endpoint": "nowhere"}})}, [],
     "K_OBSERVABILITY_CONFIG"),
    ({}, ["--probes-addr", "8080"], "--probes-addr"),
    ({}, ["--metrics-addr", "[::1:9"], "--metrics-addr"),
    ({}, ["--log-format", "xml"], "--log-format"),
    ({"K_AUDIENCE": "aud", "NAMESPACE": "x"}, [], "K_OIDC_SERVICE_ACCOUNT"),
])
def test_bad_runtime_configuration(emulator, sink, env, args, field):
    r = run_adapter(["--resource", GUITAR, "-n", "x", "--sink", sink.url, "--kubeconfig",
                     emulator.kubeconfig, *args], env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [json.loads(l) for l in r.stderr.splitlines()]
    assert len(lines) == 1, r.stderr
    assert lines[0]["level"] == "error" and field in lines[0]["msg"], lines
    assert sink.requests() == []


def test_busy_probe_port_is_a_clear_error(emulator, sink):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = run_adapter(["--resource", GUITAR, "-n", "x", "--sink", sink.url, "--kubeconfig",
                         emulator.kubeconfig, "--probes-addr", f"127.0.0.1:{port}",
                         "--metrics-addr", "off"], {})
    finally:
        s.close()
    assert r.returncode == 1, r.stderr
    errors = [json.loads(l) for l in r.stderr.splitlines() if '"error"' in l]
    assert len(errors) == 1 and f"127.0.0.1:{port}: cannot listen: Address already in use" \
        in errors[0]["msg"] and errors[0]["field"] == "--probes-addr", r.stderr


def test_kn_namespace_header(emulator, sink, adapter_factory):
    emulator.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        env={"NAMESPACE": "guitar-eventing"}, kubeconfig=emulator.kubeconfig)
    a.wait_watching()
    emulator.guitar("ns1")
    (req,) = sink.wait_events(1)
    assert req["headers"]["kn-namespace"] == "guitar-eventing"
    assert "authorization" not in req["headers"]
    assert a.stop() == 0


def token_review(cluster, token, audience):
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
              "spec": {"token": token, "audiences": [audience]}}
    r = cluster.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review))
    return json.loads(r.stdout)["status"]


def test_oidc_token_to_the_sink(cluster_factory, sink_factory, adapter_factory):
    """K_AUDIENCE + K_OIDC_SERVICE_ACCOUNT: the sink gets a bearer token that
    the real API server's TokenReview accepts for that audience; a 401 makes
    the adapter fetch a new token and try once more."""
    cluster = cluster_factory(backend="real")
    cluster.guitars()
    cluster.kubectl("-n", "guitar-eventing", "create", "serviceaccount", "oidc-sink-sa")
    sink = sink_factory(responses="401")
    audience = "guitar-eventing/cloudevents-player"
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        env={"NAMESPACE": "guitar-eventing", "K_AUDIENCE": audience,
                             "K_OIDC_SERVICE_ACCOUNT": "oidc-sink-sa"},
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching(timeout=30)
    wait_until(lambda: a.get("/readiness")[0] == 200, 20, "ready with a token")
    cluster.guitar("o1")
    sink.wait_events(1, timeout=20)
    first, second = sink.requests()[:2]
    assert first["status"] == 401 and second["status"] == 200
    assert first["headers"]["ce-id"] == second["headers"]["ce-id"]
    tokens = []
    for r in (first, second):
        scheme, token = r["headers"]["authorization"].split(" ", 1)
        assert scheme == "Bearer"
        tokens.append(token)
    assert tokens[0] != tokens[1], "a 401 must bring a new token"
    st = token_review(cluster, tokens[1], audience)
    assert st.get("authenticated") is True, st
    assert st["audiences"] == [audience]
    assert st["user"]["username"] == "system:serviceaccount:guitar-eventing:oidc-sink-sa"
    # The payload of the JWT names the audience too.
    payload = tokens[1].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] == [audience]
    # A token is never logged.
    log = open(a.log_path).read()
    assert tokens[0] not in log and tokens[1] not in log
    # Only one refresh per rejection: a sink that keeps saying 401 drops the
    # event after one more attempt instead of looping.
    sink.set_responses([], default=401)
    cluster.guitar("o2")
    a.wait_log(lambda l: l.get("msg") == "sink rejected the event, dropping it", 20, "the drop")
    o2 = [r for r in sink.requests() if r["headers"].get("ce-name") == "o2"]
    assert len(o2) == 2, o2
    assert a.stop() == 0


def test_taken_default_port_on_the_command_line_is_a_warning(emulator, sink, workdir):
    """Outside a cluster with the default addresses, a local sink on 8080 must
    not stop the adapter: it runs without probes and says so."""
    emulator.guitars()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", 8080))
        s.listen(1)
    except OSError:
        pass  # taken already: the same situation
    log = os.path.join(workdir, "default-port.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("K_")}
    p = subprocess.Popen([ADAPTER, "--resource", GUITAR, "-n", "guitar-eventing", "--sink",
                          sink.url, "--kubeconfig", emulator.kubeconfig, "--metrics-addr", "off"],
                         env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    try:
        wait_until(lambda: "\"msg\":\"watching\"" in open(log).read() or p.poll() is not None,
                   15, "watching")
        assert p.poll() is None, open(log).read()
        warn = [json.loads(l) for l in open(log) if "default probe port taken" in l]
        assert len(warn) == 1 and warn[0]["level"] == "warn", open(log).read()
        emulator.guitar("w1")
        sink.wait_events(1)
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(15)
        s.close()
    assert rc == 0
