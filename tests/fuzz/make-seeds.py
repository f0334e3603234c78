#!/usr/bin/env python3
"""Writes the committed seed corpora, tests/fuzz/corpus/<target>/<sha1>, from
the project's own inputs: samples/*.yaml, the CESQL conformance suite (TCK,
../shared/reference/cesql-tck when present) and the documents the unit and
integration tests use. Rerun after changing it; keep the total under 1 MB:
    python3 tests/fuzz/make-seeds.py
"""
import hashlib
import json
import os
import pathlib
import re
import shutil

here = pathlib.Path(__file__).resolve().parent
root = here.parent.parent
out = here / "corpus"
seeds = {}


def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    seeds.setdefault(target, set()).add(data)


def obj(kind="Pod", api="v1", name="p", ns="default", uid="0c9b1d34-0000-4000-8000-000000000001",
        rv="7", **extra):
    meta = {"name": name, "uid": uid, "resourceVersion": rv}
    if ns:
        meta["namespace"] = ns
    meta.update(extra)
    return {"apiVersion": api, "kind": kind, "metadata": meta}


# ---- watch stream: first byte is the chunk size selector
pod = obj(labels={"app": "x"}, ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                 "name": "rs", "uid": "u", "controller": True}])
guitar = obj("Guitar", "kool.karmalabs.local/v1", "d15", "guitar-eventing", rv="12",
             generation=2)
lines = [
    {"type": "ADDED", "object": pod},
    {"type": "MODIFIED", "object": guitar},
    {"type": "DELETED", "object": obj(rv="9")},
    {"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                                    "metadata": {"resourceVersion": "10"}}},
    {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "message": "too old resource version", "reason": "Expired",
                                 "code": 410}},
]
stream = "".join(json.dumps(l) + "\n" for l in lines)
for sel in (b"\x00", b"\x05", b"\x3f"):
    add("watch_stream", sel + stream.encode())
add("watch_stream", b"\x01" + stream.replace("\n", "\r\n").encode())
add("watch_stream", b"\x02" + json.dumps(lines[0], indent=1).encode() + b"\n")

# ---- list pages
items = [obj(name="a", rv="3"), obj(name="b", rv="4")]
page = {"kind": "PodList", "apiVersion": "v1",
        "metadata": {"resourceVersion": "5", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"},
        "items": items}
add("list", b"\x00" + json.dumps(page).encode())
add("list", b"\x07" + json.dumps(page, indent=2).encode())
add("list", b"\x01" + json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata":
                                 {"resourceVersion": "1"}, "items": []}).encode())
add("list", b"\x03" + json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "message": "forbidden", "reason": "Forbidden",
                                 "code": 403}).encode())

# ---- discovery
core = {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
    {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
     "verbs": ["create", "delete", "get", "list", "watch"]},
    {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
    {"name": "namespaces", "singularName": "namespace", "namespaced": False,
     "kind": "Namespace", "verbs": ["get", "list", "watch"]}]}
add("discovery", json.dumps(core))
add("discovery", json.dumps({"kind": "APIResourceList", "apiVersion": "v1",
                             "groupVersion": "kool.karmalabs.local/v1", "resources": [
                                 {"name": "guitars", "singularName": "guitar",
                                  "namespaced": True, "kind": "Guitar",
                                  "verbs": ["list", "watch"]}]}))

# ---- kubeconfig
add("kubeconfig", """apiVersion: v1
kind: Config
current-context: admin
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
- name: other
  cluster:
    server: https://other:6443
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: s3cret
- name: filer
  user:
    tokenFile: token.txt
- name: certs
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
contexts:
- name: admin
  context: {cluster: local, user: admin, namespace: guitar-eventing}
- name: file
  context: {cluster: other, user: filer}
- name: certs
  context: {cluster: local, user: certs}
""")
add("kubeconfig", json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                              "clusters": [{"name": "k", "cluster": {"server": "http://h:8080"}}],
                              "users": [{"name": "u", "user": {"username": "a",
                                                               "password": "b"}}],
                              "contexts": [{"name": "c", "context": {"cluster": "k",
                                                                     "user": "u"}}]}))

# ---- manifests: the samples, plus selectors and filters
for p in sorted((root / "samples").glob("*.yaml")):
    add("manifest", p.read_bytes())
add("manifest", """apiVersion: sources.knative.dev/v1
kind: ApiServerSource
metadata:
  name: s
  namespace: guitar-eventing
spec:
  mode: Reference
  serviceAccountName: sa
  namespaceSelector:
    matchExpressions:
    - {key: env, operator: In, values: [prod, staging]}
  resources:
  - apiVersion: v1
    kind: Pod
    selector:
      matchLabels: {app: x}
      matchExpressions:
      - {key: tier, operator: NotIn, values: [a, b]}
      - {key: gone, operator: DoesNotExist}
      - {key: here, operator: Exists}
  ceOverrides:
    extensions: {team: guitars}
  filters:
  - exact: {type: dev.knative.apiserver.resource.add}
  - any: [{prefix: {subject: /apis}}, {not: {suffix: {source: x}}}]
  - cesql: "kind = 'Pod' AND name LIKE 'p%'"
  sink:
    uri: http://sink.example:8080
""")

# ---- environment
add("source_config", """{"namespaces":["source-namespace"],"allNamespaces":false,"resources":[
{"gvr":{"Group":"","Version":"","Resource":"namespaces"}},
{"gvr":{"Group":"batch","Version":"v1","Resource":"jobs"}},
{"gvr":{"Group":"","Version":"","Resource":"pods"},"selector":"test-key1=test-value1"}],
"owner":{"apiVersion":"custom/v1","kind":"Parent"},"mode":"Resource"}""")
add("source_config", json.dumps({"allNamespaces": True, "mode": "Reference", "failFast": True,
                                 "resources": [{"gvr": {"Group": "kool.karmalabs.local",
                                                        "Version": "v1",
                                                        "Resource": "guitars"}}],
                                 "filters": [{"exact": {"type": "x"}},
                                             {"cesql": "subject LIKE '/apis/%'"}]}))
