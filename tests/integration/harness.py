"""Helpers for the integration tests (the fixtures that make them live in
conftest.py): the real adapter binary against the Kubernetes API emulator or
kube-apiserver (scripts/local-cluster), a recording sink, and wait_until.

Every helper waits on a condition with a deadline; nothing sleeps and hopes.
Test files import what they need from here: `from harness import wait_until`.
"""
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ADAPTER = os.environ.get("ADAPTER_BIN", os.path.join(ROOT, "build", "apiserversource-adapter"))
SAMPLES = os.path.join(ROOT, "samples")
RBAC = os.path.join(ROOT, "rbac")
SINK_PY = os.path.join(ROOT, "tests", "emulator", "sink.py")
LOCAL_CLUSTER = os.path.join(ROOT, "scripts", "local-cluster")
# A kubeconfig that is read, never connected to: for bad-input cases that
# exit 2 before any connection.
OFFLINE_KUBECONFIG = """apiVersion: v1
kind: Config
current-context: x
contexts:
- name: x
  context: {cluster: c, user: u, namespace: default}
clusters:
- name: c
  cluster: {server: "http://127.0.0.1:1"}
users:
- name: u
  user: {token: t}
"""


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout=15.0, what="condition"):
    """Polls pred() until it returns a true value (returned) or the deadline
    passes (AssertionError).  `what` names the condition in the message; a
    callable is called at the moment of failure, so a count it prints is the
    one observed then, not the one when the wait began."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what() if callable(what) else what}")
        time.sleep(0.02)


BACKENDS = [b for b in os.environ.get("TEST_BACKENDS", "emulator,real").split(",") if b]


class ServiceAccountDir:
    """What the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount:
    token, ca.crt and namespace, the token behind a symlink into a ..data
    directory, rotated the kubelet's way (new directory, symlink swap)."""

    def __init__(self, workdir, token, ca_pem, namespace):
        self.path = os.path.join(workdir, "serviceaccount")
        self.generation = 0
        os.makedirs(self.path)
        self._write_token(token)
        os.symlink(f"..data{self.generation}/token", os.path.join(self.path, "token"))
        with open(os.path.join(self.path, "ca.crt"), "wb") as f:
            f.write(ca_pem)
        with open(os.path.join(self.path, "namespace"), "w") as f:
            f.write(namespace)

    def _write_token(self, token):
        self.generation += 1
        d = os.path.join(self.path, f"..data{self.generation}")
        os.makedirs(d)
        with open(os.path.join(d, "token"), "w") as f:
            f.write(token + "\n")

    def rotate(self, token):
        import shutil
        old = os.path.join(self.path, f"..data{self.generation}")
        self._write_token(token)
        tmp = os.path.join(self.path, "token.tmp")
        os.symlink(f"..data{self.generation}/token", tmp)
        os.replace(tmp, os.path.join(self.path, "token"))
        shutil.rmtree(old)


