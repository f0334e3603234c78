"""Fault injection and the rest of the control API under /_emulator/ (see README.md):
faults on matching requests, watch-stream options, closing/resetting watches, compaction,
token replacement and statistics.  Bulk writes are in bulk.py."""
import re
import socket
import threading
import collections

from .common import ApiError


class Control:
    """Pending faults, the accepted tokens and the request counters (own lock)."""
    def __init__(self, tokens, token_file=None):
        self.token_file = token_file
        self.lock = threading.Lock()
        self.faults = []
        self.tokens = set(tokens)
        self.stats_lists = collections.Counter()
        self.stats_watches = collections.Counter()
        self.requests = 0

    def take_fault(self, method, full_path, is_watch):
        with self.lock:
            for f in self.faults:
                if f["method"] and f["method"].upper() != method:
                    continue
                if f["watch"] is not None and bool(f["watch"]) != is_watch:
                    continue
                if not re.search(f["path_regex"], full_path):
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                    if f["count"] == 0:
                        self.faults.remove(f)
                return dict(f)
        return None

    def accepted_tokens(self):
        """None = auth disabled.  The token file is re-read on every request."""
        toks = set(self.tokens)
        enabled = bool(toks)
        if self.token_file:
            enabled = True
            try:
                with open(self.token_file) as fh:
                    for line in fh:
                        line = line.strip()
                        if line and not line.startswith("#"):
                            toks.add(line.split(",")[0])   # also accepts kube token-auth-file lines
            except OSError:
                pass
        return toks if enabled else None


class ControlRoutes:
    """Handler mixin: /_emulator/... (loopback clients only, no auth)."""
    def control(self, path):
        if not (self.client_address[0].startswith("127.") or self.client_address[0] == "::1"):
            raise ApiError(403, "control API is loopback-only")
        body = self.json_body() if self.body else {}
        body = body or {}
        op = path[len("/_emulator/"):].strip("/")
        out = {"ok": True}
        if op == "compact" and self.command == "POST":
            with self.store.lock:
                self.store.history.clear()
                self.store.floor = self.store.rv
                out["compacted_to"] = self.store.rv
        elif op in ("close-watches", "reset-watches") and self.command == "POST":
            with self.store.lock:
                ws = list(self.store.watches)
                for w in ws:
                    if op == "close-watches":
                        w.closing = True
                    else:
                        w.reset = True
                        try:  # base-class shutdown: works for SSL sockets too, wakes blocked writes
                            socket.socket.shutdown(w.conn, socket.SHUT_RDWR)
                        except OSError:
                            pass
                    w.cond.notify_all()
            out["watches"] = len(ws)
        elif op == "faults" and self.command == "POST":
            f = {"path_regex": body.get("path_regex") or ".*", "method": body.get("method"),
                 "status": int(body.get("status") or 0), "count": int(body.get("count", 1)),
                 "retry_after": body.get("retry_after"), "watch": body.get("watch"),
                 "message": body.get("message"), "delay": body.get("delay")}
            re.compile(f["path_regex"])
            with self.ctl.lock:
                self.ctl.faults.append(f)
            out["fault"] = f
        elif op == "faults" and self.command == "GET":
            with self.ctl.lock:
                out["faults"] = list(self.ctl.faults)
        elif op == "faults" and self.command == "DELETE":
            with self.ctl.lock:
                self.ctl.faults.clear()
        elif op == "watch-options" and self.command == "POST":
            with self.store.lock:
                if "chunk_bytes" in body:
                    self.store.chunk_bytes = int(body["chunk_bytes"] or 0)
                if "stall" in body:
                    self.store.stall = bool(body["stall"])
                if "reset_mid_event" in body:
                    self.store.reset_mid_event = max(0, int(body["reset_mid_event"] or 0))
                for w in self.store.watches:
                    for line in body.get("inject_lines") or []:
                        w.q.append(("RAW", line))
                    w.cond.notify_all()
                out.update(chunk_bytes=self.store.chunk_bytes, stall=self.store.stall, watches=len(self.store.watches),
                           reset_mid_event=self.store.reset_mid_event)
        elif op == "bulk" and self.command == "POST":
            return self.bulk(body)
        elif op == "tokens" and self.command == "POST":
            with self.ctl.lock:
                self.ctl.tokens = set(body.get("tokens") or [])
        elif op == "stats" and self.command == "GET":
            with self.store.lock, self.ctl.lock:
                out = {"open_watches": len(self.store.watches), "rv": self.store.rv,
                       "resourceVersion": str(self.store.rv), "history_floor": self.store.floor,
                       "history_len": len(self.store.history), "lists": dict(self.ctl.stats_lists),
                       "watches": dict(self.ctl.stats_watches), "requests": self.ctl.requests,
                       "pending_faults": len(self.ctl.faults), "stall": self.store.stall,
                       "chunk_bytes": self.store.chunk_bytes, "reset_mid_event": self.store.reset_mid_event}
        else:
            raise ApiError(404, f"unknown control operation {self.command} {path}")
        self.send_json(200, out)
