#!/usr/bin/env python3
"""fake_adapter.py - a stand-in *container* for checking the test ground itself (not the adapter):
it behaves the way tests/knative expects a receive adapter to behave, so test_standin.py can show
that the kubelet stand-in, the bridges and Knative's controller work before the real adapter has
probes. Standard library only; runs inside the pod sandbox as the pod spec's entrypoint.

- :8080 /health always 200; /readiness 200 once a TCP connection to the API server
  (KUBERNETES_SERVICE_HOST:PORT) succeeds, 503 before that and whenever it fails (checked
  every 0.2 s).
- :8080 /token: sha256 of the mounted service-account token, read per request.
- :9092 /metrics: `fake_events_sent_total N`.
- Once ready the first time: one CloudEvent POSTed to $K_SINK with `Kn-Namespace: $NAMESPACE`
  and the service-account token's length as data (proves the token mount).
- One zap-style JSON log line per state change on stdout; SIGTERM -> exit 0.
"""
import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SA = "/var/run/secrets/kubernetes.io/serviceaccount"
STATE = {"api": False, "sent": 0}


def log(msg, **kw):
    t = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
    print(json.dumps({"level": "info", "ts": ts, "logger": "fake", "caller": "fake_adapter.py:0",
                      "msg": msg, **kw}), flush=True)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        port = self.server.server_address[1]
        if port == 8080 and self.path == "/health":
            code, body = 200, b"ok"
        elif port == 8080 and self.path == "/readiness":
            code, body = (200, b"ok") if STATE["api"] else (503, b"api unreachable")
        elif port == 8080 and self.path == "/token":  # what the pod sees now (rotation check)
            with open(os.path.join(SA, "token"), "rb") as t:
                code, body = 200, hashlib.sha256(t.read().strip()).hexdigest().encode()
        elif port == 9092 and self.path == "/metrics":
            code = 200
            body = (f"# TYPE fake_events_sent_total counter\n"
                    f"fake_events_sent_total {STATE['sent']}\n").encode()
        else:
            code, body = 404, b""
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def send_hello():
    token = open(os.path.join(SA, "token")).read().strip()
    ns = open(os.path.join(SA, "namespace")).read().strip()
    req = urllib.request.Request(os.environ["K_SINK"], method="POST",
                                 data=json.dumps({"token_length": len(token)}).encode())
    for k, v in {"Ce-Specversion": "1.0", "Ce-Id": "fake-1", "Ce-Source": "fake",
                 "Ce-Type": "dev.test.fake.hello", "Content-Type": "application/json",
                 "Kn-Namespace": os.environ.get("NAMESPACE", ns)}.items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=5) as r:
        r.read()
    STATE["sent"] += 1
    log("hello delivered", sink=os.environ["K_SINK"])


def watch_api():
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], int(os.environ["KUBERNETES_SERVICE_PORT"])
    hello = False
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            ok = True
        except OSError:
            ok = False
        if ok != STATE["api"]:
            STATE["api"] = ok
            log("api reachable" if ok else "api unreachable")
        if ok and not hello:
            try:
                send_hello()
                hello = True
            except OSError as e:
                log("hello failed", error=str(e))
        time.sleep(0.2)


def main():
    signal.signal(signal.SIGTERM, lambda *_: (log("SIGTERM, exiting"), os._exit(0)))
    for port in (8080, 9092):
        srv = ThreadingHTTPServer(("0.0.0.0", port), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    log("started", pid=os.getpid(), uid=os.getuid())
    watch_api()


if __name__ == "__main__":
    sys.exit(main())
