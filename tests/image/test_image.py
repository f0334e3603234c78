"""The container image: scripts/build-image builds it and exports its root
file system; these tests look at that exported root (the image itself, not the
staging directory) and run the adapter from it with scripts/run-in-rootfs:
read-only root, uid/gid 65532, no capabilities, own pid namespace, as a
kubelet would. `podman run` does not work on these machines; bwrap does."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "localhost/apiserversource-adapter"
BIN = "/usr/bin/apiserversource-adapter"
RUN = os.path.join(ROOT, "scripts", "run-in-rootfs")
# The flags scripts/build-image gives podman, e.g. another storage driver and root.
PODMAN = ["podman"] + os.environ.get("PODMAN_FLAGS", "").split()


def project_version():
    with open(os.path.join(ROOT, "meson.build")) as f:
        return re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)


@pytest.fixture(scope="module")
def rootfs():
    out = subprocess.run([os.path.join(ROOT, "scripts", "build-image")], stdout=subprocess.PIPE,
                         text=True, check=True, timeout=1800).stdout
    if not shutil.which("bwrap"):  # build-image installs it
        pytest.fail("bubblewrap is needed to run the image's root (apt-get install bubblewrap)")
    path = out.strip().splitlines()[-1]
    assert os.path.isfile(os.path.join(path, BIN.lstrip("/"))), path
    return path


def run(rootfs, *argv, binds=(), env=(), timeout=30):
    args = [RUN]
    for src, dest in binds:
        args += ["--ro-bind", src, dest]
    for e in env:
        args += ["--env", e]
    return subprocess.run(args + [rootfs, "--", BIN, *argv], capture_output=True, text=True,
                          timeout=timeout)


def ldd_paths(binary):
    """The files ldd says the binary loads: libraries and the loader."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("/"):
            paths.add(parts[2])
        elif parts and parts[0].startswith("/"):
            paths.add(parts[0])
    return paths


def test_only_what_the_binary_needs(rootfs):
    libs = ldd_paths(os.path.join(rootfs, BIN.lstrip("/")))
    assert any("ld-linux" in p for p in libs) and any("/libc.so" in p for p in libs), libs
    files = libs | {BIN, "/etc/ssl/certs/ca-certificates.crt", "/etc/passwd", "/etc/group",
                    "/etc/nsswitch.conf"}
    dirs = set()
    for f in files:
        d = os.path.dirname(f)
        while d != "/":
            dirs.add(d)
            d = os.path.dirname(d)
    actual_files, actual_dirs, other = set(), set(), set()
    for top, dnames, fnames in os.walk(rootfs):
        rel = "/" + os.path.relpath(top, rootfs)
        for n in dnames:
            p = os.path.normpath(os.path.join(rel, n))
            (other if os.path.islink(os.path.join(top, n)) else actual_dirs).add(p)
        for n in fnames:
            p = os.path.normpath(os.path.join(rel, n))
            full = os.path.join(top, n)
            (actual_files if os.path.isfile(full) and not os.path.islink(full) else other).add(p)
    assert other == set(), "symlinks or special files in the image"
    assert actual_files - files == set(), "files the binary does not need"
    assert files - actual_files == set(), "files missing from the image"
    assert actual_dirs == dirs
    # Real files, the host's own libraries (symlinks resolved).
    for lib in libs:
        with open(os.path.realpath(lib), "rb") as a, open(os.path.join(rootfs, lib.lstrip("/")), "rb") as b:
            assert a.read() == b.read(), lib


def test_etc(rootfs):
    etc = os.path.join(rootfs, "etc")
    with open(os.path.join(etc, "passwd")) as f:
        assert "nonroot:x:65532:65532:" in f.read()
    with open(os.path.join(etc, "group")) as f:
        assert "nonroot:x:65532:" in f.read()
    with open(os.path.join(etc, "nsswitch.conf")) as f:
        assert re.search(r"^hosts:\s+files dns$", f.read(), re.M)
    with open(os.path.join(etc, "ssl/certs/ca-certificates.crt")) as f:
        assert f.read().count("BEGIN CERTIFICATE") > 50
    # Stripped: no symbol table left.
    out = subprocess.run(["readelf", "-S", os.path.join(rootfs, BIN.lstrip("/"))],
                         capture_output=True, text=True, check=True).stdout
    assert ".symtab" not in out


