"""The three ways to configure the adapter, and what bad input gets."""
import json
import os

import pytest

from harness import ADAPTER, SAMPLES

GUITAR = "kool.karmalabs.local/v1/Guitar"

KNATIVE_SOURCE_CONFIG = (
    '{"namespaces":["source-namespace"],"allNamespaces":false,"resources":['
    '{"gvr":{"Group":"","Version":"","Resource":"namespaces"}},'
    '{"gvr":{"Group":"batch","Version":"v1","Resource":"jobs"}},'
    '{"gvr":{"Group":"","Version":"","Resource":"pods"},"selector":"test-key1=test-value1"}],'
    '"owner":{"apiVersion":"custom/v1","kind":"Parent"},"mode":"Resource"}')


def owned(kind, api_version, name, ns=None, labels=None, owner=True, extra=None):
    meta = {"name": name}
    if ns:
        meta["namespace"] = ns
    if labels:
        meta["labels"] = labels
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "custom/v1", "kind": "Parent", "name": "p",
                                    "uid": "0c9b1d34-0000-4000-8000-000000000001",
                                    "controller": True}]
    obj = {"apiVersion": api_version, "kind": kind, "metadata": meta}
    obj.update(extra or {})
    return json.dumps(obj)


def test_knative_environment(cluster, sink, adapter_factory):
    """Started as Knative's controller starts it, it sends what Knative would."""
    cluster.apply(json.dumps({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": "source-namespace"}}))
    env = {"K_SOURCE_CONFIG": KNATIVE_SOURCE_CONFIG, "K_SINK": sink.url,
           "NAME": "test-apiserversource", "NAMESPACE": "source-namespace",
           "KUBECONFIG": cluster.kubeconfig}
    a = adapter_factory([], env=env)
    a.wait_watching(3)
    pod = {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    job = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                                          "restartPolicy": "Never"}}}}
    # Owned by a custom/v1 Parent and matching the pod selector: sent.
    cluster.apply(owned("Pod", "v1", "unit", "source-namespace", {"test-key1": "test-value1"},
                        extra=pod))
    cluster.apply(owned("Job", "batch/v1", "batch-job", "source-namespace", extra=job))
    cluster.apply(owned("Namespace", "v1", "owned-ns"))
    # Not owned, or not matching the selector: not sent.
    cluster.apply(owned("Pod", "v1", "orphan", "source-namespace", {"test-key1": "test-value1"},
                        owner=False, extra=pod))
    cluster.apply(owned("Pod", "v1", "unlabelled", "source-namespace", extra=pod))
    cluster.apply(owned("Job", "batch/v1", "marker", "source-namespace", extra=job))
    sink.wait_events(4)
    assert a.stop() == 0
    got = {r["headers"]["ce-name"]: r for r in sink.requests()}
    assert sorted(got) == ["batch-job", "marker", "owned-ns", "unit"]
    h = got["unit"]["headers"]
    assert h["ce-type"] == "dev.knative.apiserver.resource.add"
    assert h["ce-subject"] == "/apis/v1/namespaces/source-namespace/pods/unit"
    assert (h["ce-kind"], h["ce-apiversion"], h["ce-namespace"]) == ("Pod", "v1", "source-namespace")
    assert got["batch-job"]["headers"]["ce-subject"] == \
        "/apis/batch/v1/namespaces/source-namespace/jobs/batch-job"
    assert got["owned-ns"]["headers"]["ce-subject"] == "/apis/v1/namespaces//namespaces/owned-ns"
    assert json.loads(got["unit"]["body"])["metadata"]["labels"] == {"test-key1": "test-value1"}


