"""Hostile checkpoints (issue 9): what is planted at or done to --state-dir's
checkpoint, and list items no line-based record survives."""
import json
import os
import signal
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import wait_until
from ledger import Ledger

GUITAR = "kool.karmalabs.local/v1/Guitar"


def bulk(cluster, op, names):
    cluster.control("bulk", {"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar",
                             "namespace": "guitar-eventing", "op": op, "names": list(names)})


def guitar_args(cluster, sink_url, state, *extra):
    return ["--kubeconfig", cluster.kubeconfig, "--resource", GUITAR, "-n", "guitar-eventing",
            "--sink", sink_url, "--state-dir", state, *extra]


def errors(a):
    return [l.get("msg", "") for l in a.logs() if l.get("level") == "error"]


def test_symlink_at_checkpoint_path_not_followed(emulator, sink, adapter_factory, workdir):
    emulator.guitars()
    state = os.path.join(workdir, "state")
    os.mkdir(state)
    target = os.path.join(workdir, "precious")
    with open(target, "w") as f:
        f.write("precious\n")
    # At the temporary file's path: the checkpoint is written beside it, not through it.
    os.symlink(target, os.path.join(state, ".checkpoint.ndjson.tmp"))
    a = adapter_factory(guitar_args(emulator, sink.url, state))
    a.wait_watching()
    ckpt = os.path.join(state, "checkpoint.ndjson")
    wait_until(lambda: os.path.exists(ckpt), 10, "the first checkpoint")
    assert a.stop() == 0
    assert open(target).read() == "precious\n"
    assert stat.S_ISREG(os.lstat(ckpt).st_mode)
    # At the checkpoint's path: refused at start, not read or replaced through.
    os.unlink(ckpt)
    os.symlink(target, ckpt)
    b = adapter_factory(guitar_args(emulator, sink.url, state))
    assert b.wait_exit(10) == 2
    msg = errors(b)
    assert any("checkpoint.ndjson" in m and "symbolic link" in m for m in msg), msg
    assert open(target).read() == "precious\n"
    assert os.path.islink(ckpt)


def test_fifo_at_checkpoint_path_refused_promptly(emulator, sink, adapter_factory, workdir):
    emulator.guitars()
    state = os.path.join(workdir, "state")
    os.mkdir(state)
    os.mkfifo(os.path.join(state, "checkpoint.ndjson"))
    a = adapter_factory(guitar_args(emulator, sink.url, state))
    assert a.wait_exit(10) == 2  # no writer ever opens the FIFO: a blocking open would hang
    msg = errors(a)
    assert any("checkpoint.ndjson" in m and "not a regular file" in m for m in msg), msg


def test_truncated_checkpoint_refused(emulator, sink, adapter_factory, workdir):
    emulator.guitars()
    state = os.path.join(workdir, "state")
    os.mkdir(state)
    a = adapter_factory(guitar_args(emulator, sink.url, state))
    a.wait_watching()
    bulk(emulator, "create", [f"t{i}" for i in range(5)])
    sink.wait_events(5)
    assert a.stop() == 0
    ckpt = os.path.join(state, "checkpoint.ndjson")
    data = open(ckpt, "rb").read()
    # Cut at a line end: the last record (the end record) is gone, every
    # other line is whole.
    cut = data[:data.rstrip(b"\n").rfind(b"\n") + 1]
    assert cut and len(cut) < len(data)
    with open(ckpt, "wb") as f:
        f.write(cut)
    b = adapter_factory(guitar_args(emulator, sink.url, state))
    assert b.wait_exit(10) == 2
    msg = errors(b)
    assert any("checkpoint.ndjson:" in m and "damaged checkpoint" in m and "no end record" in m
               for m in msg), msg


