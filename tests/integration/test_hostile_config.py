"""Hostile configuration values (issue 9, "quiet acceptance"; issue 8 item 8):
each is refused at start with exit status 2 and one line naming the flag, the
variable or the file, before any connection is opened."""
import os
import re
import subprocess

import pytest

from harness import ADAPTER, OFFLINE_KUBECONFIG



@pytest.fixture
def kubeconfig(workdir):
    """A valid kubeconfig (read, never connected to: every run here exits 2
    before connecting)."""
    path = os.path.join(workdir, "kubeconfig")
    with open(path, "w") as f:
        f.write(OFFLINE_KUBECONFIG)
    return path


def base(kubeconfig):
    return ["--resource", "v1/Pod", "--sink", "-", "--kubeconfig", kubeconfig]


def config_errors(a):
    """The error lines of a run that must exit 2 on its configuration."""
    assert a.wait_exit() == 2, open(a.log_path).read()[-3000:]
    errors = [l["msg"] for l in a.logs() if l.get("level") == "error"]
    assert all("\n" not in m and "\r" not in m for m in errors), errors  # one line each
    return errors


def one_error(a, prefix):
    errors = config_errors(a)
    assert len(errors) == 1 and errors[0].startswith(prefix), errors
    return errors[0]


def help_options():
    """(flag, takes a value, "" documented) for every option --help lists:
    the help text is generated from the option table."""
    out = subprocess.run([ADAPTER, "--help"], capture_output=True, text=True, check=True).stdout
    opts = []
    for line in out.splitlines():
        m = re.match(r"^  (?:-\w, )?(--[a-z-]+)( \S+)?", line)
        if m:
            opts.append((m.group(1), bool(m.group(2)), '""' in line))
    assert len(opts) > 25, out
    return opts


VALUED = [o for o in help_options() if o[1]]


# ---------------- --state-dir ----------------

def test_state_dir_empty_is_refused(adapter_factory, kubeconfig):
    a = adapter_factory(base(kubeconfig) + ["--state-dir", ""])
    one_error(a, "--state-dir: empty value; leave --state-dir out to keep no checkpoints")


def test_state_dir_nonexistent_is_refused(emulator, adapter_factory, workdir):
    """Refused at start (it was accepted, and each checkpoint interval logged
    an error); no connection is opened."""
    missing = os.path.join(workdir, "no-such-dir")
    before = emulator.stats()["requests"]
    a = adapter_factory(["--resource", "v1/Pod", "--sink", "-", "--state-dir", missing],
                        kubeconfig=emulator.kubeconfig)
    one_error(a, f"--state-dir: {missing}: No such file or directory")
    assert not os.path.exists(missing)  # not created
    assert emulator.stats()["requests"] == before


def test_state_dir_not_a_directory_is_refused(adapter_factory, kubeconfig, workdir):
    path = os.path.join(workdir, "a-file")
    open(path, "w").close()
    a = adapter_factory(base(kubeconfig) + ["--state-dir", path])
    one_error(a, f"--state-dir: {path}: not a directory")


def test_state_dir_unwritable_is_refused(adapter_factory, kubeconfig, workdir):
    path = os.path.join(workdir, "read-only")
    os.mkdir(path, 0o555)
    if os.geteuid() == 0:
        path = "/sys"  # root writes through mode bits, not into sysfs
    a = adapter_factory(base(kubeconfig) + ["--state-dir", path])
    msg = one_error(a, f"--state-dir: {path}: cannot write there")
    assert "Permission denied" in msg or "Read-only" in msg, msg


def test_state_dir_writable_is_left_clean(emulator, adapter_factory, workdir):
    """The write check leaves nothing behind in a good state directory."""
    state = os.path.join(workdir, "state")
    os.mkdir(state)
    a = adapter_factory(["--resource", "v1/Pod", "--sink", "-", "--state-dir", state],
                        kubeconfig=emulator.kubeconfig)
    a.wait_watching(1)
    assert not [f for f in os.listdir(state) if "probe" in f], os.listdir(state)
    assert a.stop() == 0


# ---------------- -n ----------------

def test_namespace_empty_is_refused(adapter_factory, kubeconfig):
    """kubectl reads -n "" as the context's namespace; it was silently
    ignored here. It is refused, saying how to get that."""
    a = adapter_factory(base(kubeconfig) + ["-n", ""])
    one_error(a, "--namespace: empty value; leave -n out to watch the kubeconfig context's "
                 "namespace")


def test_namespace_empty_in_list_is_refused(adapter_factory, kubeconfig):
    a = adapter_factory(base(kubeconfig) + ["-n", "a,,b"])
    one_error(a, '--namespace: "a,,b" has an empty namespace name')