add("ce_overrides", '{"extensions":{"team":"guitars","env":"prod"}}')
add("ce_overrides", '{"extensions":{}}')
add("logging_config", json.dumps({
    "zap-logger-config": json.dumps({"level": "info", "development": False,
                                     "outputPaths": ["stdout"], "errorOutputPaths": ["stderr"],
                                     "encoding": "json", "encoderConfig": {
                                         "timeKey": "ts", "levelKey": "level",
                                         "nameKey": "logger", "callerKey": "caller",
                                         "messageKey": "msg", "stacktraceKey": "stacktrace",
                                         "lineEnding": "", "levelEncoder": "",
                                         "timeEncoder": "iso8601", "durationEncoder": "",
                                         "callerEncoder": ""}}),
    "loglevel.apiserversource-adapter": "debug"}))
add("logging_config", '{"level":"warn","encoding":"console","encoderConfig":{"timeEncoder":"epoch"}}')
for s in ("app=x", "app=x,tier!=web", "env in (prod,staging),!gone", "x notin (a),y", ""):
    add("label_selector", s)

# ---- CESQL: every expression of the TCK, and filters built from some
tck = root.parent / "shared" / "reference" / "cesql-tck"
exprs = []
if tck.is_dir():
    for p in sorted(tck.glob("*.yaml")):
        for m in re.finditer(r"^\s*expression:\s*(.+?)\s*$", p.read_text(), re.M):
            e = m.group(1)
            if len(e) >= 2 and e[0] == e[-1] and e[0] in "\"'":
                e = e[1:-1].replace('\\"', '"') if e[0] == '"' else e[1:-1].replace("''", "'")
            exprs.append(e)
exprs += ["kind = 'Pod' AND name LIKE 'p%'", "CONCAT(source, subject) <> ''",
          "EXISTS namespace AND INT(\"7\") + 1 = 8", "LOWER(type) IN ('a', 'b')"]
for e in exprs:
    add("cesql", e)
for e in exprs[::8]:
    add("filter_json", json.dumps([{"cesql": e}]))
filters = [
    [{"exact": {"type": "dev.knative.apiserver.resource.add"}}],
    [{"prefix": {"subject": "/apis/v1"}}, {"suffix": {"source": "443"}}],
    [{"all": [{"any": [{"exact": {"kind": "Pod"}}]}, {"not": {"cesql": "false"}}]}],
    [{"exact": {"type": ""}}, {"cesql": ""}, {"all": []}, {"prefix": {}}],
]
for f in filters:
    add("filter_json", json.dumps(f))
add("filter_json", '{"exact":{"kind":"Pod"}}')
add("filter_json", "name = 'p'")
add("filter_yaml", """- exact: {type: dev.knative.apiserver.resource.add}
- any:
  - prefix: {subject: /apis}
  - not: {suffix: {source: x}}
- all: [{cesql: "kind = 'Pod'"}]
""")
add("filter_yaml", "- &a {exact: {kind: Pod}}\n- *a\n- {not: *a}\n")

# ---- checkpoints (the format of include/adapter/state.h)
ck = [
    {"type": "CHECKPOINT", "object": {"kind": "Checkpoint", "metadata": {"name": "1"}}},
    {"type": "WATCH", "object": {"kind": "Watch", "metadata": {"name": "v1/Pod/default",
                                                               "resourceVersion": "7"}}},
    {"type": "OBJECT", "object": pod},
    {"type": "WATCH", "object": {"kind": "WatchRelist", "metadata": {"name": "other",
                                                                     "resourceVersion": "8"}}},
    {"type": "OBJECT_REF", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {
        "name": "r", "namespace": "default", "uid": "u-2", "resourceVersion": "8"}}},
    {"type": "EVENT_ADD", "id": "5d0e8b35a1c1d0f1", "time": "2026-01-02T03:04:05.678Z",
     "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p",
                                                                "namespace": "default",
                                                                "uid": "u-1"}},
     "data": pod},
    {"type": "EVENT_DELETE", "id": "5d0e8b35a1c1d0f2", "time": "2026-01-02T03:04:05Z",
     "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p",
                                                                "namespace": "default",
                                                                "uid": "u-1"}},
     "data": {"apiVersion": "v1", "kind": "Pod", "name": "p", "namespace": "default"}},
]
add("checkpoint", "".join(json.dumps(l, separators=(",", ":")) + "\n" for l in ck))
add("checkpoint", "".join(json.dumps(l, separators=(",", ":")) + "\n" for l in ck[:2]))

# ---- Retry-After
for s in ("120", "0", "Retry-After: 5\r\n", "retry-after:  Wed, 21 Oct 2015 07:28:00 GMT\r\n",
          "Fri, 31 Dec 1999 23:59:59 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
          "Sun Nov  6 08:49:37 1994", "99999999999999999999"):
    add("retry_after", s)

if out.exists():
    shutil.rmtree(out)
total = 0
for target, datas in sorted(seeds.items()):
    d = out / target
    d.mkdir(parents=True)
    for data in datas:
        (d / hashlib.sha1(data).hexdigest()).write_bytes(data)
        total += len(data)
print(f"make-seeds: {sum(len(v) for v in seeds.values())} seeds, {total} bytes, "
      f"{len(seeds)} targets in {out.relative_to(root)}")
assert total < 1 << 20, "the committed corpus must stay under 1 MB"
