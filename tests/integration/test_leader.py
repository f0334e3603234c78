"""--leader-elect against the real kube-apiserver: two replicas, one Lease.

Each replica runs as the guitar-sa ServiceAccount with exactly
rbac/guitar-rbac.yaml and rbac/leader-election.yaml. The ledger (ledger.py)
checks that a failover loses nothing: every change reaches the sink at least
once (duplicates across the failover carry the same id)."""
import os
import signal
import threading
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import RBAC, wait_until
from ledger import Ledger

GUITAR = "kool.karmalabs.local/v1/Guitar"
NS = "guitar-eventing"
LEASE = "guitar-adapter"
GUITARS = f"/apis/kool.karmalabs.local/v1/namespaces/{NS}/guitars"
LEASE_DURATION = 15.0
RETRY_MAX = 2.0 * 2.2  # a standby tries every retry period, jittered by up to 1.2 times it

@pytest.fixture
def plane(cluster_factory, proxy_factory):
    cluster = cluster_factory(backend="real")
    cluster.guitars()
    cluster.apply(os.path.join(RBAC, "guitar-rbac.yaml"))
    cluster.apply(os.path.join(RBAC, "leader-election.yaml"))
    token = cluster.kubectl("-n", NS, "create", "token", "guitar-sa",
                            "--duration=10m").stdout.strip()
    cluster.sa_token = token
    cluster.sa_kubeconfig = cluster.proxied_kubeconfig(proxy_factory(cluster), token=token)
    return cluster


def replica(adapter_factory, cluster, sink, name, *extra, kubeconfig=None):
    # TMPDIR: a SIGKILLed replica leaves its private directory behind.
    return adapter_factory(["--resource", GUITAR, "-n", NS, "--sink", sink.url,
                            "--leader-elect", "--leader-elect-lease", LEASE, *extra],
                           env={"NAMESPACE": NS, "POD_NAME": name, "TMPDIR": cluster.dir},
                           kubeconfig=kubeconfig or cluster.sa_kubeconfig)


def leads(a, timeout=30.0):
    return a.wait_log(lambda l: l.get("msg") == "acquired the lease; this replica leads",
                      timeout, "the lease to be acquired")


def stands_by(a, timeout=30.0):
    return a.wait_log(lambda l: l.get("msg") == "standing by: another replica leads",
                      timeout, "standing by")


def metric(a, name):
    status, body = a.get("/metrics", metrics=True)
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def lease(cluster):
    return cluster.api("GET", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{LEASE}")


def recorded_state(cluster):
    import base64
    import zlib
    try:
        cm = cluster.api("GET", f"/api/v1/namespaces/{NS}/configmaps/{LEASE}-state")
    except urllib.error.HTTPError:
        return b""
    return zlib.decompress(base64.b64decode(cm["binaryData"]["checkpoint.ndjson.zlib"]))


def guitar_body(name, labels=None):
    meta = {"name": name, "namespace": NS}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar", "metadata": meta,
            "spec": {"brand": "martin", "review": False}}


def change(cluster, ledger, name, op):
    """One change through the API (kubectl would take minutes for 2,000)."""
    if op == "create":
        cluster.api("POST", GUITARS, guitar_body(name))
    elif op == "update":
        obj = cluster.api("GET", f"{GUITARS}/{name}")
        obj["metadata"].setdefault("labels", {})["seq"] = str(time.monotonic_ns())
        cluster.api("PUT", f"{GUITARS}/{name}", obj)
    else:
        cluster.api("DELETE", f"{GUITARS}/{name}")
    ledger.change(name, {"create": "add", "update": "update", "delete": "delete"}[op])


def test_leader_one_delivers_standby_ready(plane, sink, adapter_factory):
    a = replica(adapter_factory, plane, sink, "replica-a")
    leads(a)
    a.wait_watching(timeout=30)
    b = replica(adapter_factory, plane, sink, "replica-b")
    stands_by(b)
    status, body = b.get("/readiness")
    assert status == 200 and "standby" in body and "replica-a_" in body, (status, body)
    status, body = a.get("/readiness")
    assert status == 200 and body.strip() == "ready", (status, body)
    assert metric(a, "apiserversource_leader") == 1
    assert metric(b, "apiserversource_leader") == 0
    for n in ("one", "two", "three"):
        plane.guitar(n)
    events = sink.wait_events(3, timeout=30)
    assert sorted(e["headers"]["ce-name"] for e in events) == ["one", "three", "two"]
    assert b.watching_count() == 0  # the standby never watched
    assert lease(plane)["spec"]["holderIdentity"].startswith("replica-a_")
    assert len(sink.requests()) == 3  # one replica delivered, once each
    # What a successor would need is in the cluster: the leader's checkpoint.
    state = wait_until(lambda: (lambda t: t.count(b'"type":"OBJECT"') == 3 and t)(
        recorded_state(plane)), 15, "the three objects in the recorded state")
    assert state.startswith(b'{"type":"CHECKPOINT","version":2}')
    assert b.stop() == 0  # a standby stops at once
    assert a.stop() == 0
    assert lease(plane)["spec"]["holderIdentity"] == ""  # released