# ---------------- every option, from --help ----------------

@pytest.mark.parametrize("flag,documented", [(o[0], o[2]) for o in VALUED])
def test_empty_value_is_refused(adapter_factory, kubeconfig, flag, documented):
    if documented:
        # "" means what --help says: no complaint about it, only about --mode.
        a = adapter_factory(base(kubeconfig) + [flag, "", "--mode", "Both"])
        one_error(a, "--mode: must be Resource or Reference")
        return
    a = adapter_factory(base(kubeconfig) + [flag, ""])
    one_error(a, f"{flag}: empty value")


@pytest.mark.parametrize("flag", [o[0] for o in VALUED])
def test_control_character_is_refused(adapter_factory, kubeconfig, flag):
    a = adapter_factory(base(kubeconfig) + [flag, "x\x01y"])
    one_error(a, f"{flag}: control character 0x01 at byte 1")


@pytest.mark.parametrize("var", ["K_SINK", "NAME", "NAMESPACE", "K_SINK_TIMEOUT", "KUBECONFIG",
                                 "K_AUDIENCE", "KUBERNETES_SERVICE_HOST"])
def test_env_control_character_is_refused(adapter_factory, kubeconfig, var):
    env = {var: "x\r\nX-Injected: 1"}
    args = ["--resource", "v1/Pod", "--sink", "-"]
    if var != "KUBECONFIG":
        args += ["--kubeconfig", kubeconfig]
    a = adapter_factory(args, env=env)
    one_error(a, f"{var}: control character 0x0d at byte 1")


def test_source_config_nul_escape_is_refused(adapter_factory, kubeconfig):
    """\\u0000 used to cut the string short ("pods\\u0000x" read as "pods")."""
    env = {"K_SOURCE_CONFIG": '{"resources":[{"gvr":{"Version":"v1","Resource":"pods\\u0000x"}}]}',
           "K_SINK": "-"}
    a = adapter_factory(["--kubeconfig", kubeconfig], env=env)
    one_error(a, "K_SOURCE_CONFIG: invalid JSON: a string contains \\u0000")


@pytest.mark.parametrize("flag", ["--sink", "--dead-letter"])
def test_refused_sink_url_credentials_not_logged(adapter_factory, kubeconfig, flag):
    """The "not an http:// URL" error printed the URL whole, password included."""
    args = ["--resource", "v1/Pod", "--kubeconfig", kubeconfig]
    if flag == "--sink":
        args += ["--sink", "ftp://bob:hunter2@sink.example/x"]
    else:
        args += ["--sink", "http://127.0.0.1:9", flag, "ftp://bob:hunter2@dls.example/x"]
    a = adapter_factory(args)
    line = one_error(a, f"{flag}: ")
    assert "is not an http:// or https:// URL" in line, line
    assert "hunter2" not in open(a.log_path).read()
    assert "bob" not in line, line


def test_manifest_control_character_is_refused(adapter_factory, kubeconfig, workdir):
    path = os.path.join(workdir, "source.yaml")
    with open(path, "w") as f:
        f.write("apiVersion: sources.knative.dev/v1\nkind: ApiServerSource\n"
                "metadata: {name: s, namespace: default}\n"
                "spec:\n  resources: [{apiVersion: v1, kind: Pod}]\n"
                "  ceOverrides: {extensions: {team: \"a\\r\\nX-Injected: 1\"}}\n"
                "  sink: {uri: 'http://127.0.0.1:9/'}\n")
    a = adapter_factory(["--source-file", path, "--kubeconfig", kubeconfig])
    one_error(a, f"{path}:6:")


# ---------------- all at once (issue 8 item 8) ----------------

def test_every_problem_reported_at_once(adapter_factory, workdir):
    """A bad --resource, -n "", a missing state directory, a control
    character and a missing kubeconfig: five lines in one run."""
    missing_kc = os.path.join(workdir, "no-such-kubeconfig")
    missing_dir = os.path.join(workdir, "no-such-dir")
    a = adapter_factory(["--resource", "Guitar", "-n", "", "--state-dir", missing_dir,
                         "--name", "a\tb", "--sink", "-", "--kubeconfig", missing_kc])
    errors = config_errors(a)
    want = ['--resource: "Guitar" is not APIVERSION/KIND', "--namespace: empty value",
            f"--state-dir: {missing_dir}: No such file", "--name: control character 0x09"]
    for w in want:
        assert [m for m in errors if m.startswith(w)], (w, errors)
    assert [m for m in errors if missing_kc in m and "cannot read" in m], errors
    assert not [m for m in errors if "nothing to watch" in m], errors
    assert len(errors) == 5, errors
