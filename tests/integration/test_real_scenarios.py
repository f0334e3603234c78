"""Scenarios only the real kube-apiserver can stage: RBAC, service-account
tokens, restarts. Each asserts the CloudEvents the sink received."""
import json
import os

from harness import RBAC, SAMPLES, ServiceAccountDir

GUITAR = "kool.karmalabs.local/v1/Guitar"


def changes(sink):
    return [(r["headers"]["ce-name"], r["headers"]["ce-type"].rsplit(".", 1)[1])
            for r in sink.events()]


def real(cluster_factory, *args):
    c = cluster_factory(*args, backend="real")
    c.guitars()
    return c


def token_for(cluster, sa="guitar-sa", ns="guitar-eventing", bound_secret=None, duration="10m"):
    args = ["-n", ns, "create", "token", sa, f"--duration={duration}"]
    if bound_secret:
        cluster.apply(json.dumps({"apiVersion": "v1", "kind": "Secret",
                                  "metadata": {"name": bound_secret, "namespace": ns}}))
        args += ["--bound-object-kind", "Secret", "--bound-object-name", bound_secret]
    return cluster.kubectl(*args).stdout.strip()


def test_seed_walkthrough_as_guitar_sa(cluster_factory, sink, adapter_factory, proxy_factory):
    """The walkthrough end to end with the ServiceAccount's token, not the admin's."""
    cluster = real(cluster_factory)
    cluster.apply(os.path.join(RBAC, "guitar-rbac.yaml"))
    token = token_for(cluster)
    kc = cluster.proxied_kubeconfig(proxy_factory(cluster), token=token)
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=kc)
    a.wait_watching()
    cluster.apply(os.path.join(SAMPLES, "guitar-d15.yaml"))
    cluster.kubectl("-n", "guitar-eventing", "label", "guitar", "d15", "helloknative=")
    cluster.kubectl("-n", "guitar-eventing", "delete", "guitar", "d15")
    sink.wait_events(3)
    assert a.stop() == 0
    reqs = sink.requests()
    assert changes(sink) == [("d15", "add"), ("d15", "update"), ("d15", "delete")]
    assert json.loads(reqs[1]["body"])["metadata"]["labels"] == {"helloknative": ""}
    assert all(r["headers"]["ce-subject"] ==
               "/apis/kool.karmalabs.local/v1/namespaces/guitar-eventing/guitars/d15" for r in reqs)
    assert token not in open(a.log_path).read()


ROLE_WITHOUT_WATCH = json.dumps({
    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
    "metadata": {"name": "guitar-get", "namespace": "guitar-eventing"},
    "rules": [{"apiGroups": ["kool.karmalabs.local"], "resources": ["guitars"],
               "verbs": ["get", "list"]}]})


def rbac_without_watch(cluster):
    cluster.apply(os.path.join(RBAC, "guitar-rbac.yaml"))
    cluster.kubectl("-n", "guitar-eventing", "delete", "role", "guitar-get")
    cluster.apply(ROLE_WITHOUT_WATCH)


def test_rbac_denial_retries_and_recovers(cluster_factory, sink, adapter_factory, proxy_factory):
    cluster = real(cluster_factory)
    rbac_without_watch(cluster)
    kc = cluster.proxied_kubeconfig(proxy_factory(cluster), token=token_for(cluster))
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=kc)
    denied = a.wait_log(lambda l: l.get("status") == 403 and l.get("level") == "error", 20,
                        "the 403")
    assert "forbidden" in denied[0]["msg"] and "Role" in denied[0]["msg"]
    assert 'cannot watch resource "guitars"' in denied[0]["error"]
    cluster.apply(os.path.join(RBAC, "guitar-rbac.yaml"))  # the Role gets watch back
    a.wait_watching(timeout=60)
    cluster.guitar("d15")
    sink.wait_events(1)
    assert a.stop() == 0
    assert changes(sink) == [("d15", "add")]


def test_rbac_denial_fail_fast_exits(cluster_factory, sink, adapter_factory, proxy_factory):
    cluster = real(cluster_factory)
    rbac_without_watch(cluster)
    kc = cluster.proxied_kubeconfig(proxy_factory(cluster), token=token_for(cluster))
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url,
                         "--fail-fast"], kubeconfig=kc)
    assert a.wait_exit(30) == 1
    errors = [l for l in a.logs() if l.get("level") == "error"]
    assert any(l.get("status") == 403 and l.get("fail_fast") for l in errors), errors


def test_apiserver_restart_mid_stream(cluster_factory, sink, adapter_factory):
    cluster = real(cluster_factory)
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    cluster.guitar("before")
    sink.wait_events(1)
    cluster.restart_apiserver()
    cluster.guitar("after")
    cluster.kubectl("-n", "guitar-eventing", "label", "guitar", "before", "x=y")
    sink.wait_events(3, timeout=60)
    assert a.stop() == 0
    got = changes(sink)
    assert sorted(got) == [("after", "add"), ("before", "add"), ("before", "update")], got
    assert got[0] == ("before", "add")
    ids = [r["headers"]["ce-id"] for r in sink.requests()]
    assert len(ids) == len(set(ids)) == 3


def test_token_rotation_in_cluster(cluster_factory, sink, adapter_factory, proxy_factory, workdir):
    """A pod's projected token is swapped by the kubelet (symlink swap) and the
    old one stops working: the adapter re-reads it and continues."""
    cluster = real(cluster_factory)
    cluster.apply(os.path.join(RBAC, "guitar-rbac.yaml"))
    first = token_for(cluster, bound_secret="token-one")
    proxy = proxy_factory(cluster)
    sa = ServiceAccountDir(workdir, first, open(cluster.ca_file, "rb").read(), "guitar-eventing")
    a = adapter_factory(["--resource", GUITAR, "--sink", sink.url],
                        env={"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                             "KUBERNETES_SERVICE_PORT": str(proxy.port),
                             "APISERVERSOURCE_SERVICEACCOUNT_DIR": sa.path})
    a.wait_watching()
    cluster.guitar("one")
    sink.wait_events(1)
    second = token_for(cluster, bound_secret="token-two")
    sa.rotate(second)
    # Deleting the bound Secret invalidates the first token.
    cluster.kubectl("-n", "guitar-eventing", "delete", "secret", "token-one")
    proxy.cut()  # the next request authenticates again
    cluster.guitar("two")
    sink.wait_events(2, timeout=60)
    assert a.stop() == 0
    assert changes(sink) == [("one", "add"), ("two", "add")]
    text = open(a.log_path).read()
    assert first not in text and second not in text
