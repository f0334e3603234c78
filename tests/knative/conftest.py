"""Fixtures for the Knative tests: the real control plane (local-cluster --real) with Knative
Eventing's CRDs and ConfigMaps, Knative's real controller (v0.49.2, scripts/provide-knative),
the adapter image's root file system, a recording sink and the kubelet stand-in (kubelet.py).
Helpers live in ground.py. Nothing is skipped: if the control plane, the controller or the
rootfs cannot be provided the tests fail with the reason. Every wait has a deadline.
"""
import os
import shutil
import tempfile

import pytest

from ground import (ROOT, KNATIVE_VERSION, Cluster, Controller, Sink, provide, install_knative,
                    set_configmap)
from kubelet import Kubelet


@pytest.fixture(scope="session")
def knative_dir():
    """Cache folder with `controller` and the module's `config/`."""
    d = provide("provide-knative", "Knative's controller", {"KNATIVE_VERSION": KNATIVE_VERSION})
    for p in ("controller", "config/core/100-namespace.yaml", "config/core/resources",
              "config/core/configmaps", "config/core/deployments/controller.yaml"):
        if not os.path.exists(os.path.join(d, p)):
            pytest.fail(f"provide-knative printed {d}, which has no {p}", False)
    return d


@pytest.fixture(scope="session")
def rootfs():
    """The adapter image's root file system: what scripts/build-image exports whenever that
    script exists; only without it, $KNATIVE_TEST_ROOTFS (development, e.g.
    $(tests/knative/make-dev-rootfs)). Neither: the tests fail."""
    if os.path.exists(os.path.join(ROOT, "scripts", "build-image")):
        src = "scripts/build-image"
        d = provide("build-image", "the adapter image")
    elif os.environ.get("KNATIVE_TEST_ROOTFS"):
        src = "KNATIVE_TEST_ROOTFS"
        d = os.environ["KNATIVE_TEST_ROOTFS"]
    else:
        pytest.fail("the adapter image is needed: scripts/build-image does not exist (for "
                    "development set KNATIVE_TEST_ROOTFS=$(tests/knative/make-dev-rootfs))",
                    False)
    if not os.access(os.path.join(d, "usr", "bin", "apiserversource-adapter"), os.X_OK):
        pytest.fail(f"rootfs {d} (from {src}) has no executable /usr/bin/apiserversource-adapter",
                    False)
    return d


@pytest.fixture(scope="session")
def session_dir():
    """Logs of the controller, the containers (stdout/stderr per run) and the sinks; kept when
    KNATIVE_TEST_KEEP=1."""
    d = tempfile.mkdtemp(prefix="knative-it-")
    yield d
    if os.environ.get("KNATIVE_TEST_KEEP") == "1":
        print(f"\nkept {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster(session_dir, knative_dir):
    """The real control plane with Knative Eventing's namespace, CRDs and ConfigMaps."""
    provide("provide-controlplane", "the real control plane")
    c = Cluster(tempfile.mkdtemp(dir=session_dir), backend="real")
    try:
        install_knative(c, knative_dir)
        yield c
    finally:
        c.stop()


@pytest.fixture
def workdir(session_dir, request):
    d = tempfile.mkdtemp(prefix=request.node.name[:40] + "-", dir=session_dir)
    yield d
    print(f"\nworkdir of {request.node.name}: {d}")


@pytest.fixture
def knative_factory(cluster, knative_dir, workdir):
    """knative_factory(features={...}, observability={...}) -> Controller, started after the
    ConfigMaps are set (shipped content plus the overrides). Stopped (SIGTERM) at teardown,
    before the session's API server."""
    made = []

    def make(features=None, observability=None):
        assert not made, "one controller per test"
        set_configmap(cluster, knative_dir, "features.yaml", features)
        set_configmap(cluster, knative_dir, "observability.yaml", observability)
        ctl = Controller(knative_dir, cluster, workdir)
        made.append(ctl)
        return ctl
    yield make
    for ctl in made:
        ctl.stop()


@pytest.fixture
def sink(workdir):
    s = Sink(tempfile.mkdtemp(dir=workdir))
    yield s
    s.stop()


@pytest.fixture
def kubelet_factory(cluster, workdir, request):
    """kubelet_factory(namespaces, services=[...], ports={80: sink.port}, rootfs=None, ...) ->
    Kubelet; rootfs defaults to the adapter image's (fixture `rootfs`). Every pod is stopped and
    its netns deleted at teardown, whatever the test's outcome."""
    made = []

    def make(namespaces, rootfs=None, **kw):
        if os.environ.get("KNATIVE_TEST_IGNORE_PROBES") == "1":  # debugging aid only
            kw.setdefault("run_probes", False)
        kl = Kubelet(cluster, rootfs or request.getfixturevalue("rootfs"),
                     os.path.join(workdir, f"kubelet-{len(made)}"), namespaces, **kw)
        made.append(kl)
        return kl
    yield make
    for kl in made:
        kl.stop()
