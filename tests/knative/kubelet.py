"""kubelet.py - a kubelet (and deployment-controller) stand-in for the Knative tests.

Runs the `receive-adapter` container of the Deployments Knative's controller creates, the way a
kubelet would, with nothing but the Python standard library, `ip netns`, `kubectl` and `bwrap`:

- the image's root file system (a directory) bound read-only as `/`, the process as uid/gid 65532
  in its own user, PID (as PID 1), IPC and UTS namespaces, all capabilities dropped, the
  environment cleared and set from the pod spec (fieldRefs resolved) plus
  KUBERNETES_SERVICE_HOST/PORT;
- a projected service-account directory (TokenRequest token for the pod's serviceAccountName,
  the control plane's CA, the namespace) rotated the kubelet's way (..data directory + symlink
  swap), bound read-only at /var/run/secrets/kubernetes.io/serviceaccount; a private /etc/hosts
  mapping the test's Service names to 127.0.0.1, /etc/resolv.conf and /etc/hostname;
- its own network namespace (`ip netns add pod-XXXX`, lo up) reached only through Bridges:
  listening sockets created inside the pod netns (setns in a short-lived thread; a socket keeps
  the namespace it was created in) relaying to 127.0.0.1 ports on the host: the API server's port
  (same number, so the serving cert's IP:127.0.0.1 SAN verifies) and port 80 -> the test's sink;
- readiness and liveness httpGet probes from sockets inside the pod netns, periods scaled down,
  timeouts and thresholds honoured; restart on liveness failure (counted); restart after an exit
  (restartPolicy Always) with a scaled back-off;
- the Deployment's status patched as the deployment controller would (Available/Progressing,
  ready replicas) when readiness changes;
- SIGTERM, terminationGracePeriodSeconds, then SIGKILL; exit codes recorded; stdout and stderr of
  every container run in separate files.

Everything is torn down by Kubelet.stop() (processes, bridges, netns), also after a failure.
"""
import concurrent.futures
import ctypes
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)

SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
CONTAINER_NAME = "receive-adapter"
DEFAULT_ENTRYPOINT = ["/usr/bin/apiserversource-adapter"]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def log(msg):
    print(f"kubelet: {msg}", flush=True)


class Netns:
    """A network namespace with only loopback, like a pod sandbox without a CNI."""

    def __init__(self, name=None):
        self.name = name or "pod-" + secrets.token_hex(4)
        self.path = f"/run/netns/{self.name}"
        run(["ip", "netns", "add", self.name])
        try:
            run(["ip", "-n", self.name, "link", "set", "lo", "up"])
        except Exception:
            self.delete()
            raise

    def socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM):
        """A socket created inside this namespace: a short-lived thread joins the namespace
        (network namespaces are per thread), creates it and ends; the socket keeps the
        namespace for its whole life, whichever thread uses it."""
        out = {}

        def make():
            try:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns({self.path}): {os.strerror(err)}")
                finally:
                    os.close(fd)
                out["sock"] = socket.socket(family, type)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                out["err"] = e
        t = threading.Thread(target=make, name=f"setns-{self.name}")
        t.start()
        t.join()
        if "err" in out:
            raise out["err"]
        return out["sock"]

    def delete(self):
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


