"""Every manifest the project ships (rbac/ and samples/, sub-folders included) is accepted by
the real kube-apiserver with Knative Eventing's CRDs: `kubectl apply --dry-run=server`, so the
server validates each object against its schema (CRDs included) without keeping it."""
import glob
import os

import pytest

from ground import ROOT

MANIFESTS = sorted(glob.glob(os.path.join(ROOT, "rbac", "**", "*.yaml"), recursive=True) +
                   glob.glob(os.path.join(ROOT, "samples", "**", "*.yaml"), recursive=True))


def test_manifests_are_found():
    names = [os.path.relpath(p, ROOT) for p in MANIFESTS]
    assert "rbac/adapter-deployment.yaml" in names and "samples/guitar-crd.yaml" in names, names


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: os.path.relpath(p, ROOT))
def test_manifest_dry_run_server(cluster, path):
    # What the others need to exist for real: the Guitar CRD and its namespace.
    for dep in ("guitar-crd.yaml", "guitar-namespace.yaml"):
        cluster.kubectl("apply", "-f", os.path.join(ROOT, "samples", dep))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/guitars.kool.karmalabs.local")
    r = cluster.kubectl("apply", "--dry-run=server", "-f", path, check=False)
    assert r.returncode == 0, f"{os.path.relpath(path, ROOT)}: {r.stderr.strip()}"
    assert "(server dry run)" in r.stdout, r.stdout