def test_source_file_manifest(cluster, sink, adapter_factory, workdir):
    cluster.guitars()
    manifest = open(os.path.join(SAMPLES, "apiserversource.yaml")).read()
    manifest = manifest.replace("http://127.0.0.1:8080/", sink.url)
    path = os.path.join(workdir, "source.yaml")
    with open(path, "w") as f:
        f.write(open(os.path.join(SAMPLES, "guitar-namespace.yaml")).read() + "---\n" + manifest)
    a = adapter_factory(["--source-file", path], kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    cluster.guitar("d15")
    sink.wait_events(1)
    assert a.stop() == 0
    h = sink.requests()[0]["headers"]
    assert h["ce-type"] == "dev.knative.apiserver.resource.add"  # spec.mode: Resource
    assert h["ce-namespace"] == "guitar-eventing"


def test_flags_override_environment(cluster, sink_factory, adapter_factory):
    cluster.guitars()
    used, unused = sink_factory(), sink_factory()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", used.url,
                         "--mode", "Reference"],
                        env={"K_SINK": unused.url, "K_SOURCE_CONFIG":
                             '{"namespaces":["elsewhere"],"resources":[{"gvr":{"Group":"",'
                             '"Version":"","Resource":"pods"}}],"mode":"Resource"}'},
                        kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    cluster.guitar("d15")
    used.wait_events(1)
    assert a.stop() == 0
    assert used.requests()[0]["headers"]["ce-type"] == "dev.knative.apiserver.ref.add"
    assert used.requests()[0]["headers"]["ce-namespace"] == "guitar-eventing"
    assert unused.requests() == []


BAD = [
    (["--resource", "Guitar", "--sink", "-"], {}, "--resource: \"Guitar\" is not APIVERSION/KIND"),
    (["--resource", GUITAR], {}, "--sink: missing"),
    (["--resource", GUITAR, "--sink", "ftp://x"], {}, "--sink: \"ftp://x\" is not an http"),
    (["--resource", GUITAR, "--sink", "-", "--mode", "Everything"], {}, "--mode: must be"),
    (["--resource", GUITAR, "--sink", "-", "-n", "a", "-A"], {}, "-A: cannot be combined"),
    (["--resource", GUITAR, "--sink", "-", "--sink-timeout", "0"], {}, "--sink-timeout"),
    (["--resource", GUITAR, "--sink", "-", "--frobnicate"], {}, "--frobnicate: unknown flag"),
    ([], {"K_SOURCE_CONFIG": "{not json", "K_SINK": "http://x"}, "K_SOURCE_CONFIG: invalid JSON"),
    ([], {"K_SOURCE_CONFIG": '{"resources":[{"gvr":{"Group":"batch","Resource":"jobs"}}]}',
          "K_SINK": "http://x"}, "resources[0].gvr.Version: empty"),
    (["--resource", GUITAR], {"K_SINK": "http://x", "K_CE_OVERRIDES": '{"extensions":{"ID":"x"}}'},
     "K_CE_OVERRIDES: extensions.ID"),
    (["--resource", GUITAR], {"K_SINK": "http://x", "K_SINK_TIMEOUT": "ten"}, "K_SINK_TIMEOUT"),
    (["--resource", GUITAR, "--sink", "-", "--source-file", "/nonexistent.yaml"], {},
     "--source-file: /nonexistent.yaml"),
]


@pytest.mark.parametrize("args,env,message", BAD, ids=[b[2][:30] for b in BAD])
def test_invalid_configuration(emulator, adapter_factory, args, env, message):
    cluster = emulator
    before = cluster.stats()["requests"]
    a = adapter_factory(args, env=env, kubeconfig=cluster.kubeconfig)
    assert a.wait_exit() == 2
    errors = [l for l in a.logs() if l.get("level") == "error"]
    assert errors, a.logs()
    assert any(message in l["msg"] for l in errors), [l["msg"] for l in errors]
    # One line each, naming the flag, the variable or the file.
    assert all("\n" not in l["msg"] for l in errors)
    # No connection was opened.
    assert cluster.stats()["requests"] == before


def test_invalid_manifest_names_file_line_column(adapter_factory, workdir):
    path = os.path.join(workdir, "bad.yaml")
    with open(path, "w") as f:
        f.write("apiVersion: sources.knative.dev/v1\nkind: ApiServerSource\nspec:\n"
                "  mode: Sometimes\n  resources: []\n  sink:\n    uri: http://x\n")
    a = adapter_factory(["--source-file", path])
    assert a.wait_exit() == 2
    msgs = [l["msg"] for l in a.logs() if l.get("level") == "error"]
    assert f"{path}:4:9: spec.mode: must be Resource or Reference, not \"Sometimes\"" in msgs
    assert any(m.startswith(f"{path}:5:") and "spec.resources" in m for m in msgs), msgs


