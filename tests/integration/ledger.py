"""The ledger: what was changed, what the sink got, and the difference.

Every change a test makes is written down per object, in order. The sink's
accepted events are grouped by id (a duplicate must carry the id of the event
it repeats); each object's operations, in the order the sink received them,
must be exactly the operations made. Lost = changes made that never arrived.
"""
import json
import os
import time


class Ledger:
    def __init__(self, name):
        self.name = name
        self.made = {}  # object name -> [op, ...]
        self.started = time.monotonic()
        self.peak_rss_kib = None

    def observe(self, adapter):
        """Keeps the adapter's peak resident memory (VmHWM) so far."""
        kib = rss_kib(adapter.proc.pid)
        if kib and (self.peak_rss_kib is None or kib > self.peak_rss_kib):
            self.peak_rss_kib = kib

    def change(self, name, op):
        self.made.setdefault(name, []).append(op)

    def changes(self):
        return sum(len(v) for v in self.made.values())

    def settle(self, requests):
        """Returns (received ops per object in order, duplicates)."""
        seen = set()
        dups = 0
        got = {}
        for r in requests:
            h = r["headers"]
            if h["ce-id"] in seen:
                dups += 1
                continue
            seen.add(h["ce-id"])
            got.setdefault(h["ce-name"], []).append(h["ce-type"].rsplit(".", 1)[1])
        return got, dups

    def check(self, requests, allow_duplicates=False):
        got, dups = self.settle(requests)
        lost = 0
        for name, ops in self.made.items():
            received = got.get(name, [])
            # Count what is missing from the made sequence.
            i = 0
            for op in received:
                if i < len(ops) and ops[i] == op:
                    i += 1
            lost += len(ops) - i
        unexpected = {n: g for n, g in got.items() if g != self.made.get(n, [])}
        delivered = sum(len(v) for v in got.values())
        self.report(delivered, dups, lost)
        assert lost == 0, f"{self.name}: {lost} changes lost: {unexpected}"
        assert not unexpected, f"{self.name}: out of order or unexpected: {unexpected}"
        if not allow_duplicates:
            assert dups == 0, f"{self.name}: {dups} duplicates"
        return delivered, dups

    def report(self, delivered, dups, lost):
        path = os.environ.get("LEDGER_REPORT")
        if not path:
            return
        with open(path, "a") as f:
            f.write(json.dumps({"scenario": self.name, "changes": self.changes(),
                                "delivered": delivered, "duplicates": dups, "lost": lost,
                                "peak_rss_kib": self.peak_rss_kib,
                                "seconds": round(time.monotonic() - self.started, 1)}) + "\n")


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def anon_kib(pid):
    """Private memory (RssAnon): what the adapter allocated, without the
    shared libraries' pages (about 10 MiB of libcurl, OpenSSL and friends)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
