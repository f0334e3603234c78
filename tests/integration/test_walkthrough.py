"""The Guitar walkthrough and the event format, checked at the sink."""
import json
import os

from harness import SAMPLES, wait_until

GUITAR = "kool.karmalabs.local/v1/Guitar"
SUBJECT = "/apis/kool.karmalabs.local/v1/namespaces/guitar-eventing/guitars/d15"


def walkthrough(cluster):
    cluster.apply(os.path.join(SAMPLES, "guitar-d15.yaml"))
    cluster.kubectl("-n", "guitar-eventing", "label", "guitar", "d15", "helloknative=")
    cluster.kubectl("-n", "guitar-eventing", "delete", "guitar", "d15")


def test_guitar_walkthrough_resource_mode(cluster, sink, adapter_factory):
    cluster.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    walkthrough(cluster)
    reqs = sink.wait_events(3)
    assert a.stop() == 0
    reqs = sink.requests()
    assert len(reqs) == 3, reqs
    types = [r["headers"]["ce-type"] for r in reqs]
    assert types == ["dev.knative.apiserver.resource.add", "dev.knative.apiserver.resource.update",
                     "dev.knative.apiserver.resource.delete"]
    ids = set()
    for r in reqs:
        h = r["headers"]
        assert r["method"] == "POST"
        assert h["ce-specversion"] == "1.0"
        assert h["ce-source"] == cluster.server
        assert h["ce-subject"] == SUBJECT
        assert h["ce-kind"] == "Guitar"
        assert h["ce-name"] == "d15"
        assert h["ce-namespace"] == "guitar-eventing"
        assert h["ce-apiversion"] == "kool.karmalabs.local/v1"
        assert h["content-type"] == "application/json"
        assert "ce-time" in h
        ids.add(h["ce-id"])
        body = json.loads(r["body"])
        assert body["kind"] == "Guitar"
        assert body["metadata"]["name"] == "d15"
        assert body["spec"] == {"brand": "martin", "review": False}
    assert len(ids) == 3
    added, updated, deleted = (json.loads(r["body"]) for r in reqs)
    assert "labels" not in added["metadata"]
    assert updated["metadata"]["labels"] == {"helloknative": ""}
    # The delete carries the last state, label included.
    assert deleted["metadata"]["labels"] == {"helloknative": ""}
    assert int(updated["metadata"]["resourceVersion"]) > int(added["metadata"]["resourceVersion"])


def test_reference_mode(cluster, sink, adapter_factory):
    cluster.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url,
                         "--mode", "Reference"], kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    walkthrough(cluster)
    sink.wait_events(3)
    assert a.stop() == 0
    reqs = sink.requests()
    assert [r["headers"]["ce-type"] for r in reqs] == [
        "dev.knative.apiserver.ref.add", "dev.knative.apiserver.ref.update",
        "dev.knative.apiserver.ref.delete"]
    for r in reqs:
        assert json.loads(r["body"]) == {"kind": "Guitar", "namespace": "guitar-eventing",
                                         "name": "d15", "apiVersion": "kool.karmalabs.local/v1"}
        assert r["headers"]["ce-subject"] == SUBJECT


def test_stdout_sink_structured_lines(cluster, adapter_factory):
    cluster.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", "-"],
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    walkthrough(cluster)
    wait_until(lambda: len(a.stdout_lines()) >= 3, 15, "three lines on stdout")
    assert a.stop() == 0
    lines = a.stdout_lines()
    assert [l["type"].rsplit(".", 1)[1] for l in lines] == ["add", "update", "delete"]
    assert lines[1]["data"]["metadata"]["labels"] == {"helloknative": ""}
    assert lines[0]["subject"] == SUBJECT
    assert lines[0]["datacontenttype"] == "application/json"
    # Logs stay on stderr, one JSON object per line.
    assert all("level" in l for l in a.logs())


def test_existing_objects_send_nothing_unless_asked(cluster, sink_factory, adapter_factory):
    cluster.guitars()
    cluster.guitar("old1")
    cluster.guitar("old2")
    quiet = sink_factory()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", quiet.url],
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    loud = sink_factory()
    b = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", loud.url,
                         "--initial-events"], kubeconfig=cluster.kubeconfig)
    b.wait_watching()
    loud.wait_events(2)
    cluster.guitar("new")
    quiet.wait_events(1)
    loud.wait_events(3)
    assert a.stop() == 0 and b.stop() == 0
    assert [r["headers"]["ce-name"] for r in quiet.requests()] == ["new"]
    names = sorted(r["headers"]["ce-name"] for r in loud.requests())
    assert names == ["new", "old1", "old2"]
    assert all(r["headers"]["ce-type"].endswith(".add") for r in loud.requests())


def test_ce_overrides_and_percent_encoding(cluster, sink, adapter_factory):
    cluster.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        env={"K_CE_OVERRIDES": '{"extensions":{"team":"cordes à vide"}}'},
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    cluster.guitar("d15")
    r = sink.wait_events(1)[0]
    assert a.stop() == 0
    assert r["headers"]["ce-team"] == "cordes%20%C3%A0%20vide"
