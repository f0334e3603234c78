"""Issue 11 items 4 and 5: --with-changes (the changedpaths extension on
updates), extra sink headers (--header, --header-file, reloaded on SIGHUP,
never logged), --strip-managed-fields, and the warning about Secrets watched
in Resource mode.  Each test checks what the sink received, the exit status
or the log."""
import json
import os
import signal

import pytest

from harness import SAMPLES, wait_until

GUITAR = "kool.karmalabs.local/v1/Guitar"
NS = "guitar-eventing"


def guitar_adapter(adapter_factory, cluster, sink_url, *extra, env=None):
    a = adapter_factory(["--resource", GUITAR, "-n", NS, "--sink", sink_url, *extra],
                        env=env, kubeconfig=cluster.kubeconfig)
    a.wait_watching()
    return a


def label_step(cluster, sink, adapter_factory):
    """The walkthrough: create d15, label it helloknative=, delete it."""
    cluster.guitars()
    a = guitar_adapter(adapter_factory, cluster, sink.url, "--with-changes")
    cluster.apply(os.path.join(SAMPLES, "guitar-d15.yaml"))
    sink.wait_events(1)
    cluster.kubectl("-n", NS, "label", "guitar", "d15", "helloknative=")
    sink.wait_events(2)
    cluster.kubectl("-n", NS, "patch", "guitar", "d15", "--type=merge",
                    "-p", '{"spec":{"review":true}}')
    sink.wait_events(3)
    cluster.kubectl("-n", NS, "delete", "guitar", "d15")
    sink.wait_events(4)
    assert a.stop() == 0
    reqs = sink.requests()
    assert [r["headers"]["ce-type"].rsplit(".", 1)[1] for r in reqs] == \
        ["add", "update", "update", "delete"]
    add, label, patch, delete = (r["headers"] for r in reqs)
    assert "ce-changedpaths" not in add and "ce-changedpaths" not in delete
    assert label["ce-changedpaths"] == "metadata.labels.helloknative", label
    assert patch["ce-changedpaths"] == "spec.review", patch


def test_with_changes_label_step_emulator(emulator, sink, adapter_factory):
    label_step(emulator, sink, adapter_factory)


def test_with_changes_label_step_real(cluster_factory, sink, adapter_factory):
    # kube-apiserver also rewrites managedFields and resourceVersion on the
    # label: both are left out of the list.
    label_step(cluster_factory(backend="real"), sink, adapter_factory)


def test_with_changes_off_by_default(emulator, sink, adapter_factory):
    emulator.guitars()
    a = guitar_adapter(adapter_factory, emulator, sink.url)
    emulator.guitar("g1")
    sink.wait_events(1)
    emulator.kubectl("-n", NS, "label", "guitar", "g1", "x=y")
    sink.wait_events(2)
    assert a.stop() == 0
    assert all("ce-changedpaths" not in r["headers"] for r in sink.requests())


def test_with_changes_reference_mode_and_stdout(emulator, adapter_factory):
    """Reference events carry it too (the states are kept for it), and the
    structured lines of --sink - as a member."""
    emulator.guitars()
    a = guitar_adapter(adapter_factory, emulator, "-", "--with-changes", "--mode", "Reference")
    emulator.guitar("g1")
    emulator.kubectl("-n", NS, "label", "guitar", "g1", "app.kubernetes.io/name=x")
    wait_until(lambda: len(a.stdout_lines()) >= 2, 15, "two lines on stdout")
    assert a.stop() == 0
    add, update = a.stdout_lines()[:2]
    assert "changedpaths" not in add
    assert update["type"] == "dev.knative.apiserver.ref.update"
    assert update["changedpaths"] == "metadata.labels.app\\.kubernetes\\.io/name"


def test_with_changes_object_state_reference_refused(emulator, adapter_factory, sink):
    a = adapter_factory(["--resource", GUITAR, "-n", NS, "--sink", sink.url, "--with-changes",
                         "--object-state", "reference"], kubeconfig=emulator.kubeconfig)
    assert a.wait_exit() == 2
    errors = [l["msg"] for l in a.logs() if l.get("level") == "error"]
    assert errors == ["--with-changes: needs each object's last state: not with "
                      "--object-state reference"], errors


