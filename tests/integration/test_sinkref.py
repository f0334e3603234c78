"""Sink references (--sink-ref, spec.sink.ref) followed live: a v1 Service, an
Addressable (a CRD of the test's own with a status subresource) whose
status.address.url is patched while events flow, an unresolved reference that
holds events until it resolves, RBAC, and bad input.  Each test asserts what
the sink received and what the adapter said."""
import json
import os

from harness import RBAC, SAMPLES, wait_until
from ledger import Ledger

GUITAR = "kool.karmalabs.local/v1/Guitar"
NS = "guitar-eventing"
SVC_URL = f"http://cloudevents-player.{NS}.svc.cluster.local/"

# An Addressable of the tests' own: status.address.url through /status.
SINK_CRD = json.dumps({
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "sinks.test.sinkref.dev"},
    "spec": {"group": "test.sinkref.dev", "scope": "Namespaced",
             "names": {"plural": "sinks", "singular": "sink", "kind": "Sink"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {
                               "type": "object",
                               "x-kubernetes-preserve-unknown-fields": True}}}]}})


def setup(cluster, crd=False):
    cluster.guitars()
    if crd:
        cluster.apply(SINK_CRD)
        if cluster.real:
            cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s",
                            "crd/sinks.test.sinkref.dev")


def make_sink_object(cluster, name, url=None):
    cluster.apply(json.dumps({"apiVersion": "test.sinkref.dev/v1", "kind": "Sink",
                              "metadata": {"name": name, "namespace": NS}}))
    if url:
        set_address(cluster, name, url)


def set_address(cluster, name, url):
    cluster.kubectl("-n", NS, "patch", "sinks.test.sinkref.dev", name, "--subresource=status",
                    "--type=merge", "-p", json.dumps({"status": {"address": {"url": url}}}))


def player_service(cluster):
    cluster.apply(os.path.join(SAMPLES, "cloudevents-player-service.yaml"))


def guitar_api(cluster, method, name=None, body=None):
    path = f"/apis/kool.karmalabs.local/v1/namespaces/{NS}/guitars"
    return cluster.api(method, path + (f"/{name}" if name else ""), body)


def new_guitar(name):
    return {"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar",
            "metadata": {"name": name, "namespace": NS}, "spec": {"brand": "martin"}}


def proxy_env(sink):
    """The cluster DNS name cannot resolve here: libcurl's http_proxy takes the
    POST for http://NAME.NS.svc.cluster.local/ to the test's sink instead."""
    return {"http_proxy": sink.url, "no_proxy": "127.0.0.1,localhost"}


def unresolved_lines(a, text):
    return [l for l in a.logs() if l.get("msg") == "the sink is not resolved, events wait in "
            "the queue" and text in l.get("reason", "")]


def test_sinkref_service_ref_resolves(cluster_factory, sink, adapter_factory):
    """--sink-ref v1/Service/NAME: the namespace is the source's (NAMESPACE);
    the address is Knative's, http://NAME.NS.svc.cluster.local.  Real only:
    the emulator serves no Services."""
    cluster = cluster_factory(backend="real")
    setup(cluster)
    player_service(cluster)
    a = adapter_factory(["--resource", GUITAR, "-n", NS,
                         "--sink-ref", "v1/Service/cloudevents-player"],
                        env={"NAMESPACE": NS, **proxy_env(sink)}, kubeconfig=cluster.kubeconfig)
    line = a.wait_log(lambda l: l.get("msg") == "the sink is resolved", 30, "the resolution")[0]
    assert line["url"] == SVC_URL
    assert line["ref"] == f"v1/Service {NS}/cloudevents-player"
    a.wait_watching(2)
    cluster.guitar("d15")
    reqs = sink.wait_events(1)
    assert reqs[0]["path"] == SVC_URL  # the proxied request names the Service's address
    assert reqs[0]["headers"]["ce-name"] == "d15"
    assert a.get("/readiness")[0] == 200
    assert a.stop() == 0


