"""What the API server can do to a watch, and what must reach the sink anyway."""
import json


from harness import wait_until

GUITAR = "kool.karmalabs.local/v1/Guitar"


def changes(sink):
    return [(r["headers"]["ce-name"], r["headers"]["ce-type"].rsplit(".", 1)[1])
            for r in sink.requests()]


def watch_count(cluster):
    st = cluster.stats()
    return sum(v for k, v in st.get("watches", {}).items() if "guitars" in k)


def test_watch_expiry_relist_reports_the_gap(cluster_factory, backend, sink, adapter_factory,
                                             proxy_factory):
    """Objects created, changed and deleted while the watch is down and its
    resourceVersion expires are all reported after the relist."""
    # The real server must not serve old versions from its watch cache.
    cluster = cluster_factory(*(["--watch-cache=false"] if backend == "real" else []),
                              backend=backend)
    cluster.guitars()
    cluster.guitar("keep")
    cluster.guitar("change")
    cluster.guitar("remove")
    proxy = proxy_factory(cluster)
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=cluster.proxied_kubeconfig(proxy))
    a.wait_watching()
    proxy.block()  # the adapter's connections are cut and refused
    cluster.guitar("new")
    cluster.kubectl("-n", "guitar-eventing", "label", "guitar", "change", "x=y")
    cluster.kubectl("-n", "guitar-eventing", "delete", "guitar", "remove")
    cluster.expire_history()
    proxy.unblock()
    a.wait_log(lambda l: l.get("msg") == "relisted", 40, "the relist")
    sink.wait_events(3)
    cluster.guitar("after")
    sink.wait_events(4)
    assert a.stop() == 0
    got = changes(sink)
    assert len(got) == 4, got
    assert sorted(got[:3]) == [("change", "update"), ("new", "add"), ("remove", "delete")]
    assert got[3] == ("after", "add")
    by_name = {r["headers"]["ce-name"]: r for r in sink.requests()}
    assert json.loads(by_name["remove"]["body"])["metadata"]["name"] == "remove"
    assert by_name["remove"]["headers"]["ce-kind"] == "Guitar"
    assert json.loads(by_name["change"]["body"])["metadata"]["labels"] == {"x": "y"}
    assert [l for l in a.logs() if l.get("msg") == "watch expired, listing again"
            or l.get("status") == 410]


def test_410_as_http_status(emulator, sink, adapter_factory, cluster_factory):
    """Some servers answer an expired watch with HTTP 410 instead of an ERROR event."""
    cluster = cluster_factory("--expire-mode", "status")
    cluster.guitars()
    cluster.guitar("change")
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    cluster.control("faults", {"path_regex": "guitars", "watch": True, "status": 503,
                               "count": -1})
    cluster.control("reset-watches")
    cluster.guitar("new")
    cluster.kubectl("-n", "guitar-eventing", "label", "guitar", "change", "x=y")
    cluster.control("compact")
    cluster.control("faults", method="DELETE")
    a.wait_log(lambda l: l.get("msg") == "relisted", 30, "the relist")
    sink.wait_events(2)
    assert a.stop() == 0
    assert sorted(changes(sink)) == [("change", "update"), ("new", "add")]


def test_stream_ended_by_timeout_no_duplicate_no_gap(emulator, sink, adapter_factory):
    cluster = emulator
    cluster.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url,
                         "--watch-timeout", "1"], kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    made = []
    for i in range(12):
        cluster.guitar(f"g{i}")
        made.append(f"g{i}")
        if i % 3 == 2:
            # Let at least one stream end by its timeoutSeconds in between.
            start = watch_count(cluster)
            wait_until(lambda: watch_count(cluster) > start, 10, "the next watch")
    sink.wait_events(12)
    assert a.stop() == 0
    got = changes(sink)
    assert got == [(n, "add") for n in made]
    assert watch_count(cluster) >= 4


def test_events_split_at_every_byte(emulator, sink, adapter_factory):
    cluster = emulator
    cluster.guitars()
    cluster.control("watch-options", {"chunk_bytes": 1})
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    cluster.guitar("d15")
    cluster.kubectl("-n", "guitar-eventing", "label", "guitar", "d15", "helloknative=")
    sink.wait_events(2)
    assert a.stop() == 0
    assert changes(sink) == [("d15", "add"), ("d15", "update")]


def test_malformed_line_resumes_without_loss(emulator, sink, adapter_factory):
    cluster = emulator
    cluster.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    cluster.guitar("before")
    sink.wait_events(1)
    cluster.control("watch-options", {"inject_lines": ["{this is not json"]})
    a.wait_log(lambda l: l.get("msg", "").startswith("bad watch stream"), 15, "the bad line")
    cluster.guitar("after")
    sink.wait_events(2)
    assert a.stop() == 0
    assert changes(sink) == [("before", "add"), ("after", "add")]


def test_connection_reset_resumes_from_last_version(emulator, sink, adapter_factory):
    cluster = emulator
    cluster.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    cluster.guitar("one")
    sink.wait_events(1)
    cluster.control("faults", {"path_regex": "guitars", "watch": True, "status": 500,
                               "count": 2, "retry_after": 1})
    cluster.control("reset-watches")
    cluster.guitar("two")  # made while the watch is down, found by the resumed watch
    sink.wait_events(2, timeout=30)
    assert a.stop() == 0
    assert changes(sink) == [("one", "add"), ("two", "add")]
    # No relist was needed: the resumed watch replayed from the last version.
    assert not [l for l in a.logs() if l.get("msg") == "relisted"]


def test_api_429_on_list_is_retried(emulator, sink, adapter_factory):
    cluster = emulator
    cluster.guitars()
    cluster.guitar("existing")
    cluster.control("faults", {"path_regex": "guitars", "watch": False, "status": 429,
                               "count": 2, "retry_after": 1})
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url,
                         "--initial-events"], kubeconfig=cluster.kubeconfig)
    a.wait_watching(timeout=30)
    sink.wait_events(1)
    assert a.stop() == 0
    assert changes(sink) == [("existing", "add")]
    warns = [l for l in a.logs() if l.get("status") == 429]
    assert len(warns) == 2
    assert all(l["retry_in_ms"] >= 1000 for l in warns)


def test_reference_object_state_relist_delete(emulator, sink, adapter_factory):
    """--object-state reference: a delete found by a relist carries a reference."""
    cluster = emulator
    cluster.guitars()
    cluster.guitar("gone")
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url,
                         "--object-state", "reference"], kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    cluster.control("faults", {"path_regex": "guitars", "watch": True, "status": 503,
                               "count": -1})
    cluster.control("reset-watches")
    cluster.kubectl("-n", "guitar-eventing", "delete", "guitar", "gone")
    cluster.control("compact")
    cluster.control("faults", method="DELETE")
    sink.wait_events(1, timeout=30)
    assert a.stop() == 0
    r = sink.requests()[0]
    assert r["headers"]["ce-type"] == "dev.knative.apiserver.resource.delete"
    assert json.loads(r["body"]) == {"kind": "Guitar", "namespace": "guitar-eventing",
                                     "name": "gone", "apiVersion": "kool.karmalabs.local/v1"}