class Bridge:
    """127.0.0.1:pod_port inside a pod netns -> 127.0.0.1:host_port in the host netns.
    stop() closes the listener and every relayed connection (the peer becomes unreachable:
    connection refused); start() listens again on the same port."""

    def __init__(self, netns, pod_port, host_port, name=""):
        self.netns, self.pod_port, self.host_port = netns, pod_port, host_port
        self.name = name or f"{pod_port}->{host_port}"
        self.lock = threading.Lock()
        self.conns = set()
        self.listener = None
        self.accepted = 0
        self.start()

    @property
    def up(self):
        return self.listener is not None

    def start(self):
        with self.lock:
            if self.listener is not None:
                return
            s = self.netns.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self.pod_port))
            s.listen(128)
            s.settimeout(0.2)
            self.listener = s
            stop = threading.Event()
            self._stop = stop
            self._acceptor = threading.Thread(target=self._accept_loop, args=(s, stop),
                                              daemon=True, name=f"bridge-{self.name}")
            self._acceptor.start()

    def stop(self):
        with self.lock:
            if self.listener is None:
                return
            self._stop.set()
            # close() alone leaves the listening socket alive in the kernel while the accept
            # thread still polls it (up to its 0.2 s timeout): a connection then lands in its
            # backlog and is reset, and a start() meanwhile fails with EADDRINUSE. shutdown()
            # wakes the poll; the join waits until the socket is really gone.
            try:
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.listener.close()
            self.listener = None
            acceptor = self._acceptor
            conns = list(self.conns)
        acceptor.join(5)
        for c in conns:
            c.abort()  # the pumps see the error and close both sockets

    def _accept_loop(self, listener, stop):
        while not stop.is_set():
            try:
                down, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            down.settimeout(None)
            try:
                up = socket.create_connection(("127.0.0.1", self.host_port), timeout=5)
                up.settimeout(None)
            except OSError:
                down.close()  # the host side is down: so is the pod's view of it
                continue
            conn = _Relay(down, up)
            with self.lock:
                if stop.is_set():
                    conn.abort()
                    conn.close()
                    return
                self.conns.add(conn)
                self.accepted += 1
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pump, args=(a, b, conn), daemon=True).start()

    def _pump(self, src, dst, conn):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            conn.abort()
        finally:
            with self.lock:
                conn.open -= 1
                last = conn.open == 0
                if last:
                    self.conns.discard(conn)
            if last:
                conn.close()


class _Relay:
    """One relayed connection: the pod-side and the host-side socket."""

    def __init__(self, down, up):
        self.socks = (down, up)
        self.open = 2  # pumps still running

    def abort(self):
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        for s in self.socks:
            s.close()


class NetnsHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to 127.0.0.1:port inside a pod netns (probes, metrics scrapes)."""

    def __init__(self, netns, port, timeout):
        super().__init__("127.0.0.1", port, timeout=timeout)
        self.netns = netns

    def connect(self):
        s = self.netns.socket()
        s.settimeout(self.timeout)
        s.connect((self.host, self.port))
        self.sock = s


def http_get(netns, port, path, timeout=1.0):
    """(status, body) of GET path on 127.0.0.1:port in the pod netns; raises OSError on a
    refused connection or a timeout."""
    if not path.startswith("/"):
        path = "/" + path  # the kubelet's URL building adds it ("readiness" -> "/readiness")
    conn = NetnsHTTPConnection(netns, port, timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "kube-probe/1.37",
                                           "Accept": "*/*", "Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class ServiceAccountVolume:
    """The projected service-account volume: token (TokenRequest), ca.crt, namespace, with the
    kubelet's atomic writer layout: ..<timestamp> data dir, ..data symlink, file symlinks."""

    def __init__(self, path, token, ca_pem, namespace):
        self.path = path
        self.generation = 0
        os.makedirs(path)
        self._write({"token": token, "ca.crt": ca_pem.decode(), "namespace": namespace})
        for f in ("token", "ca.crt", "namespace"):
            os.symlink(f"..data/{f}", os.path.join(path, f))
        os.chmod(path, 0o755)

    def _write(self, files):
        self.generation += 1
        d = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{self.generation}"
        full = os.path.join(self.path, d)
        os.makedirs(full)
        for name, text in files.items():
            with open(os.path.join(full, name), "w") as f:
                f.write(text)
            os.chmod(os.path.join(full, name), 0o644)
        os.chmod(full, 0o755)
        tmp = os.path.join(self.path, "..data_tmp")
        os.symlink(d, tmp)
        old = os.readlink(os.path.join(self.path, "..data")) if os.path.islink(
            os.path.join(self.path, "..data")) else None
        os.replace(tmp, os.path.join(self.path, "..data"))
        if old:
            shutil.rmtree(os.path.join(self.path, old), ignore_errors=True)
        self.files = files

    def rotate(self, token):
        files = dict(self.files)
        files["token"] = token
        self._write(files)

    @property
    def token(self):
        return self.files["token"]