def test_sinkref_addressable_resolves_and_moves(cluster, sink_factory, adapter_factory):
    """An Addressable's status.address.url, joined with --sink's path; patching
    it mid-burst moves delivery without a restart, and every change lands
    once in one of the two sinks, each object's in order."""
    setup(cluster, crd=True)
    first, second = sink_factory(), sink_factory()
    make_sink_object(cluster, "target", first.url + "a/b")
    a = adapter_factory(["--resource", GUITAR, "-n", NS,
                         "--sink-ref", f"test.sinkref.dev/v1/Sink/{NS}/target",
                         "--sink", "events?x=1"], kubeconfig=cluster.kubeconfig)
    line = a.wait_log(lambda l: l.get("msg") == "the sink is resolved", 30, "the resolution")[0]
    assert line["url"] == first.url + "a/events?x=1"  # a relative reference, joined
    a.wait_watching(2)
    ledger = Ledger("sinkref-move")
    for i in range(40):
        guitar_api(cluster, "POST", body=new_guitar(f"g{i}"))
        ledger.change(f"g{i}", "add")
        if i == 20:
            # Mid-burst, once the first sink has had something: the guitars'
            # watch and the reference's are separate streams, so without the
            # wait the move can be seen before any add (CI saw that once).
            wait_until(lambda: first.events(), 30, "a first event at the first sink")
            set_address(cluster, "target", second.url)
    moved = a.wait_log(lambda l: l.get("msg") == "the sink moved", 30, "the move")[0]
    assert moved["url"] == second.url + "events?x=1"
    assert moved["previous"] == first.url + "a/events?x=1"
    for i in range(40):
        guitar_api(cluster, "DELETE", f"g{i}")
        ledger.change(f"g{i}", "delete")

    def everything():
        return len(first.events()) + len(second.events()) >= 80
    wait_until(everything, 60, lambda: f"80 events (have {len(first.events())} + "
               f"{len(second.events())})")
    assert a.stop() == 0
    got = sorted(first.events() + second.events(), key=lambda r: r["time"])
    ledger.check(got)
    assert first.events() and second.events()
    assert all(r["path"] == "/a/events?x=1" for r in first.requests())
    assert all(r["path"] == "/events?x=1" for r in second.requests())
    # Made after the move was logged: every delete went to the new address.
    assert all(r["headers"]["ce-type"].endswith(".add") for r in first.events())
    assert len([l for l in a.logs() if l.get("msg") == "the sink moved"]) == 1


