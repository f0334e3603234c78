"""spec.namespaceSelector followed live (issue 11 item 2): namespaces that gain
or lose the labels start or stop their watches without a restart; `{}` is one
cluster-wide watch per resource (one LIST), falling back to per-namespace
watches when the cluster-wide list is forbidden."""
import json
import os
import re
import ssl
import urllib.request

import pytest

from harness import RBAC

GUITAR = "kool.karmalabs.local/v1/Guitar"


def manifest(workdir, sink, selector, name="source.yaml"):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write("apiVersion: sources.knative.dev/v1\nkind: ApiServerSource\n"
                "metadata: {name: s, namespace: guitar-eventing}\n"
                "spec:\n"
                "  resources: [{apiVersion: kool.karmalabs.local/v1, kind: Guitar}]\n"
                f"  namespaceSelector: {json.dumps(selector)}\n"
                f"  sink: {{uri: '{sink.url}'}}\n")
    return path


def namespace(cluster, name, labels=None):
    meta = {"name": name}
    if labels:
        meta["labels"] = labels
    cluster.apply(json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": meta}))


def names(sink):
    return sorted((r["headers"]["ce-namespace"], r["headers"]["ce-name"]) for r in sink.events())


def guitar_watches(ad, ns):
    """The 'watching' lines of guitars in ns."""
    return [l for l in ad.logs() if l.get("msg") == "watching"
            and l.get("resource", "").startswith("guitars") and l.get("namespace") == ns]


def wait_watching_ns(ad, ns, count=1, timeout=20):
    return ad.wait_log(lambda l: l.get("msg") == "watching" and
                       l.get("resource", "").startswith("guitars") and l.get("namespace") == ns,
                       timeout, f"the watch of guitars in {ns}") and \
        len(guitar_watches(ad, ns)) >= count


def wait_left(ad, ns, timeout=20):
    return ad.wait_log(lambda l: l.get("msg", "").startswith("namespace left the selection")
                       and l.get("namespace") == ns, timeout, f"{ns} to leave the selection")


def sa_kubeconfig(cluster, proxy_factory):
    """On the real server: the ServiceAccount with rbac/nsselector-rbac.yaml
    and nothing more; on the emulator: the admin."""
    if not cluster.real:
        return cluster.kubeconfig
    cluster.apply(os.path.join(RBAC, "guitar-rbac.yaml"))
    cluster.apply(os.path.join(RBAC, "nsselector-rbac.yaml"))
    return cluster.proxied_kubeconfig(proxy_factory(cluster), token=token_for(cluster))


def test_nsselector_label_starts_and_unlabel_stops(cluster, sink, adapter_factory, workdir,
                                                   proxy_factory):
    cluster.guitars()
    namespace(cluster, "sel-c", {"team": "frets"})
    namespace(cluster, "sel-a")
    ad = adapter_factory(["--source-file", manifest(workdir, sink,
                                                    {"matchLabels": {"team": "frets"}})],
                         kubeconfig=sa_kubeconfig(cluster, proxy_factory))
    pid = ad.proc.pid
    wait_watching_ns(ad, "sel-c")
    assert guitar_watches(ad, "sel-a") == []
    cluster.guitar("g-c", ns="sel-c")
    cluster.guitar("g-a-before", ns="sel-a")  # not selected yet
    sink.wait_events(1)

    # Labelling sel-a into the selector starts its watch; its next change is delivered.
    cluster.kubectl("label", "namespace", "sel-a", "team=frets")
    wait_watching_ns(ad, "sel-a")
    cluster.guitar("g-a", ns="sel-a")
    sink.wait_events(2)

    # Unlabelling stops it: a change after that is not delivered (a marker
    # in sel-c, created after it, is).
    cluster.kubectl("label", "namespace", "sel-a", "team-")
    wait_left(ad, "sel-a")
    cluster.guitar("g-a-after", ns="sel-a")
    cluster.guitar("marker", ns="sel-c")
    sink.wait_events(3)

    # A new namespace created with the label is watched too.
    namespace(cluster, "sel-new", {"team": "frets"})
    wait_watching_ns(ad, "sel-new")
    cluster.guitar("g-new", ns="sel-new")
    sink.wait_events(4)

    # sel-c, which stayed selected, lost nothing and was never restarted.
    assert len(guitar_watches(ad, "sel-c")) == 1
    assert ad.proc.poll() is None and ad.proc.pid == pid
    assert ad.stop() == 0
    assert names(sink) == [("sel-a", "g-a"), ("sel-c", "g-c"), ("sel-c", "marker"),
                           ("sel-new", "g-new")]
    text = open(ad.log_path).read()
    assert "adapter started" in text and text.count('"msg":"adapter started"') == 1


def test_nsselector_match_expressions(cluster, sink, adapter_factory, workdir):
    """In, NotIn, Exists and DoesNotExist, with Kubernetes' semantics (NotIn
    and DoesNotExist match a namespace without the key)."""
    cluster.guitars()
    namespace(cluster, "mx-frets", {"team": "frets", "tier": "gold"})
    namespace(cluster, "mx-drums", {"team": "drums", "tier": "gold"})
    namespace(cluster, "mx-retired", {"team": "keys", "tier": "gold", "retired": "yes"})
    namespace(cluster, "mx-blocked", {"team": "keys", "tier": "gold", "stage": "blocked"})
    namespace(cluster, "mx-notier", {"team": "keys"})
    selector = {"matchExpressions": [
        {"key": "team", "operator": "In", "values": ["frets", "keys"]},
        {"key": "retired", "operator": "DoesNotExist"},
        {"key": "tier", "operator": "Exists"},
        {"key": "stage", "operator": "NotIn", "values": ["blocked"]}]}
    ad = adapter_factory(["--source-file", manifest(workdir, sink, selector)],
                         kubeconfig=cluster.kubeconfig)
    wait_watching_ns(ad, "mx-frets")
    for ns in ("mx-frets", "mx-drums", "mx-retired", "mx-blocked", "mx-notier"):
        cluster.guitar("g", ns=ns)
    sink.wait_events(1)
    # mx-retired enters when it loses the key DoesNotExist forbids.
    cluster.kubectl("label", "namespace", "mx-retired", "retired-")
    wait_watching_ns(ad, "mx-retired")
    cluster.guitar("g2", ns="mx-retired")
    sink.wait_events(2)
    cluster.guitar("marker", ns="mx-frets")
    sink.wait_events(3)
    assert ad.stop() == 0
    assert names(sink) == [("mx-frets", "g"), ("mx-frets", "marker"), ("mx-retired", "g2")]
    for ns in ("mx-drums", "mx-blocked", "mx-notier"):
        assert guitar_watches(ad, ns) == [], ns


@pytest.mark.parametrize("expr,field", [
    ({"key": "team", "operator": "Equals", "values": ["a"]}, "operator must be In, NotIn"),
    ({"key": "team", "operator": "Exists", "values": ["a"]},
     "values: may not be given with operator Exists"),
    ({"key": "team", "operator": "DoesNotExist", "values": ["a"]},
     "values: may not be given with operator DoesNotExist"),
    ({"key": "team", "operator": "In"}, "operator In needs values"),
])
def test_nsselector_bad_selector_is_refused(adapter_factory, sink, workdir, expr, field):
    path = manifest(workdir, sink, {"matchExpressions": [expr]})
    kubeconfig = os.path.join(workdir, "kubeconfig")
    with open(kubeconfig, "w") as f:  # read, never connected to
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                "users: [{name: u, user: {token: t}}]\n")
    a = adapter_factory(["--source-file", path], kubeconfig=kubeconfig)
    assert a.wait_exit() == 2
    errors = [l["msg"] for l in a.logs() if l.get("level") == "error"]
    assert len(errors) == 1, errors
    assert errors[0].startswith(path + ":"), errors
    assert "spec.namespaceSelector.matchExpressions[0]" in errors[0] and field in errors[0], errors
    assert "\n" not in errors[0]


