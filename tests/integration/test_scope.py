"""Which objects are watched: namespaces, all namespaces, selectors, scope."""
import json

GUITAR = "kool.karmalabs.local/v1/Guitar"


def names(sink):
    return sorted((r["headers"]["ce-namespace"], r["headers"]["ce-name"]) for r in sink.requests())


def make_namespaces(cluster, *names):
    # kubectl's create generators send protobuf, which the emulator does not
    # decode; apply sends JSON.
    for n in names:
        cluster.apply(json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}))


def test_two_namespaces(cluster, sink, adapter_factory):
    cluster.guitars()
    make_namespaces(cluster, "a", "b", "c")
    ad = adapter_factory(["--resource", GUITAR, "-n", "a", "-n", "b", "--sink", sink.url],
                         kubeconfig=cluster.kubeconfig)
    ad.wait_watching(2)
    for ns in ("a", "b", "c"):
        cluster.guitar("g-" + ns, ns=ns)
    sink.wait_events(2)
    cluster.guitar("g2-a", ns="a")  # a marker: once it is in, c's would be too
    sink.wait_events(3)
    assert ad.stop() == 0
    assert names(sink) == [("a", "g-a"), ("a", "g2-a"), ("b", "g-b")]


def test_all_namespaces(cluster, sink, adapter_factory):
    cluster.guitars()
    make_namespaces(cluster, "a", "b")
    ad = adapter_factory(["--resource", GUITAR, "-A", "--sink", sink.url],
                         kubeconfig=cluster.kubeconfig)
    ad.wait_watching(1)
    for ns in ("a", "b", "guitar-eventing"):
        cluster.guitar("g-" + ns, ns=ns)
    sink.wait_events(3)
    assert ad.stop() == 0
    assert names(sink) == [("a", "g-a"), ("b", "g-b"), ("guitar-eventing", "g-guitar-eventing")]
    # One cluster-wide watch, not one per namespace.
    assert len([l for l in ad.logs() if l.get("msg") == "watching"]) == 1


def test_namespace_from_kubeconfig_context(cluster, sink, adapter_factory):
    cluster.guitars()
    make_namespaces(cluster, "other")
    cluster.kubectl("config", "set-context", "--current", "--namespace", "guitar-eventing")
    ad = adapter_factory(["--resource", GUITAR, "--sink", sink.url], kubeconfig=cluster.kubeconfig)
    ad.wait_watching()
    cluster.guitar("x", ns="other")
    cluster.guitar("y")
    sink.wait_events(1)
    assert ad.stop() == 0
    assert names(sink) == [("guitar-eventing", "y")]


def test_label_selector(cluster, sink, adapter_factory):
    cluster.guitars()
    ad = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "-l", "tier=gold",
                          "--sink", sink.url], kubeconfig=cluster.kubeconfig)
    ad.wait_watching()
    cluster.guitar("plain")
    cluster.guitar("gold", labels={"tier": "gold"})
    sink.wait_events(1)
    # An object that enters the selector is an add, one that leaves it a delete.
    cluster.kubectl("-n", "guitar-eventing", "label", "guitar", "plain", "tier=gold")
    sink.wait_events(2)
    cluster.kubectl("-n", "guitar-eventing", "label", "guitar", "gold", "tier-")
    sink.wait_events(3)
    assert ad.stop() == 0
    got = [(r["headers"]["ce-name"], r["headers"]["ce-type"].rsplit(".", 1)[1])
           for r in sink.requests()]
    assert got == [("gold", "add"), ("plain", "add"), ("gold", "delete")]


def test_cluster_scoped_kind(cluster, sink, adapter_factory):
    ad = adapter_factory(["--resource", "v1/Namespace", "-n", "ignored-for-cluster-scope",
                          "--sink", sink.url], kubeconfig=cluster.kubeconfig)
    ad.wait_watching()
    make_namespaces(cluster, "guitar-eventing")
    cluster.kubectl("label", "namespace", "guitar-eventing", "team=frets")
    sink.wait_events(2)
    assert ad.stop() == 0
    reqs = sink.requests()
    assert [r["headers"]["ce-type"].rsplit(".", 1)[1] for r in reqs] == ["add", "update"]
    h = reqs[0]["headers"]
    # Knative's subject keeps an empty namespace segment for cluster-scoped objects.
    assert h["ce-subject"] == "/apis/v1/namespaces//namespaces/guitar-eventing"
    assert h["ce-kind"] == "Namespace"
    assert h["ce-apiversion"] == "v1"
    assert json.loads(reqs[1]["body"])["metadata"]["labels"]["team"] == "frets"


def test_core_kind_in_a_namespace(cluster, sink, adapter_factory):
    make_namespaces(cluster, "test")
    ad = adapter_factory(["--resource", "v1/ConfigMap", "-n", "test", "--sink", sink.url],
                         kubeconfig=cluster.kubeconfig)
    ad.wait_watching()
    cluster.apply(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "unit", "namespace": "test"},
                              "data": {"a": "b"}}))
    sink.wait_events(1)
    assert ad.stop() == 0
    h = sink.requests()[0]["headers"]
    assert h["ce-subject"] == "/apis/v1/namespaces/test/configmaps/unit"
    assert (h["ce-kind"], h["ce-name"], h["ce-namespace"], h["ce-apiversion"]) == \
        ("ConfigMap", "unit", "test", "v1")
