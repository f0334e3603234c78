"""Issue 9's credential, header and silent-hang findings, against the real
binary: a small API server stub (Python's standard library, below) that
answers discovery and then misbehaves on LIST or WATCH, and the recording
sink. Each test is named after its finding and fails on the code before the
fix (no timeout line, credentials in ce-source, an injected header, ...)."""
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import wait_until

SECRET = "hunter2"
DISCOVERY = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
             "resources": [{"name": "pods", "singularName": "pod", "namespaced": True,
                            "kind": "Pod", "verbs": ["get", "list", "watch"]}]}


def pod(name, rv):
    return {"metadata": {"name": name, "namespace": "default", "uid": "uid-" + name,
                         "resourceVersion": str(rv)}, "spec": {}}


class Stub:
    """An API server for v1 pods in "default". list: "ok" (the pods given),
    "stall" (never answers), "trickle" (one byte every 0.2 s, never ending),
    "loop" (every page names the same continue token). watch: "silent" (200,
    then nothing) or "ok" (the same, but the server closes it at once)."""

    def __init__(self, list_mode="ok", watch_mode="silent", pods=()):
        self.list_mode, self.watch_mode, self.pods = list_mode, watch_mode, list(pods)
        self.requests = []  # (path, headers) of every request
        self.oidc_token = "oidc-token"
        self.lock = threading.Lock()
        self.stop = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, doc, status=200):
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def hold(self):
                # Headers sent (or not), then nothing until the test ends or
                # the adapter gives up and closes the connection.
                self.close_connection = True
                stub.stop.wait(60)

            def do_GET(self):
                with stub.lock:
                    stub.requests.append((self.path, self.headers.get_all("Authorization") or []))
                if self.path == "/api/v1":
                    return self.reply(DISCOVERY)
                if not self.path.startswith("/api/v1/namespaces/default/pods"):
                    return self.reply({"kind": "Status", "code": 404}, 404)
                if "watch=1" in self.path:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.flush()
                    if stub.watch_mode == "silent":
                        return self.hold()
                    self.wfile.write(b"0\r\n\r\n")
                    return None
                if stub.list_mode == "stall":
                    return self.hold()
                if stub.list_mode == "trickle":
                    self.close_connection = True
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()  # no length: the body ends when the connection does
                    head = b'{"kind":"PodList","apiVersion":"v1","metadata":' \
                           b'{"resourceVersion":"5"},"items":['
                    try:
                        self.wfile.write(head)
                        while not stub.stop.wait(0.2):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                    except OSError:
                        pass  # the adapter hung up
                    return None
                meta = {"resourceVersion": "5"}
                if stub.list_mode == "loop":
                    meta["continue"] = "same-token"
                return self.reply({"kind": "PodList", "apiVersion": "v1", "metadata": meta,
                                   "items": stub.pods})

            def do_POST(self):
                # TokenRequest, for OIDC: the token stub.oidc_token.
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with stub.lock:
                    stub.requests.append((self.path, self.headers.get_all("Authorization") or []))
                if not self.path.endswith("/token"):
                    return self.reply({"kind": "Status", "code": 404}, 404)
                return self.reply({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                                   "status": {"token": stub.oidc_token,
                                              "expirationTimestamp": "2099-01-01T00:00:00Z"}},
                                  201)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def paths(self):
        with self.lock:
            return [p for p, _ in self.requests]

    def lists(self):
        return [p for p in self.paths() if p.startswith("/api/v1/namespaces/default/pods")
                and "watch=1" not in p]

    def watches(self):
        return [p for p in self.paths() if "watch=1" in p]

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_factory():
    made = []

    def make(**kw):
        s = Stub(**kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def kubeconfig(workdir, server, token='"t0ken"'):
    path = os.path.join(workdir, f"kubeconfig-{time.monotonic_ns()}")
    with open(path, "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                "contexts:\n- name: c\n  context: {cluster: x, user: u, namespace: default}\n"
                f"clusters:\n- name: x\n  cluster:\n    server: {server}\n"
                f"users:\n- name: u\n  user:\n    token: {token}\n")
    return path


def creds_server(stub):
    return f"http://admin:{SECRET}@127.0.0.1:{stub.port}"


def start(adapter_factory, workdir, stub, sink_url, *extra, env=None, server=None):
    kc = kubeconfig(workdir, server or creds_server(stub))
    return adapter_factory(["--resource", "v1/Pod", "-n", "default", "--sink", sink_url,
                            *extra], env=env, kubeconfig=kc)


def log_text(a):
    return open(a.log_path).read()


# ---------------- credentials ----------------

def test_kubeconfig_server_credentials_not_logged_or_sent_as_source(
        workdir, stub_factory, sink, adapter_factory):
    stub = stub_factory(pods=[pod("p1", 3)])
    a = start(adapter_factory, workdir, stub, sink.url, "--initial-events")
    ev = sink.wait_events(1)[0]
    started = a.wait_log(lambda l: l.get("msg") == "adapter started")[0]
    assert started["server"] == f"http://127.0.0.1:{stub.port}"
    assert ev["headers"]["ce-source"] == f"http://127.0.0.1:{stub.port}"
    assert a.stop() == 0
    assert SECRET not in log_text(a)
    assert not any(SECRET in json.dumps(r) for r in sink.requests())
    # The API server got the bearer token only (not also Basic from the URL).
    with stub.lock:
        assert all(auth == ["Bearer t0ken"] for _, auth in stub.requests), stub.requests


def test_sink_url_credentials_not_sent_to_dead_letter(
        workdir, stub_factory, sink_factory, adapter_factory):
    stub = stub_factory(pods=[pod("p1", 3)])
    rejecting = sink_factory(extra=("--default-status", "400"))
    dead = sink_factory()
    url = f"http://user:{SECRET}@127.0.0.1:{rejecting.port}/"
    a = start(adapter_factory, workdir, stub, url, "--initial-events", "--dead-letter", dead.url,
              server=f"http://127.0.0.1:{stub.port}")
    ev = dead.wait_events(1)[0]
    assert ev["headers"]["ce-knativeerrordest"] == f"http://127.0.0.1:{rejecting.port}/"
    assert ev["headers"]["ce-knativeerrorcode"] == "400"
    assert a.stop() == 0
    assert SECRET not in json.dumps(dead.requests())
    assert SECRET not in log_text(a)


# ---------------- header values ----------------

def test_kubeconfig_token_with_line_break_is_refused(workdir, stub_factory, sink, adapter_factory):
    stub = stub_factory()
    kc = kubeconfig(workdir, f"http://127.0.0.1:{stub.port}",
                    token='"s3cret\\r\\nX-Injected: yes"')
    a = adapter_factory(["--resource", "v1/Pod", "-n", "default", "--sink", sink.url],
                        kubeconfig=kc)
    assert a.wait_exit() == 2
    errors = [l for l in a.logs() if l.get("level") == "error"]
    assert len(errors) == 1, errors
    assert f"{kc}:14:12: user.token: contains a control character" in errors[0]["msg"]
    assert "s3cret" not in log_text(a)
    assert stub.paths() == []  # no request went out


def test_namespace_with_line_break_is_not_injected_into_kn_namespace(
        workdir, stub_factory, sink, adapter_factory):
    """NAMESPACE feeds the Kn-Namespace header: a line break in it is refused
    at start (exit 2, naming the variable), so nothing reaches the sink."""
    stub = stub_factory(pods=[pod("p1", 3)])
    a = start(adapter_factory, workdir, stub, sink.url, "--initial-events",
              env={"NAMESPACE": "default\r\nX-Injected: yes"},
              server=f"http://127.0.0.1:{stub.port}")
    assert a.wait_exit() == 2
    text = log_text(a)
    assert "NAMESPACE" in text, text
    assert sink.requests() == []


def test_oidc_token_with_line_break_is_refused(workdir, stub_factory, sink, adapter_factory):
    stub = stub_factory(pods=[pod("p1", 3)])
    stub.oidc_token = "s3cret\r\nX-Injected: yes"
    a = start(adapter_factory, workdir, stub, sink.url, "--initial-events",
              env={"K_AUDIENCE": "aud", "K_OIDC_SERVICE_ACCOUNT": "sa", "NAMESPACE": "default"},
              server=f"http://127.0.0.1:{stub.port}")
    line = a.wait_log(lambda l: l.get("logger") == "oidc" and l.get("level") == "warn", 10,
                      "the OIDC failure line")[0]
    assert "status.token contains a control character" in line["error"], line
    a.wait_watching()
    # The token is fixed: the next TokenRequest takes it and the event goes out.
    stub.oidc_token = "good-token"
    ev = sink.wait_events(1, timeout=20)[0]
    assert ev["headers"]["authorization"] == "Bearer good-token"
    assert a.stop() == 0
    assert all("x-injected" not in r["headers"] for r in sink.requests())
    assert "s3cret" not in log_text(a)


# ---------------- silent hangs ----------------

def timed_out(what):
    return lambda l: l.get("level") == "warn" and what in l.get("msg", "")


def test_list_that_never_answers_times_out(workdir, stub_factory, sink, adapter_factory):
    stub = stub_factory(list_mode="stall")
    a = start(adapter_factory, workdir, stub, sink.url, "--request-timeout", "1")
    line = a.wait_log(timed_out("list timed out"), 10, "the list timeout line")[0]
    assert line["url"].startswith(f"http://127.0.0.1:{stub.port}/api/v1/namespaces/default/pods?"
                                  "limit=500"), line
    assert line["retry_in_ms"] > 0
    # Retried with backoff: the list is asked for again.
    wait_until(lambda: len(stub.lists()) >= 2, 10, "a second list")
    assert SECRET not in log_text(a)
    assert a.stop() == 0


def test_list_that_trickles_times_out(workdir, stub_factory, sink, adapter_factory):
    stub = stub_factory(list_mode="trickle")
    a = start(adapter_factory, workdir, stub, sink.url, "--request-timeout", "2")
    began = time.monotonic()
    a.wait_log(timed_out("list timed out"), 10, "the list timeout line")
    assert time.monotonic() - began >= 1.5  # bytes kept coming: still the limit it had
    wait_until(lambda: len(stub.lists()) >= 2, 10, "a second list")
    assert a.stop() == 0


def test_watch_silent_past_its_timeout_is_restarted(workdir, stub_factory, sink, adapter_factory):
    stub = stub_factory(watch_mode="silent")
    a = start(adapter_factory, workdir, stub, sink.url, "--watch-timeout", "1",
              "--request-timeout", "1")
    a.wait_watching()
    line = a.wait_log(timed_out("watch heard nothing"), 10, "the silent-watch line")[0]
    assert "watch=1" in line["url"] and "resourceVersion=5" in line["url"], line
    assert SECRET not in line["url"]
    wait_until(lambda: len(stub.watches()) >= 2, 10, "the watch restarted")
    # Resumed, not relisted: one list only.
    assert len(stub.lists()) == 1
    assert a.stop() == 0


def test_continue_token_loop_fails_the_list(workdir, stub_factory, sink, adapter_factory):
    stub = stub_factory(list_mode="loop")
    a = start(adapter_factory, workdir, stub, sink.url)
    line = a.wait_log(lambda l: "continue token already seen" in l.get("msg", ""), 10,
                      "the continue-loop line")[0]
    assert line["retry_in_ms"] > 0
    # The list started over from its first page, with backoff.
    wait_until(lambda: len([p for p in stub.lists() if "continue=" not in p]) >= 2, 10,
               "a new list from the first page")
    assert len(stub.lists()) < 10  # not paging forever
    assert a.stop() == 0


# ---------------- shutdown ----------------

def test_second_sigterm_reports_undelivered_events(workdir, stub_factory, sink_factory,
                                                   adapter_factory):
    stub = stub_factory(pods=[pod(f"p{i}", 10 + i) for i in range(5)])
    failing = sink_factory(extra=("--default-status", "503"))
    a = start(adapter_factory, workdir, stub, failing.url, "--initial-events",
              "--drain-timeout", "60", server=f"http://127.0.0.1:{stub.port}")
    wait_until(lambda: len({r["headers"].get("ce-id") for r in failing.requests()}) >= 5, 15,
               "every event tried once")
    a.proc.send_signal(signal.SIGTERM)
    a.wait_log(lambda l: l.get("msg", "").startswith("signal received"), 10, "the drain")
    a.proc.send_signal(signal.SIGTERM)
    assert a.wait_exit() == 1
    line = [l for l in a.logs() if l.get("msg", "").startswith("second signal")]
    assert len(line) == 1, line
    assert line[0]["level"] == "error"
    assert line[0]["undelivered"] == 5
    assert "lost" in line[0]["msg"]
