"""Delivery to the sink: retries, drops, timeouts, ordering."""
import json
import time

from harness import free_port, wait_until

GUITAR = "kool.karmalabs.local/v1/Guitar"


def start(cluster, sink, adapter_factory, *extra, env=None):
    cluster.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url,
                         *extra], env=env, kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    return a


def test_503_503_200_is_three_attempts_one_id(cluster, sink_factory, adapter_factory):
    sink = sink_factory("503,503,200")
    a = start(cluster, sink, adapter_factory)
    cluster.guitar("d15")
    reqs = sink.wait_requests(3)
    assert a.stop() == 0
    reqs = sink.requests()
    assert [r["status"] for r in reqs] == [503, 503, 200]
    assert len({r["headers"]["ce-id"] for r in reqs}) == 1
    assert len({r["body"] for r in reqs}) == 1
    # Backoff starts near 100 ms (jittered to 50-100 ms) and doubles (100-200 ms);
    # only lower bounds are asserted, since a loaded machine adds delay.
    gaps = [reqs[i + 1]["time"] - reqs[i]["time"] for i in range(2)]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09, gaps
    assert gaps[0] < 5 and gaps[1] < 5, gaps
    # Logged once per event: its first retry, then its delivery after retries.
    retries = [l for l in a.logs() if l.get("msg") == "delivery failed, retrying"]
    assert len(retries) == 1 and retries[0]["status"] == 503 and retries[0]["attempt"] == 1, \
        [json.dumps(l) for l in retries]
    delivered = [l for l in a.logs() if l.get("msg") == "event delivered after retries"]
    assert len(delivered) == 1 and delivered[0]["attempts"] == 3, [json.dumps(l) for l in delivered]
    assert delivered[0]["id"] == reqs[0]["headers"]["ce-id"] and delivered[0]["level"] == "info"


def test_400_is_one_attempt_logged(cluster, sink_factory, adapter_factory):
    sink = sink_factory("400")
    a = start(cluster, sink, adapter_factory)
    cluster.guitar("d15")
    cluster.guitar("next")
    sink.wait_requests(2)
    assert a.stop() == 0
    reqs = sink.requests()
    assert [(r["headers"]["ce-name"], r["status"]) for r in reqs] == [("d15", 400), ("next", 200)]
    dropped = [l for l in a.logs() if l.get("msg") == "sink rejected the event, dropping it"]
    assert len(dropped) == 1
    assert dropped[0]["id"] == reqs[0]["headers"]["ce-id"]
    assert dropped[0]["status"] == 400
    assert dropped[0]["type"] == "dev.knative.apiserver.resource.add"
    assert dropped[0]["subject"].endswith("/guitars/d15")


def test_retry_budget_then_drop(cluster, sink_factory, adapter_factory):
    sink = sink_factory("500,500,500,200")
    a = start(cluster, sink, adapter_factory, "--retry-max", "3")
    cluster.guitar("d15")
    sink.wait_requests(3)
    cluster.guitar("next")
    sink.wait_requests(4)
    assert a.stop() == 0
    assert [r["status"] for r in sink.requests()] == [500, 500, 500, 200]
    lost = [l for l in a.logs() if "after the last attempt" in l.get("msg", "")]
    assert len(lost) == 1 and lost[0]["attempts"] == 3 and lost[0]["status"] == 500


def test_hung_sink_times_out_and_does_not_stall(cluster, sink_factory, adapter_factory):
    # The sink hangs on its first request only. The timeout is long enough
    # that creating the second object (kubectl, slow on a loaded machine)
    # fits in it, short enough to keep the test quick.
    sink = sink_factory("hang")
    a = start(cluster, sink, adapter_factory, env={"K_SINK_TIMEOUT": "5"})
    t0 = time.time()
    cluster.guitar("slow")
    sink.wait_requests(1)
    cluster.guitar("other")
    # Another object's event is delivered while the first one hangs.
    sink.wait_events(2, timeout=30)
    assert a.stop() == 0
    reqs = sink.requests()
    slow = [r for r in reqs if r["headers"]["ce-name"] == "slow"]
    assert [r["status"] for r in slow] == [None, 200]
    assert slow[0]["headers"]["ce-id"] == slow[1]["headers"]["ce-id"]
    assert slow[1]["time"] - slow[0]["time"] >= 4.9  # K_SINK_TIMEOUT bounded the attempt
    (other,) = [r for r in reqs if r["headers"]["ce-name"] == "other"]
    assert other["status"] == 200 and other["time"] < slow[1]["time"], reqs
    assert time.time() - t0 < 60  # a hang would never end