class Cluster:
    """A Kubernetes API on loopback with an admin kubeconfig: the emulator, or
    (backend "real") etcd and kube-apiserver started by local-cluster --real."""

    def __init__(self, workdir, extra_args=(), backend="emulator"):
        self.dir = workdir
        self.backend = backend
        self.real = backend == "real"
        self.kubeconfig = os.path.join(workdir, "kubeconfig")
        self.env_file = os.path.join(workdir, "controlplane.env")
        self.out = open(os.path.join(workdir, "local-cluster.out"), "w+")
        self.err = open(os.path.join(workdir, "local-cluster.err"), "w+")
        args = [LOCAL_CLUSTER, "--kubeconfig", self.kubeconfig]
        if self.real:
            args.insert(1, "--real")
            extra_args = ["--env-file", self.env_file, *extra_args]
        if extra_args:
            args += ["--", *extra_args]
        self._start(args)
        cfg = open(self.kubeconfig).read()
        self.server = next(l.split("server:", 1)[1].strip() for l in cfg.splitlines()
                           if "server:" in l)
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.token = None
        if self.real:
            env = dict(l.strip().split("=", 1) for l in open(self.env_file) if "=" in l)
            self.etcd_url = env["ETCD_URL"]
            self.plane_dir = env["CONTROLPLANE_DIR"]
            self.ca_file = env["CA_FILE"]
            self.ctx.load_cert_chain(os.path.join(self.plane_dir, "admin.crt"),
                                     os.path.join(self.plane_dir, "admin.key"))
        else:
            self.token = next(l.split("token:", 1)[1].strip() for l in cfg.splitlines()
                              if l.strip().startswith("token:"))

    def _start(self, args):
        """Starts local-cluster and waits for `ready`.  The real control plane
        gets one second try: on a loaded machine (other workers building or
        running their own control planes) kube-apiserver has been seen to miss
        its readiness deadline once; the fixture is not what a test checks.
        start-real gives up after 30 s (etcd) + 90 s (kube-apiserver), so the
        wait is longer than that and the failure carries start-real's reason."""
        tries = 2 if self.real else 1
        for attempt in range(1, tries + 1):
            self.out.seek(0)
            self.out.truncate()
            self.err.seek(0)
            self.err.truncate()
            self.proc = subprocess.Popen(args, stdout=self.out, stderr=self.err)
            try:
                wait_until(self._ready, 150 if self.real else 20,
                           lambda: "local-cluster to print ready; its stderr ends: "
                           + self._err_tail())
                return
            except AssertionError as e:
                self.stop()
                if attempt == tries:
                    raise
                sys.stderr.write(f"harness: control plane start {attempt} failed, again: {e}\n")

    def _err_tail(self, n=1500):
        self.err.seek(0)
        return self.err.read()[-n:]

    def _ready(self):
        if self.proc.poll() is not None:
            self.err.seek(0)
            raise AssertionError("local-cluster exited: " + self.err.read())
        self.out.seek(0)
        return "ready" in self.out.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kubectl(self, *args, input=None, check=True):
        r = subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, *args], input=input,
                           capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {r.stderr}")
        return r

    def apply(self, text_or_path):
        if os.path.exists(text_or_path):
            return self.kubectl("apply", "-f", text_or_path)
        return self.kubectl("apply", "-f", "-", input=text_or_path)

    def api(self, method, path, body=None, auth=True):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth and self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def control(self, what, body=None, method="POST"):
        assert not self.real, "fault injection is the emulator's"
        return self.api(method, "/_emulator/" + what, body if body is not None else {}, False)

    def expire_history(self):
        """Makes every resourceVersion seen so far too old to watch from: the
        emulator drops its history; the real one (started with
        --watch-cache=false) compacts etcd two revisions past now."""
        if not self.real:
            self.control("compact")
            return
        import base64
        key = base64.b64encode(b"test/compaction-bump").decode()
        rev = None
        for _ in range(2):
            req = urllib.request.Request(self.etcd_url + "/v3/kv/put", method="POST",
                                         data=json.dumps({"key": key, "value": "eA=="}).encode())
            rev = json.loads(urllib.request.urlopen(req, timeout=10).read())["header"]["revision"]
        req = urllib.request.Request(self.etcd_url + "/v3/kv/compaction", method="POST",
                                     data=json.dumps({"revision": rev, "physical": True}).encode())
        urllib.request.urlopen(req, timeout=10).read()

    def restart_apiserver(self):
        assert self.real
        before = self._count_restarts()
        self.proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: self._count_restarts() > before, 90, "kube-apiserver to restart")

    def _count_restarts(self):
        self.out.seek(0)
        return self.out.read().count("restarted")

    def proxied_kubeconfig(self, proxy, path=None, token=None):
        """A copy of the kubeconfig whose server is the proxy (and, if given,
        whose user is a bearer token instead of the admin)."""
        import re
        text = open(self.kubeconfig).read()
        text = re.sub(r"server: \S+", f"server: https://127.0.0.1:{proxy.port}", text)
        if token:
            text = re.sub(r"(?ms)^users:.*?(?=^contexts:)",
                          f"users:\n- name: sa\n  user:\n    token: {token}\n", text)
            text = re.sub(r"user: \S+", "user: sa", text)
        path = path or os.path.join(self.dir, f"kubeconfig-proxy-{proxy.port}")
        with open(path, "w") as f:
            f.write(text)
        return path

    def ca_pem(self):
        import base64
        import re
        data = re.search(r"certificate-authority-data:\s*(\S+)", open(self.kubeconfig).read())
        return base64.b64decode(data.group(1))

    def stats(self):
        return self.api("GET", "/_emulator/stats", None, False)

    def guitars(self):
        self.apply(os.path.join(SAMPLES, "guitar-crd.yaml"))
        self.apply(os.path.join(SAMPLES, "guitar-namespace.yaml"))

    def guitar(self, name, ns="guitar-eventing", labels=None, brand="martin"):
        meta = {"name": name, "namespace": ns}
        if labels:
            meta["labels"] = labels
        self.apply(json.dumps({"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar",
                               "metadata": meta, "spec": {"brand": brand, "review": False}}))