def test_sigkill_right_after_first_list_loses_nothing(emulator, sink, adapter_factory, workdir):
    emulator.guitars()
    bulk(emulator, "create", [f"old{i}" for i in range(20)])  # listed quietly at start
    state = os.path.join(workdir, "state")
    os.mkdir(state)
    ledger = Ledger("SIGKILL right after the first list, restart with --state-dir (emulator)")
    # An interval far away: only the checkpoint after the first list can save the day.
    args = guitar_args(emulator, sink.url, state, "--checkpoint-interval", "3600")
    a = adapter_factory(args)
    a.wait_watching()
    ckpt = os.path.join(state, "checkpoint.ndjson")
    wait_until(lambda: os.path.exists(ckpt), 10, "a checkpoint once the first list completed")
    names = [f"new{i}" for i in range(20)]
    bulk(emulator, "create", names)
    for n in names:
        ledger.change(n, "add")
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    # While it is down:
    bulk(emulator, "update", [f"old{i}" for i in range(10)])
    for i in range(10):
        ledger.change(f"old{i}", "update")
    more = [f"down{i}" for i in range(10)]
    bulk(emulator, "create", more)
    for n in more:
        ledger.change(n, "add")
    b = adapter_factory(args)
    b.wait_watching()
    wait_until(lambda: ledger_complete(ledger, sink), 30, "every change at the sink")
    assert b.stop() == 0
    ledger.check(sink.requests(), allow_duplicates=True)


def ledger_complete(ledger, sink):
    got, _ = ledger.settle(sink.requests())
    return all(len(got.get(n, [])) >= len(ops) for n, ops in ledger.made.items())


# ---------------- a hostile API server: pretty-printed lists ----------------

ITEMS = 3


class PrettyAPI(BaseHTTPRequestHandler):
    """Serves ConfigMaps in namespace "ns" as a pretty-printed list (each item
    over many lines, as any JSON encoder may write it); watches stay open and
    silent."""
    protocol_version = "HTTP/1.1"
    stop = threading.Event()

    def log_message(self, *args):
        pass

    def send(self, code, body, chunked=False):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not chunked:
            self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/api/v1":
            self.send(200, json.dumps({
                "kind": "APIResourceList", "groupVersion": "v1", "resources": [{
                    "name": "configmaps", "singularName": "configmap", "namespaced": True,
                    "kind": "ConfigMap", "verbs": ["get", "list", "watch"]}]}).encode())
        elif path == "/api/v1/namespaces/ns/configmaps" and "watch=" not in query:
            items = [{"metadata": {"name": f"cm{i}", "namespace": "ns", "uid": f"uid-{i}",
                                   "resourceVersion": str(10 + i)},
                      "data": {"note": "line one\nline two"}} for i in range(ITEMS)]
            self.send(200, json.dumps({"kind": "ConfigMapList", "apiVersion": "v1",
                                       "metadata": {"resourceVersion": "20"}, "items": items},
                                      indent=2).encode())
        elif path == "/api/v1/namespaces/ns/configmaps":
            self.send(200, b"", chunked=True)
            self.wfile.flush()
            self.stop.wait(60)
        else:
            self.send(404, json.dumps({"kind": "Status", "code": 404}).encode())


@pytest.fixture
def pretty_api(workdir):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), PrettyAPI)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    kubeconfig = os.path.join(workdir, "pretty-kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: http://127.0.0.1:{srv.server_address[1]}
users:
- name: u
  user:
    token: t
contexts:
- name: x
  context:
    cluster: c
    user: u
    namespace: ns
current-context: x
""")
    yield kubeconfig
    PrettyAPI.stop.set()
    srv.shutdown()


def test_pretty_printed_list_items_survive_restart(pretty_api, adapter_factory, workdir):
    state = os.path.join(workdir, "state")
    os.mkdir(state)
    args = ["--kubeconfig", pretty_api, "--resource", "v1/ConfigMap", "-n", "ns", "--sink", "-",
            "--state-dir", state, "--initial-events"]
    a = adapter_factory(args)
    a.wait_watching()
    # --sink -: one event per line, each line one JSON document.
    wait_until(lambda: len(open(a.stdout_path).read().splitlines()) >= ITEMS, 10,
               "the initial events on stdout")
    assert a.stop() == 0
    lines = a.stdout_lines()
    assert sorted(l["name"] for l in lines) == [f"cm{i}" for i in range(ITEMS)]
    assert all(l["data"]["data"]["note"] == "line one\nline two" for l in lines)
    b = adapter_factory(args)
    loaded = b.wait_log(lambda l: l.get("msg") == "checkpoint loaded", 10, "the checkpoint")
    assert loaded[0]["objects"] == ITEMS
    b.wait_watching()
    assert b.stop() == 0
    assert b.stdout_lines() == []  # nothing changed: nothing reported again