def bwrap_mounts(rootfs, binds):
    """bwrap arguments for a read-only image root plus files/dirs bound over it (binds:
    {container path: host path}). If the image has every mount point, its root is bound
    read-only as a whole (as scripts/run-in-rootfs does); otherwise the directories leading to
    the missing ones are rebuilt on bwrap's tmpfs root, entry by entry, and / is remounted
    read-only at the end (a container runtime would create the mount points in its writable
    layer)."""
    fixed = ["/proc", "/dev"]

    def resolve(p):
        # A symlink on the way (e.g. /var/run -> /run) is followed inside the image.
        parts, cur = p.strip("/").split("/"), ""
        for i, part in enumerate(parts):
            nxt = cur + "/" + part
            host = rootfs + nxt
            if os.path.islink(host):
                target = os.readlink(host)
                nxt = os.path.normpath(target if target.startswith("/") else
                                       os.path.join(cur or "/", target))
                return resolve(nxt + "/" + "/".join(parts[i + 1:])) if i + 1 < len(parts) \
                    else nxt
            cur = nxt
        return cur
    binds = {resolve(k): v for k, v in binds.items()}
    dests = fixed + list(binds)
    if all(os.path.lexists(rootfs + d) for d in dests):
        args = ["--ro-bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev"]
    else:
        args = []
        chains = set()
        for d in dests:
            parts = d.strip("/").split("/")
            for i in range(1, len(parts)):
                chains.add("/" + "/".join(parts[:i]))

        def mirror(rel):
            for entry in sorted(os.listdir(rootfs + rel) if os.path.isdir(rootfs + rel) else []):
                p = (rel.rstrip("/") + "/" + entry)
                host = rootfs + p
                if p in dests:
                    continue
                if os.path.islink(host):
                    args.extend(["--symlink", os.readlink(host), p])
                elif p in chains and os.path.isdir(host):
                    args.extend(["--dir", p])
                    mirror(p)
                else:
                    args.extend(["--ro-bind", host, p])
        mirror("/")
        for c in sorted(chains):
            if not os.path.lexists(rootfs + c):
                args.extend(["--dir", c])
        args += ["--proc", "/proc", "--dev", "/dev"]
    for dest, src in binds.items():
        args += ["--ro-bind", src, dest]
    if args[0] != "--ro-bind" or args[2] != "/":
        args += ["--remount-ro", "/"]
    return args


