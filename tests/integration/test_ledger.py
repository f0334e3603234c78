"""Nothing lost: fault scenarios checked change by change (see ledger.py).

Each scenario makes known changes, injects a fault, and asserts by id that
the sink received every change, in per-object order, with lost = 0.
LEDGER_REPORT=FILE collects one row per scenario (bench/reliability)."""
import os
import signal
import time

from harness import free_port, wait_until
from ledger import Ledger, anon_kib

GUITAR = "kool.karmalabs.local/v1/Guitar"
SANITIZED = os.environ.get("ADAPTER_SANITIZED") == "1"


def bulk(cluster, op, names, labels=None, spec_bytes=0):
    body = {"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar",
            "namespace": "guitar-eventing", "op": op, "names": list(names)}
    if labels:
        body["labels"] = labels
    if spec_bytes:
        body["spec_bytes"] = spec_bytes
    return cluster.control("bulk", body)


def make(cluster, ledger, op, names, **kw):
    """Changes objects: through the emulator's bulk writes, or kubectl on the
    real server; every change goes into the ledger."""
    names = list(names)
    if cluster.real:
        for n in names:
            if op == "create":
                cluster.guitar(n)
            elif op == "update":
                cluster.kubectl("-n", "guitar-eventing", "label", "--overwrite", "guitar", n,
                                f"seq={time.monotonic_ns()}")
            else:
                cluster.kubectl("-n", "guitar-eventing", "delete", "guitar", n)
    else:
        for i in range(0, len(names), 5000):
            chunk = names[i:i + 5000]
            if op == "update":
                bulk(cluster, op, chunk, labels={"seq": str(time.monotonic_ns())}, **kw)
            else:
                bulk(cluster, op, chunk, **kw)
    for n in names:
        ledger.change(n, {"create": "add", "update": "update", "delete": "delete"}[op])


def start_adapter(adapter_factory, cluster, sink_url, *extra, env=None, kubeconfig=None):
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink_url,
                         *extra], env=env, kubeconfig=kubeconfig or cluster.kubeconfig)
    a.wait_watching()
    return a


def names(prefix, n):
    return [f"{prefix}{i}" for i in range(n)]


