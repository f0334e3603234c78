"""Content modes (issue 11 item 3): --content-mode structured and batched.
Every request the sink received is parsed by the CloudEvents Python SDK
(PyPI `cloudevents`, its core API): structured requests with its HTTP binding,
each element of a batch with its JSON format (the SDK has no batch reader)."""
import json
import os
import signal
import time

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from cloudevents.core.formats.json import JSONFormat

from harness import OFFLINE_KUBECONFIG, wait_until

GUITAR = "kool.karmalabs.local/v1/Guitar"
NS = "guitar-eventing"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


def apply_guitars(cluster, names):
    """All of them in one kubectl apply (a List), in this order."""
    cluster.guitars()
    items = [{"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar",
              "metadata": {"name": n, "namespace": NS}, "spec": {"brand": "martin"}}
             for n in names]
    cluster.apply("\n".join(json.dumps(i) for i in items))


def start(cluster, sink, adapter_factory, *extra):
    cluster.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", NS, "--sink", sink.url, *extra],
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    return a


def sdk_structured(req):
    """The SDK's event from one structured-mode request (no ce-* headers, or
    the SDK would read it as binary mode)."""
    h = req["headers"]
    assert h["content-type"] == STRUCTURED, h
    assert not [k for k in h if k.startswith("ce-")], h
    return from_http_event(HTTPMessage(headers=h, body=req["body"].encode()))


def sdk_batch(req):
    """The SDK's events from one batched request, in order."""
    assert req["headers"]["content-type"] == BATCH, req["headers"]
    assert not [k for k in req["headers"] if k.startswith("ce-")], req["headers"]
    array = json.loads(req["body"])
    assert isinstance(array, list) and array, req["body"][:200]
    return [JSONFormat().read(None, json.dumps(o).encode()) for o in array]


def check_guitar_event(ev, name):
    a = ev.get_attributes()
    assert a["specversion"] == "1.0" and a["id"]
    assert a["type"] == "dev.knative.apiserver.resource.add", a
    assert a["subject"] == f"/apis/kool.karmalabs.local/v1/namespaces/{NS}/guitars/{name}", a
    assert a["datacontenttype"] == "application/json"
    assert a["time"].tzinfo is not None
    assert (a["kind"], a["name"], a["namespace"]) == ("Guitar", name, NS), a
    data = ev.get_data()
    assert isinstance(data, dict), data  # a JSON value, not a string or base64
    assert data["metadata"]["name"] == name and data["kind"] == "Guitar", data


def test_content_mode_structured_validated_by_sdk(cluster, sink, adapter_factory):
    a = start(cluster, sink, adapter_factory, "--content-mode", "structured")
    apply_guitars(cluster, ["s1", "s2"])
    sink.wait_events(2)
    assert a.stop() == 0
    reqs = sink.requests()
    assert len(reqs) == 2
    events = [sdk_structured(r) for r in reqs]
    for ev, name in zip(events, ["s1", "s2"]):
        check_guitar_event(ev, name)
    assert len({ev.get_id() for ev in events}) == 2


def test_content_mode_batched_validated_by_sdk_in_order(cluster, sink, adapter_factory):
    """Seven objects listed at start, three per batch: 3 + 3 + 1 requests,
    the list's order kept within and across batches; then a live change.
    One POST at a time, so the order the sink sees is the order they left in
    (with more in flight, two batches may arrive the other way round)."""
    names = [f"b{i}" for i in range(7)]
    apply_guitars(cluster, names)
    a = start(cluster, sink, adapter_factory, "--initial-events", "--content-mode", "batched",
              "--batch-max-events", "3", "--batch-linger", "200ms", "--max-inflight", "1")
    wait_until(lambda: sum(len(json.loads(r["body"])) for r in sink.events()) >= 7, 15,
               "seven events in batches")
    cluster.guitar("live")
    wait_until(lambda: sum(len(json.loads(r["body"])) for r in sink.events()) >= 8, 15,
               "the live change")
    assert a.stop() == 0
    reqs = sink.requests()
    batches = [sdk_batch(r) for r in reqs]
    assert [len(b) for b in batches] == [3, 3, 1, 1], [len(b) for b in batches]
    got = [ev.get_attributes()["name"] for b in batches for ev in b]
    assert got == names + ["live"]
    for ev, name in zip([ev for b in batches for ev in b], names + ["live"]):
        check_guitar_event(ev, name)
    ids = [ev.get_id() for b in batches for ev in b]
    assert len(set(ids)) == len(ids)


