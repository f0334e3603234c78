"""The server: command-line options, the Emulator state object every handler reaches through
its server (self.server.emu), the TLS-per-connection HTTP server, and main()."""
import argparse
import json
import signal
import ssl
import sys
import threading
from http.server import ThreadingHTTPServer

from .common import Abort
from .faults import Control
from .handlers import Handler
from .store import Store


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Kubernetes API emulator for tests")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--token", action="append", default=[], help="accepted bearer token (repeatable)")
    p.add_argument("--token-file", help="file with one token per line, re-read on each request")
    p.add_argument("--history", type=int, default=1000, help="watch events retained")
    p.add_argument("--expire-mode", choices=("stream", "status"), default="stream")
    p.add_argument("--bookmark-interval", type=float, default=5.0)
    p.add_argument("--request-log")
    return p.parse_args(argv)


class Emulator:
    """Everything one emulator instance holds: its options, the store (objects, history,
    watches, watch-stream faults) and the control state (request faults, tokens, counters)."""
    def __init__(self, opts):
        self.opts = opts
        self.store = Store(opts.history)
        self.ctl = Control(opts.token, opts.token_file)
        self.log_lock = threading.Lock()
        self.store.add_default_namespaces()

    def log_request(self, entry):
        """--request-log: one JSON line per request (never the token)."""
        if not self.opts.request_log:
            return
        with self.log_lock, open(self.opts.request_log, "a") as fh:
            fh.write(json.dumps(entry) + "\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ssl_ctx = None

    def __init__(self, emu, address):
        self.emu = emu
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        # TLS handshake here, in the per-connection thread, so a slow client can't block accept().
        if self.ssl_ctx is None:
            return super().finish_request(request, client_address)
        try:
            request.settimeout(30)
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (OSError, ssl.SSLError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if not isinstance(exc, (OSError, ssl.SSLError, Abort)):
            super().handle_error(request, client_address)


def main(argv=None):
    opts = parse_args(argv)
    srv = Server(Emulator(opts), (opts.host, opts.port))
    if opts.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(opts.tls_cert, opts.tls_key or None)
        ctx.set_alpn_protocols(["http/1.1"])   # Go clients offer h2; we only speak HTTP/1.1
        srv.ssl_ctx = ctx
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"port {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        srv.server_close()
