"""Hostile input to the parsers (issue 9): the real binary, each test named
after its finding. Every limit refuses quickly with one line naming the file
(and line) or the variable, and exit status 2; a hostile API server answer is
refused without a crash."""
import http.server
import json
import os
import socketserver
import threading
import time

import pytest

GUITAR = "kool.karmalabs.local/v1/Guitar"

HEAD = ("apiVersion: sources.knative.dev/v1\nkind: ApiServerSource\n"
        "metadata: {name: hostile, namespace: default}\n"
        "spec:\n  mode: Resource\n  sink: {uri: 'http://127.0.0.1:9'}\n  resources:\n")


def kubeconfig(workdir, server="http://127.0.0.1:9", cluster_extra="", user="token: t",
               name="kubeconfig"):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                "contexts:\n- name: c\n  context: {cluster: x, user: u, namespace: default}\n"
                f"clusters:\n- name: x\n  cluster:\n    server: {server}\n{cluster_extra}"
                f"users:\n- name: u\n  user:\n    {user}\n")
    return path


def refused(adapter_factory, workdir, args, env=None, kube=None):
    """Runs the adapter, expects exit 2 within 10 s; returns the error lines."""
    kube = kube or kubeconfig(workdir)
    start = time.monotonic()
    a = adapter_factory(args, env=env, kubeconfig=kube)
    assert a.wait_exit(timeout=10) == 2, a.logs()
    elapsed = time.monotonic() - start
    errors = [l["msg"] for l in a.logs() if l.get("level") == "error"]
    assert errors, a.logs()
    assert all("\n" not in m for m in errors), errors
    return errors, elapsed


def manifest(workdir, body, name="source.yaml"):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(HEAD + body)
    return path


def test_manifest_alias_bomb_is_refused(adapter_factory, workdir):
    """200,000 aliases to a resource (1.6 MB) aborted in xstrdup."""
    path = manifest(workdir, "  - &r {apiVersion: v1, kind: Pod}\n" + "  - *r\n" * 200000)
    errors, elapsed = refused(adapter_factory, workdir, ["--source-file", path])
    assert f"{path}:1009:5: invalid YAML: more than 1000 aliases" in errors, errors
    assert elapsed < 5, elapsed


def test_manifest_aliases_in_match_expressions_are_refused(adapter_factory, workdir):
    """Aliases inside matchExpressions values cost 7.6 s and 202 MiB at 50 KB."""
    values = ", ".join(f"v{i}" for i in range(1000))
    body = ("  - apiVersion: v1\n    kind: Pod\n    selector:\n      matchExpressions:\n"
            f"      - {{key: a, operator: In, values: &v [{values}]}}\n"
            + "      - {key: a, operator: In, values: *v}\n" * 900)
    path = manifest(workdir, body)
    errors, elapsed = refused(adapter_factory, workdir, ["--source-file", path])
    assert [m for m in errors if m.startswith(f"{path}:") and
            "invalid YAML: more than 100000 nodes with aliases expanded" in m], errors
    assert elapsed < 5, elapsed


def test_manifest_deeply_nested_is_refused(adapter_factory, workdir):
    """libyaml's tokenizer is quadratic in depth: 100k levels in 200 KB took minutes."""
    path = manifest(workdir, "  - " + "[" * 100000 + "\n")
    errors, elapsed = refused(adapter_factory, workdir, ["--source-file", path])
    assert [m for m in errors if m.startswith(f"{path}:8:") and
            "invalid YAML: nested deeper than 64 levels" in m], errors
    assert elapsed < 5, elapsed


@pytest.mark.parametrize("field,value", [
    ("certificate-authority-data", "'===='"),
    ("client-certificate-data", "'Y2VydA=x'"),
    ("client-key-data", "'a2V5*'"),
])
def test_kubeconfig_invalid_base64_is_refused(adapter_factory, workdir, field, value):
    """certificate-authority-data: '====' was accepted."""
    if field.startswith("certificate"):
        kube = kubeconfig(workdir, server="https://127.0.0.1:9",
                          cluster_extra=f"    {field}: {value}\n")
        line = 11
    else:
        kube = kubeconfig(workdir, user=f"{field}: {value}")
        line = 14
    errors, _ = refused(adapter_factory, workdir, ["--resource", GUITAR, "--sink", "-"],
                        kube=kube)
    assert [m for m in errors if m.startswith(f"{kube}:{line}:") and
            f"{field}: not valid base64" in m], errors
    # Where, never what: the field may hold a private key.
    assert not [m for m in errors if value.strip("'") in m], errors


def test_kubeconfig_deeply_nested_is_refused(adapter_factory, workdir):
    kube = os.path.join(workdir, "deep-kubeconfig")
    with open(kube, "w") as f:
        f.write("current-context: c\nclusters: " + "[" * 100000 + "\n")
    errors, elapsed = refused(adapter_factory, workdir, ["--resource", GUITAR, "--sink", "-"],
                              kube=kube)
    assert [m for m in errors if m.startswith(f"{kube}:2:") and
            "invalid kubeconfig YAML: nested deeper than 64 levels" in m], errors
    assert elapsed < 5, elapsed


ENV_NUL = {
    "K_SOURCE_CONFIG": '{"resources":[{"gvr":{"Version":"v1","Resource":"pods\\u0000x"}}]}',
    "K_CE_OVERRIDES": '{"extensions":{"team":"a\\u0000b"}}',
    "K_LOGGING_CONFIG": '{"zap-logger-config":"{\\"level\\":\\"in\\\\u0000fo\\"}"}',
    "K_OBSERVABILITY_CONFIG": '{"metrics":{"protocol":"prom\\u0000etheus"}}',
}


@pytest.mark.parametrize("var", sorted(ENV_NUL))
def test_env_json_nul_is_refused(adapter_factory, workdir, var):
    """\\u0000 in K_SOURCE_CONFIG silently cut strings short; so in any env JSON."""
    env = {"K_SINK": "http://127.0.0.1:9", "NAME": "n", "NAMESPACE": "default",
           "K_SOURCE_CONFIG": '{"resources":[{"gvr":{"Version":"v1","Resource":"pods"}}]}'}
    env[var] = ENV_NUL[var]
    errors, _ = refused(adapter_factory, workdir, [], env=env)
    assert [m for m in errors if m.startswith(f"{var}: ") and
            "a string contains \\u0000" in m], errors


class _Discovery(http.server.BaseHTTPRequestHandler):
    """An API server whose discovery answer is nested 400,000 levels deep."""
    body = (b'{"kind":"APIResourceList","groupVersion":"v1","resources":'
            + b"[" * 400000 + b"]" * 400000 + b"}")
    hits = []

    def do_GET(self):
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_discovery_deeply_nested_does_not_crash(adapter_factory, workdir):
    """An 800 KB discovery answer nested ~400k levels deep overflowed the
    stack in yajl_tree_free: now it is an invalid discovery document, retried."""
    _Discovery.hits = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Discovery)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        kube = kubeconfig(workdir, server=f"http://127.0.0.1:{server.server_address[1]}")
        a = adapter_factory(["--resource", "v1/Pod", "--sink", "-"], kubeconfig=kube)
        warned = a.wait_log(lambda l: l.get("msg", "").startswith("invalid discovery document"),
                            timeout=10, what="the discovery answer to be refused")
        assert warned[0]["level"] == "warn", warned
        assert "/api/v1" in _Discovery.hits, _Discovery.hits
        # Still running after the answer was parsed, and it stops cleanly.
        assert a.proc.poll() is None, a.logs()
        assert a.stop() == 0
    finally:
        server.shutdown()
        server.server_close()
