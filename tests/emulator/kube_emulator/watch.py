"""Watch streams: one Watch per open stream (a queue filled under the store lock), and the
handler mixin that opens a watch (history replay, 410 on expiry, initial events) and streams it
(chunked encoding, bookmarks, the stall / chunk_bytes / reset_mid_event / inject_lines faults)."""
import collections
import select
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from .common import Abort, ApiError, dumps


class Watch:
    """One open watch stream.  Events are queued under the store lock; the handler thread writes."""
    def __init__(self, store, res, ns, lsel, fsel, conn):
        self.store, self.res, self.ns, self.lsel, self.fsel = store, res, ns, lsel, fsel
        self.q = collections.deque()
        self.cond = threading.Condition(store.lock)
        self.closing = self.reset = False
        self.conn = conn

    def matches(self, obj):
        meta = obj.get("metadata", {})
        if self.ns is not None and meta.get("namespace") != self.ns:
            return False
        return self.lsel.matches(meta.get("labels") or {}) and self.fsel.matches(obj)

    def offer(self, ev):
        if ev.gk != self.res.gk:
            return
        now = self.matches(ev.obj)
        etype = ev.type
        if etype == "MODIFIED":
            before = self.matches(ev.old) if ev.old is not None else now
            # like the watch cache: objects entering the selector are ADDED, leaving are DELETED
            etype = "MODIFIED" if now and before else "ADDED" if now else "DELETED" if before else None
            now = etype is not None
        if now:
            self.q.append((etype, ev.obj))
            self.cond.notify()


class WatchRoutes:
    """Handler mixin: GET ...?watch=true (and the legacy /watch/ prefix)."""
    def watch(self, res, ns, name):
        lsel, fsel, ok = self.selected(res, ns)
        if name:
            fsel.reqs.append(("metadata.name", True, name))
        with self.ctl.lock:
            self.ctl.stats_watches[urlsplit(self.path).path] += 1
        rv_param = self.q.get("resourceVersion", "")
        initial_events = self.q.get("sendInitialEvents") == "true"
        bookmarks = self.q.get("allowWatchBookmarks") == "true"
        timeout = float(self.q.get("timeoutSeconds") or 0)
        w = Watch(self.store, res, ns, lsel, fsel, self.connection)
        expired = None
        with self.store.lock:
            if rv_param in ("", "0") or initial_events:
                for k in sorted(self.store.data[res.gk], key=lambda k: (k[0] or "", k[1])):
                    o = self.store.data[res.gk][k]
                    if w.matches(o):
                        w.q.append(("ADDED", o))
                if initial_events:
                    w.q.append(("BOOKMARK", {"metadata": {"resourceVersion": str(self.store.rv), "annotations": {
                        "k8s.io/initial-events-end": "true"}}}))
            else:
                try:
                    since = int(rv_param)
                except ValueError:
                    raise ApiError(400, f'resourceVersion: Invalid value: "{rv_param}": must be an integer')
                if since < self.store.floor:
                    expired = f"too old resource version: {since} ({self.store.floor})"
                else:
                    for ev in self.store.history:
                        if ev.rv > since:
                            w.offer(ev)
            if not expired:
                self.store.watches.add(w)
        if expired:
            st = ApiError(410, expired, reason="Expired")
            if self.opts.expire_mode == "status":
                raise st
            self.start_chunked()
            self.write_line(dumps({"type": "ERROR", "object": st.status()}))
            self.wfile.write(b"0\r\n\r\n")
            return
        try:
            self.stream(w, res, timeout, bookmarks)
        finally:
            with self.store.lock:
                self.store.watches.discard(w)

    def take_reset_mid_event(self):
        with self.store.lock:
            if self.store.reset_mid_event > 0:
                self.store.reset_mid_event -= 1
                return True
        return False

    def write_half_and_abort(self, line):
        """reset_mid_event fault: the first half of the event's line in its own chunk, then an
        abrupt end (shutdown + close, no terminating chunk).  The event stays in the history."""
        data = line + b"\n"
        half = data[:max(1, len(data) // 2)]
        self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
        self.wfile.flush()
        try:   # base-class shutdown: works for SSL sockets too (no close_notify)
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass
        raise Abort()

    def start_chunked(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def write_line(self, data):
        data += b"\n"
        n = self.store.chunk_bytes or len(data)
        for i in range(0, len(data), n):
            part = data[i:i + n]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))

    def client_gone(self):
        """Detect a closed client connection while idle (the client never sends during a watch)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            if isinstance(self.connection, ssl.SSLSocket):
                return True    # TLS: anything readable here is close_notify/EOF
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def stream(self, w, res, timeout, bookmarks):
        self.start_chunked()
        deadline = time.monotonic() + timeout if timeout > 0 else None
        interval = self.opts.bookmark_interval
        next_bm = time.monotonic() + interval
        while True:
            items, bm_rv, end = [], None, None
            with w.cond:
                ready = lambda: w.reset or w.closing or (w.q and not self.store.stall)
                if not ready():
                    wait = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic()))
                    w.cond.wait(wait)
                if w.reset:
                    end = "reset"
                elif w.q and not self.store.stall:
                    items = list(w.q)
                    w.q.clear()
                elif w.closing:
                    end = "close"
                elif bookmarks and not self.store.stall and not w.q and time.monotonic() >= next_bm:
                    bm_rv = self.store.rv    # queue empty: every event <= rv has been delivered
            if end == "reset":
                raise Abort()
            for etype, obj in items:
                if etype == "RAW":
                    self.write_line(obj.encode() if isinstance(obj, str) else obj)
                elif etype == "BOOKMARK":
                    self.write_line(dumps({"type": "BOOKMARK", "object": dict(
                        obj, apiVersion=res.gv, kind=res.kind)}))
                else:
                    line = dumps({"type": etype, "object": self.out(res, obj)})
                    if self.store.reset_mid_event > 0 and self.take_reset_mid_event():
                        self.write_half_and_abort(line)
                    self.write_line(line)
            if bm_rv is not None:
                self.write_line(dumps({"type": "BOOKMARK", "object": {
                    "kind": res.kind, "apiVersion": res.gv, "metadata": {"resourceVersion": str(bm_rv)}}}))
                next_bm = time.monotonic() + interval
            if end == "close" or (deadline is not None and time.monotonic() >= deadline):
                self.wfile.write(b"0\r\n\r\n")
                return
            if not items and self.client_gone():
                raise Abort()
