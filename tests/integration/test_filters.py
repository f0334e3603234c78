"""Subscriptions API filters and CloudEvents SQL, from the three places a
source's filters come from: --filter, K_SOURCE_CONFIG and spec.filters."""
import json
import os
import subprocess

import pytest

from harness import ADAPTER, wait_until

GUITAR = "kool.karmalabs.local/v1/Guitar"

# One cesql, one prefix, one not, as an ApiServerSource's spec.filters would
# carry them: adds and updates of guitars whose name starts with "keep", but
# not "keep-out".
FILTERS = [
    {"cesql": "type IN ('dev.knative.apiserver.resource.add', "
              "'dev.knative.apiserver.resource.update') AND kind = 'Guitar'"},
    {"prefix": {"subject": "/apis/kool.karmalabs.local/v1/namespaces/guitar-eventing/guitars/keep"}},
    {"not": {"exact": {"name": "keep-out"}}},
]


def exercise(cluster):
    """Creates, labels and deletes guitars; returns the (name, op) pairs that
    pass FILTERS, in order of the changes."""
    for name in ("keep1", "drop1", "keep-out", "keep2"):
        cluster.guitar(name)
    cluster.kubectl("-n", "guitar-eventing", "label", "guitar", "keep1", "x=y")
    cluster.kubectl("-n", "guitar-eventing", "label", "guitar", "drop1", "x=y")
    cluster.kubectl("-n", "guitar-eventing", "delete", "guitar", "keep2")
    cluster.guitar("keep3")  # the fence: the last event that passes
    return [("keep1", "add"), ("keep2", "add"), ("keep1", "update"), ("keep3", "add")]


def received(sink):
    return [(r["headers"]["ce-name"], r["headers"]["ce-type"].rsplit(".", 1)[1])
            for r in sink.requests()]


def check(cluster, sink, a):
    a.wait_watching()
    expected = exercise(cluster)
    sink.wait_events(len(expected))
    assert a.stop() == 0
    got = received(sink)
    assert sorted(got) == sorted(expected), got
    # Per object, order is kept.
    assert [g for g in got if g[0] == "keep1"] == [("keep1", "add"), ("keep1", "update")]


def test_filters_from_the_command_line(emulator, sink, adapter_factory):
    emulator.guitars()
    args = ["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url]
    for f in FILTERS:
        # The cesql filter as a bare expression, the others as JSON objects.
        args += ["--filter", f["cesql"] if "cesql" in f else json.dumps(f)]
    a = adapter_factory(args, kubeconfig=emulator.kubeconfig)
    a.wait_log(lambda l: l.get("msg") == "filters apply" and l.get("filters") == 3, 10,
               "the filters")
    check(emulator, sink, a)


def test_filters_from_knative_environment(cluster, sink, adapter_factory):
    cluster.guitars()
    env = {"NAME": "guitars-apisource", "NAMESPACE": "guitar-eventing", "K_SINK": sink.url,
           "K_SOURCE_CONFIG": json.dumps({
               "namespaces": ["guitar-eventing"], "allNamespaces": False,
               "resources": [{"gvr": {"Group": "kool.karmalabs.local", "Version": "v1",
                                      "Resource": "guitars"}}],
               "mode": "Resource", "filters": FILTERS})}
    a = adapter_factory([], env=env, kubeconfig=cluster.kubeconfig)
    check(cluster, sink, a)


def test_filters_from_a_manifest(emulator, sink, adapter_factory, workdir):
    emulator.guitars()
    path = os.path.join(workdir, "source.yaml")
    with open(path, "w") as f:
        f.write(f"""apiVersion: sources.knative.dev/v1
kind: ApiServerSource
metadata:
  name: guitars-apisource
  namespace: guitar-eventing
spec:
  mode: Resource
  resources:
  - apiVersion: kool.karmalabs.local/v1
    kind: Guitar
  filters:
  - cesql: {json.dumps(FILTERS[0]["cesql"])}
  - prefix:
      subject: {FILTERS[1]["prefix"]["subject"]}
  - not:
      exact:
        name: keep-out
  sink:
    uri: {sink.url}
""")
    a = adapter_factory(["--source-file", path], kubeconfig=emulator.kubeconfig)
    check(emulator, sink, a)


def test_filtered_events_are_counted_and_empty_filters_dropped(emulator, sink, adapter_factory):
    emulator.guitars()
    a = adapter_factory(["--resource", GUITAR, "-n", "guitar-eventing", "--sink", sink.url,
                         "--filter", json.dumps({"exact": {"type": ""}}),
                         "--filter", "name LIKE 'keep%'"], kubeconfig=emulator.kubeconfig)
    a.wait_log(lambda l: l.get("msg") == "filter dropped, as Knative's adapter drops it", 10,
               "the warning for the empty exact value")
    a.wait_watching()
    emulator.guitar("nope")
    emulator.guitar("keep9")
    sink.wait_events(1)
    port = a.ports()[1]
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    assert "apiserversource_events_filtered_total 1\n" in text, text
    assert a.stop() == 0
    assert received(sink) == [("keep9", "add")]


@pytest.mark.parametrize("args,env,field,words", [
    (["--filter", "type = 'x' AND ("], {}, "--filter", "column"),
    (["--filter", "{\"exact\": {\"type\": \"x\"}, \"prefix\": {\"type\": \"y\"}}"], {}, "--filter",
     "exact"),
    ([], {"K_SOURCE_CONFIG": json.dumps({"namespaces": ["x"], "resources": [
        {"gvr": {"Group": "", "Version": "v1", "Resource": "pods"}}],
        "filters": [{"exact": {"type": "a"}}, {"cesql": "LOWER("}]})}, "K_SOURCE_CONFIG",
     "filters[1].cesql"),
])
def test_bad_filter_is_a_startup_error(emulator, sink, args, env, field, words):
    full = {k: v for k, v in os.environ.items() if not k.startswith("K_")}
    full.update(env)
    base = ["--sink", sink.url, "--kubeconfig", emulator.kubeconfig]
    if "K_SOURCE_CONFIG" not in env:
        base += ["--resource", GUITAR, "-n", "x"]
    r = subprocess.run([ADAPTER, *base, *args], env=full, capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2, r.stderr
    lines = [json.loads(l) for l in r.stderr.splitlines()]
    assert len(lines) == 1, r.stderr
    assert lines[0]["msg"].startswith(field + ": ") and words in lines[0]["msg"], lines[0]
    assert sink.requests() == []


def test_bad_filter_in_a_manifest_names_line_and_column(emulator, sink, workdir):
    path = os.path.join(workdir, "bad.yaml")
    with open(path, "w") as f:
        f.write(f"""apiVersion: sources.knative.dev/v1
kind: ApiServerSource
metadata:
  name: s
  namespace: guitar-eventing
spec:
  resources:
  - apiVersion: v1
    kind: Pod
  filters:
  - cesql: "name = 'a' OR"
  sink:
    uri: {sink.url}
""")
    r = subprocess.run([ADAPTER, "--source-file", path, "--kubeconfig", emulator.kubeconfig],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2, r.stderr
    lines = [json.loads(l) for l in r.stderr.splitlines()]
    assert len(lines) == 1, r.stderr
    assert lines[0]["msg"].startswith(f"{path}:11:"), lines[0]
    assert "spec.filters" in lines[0]["msg"], lines[0]