# ---------------- `{}`: one cluster-wide watch, one LIST per resource ----------------

def apiserver_lists(cluster, resource):
    """kube-apiserver's own count of LIST requests for resource, by scope."""
    ctx = ssl.create_default_context(cafile=cluster.ca_file)
    ctx.check_hostname = False
    ctx.load_cert_chain(os.path.join(cluster.plane_dir, "admin.crt"),
                        os.path.join(cluster.plane_dir, "admin.key"))
    text = urllib.request.urlopen(cluster.server + "/metrics", context=ctx,
                                  timeout=10).read().decode()
    counts = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if labels.get("verb") == "LIST" and labels.get("resource") == resource:
            scope = labels.get("scope", "")
            counts[scope] = counts.get(scope, 0) + float(line.rsplit(" ", 1)[1])
    return counts


def token_for(cluster, sa="guitar-sa", ns="guitar-eventing"):
    return cluster.kubectl("-n", ns, "create", "token", sa, "--duration=10m").stdout.strip()


def many_namespaces(cluster, n, prefix="many"):
    # One kubectl run: YAML documents (a JSON List needs the OpenAPI the
    # emulator does not serve for validation).
    cluster.apply("".join(f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {prefix}-{i}}}\n"
                          for i in range(n)))


def test_nsselector_empty_one_list_per_resource(cluster, sink, adapter_factory, workdir,
                                                proxy_factory):
    """`{}` over 50 namespaces: one LIST of guitars, cluster-wide, none per
    namespace (Knative's adapter makes one per namespace, issue 8675). On the
    real server, with rbac/nsselector-rbac.yaml's ServiceAccount."""
    cluster.guitars()
    many_namespaces(cluster, 50)
    kc = sa_kubeconfig(cluster, proxy_factory)
    if cluster.real:
        before = apiserver_lists(cluster, "guitars")
    else:
        before = cluster.stats()["lists"]
    ad = adapter_factory(["--source-file", manifest(workdir, sink, {})], kubeconfig=kc)
    ad.wait_watching(1)
    cluster.guitar("g", ns="many-7")
    cluster.guitar("h", ns="many-42")
    sink.wait_events(2)
    if cluster.real:
        after = apiserver_lists(cluster, "guitars")
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
        assert delta.get("cluster", 0) == 1 and delta.get("namespace", 0) == 0, delta
    else:
        after = cluster.stats()["lists"]
        guitar_lists = {p: n - before.get(p, 0) for p, n in after.items()
                        if p.endswith("/guitars") and n - before.get(p, 0)}
        assert guitar_lists == {"/apis/kool.karmalabs.local/v1/guitars": 1}, guitar_lists
    assert ad.stop() == 0
    watching = [l for l in ad.logs() if l.get("msg") == "watching"]
    assert len(watching) == 1 and watching[0]["namespace"] in ("", "*", None), watching
    assert names(sink) == [("many-42", "h"), ("many-7", "g")]