def test_content_mode_batched_503_retried_whole_lands_once(cluster, sink_factory, adapter_factory):
    """503 twice (with Retry-After: 1), then 200: the same batch, byte for
    byte, three times; every id accepted exactly once."""
    sink = sink_factory("503,503", extra=("--retry-after", "1"))
    names = [f"r{i}" for i in range(5)]
    apply_guitars(cluster, names)
    a = start(cluster, sink, adapter_factory, "--initial-events", "--content-mode", "batched",
              "--batch-linger", "300ms")
    sink.wait_events(1)
    # Metrics: requests per batch, events per event.
    metrics = wait_until(lambda: (lambda m: 'result="delivered"} 5' in m and m)(
        a.get("/metrics", metrics=True)[1]), 10, "the delivery in /metrics")
    assert 'apiserversource_sink_requests_total{class="5xx"} 2' in metrics, metrics
    assert 'apiserversource_sink_requests_total{class="2xx"} 1' in metrics, metrics
    assert "apiserversource_retries_total 10" in metrics, metrics  # 5 events, 2 retries each
    assert "apiserversource_inflight_requests 0" in metrics, metrics
    assert a.stop() == 0
    reqs = sink.requests()
    assert [r["status"] for r in reqs] == [503, 503, 200], [r["status"] for r in reqs]
    assert len({r["body"] for r in reqs}) == 1  # retried whole: same events, same order
    gaps = [reqs[i + 1]["time"] - reqs[i]["time"] for i in range(2)]
    assert min(gaps) >= 0.9, gaps  # Retry-After: 1 honoured per batch
    accepted = [ev for r in sink.events() for ev in sdk_batch(r)]
    assert [ev.get_attributes()["name"] for ev in accepted] == names
    ids = [ev.get_id() for ev in accepted]
    assert len(set(ids)) == len(ids) == 5
    retries = [l for l in a.logs() if l.get("msg") == "delivery failed, retrying"]
    assert retries and all(l["status"] == 503 for l in retries), retries


def test_content_mode_batched_refused_goes_to_dead_letter_as_batch(emulator, sink_factory,
                                                                  adapter_factory):
    sink = sink_factory("400")
    dead = sink_factory()
    names = ["d0", "d1", "d2"]
    apply_guitars(emulator, names)
    a = start(emulator, sink, adapter_factory, "--initial-events", "--content-mode", "batched",
              "--batch-linger", "300ms", "--dead-letter", dead.url)
    dead.wait_events(1)
    assert a.stop() == 0
    assert [r["status"] for r in sink.requests()] == [400]
    refused = [ev.get_id() for ev in sdk_batch(sink.requests()[0])]
    reqs = dead.requests()
    assert len(reqs) == 1
    events = sdk_batch(reqs[0])
    assert [ev.get_id() for ev in events] == refused
    for ev, name in zip(events, names):
        check_guitar_event(ev, name)
        x = ev.get_attributes()
        assert x["knativeerrorcode"] == "400", x
        assert x["knativeerrordest"] == sink.url, x
    dl = [l for l in a.logs() if l.get("msg") == "event delivered to the dead-letter sink"]
    assert sorted(l["id"] for l in dl) == sorted(refused)


def test_content_mode_structured_dead_letter_has_error_extensions(emulator, sink_factory,
                                                                 adapter_factory):
    sink = sink_factory("400")
    dead = sink_factory()
    a = start(emulator, sink, adapter_factory, "--content-mode", "structured",
              "--dead-letter", dead.url)
    apply_guitars(emulator, ["x1"])
    dead.wait_events(1)
    assert a.stop() == 0
    ev = sdk_structured(dead.requests()[0])
    check_guitar_event(ev, "x1")
    assert ev.get_attributes()["knativeerrorcode"] == "400"
    assert ev.get_id() == sdk_structured(sink.requests()[0]).get_id()