def test_changes_during_a_410_gap(cluster_factory, backend, sink, adapter_factory,
                                  proxy_factory):
    # The real server must not answer old versions from its watch cache.
    cluster = cluster_factory(*(["--watch-cache=false"] if backend == "real" else []),
                              backend=backend)
    cluster.guitars()
    ledger = Ledger(f"creates, updates and deletes during a 410 gap ({backend})")
    n = 10 if cluster.real else 200
    proxy = proxy_factory(cluster)
    a = start_adapter(adapter_factory, cluster, sink.url,
                      kubeconfig=cluster.proxied_kubeconfig(proxy))
    make(cluster, ledger, "create", names("g", n))
    sink.wait_events(n, timeout=60)
    proxy.block()  # the watch is down while all of this happens
    make(cluster, ledger, "update", names("g", n)[: n // 2])
    make(cluster, ledger, "delete", names("g", n)[n // 2:])
    make(cluster, ledger, "create", names("new", n // 2))
    cluster.expire_history()
    proxy.unblock()
    a.wait_log(lambda l: l.get("msg") == "relisted", 40, "the relist")
    sink.wait_events(n + n + n // 2, timeout=60)
    ledger.observe(a)
    assert a.stop() == 0
    ledger.check(sink.events())


def test_connection_reset_mid_event(emulator, sink, adapter_factory):
    cluster = emulator
    cluster.guitars()
    ledger = Ledger("connection reset in the middle of an event")
    a = start_adapter(adapter_factory, cluster, sink.url)
    make(cluster, ledger, "create", names("a", 50))
    cluster.control("watch-options", {"reset_mid_event": 3})
    make(cluster, ledger, "update", names("a", 50))
    make(cluster, ledger, "delete", names("a", 25))
    sink.wait_events(125, timeout=60)
    ledger.observe(a)
    assert a.stop() == 0
    ledger.check(sink.events())
    assert len([l for l in a.logs() if l.get("msg", "").startswith("bad watch stream")
                or l.get("msg") == "watch connection failed, resuming"]) >= 1


def test_api_429_and_500_with_retry_after(emulator, sink, adapter_factory):
    cluster = emulator
    cluster.guitars()
    ledger = Ledger("API 429 and 500 with Retry-After")
    make(cluster, ledger, "create", names("pre", 10))
    cluster.control("faults", {"path_regex": "guitars", "watch": False, "status": 429,
                               "count": 2, "retry_after": 1})
    a = start_adapter(adapter_factory, cluster, sink.url, "--initial-events")
    make(cluster, ledger, "create", names("b", 30))
    cluster.control("faults", {"path_regex": "guitars", "watch": True, "status": 500,
                               "count": 3, "retry_after": 1})
    cluster.control("reset-watches")
    make(cluster, ledger, "update", names("b", 30))
    sink.wait_events(70, timeout=60)
    ledger.observe(a)
    assert a.stop() == 0
    ledger.check(sink.events())
    statuses = sorted({l["status"] for l in a.logs() if l.get("status") in (429, 500)})
    assert statuses == [429, 500]


def test_sink_down_then_up(emulator, sink_factory, adapter_factory):
    outage = float(os.environ.get("LEDGER_SINK_OUTAGE", "60"))
    cluster = emulator
    cluster.guitars()
    ledger = Ledger(f"sink down {outage:g} s, then up")
    port = free_port()
    a = start_adapter(adapter_factory, cluster, f"http://127.0.0.1:{port}/")
    t0 = time.monotonic()
    make(cluster, ledger, "create", names("c", 100))
    make(cluster, ledger, "update", names("c", 100))
    make(cluster, ledger, "delete", names("c", 50))
    time.sleep(max(0.0, outage - (time.monotonic() - t0)))  # the outage itself
    sink = sink_factory(port=port)
    sink.wait_events(250, timeout=90)
    ledger.observe(a)
    assert a.stop() == 0
    ledger.check(sink.events())


def test_sink_503_storm(emulator, sink_factory, adapter_factory):
    cluster = emulator
    cluster.guitars()
    sink = sink_factory(",".join(["503"] * 300))
    ledger = Ledger("sink 503 storm (300 answers)")
    a = start_adapter(adapter_factory, cluster, sink.url)
    make(cluster, ledger, "create", names("s", 100))
    make(cluster, ledger, "update", names("s", 100))
    sink.wait_events(200, timeout=90)
    ledger.observe(a)
    assert a.stop() == 0
    ledger.check(sink.events())
    assert len([r for r in sink.requests() if r["status"] == 503]) == 300


def test_hung_sink(emulator, sink_factory, adapter_factory):
    cluster = emulator
    cluster.guitars()
    sink = sink_factory(",".join(["hang"] * 5))
    ledger = Ledger("hung sink (5 requests never answered)")
    a = start_adapter(adapter_factory, cluster, sink.url, "--sink-timeout", "1")
    make(cluster, ledger, "create", names("h", 40))
    make(cluster, ledger, "update", names("h", 40))
    sink.wait_events(80, timeout=60)
    ledger.observe(a)
    assert a.stop() == 0
    ledger.check(sink.events())


def test_sink_400_goes_to_dead_letter(emulator, sink_factory, adapter_factory):
    cluster = emulator
    cluster.guitars()
    sink = sink_factory()
    dead = sink_factory()
    ledger = Ledger("sink answers 400 for one event (dead-letter sink)")
    a = start_adapter(adapter_factory, cluster, sink.url, "--dead-letter", dead.url)
    make(cluster, ledger, "create", names("ok", 10))
    sink.wait_events(10)
    sink.set_responses([400])
    cluster.guitar("rejected")
    dead.wait_events(1)
    make(cluster, ledger, "create", names("more", 10))
    sink.wait_events(20)
    ledger.observe(a)
    assert a.stop() == 0
    ledger.change("rejected", "add")
    d = dead.requests()
    assert len(d) == 1
    h = d[0]["headers"]
    assert h["ce-name"] == "rejected"
    assert h["ce-knativeerrordest"] == sink.url
    assert h["ce-knativeerrorcode"] == "400"
    rejected = [r for r in sink.requests() if r["status"] == 400]
    assert len(rejected) == 1 and rejected[0]["headers"]["ce-id"] == h["ce-id"]
    # Together, the sink and the dead-letter sink have every change.
    ledger.check(sink.events() + dead.events())


def test_sigterm_mid_burst_then_restart(cluster, sink_factory, adapter_factory, workdir):
    cluster.guitars()
    state = os.path.join(workdir, "state")
    os.mkdir(state)  # --state-dir must exist
    sink = sink_factory(",".join(["hang"] * 200))
    ledger = Ledger(f"SIGTERM in the middle of a burst, restart with --state-dir ({cluster.backend})")
    args = ("--state-dir", state, "--drain-timeout", "1", "--sink-timeout", "30")
    a = start_adapter(adapter_factory, cluster, sink.url, *args)
    n = 10 if cluster.real else 100
    make(cluster, ledger, "create", names("t", n))
    wait_until(lambda: len(sink.requests()) >= min(n, 64), 30, "the burst to reach the sink")
    ledger.observe(a)
    assert a.stop() == 0
    assert [l for l in a.logs() if "kept in the checkpoint" in l.get("msg", "")]
    sink.set_responses([], 200)
    b = start_adapter(adapter_factory, cluster, sink.url, *args)
    make(cluster, ledger, "update", names("t", n))
    sink.wait_events(2 * n, timeout=60)
    ledger.observe(b)
    assert b.stop() == 0
    ledger.check(sink.events())


def test_sigkill_then_restart(cluster, sink, adapter_factory, workdir):
    cluster.guitars()
    state = os.path.join(workdir, "state")
    os.mkdir(state)  # --state-dir must exist
    ledger = Ledger(f"SIGKILL, then restart with --state-dir ({cluster.backend})")
    args = ("--state-dir", state, "--checkpoint-interval", "1")
    a = start_adapter(adapter_factory, cluster, sink.url, *args)
    n = 10 if cluster.real else 100
    make(cluster, ledger, "create", names("k", n))
    wait_until(lambda: os.path.exists(os.path.join(state, "checkpoint.ndjson")), 10,
               "a checkpoint")
    make(cluster, ledger, "update", names("k", n))
    ledger.observe(a)
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    make(cluster, ledger, "delete", names("k", n // 2))  # while it is down
    b = start_adapter(adapter_factory, cluster, sink.url, *args)
    sink.wait_events(n * 2 + n // 2, timeout=60)
    # Nothing more should come: give stragglers a moment, then check.
    wait_until(lambda: b.logs(), 5)
    ledger.observe(b)
    assert b.stop() == 0
    # At-least-once: a change delivered before the kill may come again, with its id.
    ledger.check(sink.events(), allow_duplicates=True)


def test_changes_while_stopped(cluster, sink, adapter_factory, workdir):
    cluster.guitars()
    state = os.path.join(workdir, "state")
    os.mkdir(state)  # --state-dir must exist
    ledger = Ledger(f"changes and deletes while the adapter is stopped ({cluster.backend})")
    a = start_adapter(adapter_factory, cluster, sink.url, "--state-dir", state)
    make(cluster, ledger, "create", names("w", 6))
    sink.wait_events(6)
    ledger.observe(a)
    assert a.stop() == 0
    make(cluster, ledger, "update", names("w", 3))
    make(cluster, ledger, "delete", names("w", 6)[3:])
    make(cluster, ledger, "create", names("x", 2))
    # Expire what the checkpoint remembers, so the restart must relist and diff.
    if not cluster.real:
        cluster.control("compact")
    b = start_adapter(adapter_factory, cluster, sink.url, "--state-dir", state)
    sink.wait_events(6 + 3 + 3 + 2, timeout=40)
    ledger.observe(b)
    assert b.stop() == 0
    ledger.check(sink.events())
    start = [l for l in b.logs() if l.get("msg") == "watching"][0]
    assert start.get("from_checkpoint") is True


def test_burst_into_stalled_sink_bounded_memory(emulator, sink_factory, adapter_factory):
    cluster = emulator
    cluster.guitars()
    total = int(os.environ.get("LEDGER_BURST", "100000"))
    objects = 1000
    sink = sink_factory("", extra=("--default-status", "hang"))
    ledger = Ledger(f"burst of {total} changes into a stalled sink")
    a = start_adapter(adapter_factory, cluster, sink.url, "--queue-max-events", "1000",
                      "--queue-max-bytes", "4194304", "--sink-timeout", "5")
    make(cluster, ledger, "create", names("m", objects), spec_bytes=1200)
    wait_until(lambda: sink.requests(), 10, "the first stalled request")
    base = anon_kib(a.proc.pid)
    peak = base
    for _ in range(total // objects - 1):
        make(cluster, ledger, "update", names("m", objects))
        peak = max(peak, anon_kib(a.proc.pid))
    for _ in range(20):  # stalled: the queue is full and the stream paused
        time.sleep(0.1)
        peak = max(peak, anon_kib(a.proc.pid))
    sink.set_responses([], 200)
    deadline = time.monotonic() + 300
    while len(sink.events()) < total and time.monotonic() < deadline:
        peak = max(peak, anon_kib(a.proc.pid) or 0)
        time.sleep(0.2)
    sink.wait_events(total, timeout=30)
    ledger.observe(a)
    assert a.stop() == 0
    ledger.check(sink.events(), allow_duplicates=False)
    if not SANITIZED:
        # Private memory: the queue holds at most 4 MiB of events (the rest
        # waits in the API server's stream), the state of 1,000 objects is
        # under 2 MiB; 4 MiB more covers parser and transfer buffers.
        print(f"private memory: {base} KiB at start, {peak} KiB at peak")
        assert peak - base < 10 * 1024, (base, peak)