def test_invalid_kubeconfig(adapter_factory, workdir):
    path = os.path.join(workdir, "kubeconfig")
    with open(path, "w") as f:
        f.write("current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                "clusters:\n- name: c\n  cluster: {server: https://127.0.0.1:1}\n"
                "users:\n- name: u\n  user:\n    exec: {command: aws}\n")
    a = adapter_factory(["--resource", GUITAR, "--sink", "-", "--kubeconfig", path])
    assert a.wait_exit() == 2
    msgs = [l["msg"] for l in a.logs() if l.get("level") == "error"]
    assert any(m.startswith(f"{path}:11:") and "exec credential plugins" in m for m in msgs), msgs


def test_help_and_version():
    import subprocess
    r = subprocess.run([ADAPTER, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--resource" in r.stdout and "K_SOURCE_CONFIG" in r.stdout
    r = subprocess.run([ADAPTER, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("apiserversource-adapter ")


def config_errors(a):
    assert a.wait_exit() == 2
    errors = [l["msg"] for l in a.logs() if l.get("level") == "error"]
    assert all("\n" not in m for m in errors), errors  # one line each
    return errors


def test_every_problem_in_one_run(adapter_factory, workdir):
    """A bad --resource and a missing kubeconfig are reported together (the
    kubeconfig is checked although the flags had a problem), each on its own
    line, and the bad --resource is not also "nothing to watch"."""
    missing = os.path.join(workdir, "no-such-kubeconfig")
    a = adapter_factory(["--resource", "Guitar", "--sink", "-", "--kubeconfig", missing])
    errors = config_errors(a)
    assert [m for m in errors if m.startswith('--resource: "Guitar" is not APIVERSION/KIND')], \
        errors
    assert [m for m in errors if missing in m and "cannot read" in m], errors
    assert not [m for m in errors if "nothing to watch" in m], errors
    assert len(errors) == 2, errors


def test_bad_resource_alone_is_one_problem(emulator, adapter_factory):
    """With the rest valid, a bad --resource is the only line: no misleading
    "nothing to watch" after it, and no connection is opened."""
    before = emulator.stats()["requests"]
    a = adapter_factory(["--resource", "v1/", "--sink", "-"], kubeconfig=emulator.kubeconfig)
    errors = config_errors(a)
    assert len(errors) == 1 and errors[0].startswith('--resource: "v1/" is not APIVERSION/KIND'), \
        errors
    assert emulator.stats()["requests"] == before


def test_no_resource_is_nothing_to_watch(emulator, adapter_factory):
    a = adapter_factory(["--sink", "-"], kubeconfig=emulator.kubeconfig)
    errors = config_errors(a)
    assert [m for m in errors if m.startswith("--resource: nothing to watch")], errors


def test_kubeconfig_not_guessed_when_its_flag_is_bad(workdir):
    """A problem in the kubeconfig's own flag is reported as that, not
    followed by a guess at ~/.kube/config or in-cluster. (Run directly: the
    fixture appends flags, which a trailing --kubeconfig would take.)"""
    import subprocess
    env = {"PATH": os.environ.get("PATH", ""), "HOME": workdir}
    r = subprocess.run([ADAPTER, "--resource", GUITAR, "--sink", "-", "--kubeconfig"],
                       capture_output=True, text=True, env=env, timeout=15)
    assert r.returncode == 2, r.stderr
    errors = [json.loads(l)["msg"] for l in r.stderr.splitlines() if l.strip()]
    assert errors == ["--kubeconfig: needs a value"], errors


@pytest.mark.parametrize("flags,expected", [
    (["-n", "guitar-eventing,other"], "guitar-eventing,other"),
    (["-A"], "*"),
    ([], "default"),  # the kubeconfig context's namespace, else default
], ids=["two", "all", "context"])
def test_start_line_names_the_namespaces(emulator, adapter_factory, flags, expected):
    emulator.guitars()
    a = adapter_factory(["--resource", GUITAR, "--sink", "-", *flags],
                        kubeconfig=emulator.kubeconfig)
    line = a.wait_log(lambda l: l.get("msg") == "adapter started", 15, "the start line")[0]
    assert a.stop() == 0
    assert line["namespaces"] == expected, line
    assert line["namespace_count"] == (0 if expected == "*" else len(expected.split(",")))
