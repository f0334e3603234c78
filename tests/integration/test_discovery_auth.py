"""Discovery, failFast, in-cluster credentials and token rotation."""
import os

from harness import SAMPLES, ServiceAccountDir

GUITAR = "kool.karmalabs.local/v1/Guitar"


def test_kind_not_served_fail_fast_exits(cluster, sink, adapter_factory):
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url,
                         "--fail-fast"], kubeconfig=cluster.kubeconfig)
    assert a.wait_exit() == 1
    errors = [l for l in a.logs() if l.get("level") == "error"]
    assert any("is its CRD installed?" in l.get("error", "") for l in errors), errors
    # Fail-fast exits: nothing in its last words says it will retry.
    assert not any("retry" in l.get("msg", "") for l in errors), errors
    assert any(l.get("msg") == "resource not served; exiting (fail-fast)" for l in errors), errors


def test_core_kind_not_served_has_no_crd_hint(emulator, sink, adapter_factory):
    a = adapter_factory(["--resource", "v1/Nonexistent", "-n", "x", "--sink", sink.url,
                         "--fail-fast"], kubeconfig=emulator.kubeconfig)
    assert a.wait_exit() == 1
    errors = [l for l in a.logs() if l.get("level") == "error"]
    assert any("does not serve kind Nonexistent" in l.get("error", "") for l in errors), errors
    assert not any("CRD" in l.get("error", "") for l in errors), errors


def test_crd_installed_later_is_picked_up(cluster, sink, adapter_factory):
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=cluster.kubeconfig)
    a.wait_log(lambda l: l.get("msg") == "resource not served, retrying discovery", 10,
               "discovery to fail")
    cluster.guitars()
    a.wait_watching(timeout=40)
    cluster.guitar("d15")
    sink.wait_events(1)
    assert a.stop() == 0
    assert sink.requests()[0]["headers"]["ce-name"] == "d15"


def test_in_cluster_service_account_and_token_rotation(emulator, sink, adapter_factory, workdir):
    """In a pod: KUBERNETES_SERVICE_HOST/PORT and the mounted token, CA and
    namespace. A rotated token (symlink swap) is picked up after a 401."""
    cluster = emulator
    cluster.guitars()
    sa = ServiceAccountDir(workdir, "first-token", cluster.ca_pem(), "guitar-eventing")
    cluster.control("tokens", {"tokens": [cluster.token, "first-token"]})
    port = cluster.server.rsplit(":", 1)[1]
    a = adapter_factory(["--resource", GUITAR, "--sink", sink.url],
                        env={"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                             "KUBERNETES_SERVICE_PORT": port,
                             "APISERVERSOURCE_SERVICEACCOUNT_DIR": sa.path})
    a.wait_watching()
    start = [l for l in a.logs() if l.get("msg") == "adapter started"][0]
    assert start["server"] == f"https://127.0.0.1:{port}"
    cluster.guitar("one")
    sink.wait_events(1)
    assert sink.requests()[0]["headers"]["ce-source"] == f"https://127.0.0.1:{port}"
    # Rotate: the kubelet writes a new directory and swaps the symlink; the old
    # token stops working.
    sa.rotate("second-token")
    cluster.control("tokens", {"tokens": [cluster.token, "second-token"]})
    cluster.control("reset-watches")
    cluster.guitar("two")
    sink.wait_events(2, timeout=30)
    assert a.stop() == 0
    assert [r["headers"]["ce-name"] for r in sink.requests()] == ["one", "two"]
    # Neither token ever reaches the logs.
    text = open(a.log_path).read()
    assert "first-token" not in text and "second-token" not in text
    assert [l for l in a.logs() if l.get("status") == 401]


IRREGULAR_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: guitarz.strings.example.com
spec:
  group: strings.example.com
  scope: Namespaced
  names: {plural: guitarz, singular: guitar, kind: Guitar}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ukuleles.strings.example.com
spec:
  group: strings.example.com
  scope: Cluster
  names: {plural: ukuleles, singular: ukulele, kind: Ukulele}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"""


def test_irregular_plural_and_cluster_scoped_crd(cluster, sink, adapter_factory):
    """The plural comes from discovery (guitarz); the subject keeps Knative's guess."""
    cluster.apply(IRREGULAR_CRD)
    cluster.apply(open(os.path.join(SAMPLES, "guitar-namespace.yaml")).read())
    a = adapter_factory(["--resource", "strings.example.com/v1/Guitar",
                         "--resource", "strings.example.com/v1/Ukulele",
                         "-n", "guitar-eventing", "--sink", sink.url],
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching(2)
    cluster.apply('{"apiVersion":"strings.example.com/v1","kind":"Guitar",'
                  '"metadata":{"name":"z1","namespace":"guitar-eventing"}}')
    cluster.apply('{"apiVersion":"strings.example.com/v1","kind":"Ukulele",'
                  '"metadata":{"name":"u1"}}')
    sink.wait_events(2)
    assert a.stop() == 0
    subjects = sorted(r["headers"]["ce-subject"] for r in sink.requests())
    assert subjects == ["/apis/strings.example.com/v1/namespaces//ukuleles/u1",
                        "/apis/strings.example.com/v1/namespaces/guitar-eventing/guitars/z1"]
    discovered = {l["kind"]: l["resource"] for l in a.logs()
                  if l.get("msg") == "resource discovered"}
    assert discovered == {"Guitar": "guitarz.strings.example.com/v1",
                          "Ukulele": "ukuleles.strings.example.com/v1"}


def test_tls_server_name(cluster, sink, adapter_factory, workdir):
    """kubeconfig's tls-server-name: the certificate is checked against that
    name (the serving certificates here name localhost and 127.0.0.1), while
    the connection goes to the server URL; a name the certificate lacks fails."""
    import re
    cluster.guitars()
    text = open(cluster.kubeconfig).read()

    def kubeconfig(name):
        path = os.path.join(workdir, f"kubeconfig-{name}")
        with open(path, "w") as f:
            f.write(re.sub(r"(\n(\s*)server: \S+)", rf"\1\n\2tls-server-name: {name}", text,
                           count=1))
        return path

    good = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url],
                           kubeconfig=kubeconfig("localhost"))
    good.wait_watching(timeout=30)
    cluster.guitar("tsn")
    sink.wait_events(1)
    assert good.stop() == 0
    # The event's source is still the server as configured.
    assert sink.requests()[0]["headers"]["ce-source"] == cluster.server
    bad = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url,
                           "--fail-fast"], kubeconfig=kubeconfig("not-the-server.example"))
    line = bad.wait_log(lambda l: "certificate" in l.get("error", "") or
                        "SSL" in l.get("error", ""), 20, "a TLS name mismatch")[0]
    assert "not-the-server.example" in line["error"] or "match" in line["error"], line
    assert len(sink.requests()) == 1