def test_nsselector_empty_forbidden_falls_back_per_namespace(cluster_factory, sink,
                                                            adapter_factory, workdir,
                                                            proxy_factory):
    """`{}` where guitars may be listed only in some namespaces (RoleBindings
    of the guitar-reader ClusterRole): the cluster-wide list is answered 403,
    the adapter says so once and watches per namespace, no restart."""
    cluster = cluster_factory(backend="real")
    cluster.guitars()
    for ns in ("fb-1", "fb-2"):
        namespace(cluster, ns)
    cluster.apply(os.path.join(RBAC, "guitar-rbac.yaml"))
    cluster.apply(os.path.join(RBAC, "nsselector-rbac.yaml"))
    cluster.kubectl("delete", "clusterrolebinding", "guitar-reader-binding")
    for ns in ("fb-1", "fb-2"):
        cluster.kubectl("-n", ns, "create", "rolebinding", "guitar-reader", "--clusterrole",
                        "guitar-reader", "--serviceaccount", "guitar-eventing:guitar-sa")
    kc = cluster.proxied_kubeconfig(proxy_factory(cluster), token=token_for(cluster))
    ad = adapter_factory(["--source-file", manifest(workdir, sink, {})], kubeconfig=kc)
    pid = ad.proc.pid
    wait_watching_ns(ad, "fb-1", timeout=60)
    wait_watching_ns(ad, "fb-2", timeout=60)
    cluster.guitar("g1", ns="fb-1")
    cluster.guitar("g2", ns="fb-2")
    sink.wait_events(2)
    # A namespace created later is watched as well once it may be.
    namespace(cluster, "fb-3")
    cluster.kubectl("-n", "fb-3", "create", "rolebinding", "guitar-reader", "--clusterrole",
                    "guitar-reader", "--serviceaccount", "guitar-eventing:guitar-sa")
    wait_watching_ns(ad, "fb-3", timeout=60)
    cluster.guitar("g3", ns="fb-3")
    sink.wait_events(3)
    assert ad.proc.pid == pid and ad.proc.poll() is None
    assert ad.stop() == 0
    assert names(sink) == [("fb-1", "g1"), ("fb-2", "g2"), ("fb-3", "g3")]
    fallbacks = [l for l in ad.logs() if "falling back" in l.get("msg", "")]
    assert len(fallbacks) == 1 and fallbacks[0]["level"] == "warn", fallbacks
    # The cluster-wide watch never announced itself as watching.
    assert [l for l in ad.logs() if l.get("msg") == "watching" and l.get("namespace") == ""
            and l.get("resource", "").startswith("guitars")] == []


def test_nsselector_checkpoint_forgets_left_namespace(emulator, sink, adapter_factory, workdir):
    """With --state-dir, a namespace that left the selection is not in the
    next checkpoint; the namespaces still selected are."""
    cluster = emulator
    cluster.guitars()
    namespace(cluster, "cp-stay", {"team": "frets"})
    namespace(cluster, "cp-go", {"team": "frets"})
    state = os.path.join(workdir, "state")
    os.mkdir(state)
    ad = adapter_factory(["--source-file", manifest(workdir, sink,
                                                    {"matchLabels": {"team": "frets"}}),
                          "--state-dir", state, "--checkpoint-interval", "1"],
                         kubeconfig=cluster.kubeconfig)
    wait_watching_ns(ad, "cp-stay")
    wait_watching_ns(ad, "cp-go")
    cluster.guitar("g", ns="cp-go")
    cluster.guitar("s", ns="cp-stay")
    sink.wait_events(2)
    cluster.kubectl("label", "namespace", "cp-go", "team-")
    wait_left(ad, "cp-go")
    cluster.guitar("s2", ns="cp-stay")  # a change, so that a checkpoint follows
    sink.wait_events(3)
    path = os.path.join(state, "checkpoint.ndjson")
    from harness import wait_until
    wait_until(lambda: os.path.exists(path) and "|cp-go|" not in open(path).read()
               and "|cp-stay|" in open(path).read(), 15, "a checkpoint without cp-go")
    assert ad.stop() == 0
    text = open(path).read()
    assert "|cp-go|" not in text and "|cp-stay|" in text
    assert names(sink) == [("cp-go", "g"), ("cp-stay", "s"), ("cp-stay", "s2")]