def test_with_changes_relist_update(emulator, sink, adapter_factory):
    """An update found by a relist (the watch was down and its history
    expired) lists its changes too: they come from the object table."""
    emulator.guitars()
    a = guitar_adapter(adapter_factory, emulator, sink.url, "--with-changes")
    emulator.guitar("g1")
    sink.wait_events(1)
    emulator.control("faults", {"path_regex": "guitars", "watch": True, "status": 503,
                                "count": -1})
    emulator.control("reset-watches")
    emulator.kubectl("-n", NS, "label", "guitar", "g1", "k=v")
    emulator.control("compact")
    emulator.control("faults", method="DELETE")
    a.wait_log(lambda l: l.get("msg") == "relisted", 30, "the relist")
    sink.wait_events(2)
    assert a.stop() == 0
    reqs = sink.requests()
    assert reqs[1]["headers"]["ce-type"] == "dev.knative.apiserver.resource.update"
    assert reqs[1]["headers"]["ce-changedpaths"] == "metadata.labels.k"


# ---------------- --header, --header-file ----------------

def test_header_reaches_sink_not_dead_letter(emulator, sink_factory, adapter_factory, workdir):
    emulator.guitars()
    sink = sink_factory()
    dead = sink_factory()
    secret = os.path.join(workdir, "token")
    with open(secret, "w") as f:
        f.write("Bearer s3cr3t-from-file\n")
    a = guitar_adapter(adapter_factory, emulator, sink.url, "--dead-letter", dead.url,
                       "--header", "X-Api-Key=k3y value", "--header", "X-Empty=",
                       "--header-file", f"Authorization={secret}")
    emulator.guitar("ok")
    sink.wait_events(1)
    sink.set_responses([400])
    emulator.guitar("rejected")
    dead.wait_events(1)
    assert a.stop() == 0
    h = sink.requests()[0]["headers"]
    assert h["x-api-key"] == "k3y value"
    assert h["authorization"] == "Bearer s3cr3t-from-file"  # trailing newline dropped
    assert h["x-empty"] == ""
    assert sink.requests()[1]["headers"]["x-api-key"] == "k3y value"  # the refused one too
    d = dead.requests()[0]["headers"]
    assert d["ce-name"] == "rejected"
    assert "x-api-key" not in d and "authorization" not in d and "x-empty" not in d


def test_header_file_reload_on_sighup_never_logged(emulator, sink, adapter_factory, workdir):
    emulator.guitars()
    secret = os.path.join(workdir, "key")
    with open(secret, "w") as f:
        f.write("first-S3CRET-value\n")
    a = guitar_adapter(adapter_factory, emulator, sink.url, "--log-level", "debug",
                       "--header-file", f"X-Api-Key={secret}", "--header", "X-Static=st4tic-S3CRET")
    emulator.guitar("one")
    sink.wait_events(1)
    # A Secret volume is updated by swapping a symlink; a rename is the same for us.
    with open(secret + ".new", "w") as f:
        f.write("second-S3CRET-value\r\n")
    os.replace(secret + ".new", secret)
    a.proc.send_signal(signal.SIGHUP)
    a.wait_log(lambda l: l.get("msg") == "header files read again", 15, "the reload")
    emulator.guitar("two")
    sink.wait_events(2)
    # A file that became unreadable keeps the last value, with a warning.
    os.unlink(secret)
    a.proc.send_signal(signal.SIGHUP)
    a.wait_log(lambda l: l.get("msg", "").startswith("cannot read a header file again"), 15,
               "the failed reload")
    emulator.guitar("three")
    sink.wait_events(3)
    assert a.stop() == 0
    reqs = sink.requests()
    assert [r["headers"]["x-api-key"] for r in reqs] == \
        ["first-S3CRET-value", "second-S3CRET-value", "second-S3CRET-value"]
    assert all(r["headers"]["x-static"] == "st4tic-S3CRET" for r in reqs)
    log = open(a.log_path).read()
    assert '"level":"debug"' in log  # debug lines were written, and still no value
    assert "S3CRET" not in log


@pytest.mark.parametrize("args,expect", [
    (["--header", "Bad Name=x"], '--header: "Bad Name" is not a header name'),
    (["--header", "=S3CRET"], '--header: "" is not a header name'),
    (["--header", "X-NoEquals"], '--header: "" is not a header name'),
    (["--header", "ce-id=S3CRET"], '--header: "ce-id" is a header the adapter sets itself'),
    (["--header", "content-type=S3CRET"], '--header: "content-type" is a header the adapter'),
    (["--header", "X-A=S3C\x01RET"], "--header: control character 0x01 at byte 7"),
    (["--header", "X-A=1", "--header", "x-a=S3CRET"], '--header: header "x-a" is given twice'),
    (["--header-file", "X-A=/nonexistent/S3CRET"], "--header-file: X-A=/nonexistent/S3CRET: No such"),
    (["--header-file", "X-A="], '--header-file: "X-A=" needs a file path'),
])
def test_header_bad_inputs_exit_2(args, expect, adapter_factory, workdir):
    a = adapter_factory(["--resource", GUITAR, "-n", NS, "--sink", "http://127.0.0.1:1/",
                         "--kubeconfig", os.path.join(workdir, "none"), *args])
    assert a.wait_exit() == 2
    errors = [l["msg"] for l in a.logs() if l.get("level") == "error"]
    mine = [e for e in errors if e.startswith("--header")]
    assert len(mine) == 1 and mine[0].startswith(expect), errors
    assert all("\n" not in e for e in errors)
    if "nonexistent" not in expect:
        assert "S3CRET" not in open(a.log_path).read()


