#!/usr/bin/env python3
"""sink.py - a recording CloudEvents (HTTP) sink for tests.

Every request other than the control API is recorded (one JSON line per request in --record:
method, path, lower-cased headers, body as UTF-8 text, receive time, the status answered, the
client's port: one per connection) and
answered from a script: --responses 503,503,200 answers those statuses in order, then
--default-status.  Script entries:
  <int>   answer with that HTTP status (empty body; Retry-After added to non-2xx when
          --retry-after is set)
  hang    never answer; keep the connection open until the client gives up (recorded status null)
  close   close the connection without answering (recorded status null)
  quietclose  answer 200 as if the connection stayed open (no "Connection: close"), then close
          it: a server dropping a keep-alive connection without notice (recorded status 200)
  endclose  answer 200 with "Connection: close", then close: the client closes its socket
          itself, before any event on it (recorded status 200)

Control API (not recorded):
  POST /_sink/responses  {"responses":[503,"hang",200], "default":200, "retry_after":N}
  GET  /_sink/count      {"count": N}   number of recorded requests
  POST /_sink/reset      set the count back to 0 (the record file is left alone)

The record line is written and flushed *before* the answer is sent, so a client that has its
answer can rely on the line being in the file.
"""
import argparse, json, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REASON = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
          404: "Not Found", 408: "Request Timeout", 413: "Payload Too Large", 429: "Too Many Requests",
          500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
          504: "Gateway Timeout"}


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.script = [parse_entry(x) for x in (args.responses or "").split(",") if x.strip()]
        self.default = parse_entry(args.default_status)
        self.retry_after = args.retry_after
        self.latency = args.latency_ms / 1000.0
        self.count = 0
        self.record = open(args.record, "a", buffering=1) if args.record else None

    def next_response(self):
        return self.script.pop(0) if self.script else self.default


def parse_entry(x):
    x = str(x).strip().lower()
    return x if x in ("hang", "close", "quietclose", "endclose") else int(x)


STATE = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-sink"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, code, body=b"", extra=None):
        # one write for status line + headers + body (keeps latency low on keep-alive)
        head = [f"HTTP/1.1 {code} {REASON.get(code, 'Status')}", f"Content-Length: {len(body)}"]
        if body:
            head.append("Content-Type: application/json")
        for k, v in (extra or {}).items():
            head.append(f"{k}: {v}")
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, OSError):
            self.close_connection = True

    def do_any(self):
        t = time.time()
        body = self.read_body()
        if self.path.startswith("/_sink/"):
            return self.control(body)
        with STATE.lock:
            action = STATE.next_response()
            retry_after = STATE.retry_after
            STATE.count += 1
            if STATE.record:
                headers = {}
                for k, v in self.headers.items():
                    k = k.lower()
                    headers[k] = headers[k] + ", " + v if k in headers else v
                STATE.record.write(json.dumps({
                    "method": self.command, "path": self.path, "headers": headers,
                    "body": body.decode("utf-8", "replace"), "time": t,
                    "peer": self.client_address[1],
                    "status": 200 if action in ("quietclose", "endclose") else
                              action if isinstance(action, int) else None}) + "\n")
        if action == "hang":
            self.close_connection = True
            try:   # wait until the client closes (EOF) or the socket errors
                while self.connection.recv(65536):
                    pass
            except OSError:
                pass
            return
        if action == "close":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if action == "endclose":
            self.close_connection = True
            self.reply(200)
            return
        if action == "quietclose":
            self.reply(200)
            self.close_connection = True  # after the answer: no "Connection: close" in it
            return
        if STATE.latency:
            time.sleep(STATE.latency)  # a sink that takes time to answer (benchmarks)
        extra = {}
        if retry_after is not None and not 200 <= action < 300:
            extra["Retry-After"] = str(retry_after)
        self.reply(action, extra=extra)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_any

    def control(self, body):
        op = self.path.split("?")[0][len("/_sink/"):].strip("/")
        if op == "responses" and self.command == "POST":
            req = json.loads(body or b"{}")
            with STATE.lock:
                STATE.script = [parse_entry(x) for x in req.get("responses") or []]
                if "default" in req:
                    STATE.default = parse_entry(req["default"])
                if "retry_after" in req:
                    STATE.retry_after = req["retry_after"]
            out = {"ok": True}
        elif op == "count":
            with STATE.lock:
                out = {"count": STATE.count}
        elif op == "reset" and self.command == "POST":
            with STATE.lock:
                STATE.count = 0
            out = {"ok": True}
        else:
            return self.reply(404, b'{"error":"unknown control operation"}')
        self.reply(200, json.dumps(out).encode())


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def main():
    global STATE
    p = argparse.ArgumentParser(description="recording CloudEvents sink")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--record", help="append one JSON line per received request")
    p.add_argument("--responses", default="", help="comma list: status codes, hang, close, quietclose")
    p.add_argument("--default-status", default="200")
    p.add_argument("--retry-after", type=int, default=None)
    p.add_argument("--latency-ms", type=float, default=0,
                   help="answer each request after this long, like a sink doing real work")
    args = p.parse_args()
    STATE = State(args)
    srv = Server((args.host, args.port), Handler)
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"port {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
