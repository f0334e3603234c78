"""Fixtures for the integration tests: the real adapter binary against the
Kubernetes API emulator (scripts/local-cluster) and a recording sink.  The
classes and helpers behind them live in harness.py; tests import from there.
"""
import tempfile

import pytest

from harness import BACKENDS, Adapter, Cluster, Sink


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="adapter-it-") as d:
        yield d


@pytest.fixture
def cluster_factory(workdir):
    made = []

    def make(*extra_args, backend="emulator"):
        c = Cluster(tempfile.mkdtemp(dir=workdir), extra_args, backend)
        made.append(c)
        return c
    yield make
    for c in made:
        c.stop()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def cluster(cluster_factory, backend):
    """A scenario's API server: every test using it runs against each back end."""
    return cluster_factory(backend=backend)


@pytest.fixture
def emulator(cluster_factory):
    """The emulator alone: for faults only it can inject."""
    return cluster_factory()


@pytest.fixture
def proxy_factory():
    from tcpproxy import Proxy
    made = []

    def make(cluster):
        host, port = cluster.server.split("//", 1)[1].rsplit(":", 1)
        p = Proxy(host, int(port))
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


@pytest.fixture
def sink_factory(workdir):
    made = []

    def make(responses="", extra=(), port=0):
        s = Sink(tempfile.mkdtemp(dir=workdir), responses, extra, port)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


@pytest.fixture
def sink(sink_factory):
    return sink_factory()


@pytest.fixture
def adapter_factory(workdir):
    made = []

    def make(args, env=None, kubeconfig=None):
        a = Adapter(workdir, args, env, kubeconfig)
        made.append(a)
        return a
    yield make
    for a in made:
        if a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait()
    for a in made:
        assert a.sanitizer_clean(), open(a.log_path).read()[-5000:]