class Sink:
    """The recording sink: every request the adapter made, in order."""

    def __init__(self, workdir, responses="", extra=(), port=0):
        self.record = os.path.join(workdir, "sink.jsonl")
        open(self.record, "w").close()
        out_path = os.path.join(workdir, "sink.out")
        # The sink appends (O_APPEND) and each poll opens the file anew: no file
        # offset shared with the child, which a seek here would move under it.
        self.out = open(out_path, "a")
        args = ["python3", SINK_PY, "--port", str(port), "--record", self.record, *extra]
        if responses:
            args += ["--responses", responses]
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT)

        def port():
            with open(out_path) as f:
                text = f.read()
            for line in text.splitlines():
                if line.startswith("port "):
                    return int(line.split()[1])
            if self.proc.poll() is not None:
                raise AssertionError(f"the sink exited ({self.proc.returncode}): {text[-500:]}")
            return None
        # Generous: with TEST_JOBS cases at once under the sanitizers, a Python
        # start can take seconds.
        self.port = wait_until(port, 30, "the sink's port")
        self.url = f"http://127.0.0.1:{self.port}/"

    def requests(self):
        with open(self.record) as f:
            text = f.read()
        # The sink may be writing the last line right now: only whole lines count.
        return [json.loads(l) for l in text[:text.rfind("\n") + 1].splitlines() if l.strip()]

    def events(self):
        """Requests the sink accepted (2xx), as (headers, parsed body)."""
        return [r for r in self.requests() if r.get("status") and 200 <= r["status"] < 300]

    def wait_requests(self, n, timeout=15.0):
        return wait_until(lambda: (lambda r: len(r) >= n and r)(self.requests()), timeout,
                          lambda: f"{n} requests at the sink (have {len(self.requests())})")

    def wait_events(self, n, timeout=15.0):
        return wait_until(lambda: (lambda e: len(e) >= n and e)(self.events()), timeout,
                          lambda: f"{n} accepted events at the sink (have {len(self.events())})")

    def set_responses(self, responses, default=200):
        req = urllib.request.Request(self.url + "_sink/responses",
                                     data=json.dumps({"responses": responses,
                                                      "default": default}).encode(),
                                     method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Adapter:
    def __init__(self, workdir, args, env=None, kubeconfig=None):
        self.log_path = os.path.join(workdir, f"adapter-{time.monotonic_ns()}.log")
        self.stdout_path = self.log_path + ".out"
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith("K_") and k not in ("KUBECONFIG", "NAME", "NAMESPACE",
                                                             "KUBERNETES_SERVICE_HOST",
                                                             "KUBERNETES_SERVICE_PORT")}
        full_env.update(env or {})
        cmd = [ADAPTER]
        if kubeconfig:
            cmd += ["--kubeconfig", kubeconfig]
        cmd += list(args)
        # Many adapters run at once here: each gets free ports for its probes
        # and metrics unless the test chooses (the log names the ports).
        for flag in ("--probes-addr", "--metrics-addr"):
            if flag == "--metrics-addr" and "K_OBSERVABILITY_CONFIG" in (env or {}):
                continue  # the test checks what that configuration decides
            if flag not in cmd:
                cmd += [flag, "127.0.0.1:0"]
        self.proc = subprocess.Popen(cmd, stdout=open(self.stdout_path, "w"),
                                     stderr=open(self.log_path, "w"), env=full_env)

    def logs(self):
        out = []
        with open(self.log_path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except ValueError:
                    # Sanitizer reports are plain text; keep them visible.
                    out.append({"msg": line, "level": "raw"})
        return out

    def stdout_lines(self):
        with open(self.stdout_path) as f:
            text = f.read()
        return [json.loads(l) for l in text[:text.rfind("\n") + 1].splitlines() if l.strip()]

    def wait_log(self, pred, timeout=15.0, what="a log line"):
        def find():
            if self.proc.poll() is not None:
                found = [l for l in self.logs() if pred(l)]
                if found:
                    return found
                raise AssertionError(f"adapter exited ({self.proc.returncode}) before "
                                     f"{what() if callable(what) else what}: "
                                     + open(self.log_path).read()[-3000:])
            return [l for l in self.logs() if pred(l)]
        return wait_until(find, timeout, what)

    def ports(self, timeout=15.0):
        """(probes port, metrics port) from the start-up log line."""
        line = self.wait_log(lambda l: l.get("msg") == "serving probes and metrics",
                             timeout, "the probes to listen")[0]
        return line["probes_port"], line["metrics_port"]

    def get(self, path, metrics=False, timeout=2.0):
        """GET on the adapter's probes (or metrics) port: (status, body)."""
        import urllib.error
        port = self.ports()[1 if metrics else 0]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def watching_count(self):
        return len([l for l in self.logs() if l.get("msg") == "watching"])

    def wait_watching(self, count=1, timeout=15.0):
        return wait_until(lambda: self.watching_count() >= count or self._dead(), timeout,
                          lambda: f"{count} watches (have {self.watching_count()})") and \
            self._alive_or_fail()

    def _dead(self):
        return self.proc.poll() is not None

    def _alive_or_fail(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"adapter exited ({self.proc.returncode}): "
                                 + open(self.log_path).read()[-3000:])
        return True

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("adapter did not exit after SIGTERM")

    def wait_exit(self, timeout=15):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("adapter did not exit")

    def sanitizer_clean(self):
        text = open(self.log_path).read()
        return "ERROR: AddressSanitizer" not in text and "ERROR: LeakSanitizer" not in text \
            and "runtime error:" not in text