def test_content_mode_batched_large_event_goes_alone(emulator, sink, adapter_factory):
    """--batch-max-bytes 4096: an object above it is sent in a batch of its
    own; the small ones around it are batched together, in order. One POST at
    a time, so the sink sees the order they left in."""
    emulator.guitars()
    items = []
    for n in ["a-small", "b-large", "c-small", "d-small"]:
        meta = {"name": n, "namespace": NS}
        if n == "b-large":
            meta["annotations"] = {"notes": "x" * 5000}
        items.append({"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar",
                      "metadata": meta, "spec": {"brand": "martin"}})
    emulator.apply("\n".join(json.dumps(i) for i in items))
    a = start(emulator, sink, adapter_factory, "--initial-events", "--content-mode", "batched",
              "--batch-max-bytes", "4096", "--batch-linger", "300ms", "--max-inflight", "1")
    wait_until(lambda: sum(len(json.loads(r["body"])) for r in sink.events()) >= 4, 15,
               "four events")
    assert a.stop() == 0
    batches = [[ev.get_attributes()["name"] for ev in sdk_batch(r)] for r in sink.requests()]
    assert batches == [["a-small"], ["b-large"], ["c-small", "d-small"]], batches
    assert all(len(r["body"]) <= 4096 for r in sink.requests() if "b-large" not in r["body"])


