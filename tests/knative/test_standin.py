"""The test ground itself, with fake_adapter.py as the container (host root file system, read
only): Knative's controller -> Deployment -> kubelet stand-in -> probes -> Deployment status ->
ApiServerSource Ready; pod netns bridges to the API server and (by Service DNS name) the sink;
the projected token; API outage -> readiness 503 -> unavailable; SIGSTOP -> liveness restart;
SIGTERM -> exit 0. Passes whatever state the real adapter is in."""
import hashlib
import json
import os
import signal
import sys
import time

from ground import wait_until
from test_knative import (container_env, scenario_namespace, source_yaml, wait_deployment,
                          wait_source_ready)

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_adapter.py")


def test_standin_with_fake_adapter(cluster, knative_factory, kubelet_factory, sink):
    ns, name = "knative-standin", "standin"
    scenario_namespace(cluster, ns)
    ctl = knative_factory()
    kl = kubelet_factory([ns], services=[f"cloudevents-player.{ns}"], ports={80: sink.port},
                         liveness_grace=3, entrypoint=[sys.executable, FAKE],
                         api_reachable_at_start=False,
                         rootfs="/")  # the host's, read-only: the fake needs a Python
    cluster.apply(source_yaml(ns, name))
    dep = wait_deployment(cluster, ns, name)
    _, env = container_env(dep)
    assert "K_SINK" in env
    pod = kl.wait_pod(ns, dep["metadata"]["name"])
    api = pod.bridges["api"]

    def seen(kind, status, since=0.0):
        return any(t >= since and r == status for t, k, r in pod.probes(kind))
    wait_until(lambda: seen("readiness", 503) and seen("liveness", 200), 20,
               "readiness 503 / liveness 200 with the API bridge down")
    assert not pod.ready
    api.start()
    wait_until(lambda: pod.ready, 20, "ready once the API server is reachable")
    wait_source_ready(cluster, ns, name, pod, ctl)

    (req,) = wait_until(lambda: sink.events(), 20, "the fake's event via the Service name")
    assert req["headers"]["host"] == f"cloudevents-player.{ns}.svc.cluster.local"
    assert req["headers"]["kn-namespace"] == ns
    assert json.loads(req["body"])["token_length"] > 100  # a TokenRequest JWT was mounted
    status, body = pod.http_get(9092, "/metrics")
    assert status == 200 and b"fake_events_sent_total 1" in body

    # kubelet-style token rotation (..data symlink swap) is visible through the bind mount
    before = pod.http_get(8080, "/token")[1].decode()
    pod.rotate_token()
    after = pod.http_get(8080, "/token")[1].decode()
    assert after != before
    assert after == hashlib.sha256(pod.sa.token.strip().encode()).hexdigest()

    t_cut = time.monotonic()
    api.stop()
    wait_until(lambda: not pod.ready and seen("readiness", 503, t_cut), 20, "not ready")
    wait_until(lambda: cluster.kubectl(
        "get", "deploy", dep["metadata"]["name"], "-n", ns, "-o",
        "jsonpath={.status.conditions[?(@.type=='Available')].status}").stdout == "False", 10,
        "the Deployment unavailable")
    assert pod.restarts == 0
    api.start()
    wait_until(lambda: pod.ready, 20, "ready again")

    first = pod.container
    pod.signal(signal.SIGSTOP)
    wait_until(lambda: pod.restarts == 1 and pod.ready, 30, "restart after liveness timeouts\n"
               + pod.describe())
    assert any("timeout" in str(r).lower() for _, _, r in pod.probes("liveness"))
    assert first.exit_code in (-9, 137), first.exit_code

    lines = [json.loads(l) for l in pod.container.stdout().splitlines() if l.strip()]
    assert lines and all("ts" in l and "msg" in l for l in lines)
    assert pod.container.stderr() == ""
    code, took, killed = pod.stop()
    assert code == 0 and not killed, (code, took, killed)
