"""Helpers for the Knative tests (fixtures in conftest.py): the real control plane
(local-cluster --real) with Knative Eventing's CRDs and ConfigMaps, Knative's real controller
(v0.49.2, scripts/provide-knative), the adapter image's root file system, a recording sink.

Nothing is skipped: if the control plane, the controller or the rootfs cannot be provided the
tests fail with the reason. Every wait has a deadline.
"""
import importlib.util
import json
import os
import re
import signal
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

# The integration tests' helpers (Cluster, Sink, wait_until: tests/integration/harness.py),
# loaded from their file so that tests/integration need not be on sys.path.
_spec = importlib.util.spec_from_file_location(
    "integration_helpers", os.path.join(ROOT, "tests", "integration", "harness.py"))
integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(integration)
Cluster, Sink, wait_until = integration.Cluster, integration.Sink, integration.wait_until


KNATIVE_VERSION = os.environ.get("KNATIVE_VERSION", "v0.49.2")
SYSTEM_NAMESPACE = "knative-eventing"
# What the controller writes as the receive adapter's image (nothing pulls it: the stand-in
# runs the rootfs for whatever image the pod spec names).
ADAPTER_IMAGE = os.environ.get("KNATIVE_TEST_IMAGE", "localhost/apiserversource-adapter:latest")
PROVIDE_TIMEOUT = 3600  # cold builds on two loaded cores take minutes; warm ones milliseconds


def provide(script, what, env=None):
    """Runs a provide-* / build-* script; its last stdout line is the result. Fails loudly."""
    path = os.path.join(ROOT, "scripts", script)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{what}: scripts/{script} does not exist or is not executable", False)
    t0 = time.monotonic()
    try:
        r = subprocess.run([path], capture_output=True, text=True, timeout=PROVIDE_TIMEOUT,
                           env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what}: scripts/{script} took more than {PROVIDE_TIMEOUT}s", False)
    out = r.stdout.strip().splitlines()
    if r.returncode != 0 or not out:
        pytest.fail(f"{what}: scripts/{script} failed (exit {r.returncode}):\n"
                    f"{r.stderr[-4000:]}", False)
    took = time.monotonic() - t0
    if took > 5:
        print(f"{script}: {took:.0f}s")
    return out[-1]


def install_knative(c, kdir):
    core = os.path.join(kdir, "config", "core")
    c.kubectl("apply", "-f", os.path.join(core, "100-namespace.yaml"))
    out = c.kubectl("apply", "-f", os.path.join(core, "resources"), "-o", "name").stdout.split()
    crds = [n for n in out if n.startswith("customresourcedefinition")]
    assert crds, f"no CRDs applied from {core}/resources"
    c.kubectl("wait", "--for=condition=Established", "--timeout=60s", *crds)
    # EventType and PingSource convert between versions through eventing-webhook, which does not
    # run here: once the controller has stored a v1beta2 EventType, listing v1beta3 fails
    # ("conversion webhook ... service eventing-webhook not found") and the next controller's
    # informers never sync. Without a webhook the versions convert by relabelling only.
    for name in crds:
        crd = json.loads(c.kubectl("get", name, "-o", "json").stdout)
        if crd["spec"].get("conversion", {}).get("strategy") == "Webhook":
            c.kubectl("patch", name, "--type=merge", "-p",
                      json.dumps({"spec": {"conversion": {"strategy": "None", "webhook": None}}}))
    c.kubectl("apply", "-f", os.path.join(core, "configmaps"))


def configmap_data(c, kdir, name):
    """The shipped data of a Knative ConfigMap (by file), as a dict."""
    path = os.path.join(kdir, "config", "core", "configmaps", name)
    return json.loads(c.kubectl("create", "--dry-run=client", "-o", "json", "-f", path).stdout)


def set_configmap(c, kdir, filename, overrides):
    """Puts a Knative ConfigMap back to its shipped content plus `overrides` (replace, so that
    earlier tests' settings do not linger)."""
    cm = configmap_data(c, kdir, filename)
    cm.setdefault("data", {}).update(overrides or {})
    c.kubectl("replace", "-f", "-", input=json.dumps(cm))


def image_env_names(kdir):
    """Every *_IMAGE variable of the controller's Deployment in the module's config."""
    text = open(os.path.join(kdir, "config", "core", "deployments", "controller.yaml")).read()
    return sorted(set(re.findall(r"-\s+name:\s+([A-Z0-9_]+_IMAGE)\b", text)))


class Controller:
    """Knative Eventing's controller as a process, with the environment its Deployment gives it.
    Its JSON log goes to `log_path`."""

    def __init__(self, kdir, cluster, workdir, image=ADAPTER_IMAGE, pod_name="controller-test"):
        self.log_path = os.path.join(workdir, "knative-controller.log")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir,
               "SYSTEM_NAMESPACE": SYSTEM_NAMESPACE, "CONFIG_LOGGING_NAME": "config-logging",
               "CONFIG_OBSERVABILITY_NAME": "config-observability",
               "METRICS_DOMAIN": "knative.dev/eventing", "POD_NAME": pod_name}
        for name in image_env_names(kdir):
            env[name] = f"localhost/knative-test-unused/{name.lower().replace('_', '-')}:v0"
        env["APISERVER_RA_IMAGE"] = image
        self.env = env
        self.log = open(self.log_path, "w+")
        # --disable-ha: no leader election, so a controller started by the next test does not
        # wait for leases the previous one held.
        self.proc = subprocess.Popen(
            [os.path.join(kdir, "controller"), "--kubeconfig", cluster.kubeconfig, "--disable-ha"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=workdir)
        try:
            wait_until(self._started, 60, "Knative's controller to start its reconcilers")
        except BaseException as e:
            self.stop()  # never leave it running (it holds :8080 and :8008 on the host)
            raise AssertionError(f"{e}; log {self.log_path}, tail:\n{self.tail(20)}") from None

    def lines(self):
        with open(self.log_path, errors="replace") as f:
            return f.read().splitlines()

    def _started(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"Knative's controller exited ({self.proc.returncode}); log "
                                 f"{self.log_path}:\n" + "\n".join(self.lines()[-40:]))
        # sharedmain logs this per reconciler once informers are synced and its workers run.
        return any("Started workers" in l and "apiserversource.Reconciler" in l
                   for l in self.lines())

    def tail(self, n=60):
        return "\n".join(self.lines()[-n:])

    def stop(self):
        """SIGTERM (it releases what it holds and exits within a few seconds), then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