@pytest.mark.parametrize("flag,value,prefix", [
    ("--batch-max-events", "0", "--batch-max-events: \"0\" is not a number of events"),
    ("--batch-max-bytes", "10", "--batch-max-bytes: \"10\" is not a number of bytes"),
    ("--batch-linger", "10 ms", "--batch-linger: \"10 ms\" is not a duration"),
    ("--batch-linger", "ten", "--batch-linger: \"ten\" is not a duration"),
    ("--batch-linger", "61s", "--batch-linger: \"61s\" is not a duration"),
    ("--content-mode", "json", "--content-mode: must be binary, structured or batched"),
])
def test_content_mode_flags_refused_with_one_line(workdir, adapter_factory, flag, value, prefix):
    kubeconfig = os.path.join(workdir, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(OFFLINE_KUBECONFIG)
    a = adapter_factory(["--resource", "v1/Pod", "--sink", "http://127.0.0.1:1/",
                         "--kubeconfig", kubeconfig, flag, value])
    assert a.wait_exit() == 2, open(a.log_path).read()[-3000:]
    errors = [l["msg"] for l in a.logs() if l.get("level") == "error"]
    assert len(errors) == 1 and errors[0].startswith(prefix), errors


def accepted_ids(sink):
    return [ev.get_id() for r in sink.events() for ev in sdk_batch(r)]


def test_content_mode_batched_inflight_batch_kept_in_checkpoint(emulator, sink_factory,
                                                               adapter_factory, workdir):
    """A batch in flight (the sink never answers) when SIGTERM's drain runs
    out: its events are undelivered in the checkpoint, and the restart sends
    each exactly once."""
    state = os.path.join(workdir, "state")
    os.mkdir(state)
    sink = sink_factory("hang")
    names = [f"c{i}" for i in range(5)]
    apply_guitars(emulator, names)
    args = ("--initial-events", "--content-mode", "batched", "--state-dir", state,
            "--drain-timeout", "1", "--sink-timeout", "30")
    a = start(emulator, sink, adapter_factory, *args)
    sink.wait_requests(1)
    assert a.stop() == 0
    kept = [l for l in a.logs() if "kept in the checkpoint" in l.get("msg", "")]
    assert kept and kept[0]["undelivered"] == 5, kept
    hung = [ev.get_id() for ev in sdk_batch(sink.requests()[0])]
    sink.set_responses([], 200)
    b = start(emulator, sink, adapter_factory, *args)
    wait_until(lambda: len(accepted_ids(sink)) >= 5, 15, "the kept events")
    assert b.stop() == 0
    assert sorted(accepted_ids(sink)) == sorted(hung)  # each exactly once


def test_content_mode_batched_unsent_batch_kept_in_checkpoint(emulator, sink, adapter_factory,
                                                             workdir):
    """A batch still collecting (30 s linger) when the checkpoint is written
    and the adapter is SIGKILLed: its events are in the checkpoint as
    undelivered, and the restart sends them."""
    state = os.path.join(workdir, "state")
    os.mkdir(state)
    names = [f"u{i}" for i in range(5)]
    apply_guitars(emulator, names)
    a = start(emulator, sink, adapter_factory, "--initial-events", "--content-mode", "batched",
              "--state-dir", state, "--checkpoint-interval", "1", "--batch-linger", "30s")
    path = os.path.join(state, "checkpoint.ndjson")

    def events_in_checkpoint():
        if not os.path.exists(path):
            return 0
        return len([l for l in open(path).read().splitlines() if '"EVENT"' in l])
    wait_until(lambda: events_in_checkpoint() >= 5, 15, "five undelivered events checkpointed")
    assert sink.requests() == []
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    b = start(emulator, sink, adapter_factory, "--content-mode", "batched", "--state-dir", state)
    wait_until(lambda: len(accepted_ids(sink)) >= 5, 15, "the checkpointed events")
    assert b.stop() == 0
    got = [ev.get_attributes()["name"] for r in sink.events() for ev in sdk_batch(r)]
    # Each once; the checkpoint keeps each object's order, not the order
    # across objects (queue_foreach walks a hash map), in every mode.
    assert sorted(got) == names, got


def test_content_mode_batched_sigterm_sends_open_batch(emulator, sink, adapter_factory):
    """SIGTERM does not wait for a long linger: the open batch goes at once."""
    names = [f"t{i}" for i in range(3)]
    apply_guitars(emulator, names)
    a = start(emulator, sink, adapter_factory, "--initial-events", "--content-mode", "batched",
              "--batch-linger", "60s", "--drain-timeout", "20")
    wait_until(lambda: a.proc.poll() is None and a.logs(), 5)
    t0 = time.monotonic()
    assert a.stop() == 0
    assert time.monotonic() - t0 < 15
    assert [ev.get_attributes()["name"] for ev in sdk_batch(sink.requests()[0])] == names
    assert [l for l in a.logs() if l.get("msg") == "all events delivered, exiting"]


def test_content_mode_batched_oidc_token_per_batch(cluster_factory, sink_factory,
                                                  adapter_factory):
    """Real control plane, OIDC to the sink: each batch POST carries a bearer
    token; a 401 fetches a new token and retries the batch whole, once."""
    cluster = cluster_factory(backend="real")
    cluster.guitars()
    cluster.kubectl("-n", NS, "create", "serviceaccount", "oidc-batch-sa")
    sink = sink_factory(responses="401")
    names = ["o0", "o1", "o2"]
    apply_guitars(cluster, names)
    a = adapter_factory(["--resource", GUITAR, "-n", NS, "--sink", sink.url, "--initial-events",
                         "--content-mode", "batched", "--batch-linger", "300ms"],
                        env={"NAMESPACE": NS, "K_AUDIENCE": "batch-audience",
                             "K_OIDC_SERVICE_ACCOUNT": "oidc-batch-sa"},
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching(timeout=30)
    sink.wait_events(1, timeout=30)
    assert a.stop() == 0
    first, second = sink.requests()[:2]
    assert (first["status"], second["status"]) == (401, 200)
    assert first["body"] == second["body"]
    tokens = [r["headers"]["authorization"].split(" ", 1) for r in (first, second)]
    assert all(scheme == "Bearer" for scheme, _ in tokens)
    assert tokens[0][1] != tokens[1][1], "a 401 must bring a new token"
    assert [ev.get_attributes()["name"] for ev in sdk_batch(second)] == names
    assert len(sink.requests()) == 2
    log = open(a.log_path).read()
    assert tokens[0][1] not in log and tokens[1][1] not in log