def test_per_object_order_under_retries(cluster, sink_factory, adapter_factory):
    sink = sink_factory("503")
    a = start(cluster, sink, adapter_factory)
    cluster.guitar("d15")
    cluster.kubectl("-n", "guitar-eventing", "label", "guitar", "d15", "a=1")
    cluster.kubectl("-n", "guitar-eventing", "label", "guitar", "d15", "b=2")
    sink.wait_events(3)
    assert a.stop() == 0
    accepted = [r for r in sink.requests() if r["status"] == 200]
    assert [r["headers"]["ce-type"].rsplit(".", 1)[1] for r in accepted] == \
        ["add", "update", "update"]


def test_sigterm_drains_queue(cluster, sink_factory, adapter_factory):
    sink = sink_factory("503,503")
    a = start(cluster, sink, adapter_factory)
    cluster.guitar("d15")
    sink.wait_requests(1)
    code = a.stop()
    assert code == 0
    assert [r["status"] for r in sink.requests()] == [503, 503, 200]
    assert [l for l in a.logs() if l.get("msg") == "all events delivered, exiting"]


def test_sink_down_then_up(cluster, sink_factory, adapter_factory):
    """Nothing listens at the sink's address for a while: every event waits,
    retried without limit, and arrives in order once the sink is up."""
    port = free_port()
    cluster.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink",
                         f"http://127.0.0.1:{port}/"], kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    cluster.guitar("d15")
    cluster.kubectl("-n", "guitar-eventing", "label", "guitar", "d15", "a=1")
    cluster.guitar("other")
    # One line per event's first retry, then one summary per interval (10 s)
    # while the events wait, counting the attempts: never a line per attempt.
    summary = a.wait_log(lambda l: l.get("msg") == "the sink keeps failing, retrying", 20,
                         "a summary of the failed attempts")[0]
    assert summary["failed_attempts"] >= 4 and summary["events_retrying"] == 2, summary
    assert summary["events_queued"] == 3 and summary["status"] == 0 and summary["error"], summary
    refused = [l for l in a.logs() if l.get("msg") == "delivery failed, retrying"]
    assert len(refused) == 2 and all(l["attempt"] == 1 for l in refused), refused
    assert refused[0]["status"] == 0 and refused[0]["error"]
    sink = sink_factory(port=port)
    sink.wait_events(3, timeout=40)
    assert a.stop() == 0
    got = [(r["headers"]["ce-name"], r["headers"]["ce-type"].rsplit(".", 1)[1])
           for r in sink.requests()]
    assert sorted(got) == [("d15", "add"), ("d15", "update"), ("other", "add")]
    assert got.index(("d15", "add")) < got.index(("d15", "update"))
    assert not [l for l in a.logs() if "dropping" in l.get("msg", "")]


def accepted_names(sink):
    """Names of the events the sink accepted; reads only the accepted lines
    (the record of 20,000 refused attempts is large)."""
    # One read, then split: iterating the file while the sink appends can
    # yield one record as two pieces (a partial line at a passing end of file,
    # then its rest). A last line still being written lacks its newline.
    with open(sink.record) as f:
        lines = f.read().splitlines(keepends=True)
    return {json.loads(l)["headers"]["ce-name"] for l in lines
            if l.endswith('"status": 200}\n')}


def test_2000_events_into_a_failing_sink_log_summaries(emulator, sink_factory, adapter_factory):
    """A sink answering 503 for 20 s while 2,000 events wait: the log says so
    in a few lines (the first retries and deliveries after retries up to a
    burst per interval, one summary per interval), never a line per attempt,
    and every event arrives once the sink recovers."""
    n = 2000
    sink = sink_factory(extra=["--default-status", "503"])
    a = start(emulator, sink, adapter_factory)
    before = len(a.logs())
    t0 = time.monotonic()
    emulator.control("bulk", {"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar",
                              "namespace": "guitar-eventing", "op": "create", "prefix": "g",
                              "count": n})
    time.sleep(max(0.0, 20 - (time.monotonic() - t0)))  # the sink fails for 20 s
    with open(sink.record) as f:
        attempts = sum(1 for _ in f)
    during = a.logs()
    sink.set_responses([], default=200)
    wait_until(lambda: len(accepted_names(sink)) >= n, 45, f"{n} events accepted")
    assert a.stop() == 0
    logs = a.logs()
    print(f"{attempts} attempts in 20 s; {len(during) - before} log lines then, "
          f"{len(logs)} in all")
    assert attempts > 2 * n  # many events were retried, most of them several times
    assert len(during) < 50 and len(logs) < 50, [json.dumps(l) for l in logs]
    assert accepted_names(sink) == {f"g{i}" for i in range(n)}
    summaries = [l for l in during if l.get("msg") == "the sink keeps failing, retrying"]
    assert 1 <= len(summaries) <= 3, summaries
    assert summaries[0]["status"] == 503 and summaries[0]["failed_attempts"] > n
    assert summaries[0]["events_retrying"] > n / 2 and summaries[0]["retries_not_logged"] > 0
    first = [l for l in logs if l.get("msg") == "delivery failed, retrying"]
    assert 1 <= len(first) <= 15 and all(l["attempt"] == 1 for l in first), first
    assert [l for l in logs if l.get("msg") == "event delivered after retries"]
    assert not [l for l in logs if "dropping" in l.get("msg", "")]