def test_leader_sigkill_during_burst_nothing_lost(plane, sink, adapter_factory):
    ledger = Ledger("SIGKILL of the leader during a burst of 2,000 changes (real)")
    a = replica(adapter_factory, plane, sink, "replica-a")
    leads(a)
    a.wait_watching(timeout=30)
    b = replica(adapter_factory, plane, sink, "replica-b")
    stands_by(b)
    # 800 creates, 700 updates, 500 deletes; each object's changes in order
    # on one thread, eight objects at a time.
    n = 800
    plans = {f"g{i}": ["create"] + (["update"] if i < 700 else []) + (["delete"] if i % 8 < 5 else [])
             for i in range(n)}
    assert sum(len(p) for p in plans.values()) == 2000
    made = [0]
    lock = threading.Lock()

    def run(name):
        for op in plans[name]:
            change(plane, ledger, name, op)
            with lock:
                made[0] += 1

    killed_at = None
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(run, name) for name in plans]
        wait_until(lambda: made[0] >= 600 or all(f.done() for f in futures), 60,
                   lambda: f"600 changes made (have {made[0]})")
        assert made[0] < 2000, "the burst ended before the kill"
        a.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        a.proc.wait()
        took = leads(b, LEASE_DURATION + 2 * RETRY_MAX + 5)
        took_over = time.monotonic() - killed_at
        for f in futures:
            f.result()
    print(f"takeover after SIGKILL: {took_over:.1f}s")
    assert took and took_over <= LEASE_DURATION + 2 * RETRY_MAX, took_over
    # Not before the lease expired: the leader renewed at most a retry
    # period (2 s) before it died, and the standby waits 15 s from seeing that.
    assert took_over >= LEASE_DURATION - 2.5, took_over
    assert ledger.changes() == 2000

    def settled():
        got, _ = ledger.settle(sink.events())
        return all(got.get(k) == v for k, v in ledger.made.items())
    wait_until(settled, 60, lambda: f"every change at the sink ({len(sink.events())} events)")
    delivered, dups = ledger.check(sink.events(), allow_duplicates=True)
    print(f"delivered {delivered}, duplicates {dups}")
    assert any(l.get("msg") == "checkpoint loaded" for l in b.logs()), \
        "the successor did not load the recorded state"
    assert b.stop() == 0


def test_leader_sigterm_releases_lease_fast(plane, sink, adapter_factory):
    a = replica(adapter_factory, plane, sink, "replica-a")
    leads(a)
    a.wait_watching(timeout=30)
    b = replica(adapter_factory, plane, sink, "replica-b")
    stands_by(b)
    plane.guitar("before")
    sink.wait_events(1, timeout=30)
    stopped_at = time.monotonic()
    assert a.stop() == 0
    assert any(l.get("msg") == "released the lease" for l in a.logs())
    leads(b, RETRY_MAX + 5)
    took_over = time.monotonic() - stopped_at
    print(f"takeover after SIGTERM: {took_over:.1f}s")
    assert took_over < RETRY_MAX + 2, took_over  # far below the 15 s lease
    b.wait_watching(timeout=30)
    plane.guitar("after")
    events = sink.wait_events(2, timeout=30)
    assert [e["headers"]["ce-name"] for e in events] == ["before", "after"]
    assert lease(plane)["spec"]["holderIdentity"].startswith("replica-b_")
    assert b.stop() == 0