class Container:
    """One run of the container: ip netns exec -> bwrap -> the entrypoint as PID 1."""

    def __init__(self, pod, run_no):
        self.pod = pod
        self.run_no = run_no
        base = os.path.join(pod.dir, f"{CONTAINER_NAME}-{run_no}")
        self.stdout_path, self.stderr_path = base + ".stdout", base + ".stderr"
        self.exit_code = None
        self.killed_by_kubelet = False  # a liveness kill: the prober restarts it, not _supervise
        self.pid = None  # host PID of the entrypoint (PID 1 in the container)
        self.started = time.monotonic()
        self.finished = threading.Event()
        r, w = os.pipe()
        argv = ["ip", "netns", "exec", pod.netns.name, "bwrap",
                "--unshare-user", "--uid", str(pod.uid), "--gid", str(pod.gid),
                "--unshare-pid", "--as-pid-1", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--hostname", pod.hostname_str,
                *bwrap_mounts(pod.rootfs, pod.binds()),
                "--cap-drop", "ALL", "--new-session", "--die-with-parent",
                "--json-status-fd", str(w), "--clearenv"]
        for k, v in pod.env.items():
            argv += ["--setenv", k, v]
        argv += ["--", *pod.command]
        self.argv = argv
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         pass_fds=(w,))
        os.close(w)
        self._status = os.fdopen(r, "r")
        got_pid = threading.Event()
        threading.Thread(target=self._read_status, args=(got_pid,), daemon=True).start()
        if not got_pid.wait(15):
            self.kill()
            raise RuntimeError(f"container did not start: {self.stderr()[-2000:]}")

    def _read_status(self, got_pid):
        for line in self._status:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "child-pid" in msg:
                self.pid = int(msg["child-pid"])
                got_pid.set()
            if "exit-code" in msg:
                self.exit_code = int(msg["exit-code"])
        got_pid.set()
        rc = self.proc.wait()
        if self.exit_code is None:
            self.exit_code = rc  # bwrap exits with its child's status (128+n after a signal)
        self.finished.set()

    def running(self):
        return not self.finished.is_set()

    def signal(self, sig):
        if self.pid and self.running():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self, grace):
        """SIGTERM, up to `grace` seconds, then SIGKILL. Returns (exit code, seconds taken,
        whether SIGKILL was needed)."""
        t0 = time.monotonic()
        self.signal(signal.SIGTERM)
        killed = False
        if not self.finished.wait(grace):
            killed = True
            self.kill()
        return self.exit_code, time.monotonic() - t0, killed

    def kill(self):
        self.signal(signal.SIGKILL)
        if self.proc.poll() is None and not self.finished.wait(10):
            self.proc.kill()
        self.proc.wait(10)
        self.finished.wait(10)

    def stdout(self):
        with open(self.stdout_path, errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()


class Probe:
    def __init__(self, spec, ports, scale):
        h = spec["httpGet"]
        port = h.get("port")
        if isinstance(port, str) and not port.isdigit():
            if port not in ports:
                raise ValueError(f"probe port {port!r} is not a named container port {ports}")
            port = ports[port]
        self.port = int(port)
        self.path = h.get("path", "/")
        self.period = spec.get("periodSeconds", 10) * scale
        self.initial_delay = spec.get("initialDelaySeconds", 0) * scale
        self.timeout = spec.get("timeoutSeconds", 1)  # honoured, not scaled
        self.failure_threshold = spec.get("failureThreshold", 3)
        self.success_threshold = spec.get("successThreshold", 1)


class Pod:
    """One replica of a Deployment: sandbox (netns, bridges, volumes) + container restarts."""

    def __init__(self, kubelet, deployment):
        self.kubelet = kubelet
        self.cluster = kubelet.cluster
        self.deployment = deployment
        meta = deployment["metadata"]
        self.namespace = meta["namespace"]
        self.deploy_name = meta["name"]
        self.generation = meta.get("generation", 1)
        self.template_hash = template_hash(deployment)
        # As the ReplicaSet's generateName: base truncated to 58 characters + 5 random ones.
        base = f"{self.deploy_name}-{self.template_hash[:10]}-"[:58]
        self.name = base + secrets.token_hex(3)[:5]
        self.hostname_str = self.name[:63].rstrip("-.")  # kubelet's truncation
        self.spec = deployment["spec"]["template"]["spec"]
        matches = [c for c in self.spec["containers"] if c["name"] == CONTAINER_NAME]
        if not matches:
            raise ValueError(f"deployment {self.deploy_name} has no container {CONTAINER_NAME}")
        self.container_spec = matches[0]
        self.rootfs = kubelet.rootfs
        self.dir = os.path.join(kubelet.workdir, self.name)
        os.makedirs(self.dir)
        sc = self.container_spec.get("securityContext") or {}
        psc = self.spec.get("securityContext") or {}
        self.uid = sc.get("runAsUser", psc.get("runAsUser", kubelet.image_uid))
        self.gid = sc.get("runAsGroup", psc.get("runAsGroup", kubelet.image_gid))
        if (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")) and self.uid == 0:
            raise RuntimeError("runAsNonRoot with an image user 0: the kubelet refuses to start it")
        self.grace = self.spec.get("terminationGracePeriodSeconds", 30)
        self.ports = {p["name"]: p["containerPort"] for p in self.container_spec.get("ports", [])
                      if p.get("name")}
        scale = kubelet.period_scale
        self.readiness = Probe(self.container_spec["readinessProbe"], self.ports, scale) \
            if self.container_spec.get("readinessProbe") and kubelet.run_probes else None
        self.liveness = Probe(self.container_spec["livenessProbe"], self.ports, scale) \
            if self.container_spec.get("livenessProbe") and kubelet.run_probes else None
        self.command = (self.container_spec.get("command") or kubelet.entrypoint) + \
            (self.container_spec.get("args") or [])

        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.containers = []
        self.restarts = 0
        self.backoff = 10 * kubelet.period_scale  # CrashLoopBackOff, scaled: 10 s doubling to 300 s
        self.ready = False
        self.probe_log = []  # (monotonic time, "readiness"|"liveness", status int or error str)
        self.events = []     # (monotonic time, what)
        self.netns = None
        self.bridges = {}
        try:
            self.netns = Netns()
            self.bridges["api"] = Bridge(self.netns, kubelet.api_port, kubelet.api_port, "api")
            for pod_port, host_port in kubelet.ports.items():
                self.bridges[pod_port] = Bridge(self.netns, pod_port, host_port, str(pod_port))
            if not kubelet.api_reachable_at_start:
                self.bridges["api"].stop()
            sa = self.spec.get("serviceAccountName") or "default"
            self.service_account = sa
            self.sa = ServiceAccountVolume(os.path.join(self.dir, "serviceaccount"),
                                           kubelet.token_for(self.namespace, sa),
                                           self.cluster.ca_pem(), self.namespace)
            self._write_etc()
            self.env = self._env()
        except Exception:
            self.teardown()
            raise

    # --- sandbox ---------------------------------------------------------------------------
    def _write_etc(self):
        names = []
        for svc in self.kubelet.services:  # "name.namespace"
            name, ns = svc.split(".", 1)
            names += [f"{name}.{ns}.svc.cluster.local", f"{name}.{ns}.svc", f"{name}.{ns}"]
            if ns == self.namespace:
                names.append(name)
        self.hosts = os.path.join(self.dir, "etc-hosts")
        with open(self.hosts, "w") as f:
            f.write("# Kubernetes-managed hosts file (kubelet stand-in).\n"
                    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                    f"127.0.0.1\t{self.hostname_str}\n")
            if names:
                f.write("127.0.0.1\t" + " ".join(names) + "\n")
        self.resolv = os.path.join(self.dir, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write(f"search {self.namespace}.svc.cluster.local svc.cluster.local cluster.local\n"
                    "nameserver 127.0.0.1\noptions ndots:5\n")
        self.hostname = os.path.join(self.dir, "hostname")
        with open(self.hostname, "w") as f:
            f.write(self.hostname_str + "\n")
        for p in (self.hosts, self.resolv, self.hostname):
            os.chmod(p, 0o644)
        os.chmod(self.dir, 0o755)

    def binds(self):
        return {"/etc/hosts": self.hosts, "/etc/resolv.conf": self.resolv,
                "/etc/hostname": self.hostname, SA_MOUNT: self.sa.path}

    def _env(self):
        fields = {"metadata.namespace": self.namespace, "metadata.name": self.name,
                  "metadata.uid": "00000000-0000-4000-8000-" + secrets.token_hex(6),
                  "spec.serviceAccountName": self.service_account,
                  "spec.nodeName": "kubelet-stand-in", "status.podIP": "127.0.0.1",
                  "status.hostIP": "127.0.0.1"}
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": self.hostname_str}
        for e in self.container_spec.get("env") or []:
            if "valueFrom" in e:
                vf = e["valueFrom"]
                if "fieldRef" in vf:
                    path = vf["fieldRef"]["fieldPath"]
                    if path not in fields:
                        raise NotImplementedError(f"fieldRef {path} (env {e['name']})")
                    env[e["name"]] = fields[path]
                else:
                    raise NotImplementedError(f"valueFrom {list(vf)} (env {e['name']})")
            else:
                env[e["name"]] = expand(e.get("value", ""), env)
        env["KUBERNETES_SERVICE_HOST"] = "127.0.0.1"
        env["KUBERNETES_SERVICE_PORT"] = str(self.kubelet.api_port)
        env["KUBERNETES_SERVICE_PORT_HTTPS"] = str(self.kubelet.api_port)
        return env

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self):
        self._start_container()
        threading.Thread(target=self._supervise, daemon=True, name=f"sup-{self.name}").start()
        if self.readiness:
            threading.Thread(target=self._probe_loop, args=("readiness",), daemon=True).start()
        else:
            self._set_ready(True)
        if self.liveness:
            threading.Thread(target=self._probe_loop, args=("liveness",), daemon=True).start()

    def _start_container(self):
        with self.lock:
            c = self.kubelet.spawn(lambda: Container(self, len(self.containers)))
            self.containers.append(c)
            self.events.append((time.monotonic(), f"started run {c.run_no} pid {c.pid}"))
            log(f"{self.name}: started container run {c.run_no} (pid {c.pid})")
            return c

    @property
    def container(self):
        return self.containers[-1] if self.containers else None

    def _supervise(self):
        """restartPolicy Always: a container that exits on its own is started again after a
        (scaled) CrashLoopBackOff."""
        while not self.stopping.is_set():
            c = self.container
            if c.killed_by_kubelet:
                self.stopping.wait(0.05)
                continue
            if c.finished.wait(0.1) and not self.stopping.is_set():
                with self.lock:
                    if self.stopping.is_set() or c is not self.container or c.killed_by_kubelet:
                        continue
                    self.events.append((time.monotonic(), f"run {c.run_no} exited {c.exit_code}"))
                    log(f"{self.name}: container run {c.run_no} exited with {c.exit_code}")
                    self._set_ready(False)
                if self.stopping.wait(self._next_backoff()):
                    return
                with self.lock:
                    if self.stopping.is_set():
                        return
                    self.restarts += 1
                    self._start_container()

    def _probe_loop(self, kind):
        probe = self.readiness if kind == "readiness" else self.liveness
        failures = successes = 0
        first_failure = 0.0
        run_no = None
        next_at = None
        while not self.stopping.is_set():
            c = self.container
            if c.run_no != run_no:  # a new container: probes start over
                run_no, failures, successes = c.run_no, 0, 0
                next_at = c.started + probe.initial_delay
            delay = next_at - time.monotonic()
            if delay > 0 and self.stopping.wait(delay):
                return
            next_at = time.monotonic() + probe.period
            if not c.running() or c is not self.container:
                continue
            try:
                status, _ = http_get(self.netns, probe.port, probe.path, probe.timeout)
                ok = 200 <= status < 400
                result = status
            except (OSError, http.client.HTTPException) as e:
                ok, result = False, f"{type(e).__name__}: {e}"
            if self.stopping.is_set() or c is not self.container:
                continue
            with self.lock:
                self.probe_log.append((time.monotonic(), kind, result))
            if ok:
                failures, successes = 0, successes + 1
            else:
                if failures == 0:
                    first_failure = time.monotonic()
                failures, successes = failures + 1, 0
            if kind == "readiness":
                if ok and successes >= probe.success_threshold and not self.ready:
                    self._set_ready(True)
                elif not ok and failures >= probe.failure_threshold and self.ready:
                    self._set_ready(False)
            elif not ok and failures >= probe.failure_threshold and \
                    time.monotonic() - first_failure >= self.kubelet.liveness_min_window:
                self._restart_for_liveness(c, failures, result)
                failures = 0

    def _restart_for_liveness(self, c, failures, result):
        with self.lock:
            if self.stopping.is_set() or c is not self.container:
                return
            log(f"{self.name}: liveness failed {failures} times ({result}); restarting")
            self.events.append((time.monotonic(), f"liveness failed: {result}"))
            c.killed_by_kubelet = True
            self._set_ready(False)
            grace = self.kubelet.liveness_grace if self.kubelet.liveness_grace is not None \
                else self.grace
            code, took, killed = c.terminate(grace)
            self.events.append((time.monotonic(), f"run {c.run_no} killed for liveness: "
                                f"exit {code} after {took:.1f}s{' (SIGKILL)' if killed else ''}"))
        if self.stopping.wait(self._next_backoff()):
            return
        with self.lock:
            if self.stopping.is_set():
                return
            self.restarts += 1
            self._start_container()

    def _next_backoff(self):
        with self.lock:
            b = self.backoff
            self.backoff = min(self.backoff * 2, 300 * self.kubelet.period_scale)
            return b

    def _set_ready(self, ready):
        with self.lock:
            self.ready = ready
            self.events.append((time.monotonic(), "ready" if ready else "not ready"))
        self.kubelet.patch_status(self, ready)

    def signal(self, sig):
        self.container.signal(sig)

    def rotate_token(self):
        self.sa.rotate(self.kubelet.token_for(self.namespace, self.service_account))

    def stop(self, grace=None):
        """Terminate as the kubelet does on pod deletion: (exit code, seconds, SIGKILLed)."""
        self.stopping.set()
        with self.lock:
            c = self.container
            result = c.terminate(self.grace if grace is None else grace) if c else (None, 0, False)
            self.events.append((time.monotonic(), f"stopped: {result}"))
        return result

    def teardown(self):
        self.stopping.set()
        for c in self.containers:
            if c.running():
                c.kill()
        for b in self.bridges.values():
            b.stop()
        if self.netns:
            self.netns.delete()
            self.netns = None

    # --- helpers for tests ---------------------------------------------------------------
    def http_get(self, port, path, timeout=1.0):
        return http_get(self.netns, port, path, timeout)

    def probes(self, kind=None):
        with self.lock:
            return [p for p in self.probe_log if kind is None or p[1] == kind]

    def describe(self):
        lines = [f"pod {self.name} (deployment {self.namespace}/{self.deploy_name}) "
                 f"ready={self.ready} restarts={self.restarts}"]
        t0 = self.containers[0].started if self.containers else 0
        for t, what in self.events[-30:]:
            lines.append(f"  +{t - t0:7.2f}s {what}")
        for t, kind, result in self.probe_log[-12:]:
            lines.append(f"  +{t - t0:7.2f}s probe {kind}: {result}")
        for c in self.containers:
            lines.append(f"  run {c.run_no} exit={c.exit_code} stderr tail: {c.stderr()[-1500:]!r}")
            lines.append(f"  run {c.run_no} stdout tail: {c.stdout()[-1500:]!r}")
        return "\n".join(lines)


def expand(value, env):
    """$(VAR) references to earlier variables, as the kubelet expands them; $$ escapes."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and ")" in value[i:]:
            j = value.index(")", i)
            name = value[i + 2:j]
            out.append(env.get(name, value[i:j + 1]))
            i = j + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def template_hash(deployment):
    t = json.dumps(deployment["spec"]["template"], sort_keys=True).encode()
    return hashlib.sha256(t).hexdigest()


class Kubelet:
    """Watches Deployments in `namespaces` (polling the API) and runs one Pod for each whose
    template has a `receive-adapter` container; a changed template replaces the pod.

    cluster       tests/integration/conftest.py Cluster (backend "real"): kubeconfig, server,
                  ctx (admin TLS), ca_pem()
    rootfs        the image's root file system (directory)
    services      ["name.namespace", ...]: Service DNS names resolved to 127.0.0.1 in the pod
    ports         {pod port: host port}: extra bridges, e.g. {80: sink.port}
    period_scale  probe periods (and back-offs) are multiplied by this (10 s -> 0.5 s at 0.05)
    liveness_grace  seconds between SIGTERM and SIGKILL on a liveness restart (None: the pod's
                  terminationGracePeriodSeconds, as the kubelet)
    liveness_min_window  a liveness restart also needs the consecutive failures to span this
                  many seconds: scaled periods shrink the kubelet's window (3 x 10 s) to ~1 s,
                  which a process starting on a loaded machine can miss

    api_reachable_at_start  False: pods start with their API bridge down (Pod.bridges["api"])
    run_probes    False: ignore the pod spec's probes (ready once started); a debugging aid for
                  adapters without probe endpoints, never for a real test run
    """

    def __init__(self, cluster, rootfs, workdir, namespaces, services=(), ports=None,
                 period_scale=0.05, liveness_grace=None, api_reachable_at_start=True,
                 entrypoint=None, image_uid=65532, image_gid=65532, token_seconds=3600,
                 run_probes=True, liveness_min_window=5.0):
        self.cluster = cluster
        self.rootfs = os.path.abspath(rootfs)
        self.workdir = workdir
        self.namespaces = list(namespaces)
        self.services = list(services)
        self.ports = dict(ports or {})
        self.period_scale = period_scale
        self.liveness_grace = liveness_grace
        self.api_reachable_at_start = api_reachable_at_start
        self.entrypoint = list(entrypoint or DEFAULT_ENTRYPOINT)
        self.image_uid, self.image_gid = image_uid, image_gid
        self.token_seconds = token_seconds
        self.run_probes = run_probes
        self.liveness_min_window = liveness_min_window
        self.api_port = int(cluster.server.rsplit(":", 1)[1])
        self.pods = {}      # deployment key -> Pod
        self.retired = []   # pods replaced after a template change
        self.errors = []
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        # Every container is spawned from this one long-lived thread: bwrap --die-with-parent
        # ties the sandbox to the thread that forked it, which must outlive the container.
        self._runtime = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                              thread_name_prefix="runtime")
        if not os.path.isdir(self.rootfs):
            raise RuntimeError(f"rootfs {self.rootfs} is not a directory")
        self._thread = threading.Thread(target=self._watch, daemon=True, name="kubelet-watch")
        self._thread.start()

    def spawn(self, fn):
        return self._runtime.submit(fn).result()

    def token_for(self, namespace, sa):
        return run(["kubectl", "--kubeconfig", self.cluster.kubeconfig, "create", "token", sa,
                    "-n", namespace, f"--duration={self.token_seconds}s"]).strip()

    def _get(self, path):
        import urllib.request
        req = urllib.request.Request(self.cluster.server + path)
        with urllib.request.urlopen(req, context=self.cluster.ctx, timeout=10) as r:
            return json.loads(r.read())

    def deployments(self, namespace):
        return self._get(f"/apis/apps/v1/namespaces/{namespace}/deployments")["items"]

    def _watch(self):
        while not self.stopping.is_set():
            try:
                for ns in self.namespaces:
                    for d in self.deployments(ns):
                        self._sync(d)
            except Exception as e:  # noqa: BLE001 - recorded, reported by check()
                if not self.stopping.is_set():
                    self.errors.append(f"{type(e).__name__}: {e}")
                    log(f"error: {e}")
            self.stopping.wait(0.3)

    def _sync(self, d):
        containers = d["spec"]["template"]["spec"].get("containers", [])
        if not any(c["name"] == CONTAINER_NAME for c in containers):
            return
        key = (d["metadata"]["namespace"], d["metadata"]["name"])
        with self.lock:
            if self.stopping.is_set():
                return
            pod = self.pods.get(key)
            if pod and pod.template_hash == template_hash(d):
                if pod.generation != d["metadata"].get("generation"):
                    pod.generation = d["metadata"].get("generation")
                    self.patch_status(pod, pod.ready)
                return
            if pod:  # template changed: replace the pod (Recreate)
                log(f"{pod.name}: template changed, replacing")
                pod.stop()
                pod.teardown()
                self.retired.append(pod)
            pod = Pod(self, d)
            self.pods[key] = pod
            pod.start()

    def pod(self, namespace, deploy_name):
        with self.lock:
            return self.pods.get((namespace, deploy_name))

    def wait_pod(self, namespace, name_prefix="", timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for (ns, name), pod in self.pods.items():
                    if ns == namespace and name.startswith(name_prefix):
                        return pod
            self.check()
            time.sleep(0.1)
        raise AssertionError(f"no pod for a deployment {namespace}/{name_prefix}* after "
                             f"{timeout}s; kubelet errors: {self.errors[-5:]}")

    def check(self):
        if self.errors:
            raise AssertionError("kubelet stand-in errors: " + "; ".join(self.errors[-5:]))

    def patch_status(self, pod, ready):
        n = 1 if ready else 0
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status = {
            "observedGeneration": pod.generation, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": n, "availableReplicas": n, "unavailableReplicas": 1 - n,
            "conditions": [
                {"type": "Available", "status": "True" if ready else "False",
                 "reason": "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
                 "message": "Deployment has minimum availability." if ready else
                 "Deployment does not have minimum availability.",
                 "lastUpdateTime": now, "lastTransitionTime": now},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": f'ReplicaSet "{pod.deploy_name}-{pod.template_hash[:10]}" has '
                            "successfully progressed.",
                 "lastUpdateTime": now, "lastTransitionTime": now}]}
        try:
            run(["kubectl", "--kubeconfig", self.cluster.kubeconfig, "patch", "deployment",
                 pod.deploy_name, "-n", pod.namespace, "--subresource=status", "--type=merge",
                 "-p", json.dumps({"status": status})])
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"status patch of {pod.deploy_name}: {e}")

    def stop(self):
        """Terminate every pod (SIGTERM, grace, SIGKILL), then tear everything down."""
        self.stopping.set()
        self._thread.join(15)
        with self.lock:
            pods = list(self.pods.values()) + self.retired
        for p in pods:
            try:
                if p.containers and p.container.running():
                    p.stop()
            finally:
                p.teardown()
        self._runtime.shutdown(wait=True)
