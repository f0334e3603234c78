"""The store: objects, one global resourceVersion, the watch history and the open watches."""
import collections
import threading
import uuid

from .common import now_ts
from .discovery import NS_GK, Registry

Event = collections.namedtuple("Event", "rv gk type obj old")


class Store(Registry):
    """Every object, the one resourceVersion counter, the watch history and the open watches,
    plus the watch-stream fault switches (stall, chunk_bytes, reset_mid_event) that the control
    API sets.  One lock guards it all."""
    def __init__(self, history):
        super().__init__()
        self.lock = threading.RLock()        # guards everything below; watch Conditions share it
        self.rv = 0
        self.data = collections.defaultdict(dict)   # (group, plural) -> {(ns, name): obj}
        self.history = collections.deque()
        self.history_max = history
        self.floor = 0     # watches from an RV below this are expired
        self.watches = set()
        self.stall = False
        self.chunk_bytes = 0
        self.reset_mid_event = 0   # next N object events on any watch: half a line, then abort
        self.bulk_seq = 0          # /_emulator/bulk update counter (annotation bulk/seq)

    # --- writes (caller holds self.lock) ------------------------------------------------------
    def commit(self, res_gk, etype, obj, old=None):
        """Assign the next resourceVersion, store/remove, record history, notify watchers."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if etype == "DELETED":
            self.data[res_gk].pop(key, None)
        else:
            self.data[res_gk][key] = obj
        ev = Event(self.rv, res_gk, etype, obj, old)
        if self.history_max > 0:
            if len(self.history) >= self.history_max:
                self.floor = self.history.popleft().rv
            self.history.append(ev)
        else:
            self.floor = self.rv
        for w in list(self.watches):
            w.offer(ev)
        return obj

    def add_default_namespaces(self):
        """The namespaces every cluster has."""
        with self.lock:
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                self.commit(NS_GK, "ADDED", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
                    "name": ns, "uid": str(uuid.uuid4()), "creationTimestamp": now_ts(), "generation": 1},
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