def test_leader_cannot_renew_stops_and_exits_nonzero(plane, sink, adapter_factory, proxy_factory):
    """Cut off from the API server, the leader gives up within the renew
    deadline (client-go's OnStoppedLeading) and exits 1; the standby takes
    over and delivers what changed meanwhile."""
    ledger = Ledger("leader cut off from the API server (real)")
    proxy = proxy_factory(plane)
    a = replica(adapter_factory, plane, sink, "replica-a",
                kubeconfig=plane.proxied_kubeconfig(proxy, token=plane.sa_token))
    leads(a)
    a.wait_watching(timeout=30)
    b = replica(adapter_factory, plane, sink, "replica-b")
    stands_by(b)
    change(plane, ledger, "before", "create")
    sink.wait_events(1, timeout=30)
    cut_at = time.monotonic()
    proxy.block()
    for name in ("during1", "during2"):
        change(plane, ledger, name, "create")
    change(plane, ledger, "before", "update")
    assert a.wait_exit(10 + 2 + 8) == 1
    gave_up = time.monotonic() - cut_at
    print(f"leader gave up {gave_up:.1f}s after the cut")
    assert any(l.get("msg", "").startswith("lost the lease") for l in a.logs())
    leads(b, LEASE_DURATION + 2 * RETRY_MAX + 5)
    wait_until(lambda: len(sink.events()) >= 4, 30, "the changes made during the cut")
    ledger.check(sink.events(), allow_duplicates=True)
    assert b.stop() == 0


def test_leader_waits_out_a_stale_lease_on_its_own_clock(plane, sink, adapter_factory):
    """A Lease whose renewTime is hours old is still not taken at once: like
    client-go, a candidate trusts only its own clock, from when it first saw
    the Lease unchanged, for leaseDurationSeconds."""
    plane.api("POST", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases", {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": LEASE, "namespace": NS},
        "spec": {"holderIdentity": "ghost", "leaseDurationSeconds": 15,
                 "acquireTime": "2020-01-01T00:00:00.000000Z",
                 "renewTime": "2020-01-01T00:00:00.000000Z", "leaseTransitions": 4}})
    started = time.monotonic()
    a = replica(adapter_factory, plane, sink, "replica-a")
    stands_by(a)
    status, body = a.get("/readiness")
    assert status == 200 and "standby: ghost leads" in body, (status, body)
    leads(a, LEASE_DURATION + 2 * RETRY_MAX + 5)
    took = time.monotonic() - started
    print(f"stale lease taken after {took:.1f}s")
    assert LEASE_DURATION <= took <= LEASE_DURATION + RETRY_MAX + 3, took
    spec = lease(plane)["spec"]
    assert spec["holderIdentity"].startswith("replica-a_") and spec["leaseTransitions"] == 5
    a.wait_watching(timeout=30)
    plane.guitar("taken")
    assert [e["headers"]["ce-name"] for e in sink.wait_events(1, timeout=30)] == ["taken"]
    assert a.stop() == 0


def test_leader_forbidden_lease_names_the_role(plane, sink, adapter_factory):
    plane.kubectl("-n", NS, "delete", "rolebinding", "guitar-leader-election")
    a = replica(adapter_factory, plane, sink, "replica-a")
    warn = a.wait_log(lambda l: l.get("msg") == "cannot read or take the lease, retrying", 30,
                      "the 403 on the Lease")[0]
    assert warn["status"] == 403 and "rbac/leader-election.yaml" in warn["error"], warn
    status, body = a.get("/readiness")
    assert status == 200 and "standby: waiting for the lease" in body, (status, body)
    plane.apply(os.path.join(RBAC, "leader-election.yaml"))
    leads(a, 30)
    assert a.stop() == 0


def refused(emulator, adapter_factory, sink, workdir, *extra):
    a = adapter_factory(["--resource", GUITAR, "-n", NS, "--sink", sink.url, "--leader-elect",
                         *extra], env={"NAMESPACE": NS, "TMPDIR": workdir},
                        kubeconfig=emulator.kubeconfig)
    assert a.wait_exit(15) == 2
    return [l for l in a.logs() if l.get("level") == "error"]


def test_leader_elect_with_state_dir_is_refused(emulator, adapter_factory, sink, workdir):
    errors = refused(emulator, adapter_factory, sink, workdir, "--state-dir", workdir)
    assert len(errors) == 1 and errors[0]["field"] == "--state-dir", errors
    assert "ConfigMap" in errors[0]["msg"]


def test_leader_elect_lease_bad_name_is_refused(emulator, adapter_factory, sink, workdir):
    errors = refused(emulator, adapter_factory, sink, workdir, "--leader-elect-lease", "Bad_Name")
    assert len(errors) == 1 and errors[0]["field"] == "--leader-elect-lease", errors
    assert errors[0]["value"] == "Bad_Name"
