"""The emulator is only useful if the real kubectl works against it."""
import os
import subprocess

from harness import ROOT


def test_real_kubectl_against_the_emulator():
    script = os.path.join(ROOT, "tests", "emulator", "kubectl-selftest.sh")
    r = subprocess.run([script], capture_output=True, text=True, timeout=300)
    fails = [l for l in r.stdout.splitlines() if l.startswith("FAIL")]
    assert r.returncode == 0 and not fails, r.stdout[-4000:] + r.stderr[-2000:]
    passes = [l for l in r.stdout.splitlines() if l.startswith("PASS")]
    assert len(passes) >= 30