def test_sinkref_unresolved_holds_events_until_resolved(cluster, sink, adapter_factory):
    """Missing object, then an object with no address: readiness false with the
    reason, logged once per cause; the events made meanwhile wait in the queue
    and are delivered once the address appears."""
    setup(cluster, crd=True)
    a = adapter_factory(["--resource", GUITAR, "-n", NS,
                         "--sink-ref", f"test.sinkref.dev/v1/Sink/{NS}/later"],
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching(2)
    a.wait_log(lambda l: "does not exist" in l.get("reason", ""), 15, "the missing cause")
    # Readiness names one cause at a time: on a loaded machine a watch that is
    # slow to answer can come first for a moment, so the sink's cause is awaited.
    def not_ready_because(why):
        status, body = a.get("/readiness")
        return status == 503 and why in body
    missing = f"test.sinkref.dev/v1/Sink {NS}/later does not exist"
    wait_until(lambda: not_ready_because(missing), 15,
               lambda: f"readiness to say '{missing}' (says {a.get('/readiness')})")
    for i in range(5):
        cluster.guitar(f"held{i}")

    def queued():
        s, m = a.get("/metrics", metrics=True)
        return "apiserversource_queue_events 5" in m
    wait_until(queued, 15, "5 events held in the queue")
    make_sink_object(cluster, "later")  # exists now, but has no address
    a.wait_log(lambda l: "no address yet" in l.get("reason", ""), 15, "the no-address cause")
    assert sink.requests() == []
    wait_until(lambda: not_ready_because("has no address yet (status.address.url)"), 15,
               lambda: f"readiness to say the sink has no address (says {a.get('/readiness')})")
    set_address(cluster, "later", sink.url)
    events = sink.wait_events(5, 30)
    assert sorted(r["headers"]["ce-name"] for r in events) == [f"held{i}" for i in range(5)]
    wait_until(lambda: a.get("/readiness")[0] == 200, 15, "readiness")
    # Once per cause, though the state was looked at many times.
    assert len(unresolved_lines(a, "does not exist")) == 1
    assert len(unresolved_lines(a, "no address yet")) == 1
    assert a.stop() == 0


def test_sinkref_forbidden_then_granted(cluster_factory, sink, adapter_factory, proxy_factory):
    """As the walkthrough's ServiceAccount without rbac/sinkref-rbac.yaml the
    reference cannot be read: readiness says so and nothing is sent; with it
    (list and watch, by resourceNames) the Service resolves and the held
    event is delivered."""
    cluster = cluster_factory(backend="real")
    setup(cluster)
    player_service(cluster)
    cluster.apply(os.path.join(RBAC, "guitar-rbac.yaml"))
    token = cluster.kubectl("-n", NS, "create", "token", "guitar-sa").stdout.strip()
    kc = cluster.proxied_kubeconfig(proxy_factory(cluster), token=token)
    a = adapter_factory(["--resource", GUITAR, "-n", NS,
                         "--sink-ref", f"v1/Service/{NS}/cloudevents-player"],
                        env=proxy_env(sink), kubeconfig=kc)
    a.wait_watching(1)
    a.wait_log(lambda l: "cannot be read" in l.get("reason", ""), 30, "the forbidden cause")
    wait_until(lambda: "cannot be read" in a.get("/readiness")[1], 15, "readiness to say why")
    cluster.guitar("d15")
    wait_until(lambda: "apiserversource_queue_events 1" in a.get("/metrics", metrics=True)[1],
               15, "the event held")
    assert sink.requests() == []
    cluster.apply(os.path.join(RBAC, "sinkref-rbac.yaml"))
    a.wait_log(lambda l: l.get("msg") == "the sink is resolved", 60, "the resolution")
    assert sink.wait_events(1, 30)[0]["headers"]["ce-name"] == "d15"
    assert len(unresolved_lines(a, "cannot be read")) == 1
    assert token not in open(a.log_path).read()
    assert a.stop() == 0


def test_sinkref_manifest_ref_and_uri(cluster, sink, adapter_factory, workdir):
    """spec.sink.ref with spec.sink.uri beside it, from --source-file."""
    setup(cluster, crd=True)
    make_sink_object(cluster, "target", sink.url + "base/")
    path = os.path.join(workdir, "source.yaml")
    with open(path, "w") as f:
        f.write(f"""apiVersion: sources.knative.dev/v1
kind: ApiServerSource
metadata:
  name: src
  namespace: {NS}
spec:
  mode: Resource
  resources:
  - apiVersion: kool.karmalabs.local/v1
    kind: Guitar
  sink:
    ref:
      apiVersion: test.sinkref.dev/v1
      kind: Sink
      name: target
    uri: in
""")
    a = adapter_factory(["--source-file", path], kubeconfig=cluster.kubeconfig)
    a.wait_watching(2)
    cluster.guitar("d15")
    assert sink.wait_events(1)[0]["path"] == "/base/in"
    assert a.stop() == 0


def test_sinkref_bad_input_is_config_error(sink, adapter_factory, workdir):
    """A malformed --sink-ref or spec.sink.ref, or an absolute --sink beside
    one: one line naming the field, exit 2."""
    cases = [
        (["--sink-ref", "v1/Service"], "--sink-ref", "is not APIVERSION/KIND/[NAMESPACE/]NAME"),
        (["--sink-ref", "v1/service!/x"], "--sink-ref", "KIND is not a kind"),
        (["--sink-ref", "V1/Service/x"], "--sink-ref", "APIVERSION is not group/version"),
        (["--sink-ref", "v1/Service/x", "--sink", sink.url], "--sink",
         "an absolute URL cannot be combined with the sink reference --sink-ref"),
    ]
    manifest = os.path.join(workdir, "bad.yaml")
    with open(manifest, "w") as f:
        f.write("apiVersion: sources.knative.dev/v1\nkind: ApiServerSource\nspec:\n"
                "  resources:\n  - apiVersion: v1\n    kind: Pod\n"
                "  sink:\n    ref:\n      apiVersion: v1\n      kind: Service\n")
    cases.append((["--source-file", manifest], f"{manifest}:9:7", "spec.sink.ref.name: missing"))
    for args, field, text in cases:
        if "--source-file" not in args:
            args = ["--resource", "v1/Pod", "-n", "default", *args]
        a = adapter_factory(args, kubeconfig=os.devnull)
        assert a.wait_exit() == 2
        errors = [l for l in a.logs() if l.get("level") == "error" and
                  l.get("field") == field]
        assert len(errors) == 1 and text in errors[0]["msg"], (args, a.logs())