def bulk_each_once(emulator, sink, a, prefix, n):
    """Creates n guitars named prefix0.. at once, waits for the sink to accept
    an event for each, stops the adapter, checks each name arrived exactly once
    and returns the sink's requests."""
    emulator.control("bulk", {"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar",
                              "namespace": "guitar-eventing", "op": "create", "prefix": prefix,
                              "count": n})
    wait_until(lambda: len(accepted_names(sink)) >= n, 60, f"{n} events accepted")
    assert a.stop() == 0
    reqs = sink.requests()
    assert sorted(r["headers"]["ce-name"] for r in reqs) == sorted(f"{prefix}{i}" for i in range(n))
    return reqs


def test_sink_closing_each_connection_without_notice_loses_and_repeats_nothing(
        emulator, sink_factory, adapter_factory):
    """A sink that answers as if the connection stayed open, then closes it
    (no "Connection: close"). The lean libcurl skips its liveness poll for a
    connection used less than 100 ms before, so requests go out on connections
    the sink has closed: each must be sent again on a new one, none lost, and
    none twice (the sink never read the one it closed on)."""
    sink = sink_factory(extra=["--default-status", "quietclose"])
    a = start(emulator, sink, adapter_factory)
    reqs = bulk_each_once(emulator, sink, a, "q", 300)
    assert {r["status"] for r in reqs} == {200}
    assert not [l for l in a.logs() if "dropping" in l.get("msg", "")]


def test_sink_by_host_name_down_then_closing_each_connection(emulator, sink_factory,
                                                           adapter_factory):
    """The ways libcurl closes a socket and reuses its number, one after the
    other: the sink is a host name (libcurl's resolver thread signals through
    a socketpair); nothing listens at first (libcurl closes each attempt's
    socket itself, not through the adapter's close callback); then the sink
    answers each request with "Connection: close" (libcurl closes the socket
    after the answer, and the next connection usually gets the same number).
    adapter/http.c skips the epoll_ctl for a pooled socket only while it
    knows the number still names it; 200 events arrive, each once, on new
    connections."""
    port = free_port()
    emulator.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink",
                         f"http://localhost:{port}/", "--max-inflight", "4"],
                        kubeconfig=emulator.kubeconfig)
    a.wait_watching()
    emulator.control("bulk", {"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar",
                              "namespace": "guitar-eventing", "op": "create", "prefix": "h",
                              "count": 200})
    a.wait_log(lambda l: l.get("msg") == "delivery failed, retrying", 20, "a refused attempt")
    sink = sink_factory(extra=["--default-status", "endclose"], port=port)
    wait_until(lambda: len(accepted_names(sink)) >= 200, 60, "200 events accepted")
    assert a.stop() == 0
    reqs = sink.requests()
    assert sorted(r["headers"]["ce-name"] for r in reqs) == sorted(f"h{i}" for i in range(200))
    assert len({r["peer"] for r in reqs}) > 100  # a new connection for most requests
    assert not [l for l in a.logs() if "dropping" in l.get("msg", "")]


def test_requests_reuse_at_most_max_inflight_connections(emulator, sink, adapter_factory):
    """Each request goes out on a kept-alive connection that is free: the lean
    libcurl skips the busy ones before its other checks when it looks for one
    (scripts/lean-deps-patches/curl-7.88-reuse.patch). 400 events with
    --max-inflight 8 reach the sink on at most 8 connections, each once."""
    a = start(emulator, sink, adapter_factory, "--max-inflight", "8")
    reqs = bulk_each_once(emulator, sink, a, "r", 400)
    peers = {r["peer"] for r in reqs}
    assert 1 <= len(peers) <= 8, f"{len(peers)} connections for 400 requests"


def test_sink_proxy_follows_libcurls_environment_rules(emulator, sink, adapter_factory):
    """The adapter hands libcurl the proxy of the environment once per URL
    (not five getenv calls per POST), by libcurl's rules: for an http sink,
    http_proxy but never HTTP_PROXY, then all_proxy/ALL_PROXY; no_proxy
    exempts hosts (here the API server); an empty value counts as unset."""
    dead = f"http://127.0.0.1:{free_port()}/"
    url = "http://events.example.invalid/hook"  # resolvable only through the proxy
    emulator.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", url],
                        env={"HTTP_PROXY": dead, "http_proxy": "", "ALL_PROXY": sink.url,
                             "no_proxy": "", "NO_PROXY": "127.0.0.1"},
                        kubeconfig=emulator.kubeconfig)
    a.wait_watching()
    emulator.guitar("d15")
    reqs = sink.wait_events(1)
    assert reqs[0]["path"] == url  # absolute form: the request went through the proxy
    assert reqs[0]["headers"]["ce-name"] == "d15"
    assert a.stop() == 0