def test_version_read_only_as_65532(rootfs):
    r = run(rootfs, "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"apiserversource-adapter {project_version()}\n"


def test_image_config(rootfs, capsys):
    out = subprocess.run(PODMAN + ["image", "inspect", f"{IMAGE}:{project_version()}"],
                         capture_output=True, text=True, check=True).stdout
    img = json.loads(out)[0]
    cfg = img["Config"]
    assert cfg["User"] in ("65532:65532", "65532")
    assert cfg["Entrypoint"] == [BIN]
    assert not cfg.get("Cmd")
    labels = cfg["Labels"]
    assert labels["org.opencontainers.image.title"] == "apiserversource-adapter"
    assert labels["org.opencontainers.image.version"] == project_version()
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert "org.opencontainers.image.source" in labels
    latest = subprocess.run(PODMAN + ["image", "inspect", "--format", "{{.Id}}", f"{IMAGE}:latest"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert latest == img["Id"]
    du = subprocess.run(["du", "-sb", rootfs], capture_output=True, text=True, check=True).stdout
    with capsys.disabled():
        print(f"\nimage {IMAGE}:{project_version()}: {img['Size']} bytes; "
              f"exported root file system: {du.split()[0]} bytes")


def run_in_cluster(rootfs, tmp_path, *argv, until, timeout=20.0):
    """The adapter as a pod runs it: service account dir and /etc/hosts bound
    read-only, the API at host name "apiserver" -> 127.0.0.1, on a port where
    nothing listens. Stopped with SIGTERM once its log holds `until` (or at
    the deadline, when the caller's assertions then say what is missing);
    until=None waits for the adapter to exit by itself."""
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    shutil.copy(os.path.join(rootfs, "etc/ssl/certs/ca-certificates.crt"), sa / "ca.crt")
    (sa / "token").write_text("not-a-real-token\n")
    (sa / "namespace").write_text("default\n")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.1 apiserver\n")
    args = [RUN, "--ro-bind", str(hosts), "/etc/hosts",
            "--ro-bind", str(sa), "/var/run/secrets/kubernetes.io/serviceaccount",
            "--env", "KUBERNETES_SERVICE_HOST=apiserver", "--env", "KUBERNETES_SERVICE_PORT=1",
            rootfs, "--", BIN, "--sink", "-", "--resource", "v1/Pod",
            # Host network here: free ports, not the Deployment's 8080 and 9092.
            "--probes-addr", "127.0.0.1:0", "--metrics-addr", "off", *argv]
    err_path = tmp_path / "adapter.err"
    with open(err_path, "w") as err_file:
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err_file, text=True)
        deadline = time.monotonic() + timeout
        while (until is None or until not in err_path.read_text()) and p.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)  # the runner passes it on to the adapter (pid 1 inside)
        out, _ = p.communicate(timeout=30)
    return p.returncode, out, err_path.read_text()


def test_in_cluster_resolves_hosts_and_stops_on_sigterm(rootfs, tmp_path):
    rc, out, err = run_in_cluster(rootfs, tmp_path, until="Failed to connect to apiserver")
    # getaddrinfo read /etc/hosts through the image's nsswitch.conf: the name
    # resolved and only the connection failed.
    assert "Failed to connect to apiserver port 1" in err, err
    assert "resolve" not in err.lower(), err
    assert "signal received" in err, err
    assert rc == 0, err


def test_root_is_read_only(rootfs, tmp_path):
    # No shell in the image, so the adapter's own state-dir check is the probe:
    # given a state dir that exists in the image, it cannot write there, and
    # says so at start (exit 2).
    rc, out, err = run_in_cluster(rootfs, tmp_path, "--state-dir", "/etc", "--checkpoint-interval",
                                  "1", until=None)
    assert "--state-dir: /etc: cannot write there (Read-only file system)" in err, err
    assert rc == 2, err