def test_header_file_control_character_refused(adapter_factory, workdir):
    secret = os.path.join(workdir, "bad")
    with open(secret, "w") as f:
        f.write("two\nlines-S3CRET\n")
    a = adapter_factory(["--resource", GUITAR, "-n", NS, "--sink", "http://127.0.0.1:1/",
                         "--header-file", f"X-A={secret}"])
    assert a.wait_exit() == 2
    errors = [l["msg"] for l in a.logs() if l.get("level") == "error"]
    assert [e for e in errors if e.startswith("--header-file")] == [
        f"--header-file: X-A={secret}: the value holds a control character (after one "
        "trailing line break)"], errors
    assert "S3CRET" not in open(a.log_path).read()


def test_header_authorization_with_oidc_refused(adapter_factory):
    a = adapter_factory(["--resource", GUITAR, "-n", NS, "--sink", "http://127.0.0.1:1/",
                         "--header", "Authorization=Bearer S3CRET"],
                        env={"K_AUDIENCE": "aud", "K_OIDC_SERVICE_ACCOUNT": "sa",
                             "NAMESPACE": NS})
    assert a.wait_exit() == 2
    errors = [l["msg"] for l in a.logs() if l.get("level") == "error"]
    assert any(e.startswith('--header: "Authorization" is the adapter\'s with OIDC')
               for e in errors), errors
    assert "S3CRET" not in open(a.log_path).read()


# ---------------- --strip-managed-fields ----------------

def test_strip_managed_fields_real(cluster_factory, sink_factory, adapter_factory):
    cluster = cluster_factory(backend="real")
    cluster.guitars()
    plain, stripped = sink_factory(), sink_factory()
    a = guitar_adapter(adapter_factory, cluster, plain.url)
    b = guitar_adapter(adapter_factory, cluster, stripped.url, "--strip-managed-fields",
                       "--with-changes")
    cluster.apply(os.path.join(SAMPLES, "guitar-d15.yaml"))
    cluster.kubectl("-n", NS, "label", "guitar", "d15", "helloknative=")
    cluster.kubectl("-n", NS, "delete", "guitar", "d15")
    plain.wait_events(3)
    stripped.wait_events(3)
    assert a.stop() == 0 and b.stop() == 0
    plain_bodies = [json.loads(r["body"]) for r in plain.requests()]
    bodies = [json.loads(r["body"]) for r in stripped.requests()]
    # The real API server writes managedFields: without the flag they arrive.
    assert all("managedFields" in p["metadata"] for p in plain_bodies)
    assert all("managedFields" not in b["metadata"] for b in bodies)
    for p, s in zip(plain_bodies, bodies):
        del p["metadata"]["managedFields"]
        assert p == s  # nothing else touched
    assert stripped.requests()[1]["headers"]["ce-changedpaths"] == "metadata.labels.helloknative"


# ---------------- the Secrets warning ----------------

def secrets_warnings(a):
    return [l for l in a.logs() if l.get("level") == "warn" and "Secrets are watched" in
            l.get("msg", "")]


def test_secrets_warning_once_in_resource_mode(emulator, sink, adapter_factory):
    a = adapter_factory(["--resource", "v1/Secret", "--resource", "v1/ConfigMap", "-n", "default",
                         "--sink", sink.url], kubeconfig=emulator.kubeconfig)
    a.wait_watching(2)
    assert a.stop() == 0
    w = secrets_warnings(a)
    assert len(w) == 1, w
    assert "--mode Reference" in w[0]["msg"]


def test_secrets_warning_not_in_reference_mode(emulator, sink, adapter_factory):
    a = adapter_factory(["--resource", "v1/Secret", "-n", "default", "--sink", sink.url,
                         "--mode", "Reference"], kubeconfig=emulator.kubeconfig)
    a.wait_watching()
    assert a.stop() == 0
    assert secrets_warnings(a) == []
