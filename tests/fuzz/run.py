#!/usr/bin/env python3
"""Runs the libFuzzer targets built by -Dfuzz=enabled, a few at a time, and
writes one JUnit testcase per target (scripts/test counts them).

    tests/fuzz/run.py BUILD_DIR [--seconds N] [--jobs N] [--junit FILE] [TARGET...]

Each target starts from a scratch copy of its committed corpus
(tests/fuzz/corpus/TARGET) plus its regressions (tests/fuzz/regressions/TARGET,
inputs that once crashed it), with its dictionary and input size cap. Pass:
no crash, leak, timeout or out-of-memory within N seconds (FUZZ_SECONDS, or
30). A target that was not built is a failure. On failure the reproducer
path and the top of the report are printed; the run directory is
BUILD_DIR/fuzz-run/TARGET (scratch corpus, artifacts, log).
"""
import argparse
import concurrent.futures
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

here = pathlib.Path(__file__).resolve().parent

# target: (dictionary, -max_len). The caps keep each input within what the
# adapter bounds for that input in production (or below a size at which a
# 30 s run says nothing new), so one input can never take the whole run.
TARGETS = {
    "watch_stream": ("json.dict", 65536),
    "list": ("json.dict", 65536),
    "discovery": ("json.dict", 65536),
    "kubeconfig": ("yaml.dict", 16384),
    "manifest": ("yaml.dict", 16384),
    "source_config": ("json.dict", 16384),
    "ce_overrides": ("json.dict", 4096),
    "logging_config": ("json.dict", 8192),
    "label_selector": (None, 4096),
    "cesql": ("cesql.dict", 4096),
    "filter_json": ("json.dict", 16384),
    "filter_yaml": ("yaml.dict", 16384),
    "checkpoint": ("json.dict", 65536),
    "retry_after": (None, 256),
}
# Per input: a timeout (s) and a memory cap (MB) counted as failures.
TIMEOUT_S = 10
RSS_LIMIT_MB = 1024
REPORT_START = re.compile(r"^(==\d+==ERROR|ERROR: libFuzzer|.*runtime error:|==\d+== ERROR)")


def run_target(build, name, seconds, regressions_too=True):
    """Returns (name, ok, seconds taken, message, details)."""
    exe = build / "tests" / "fuzz" / f"fuzz_{name}"
    start = time.monotonic()
    if not os.access(exe, os.X_OK):
        return name, False, 0.0, f"{exe} was not built", ""
    # A binary older than its sources (the last build failed) is not run.
    dry = subprocess.run(["ninja", "-C", str(build), "-n", f"tests/fuzz/fuzz_{name}"],
                         capture_output=True, text=True)
    if dry.returncode != 0 or "no work to do" not in dry.stdout:
        return name, False, 0.0, f"{exe} is out of date: the build failed (ninja -C {build})", ""
    work = build / "fuzz-run" / name
    shutil.rmtree(work, ignore_errors=True)
    corpus = work / "corpus"
    artifacts = work / "artifacts"
    tmp = work / "tmp"  # the harnesses' files (fuzz.c)
    for d in (corpus, artifacts, tmp):
        d.mkdir(parents=True)
    committed = here / "corpus" / name
    if committed.is_dir():
        for f in committed.iterdir():
            shutil.copy(f, corpus / f.name)
    dictionary, max_len = TARGETS[name]
    env = dict(os.environ, TMPDIR=str(tmp),
               ASAN_OPTIONS="abort_on_error=0:detect_leaks=1:allocator_may_return_null=1",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    log = work / "fuzz.log"
    # The regressions first, each file run whole (named one by one: a corpus
    # directory would cut them at max_len or 1 MiB), then fuzzing from the
    # corpus.
    regressions = here / "regressions" / name
    phases = []
    if regressions_too and regressions.is_dir() and any(regressions.iterdir()):
        files = sorted(str(p) for p in regressions.iterdir() if p.is_file())
        phases.append(([str(exe), f"-timeout={TIMEOUT_S}", f"-rss_limit_mb={RSS_LIMIT_MB}"]
                       + files, 600))
    cmd = [str(exe), f"-max_total_time={seconds}", f"-timeout={TIMEOUT_S}",
           f"-rss_limit_mb={RSS_LIMIT_MB}", f"-max_len={max_len}",
           f"-artifact_prefix={artifacts}/", "-print_final_stats=1", "-detect_leaks=1"]
    if dictionary:
        cmd.append(f"-dict={here / 'dict' / dictionary}")
    cmd.append(str(corpus))
    # The run stops itself after max_total_time; the margin covers loading
    # the corpus and a last slow input.
    phases.append((cmd, seconds + 4 * TIMEOUT_S + 60))
    rc = 0
    with open(log, "wb") as out:
        for cmd, limit in phases:
            out.write(f"run.py: {' '.join(cmd)}\n".encode())
            out.flush()
            try:
                rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=tmp, env=env,
                                    timeout=limit).returncode
            except subprocess.TimeoutExpired:
                rc = None
            if rc != 0:
                break
    took = time.monotonic() - start
    text = log.read_text(errors="replace")
    stats = " ".join(f"{k}={v}" for k, v in re.findall(
        r"stat::(number_of_executed_units|peak_rss_mb):\s*(\d+)", text))
    found = sorted(str(p) for p in artifacts.iterdir() if not p.name.startswith("slow-unit-"))
    if rc == 0 and not found:
        return name, True, took, stats, ""
    lines = text.splitlines()
    # A regression that fails: its own file is the reproducer.
    running = [l[len("Running: "):] for l in lines if l.startswith("Running: ")]
    if len(phases) > 1 and cmd is phases[0][0] and running:
        found.append(running[-1])
    first = next((i for i, l in enumerate(lines) if REPORT_START.match(l)), max(0, len(lines) - 30))
    # Stack frames inside libFuzzer itself say nothing about the bug.
    # A recursion prints one frame thousands of times: keep the first.
    report, last = [], None
    for l in lines[first:]:
        frame = re.sub(r"^\s*#\d+ 0x[0-9a-f]+ ", "", l)
        if "in fuzzer::" in l or (frame == last and frame != l):
            continue
        report.append(l)
        last = frame
    top = "\n".join(report[:30])
    if rc is None:
        why = "did not stop in time"
    else:
        why = f"exit {rc}"
    repro = ", ".join(found) or "(no artifact written)"
    msg = f"{why}; reproducer: {repro}"
    details = f"command: {' '.join(cmd)}\nlog: {log}\n{top}"
    return name, False, took, msg, details


def write_junit(path, results):
    suite = ET.Element("testsuite", name="fuzz", tests=str(len(results)),
                       failures=str(sum(1 for r in results if not r[1])), errors="0",
                       skipped="0", time=f"{sum(r[2] for r in results):.1f}")
    for name, ok, took, msg, details in results:
        case = ET.SubElement(suite, "testcase", classname="fuzz", name=name, time=f"{took:.1f}")
        if not ok:
            ET.SubElement(case, "failure", message=msg).text = details
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", type=pathlib.Path)
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "30")))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--junit", type=pathlib.Path)
    ap.add_argument("--no-regressions", action="store_true",
                    help="fuzz only (to look for new failures while known ones are open)")
    ap.add_argument("targets", nargs="*")
    args = ap.parse_intermixed_args()
    names = args.targets or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        ap.error(f"unknown targets: {' '.join(unknown)} (known: {' '.join(TARGETS)})")
    build = args.build.resolve()
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_target, build, n, args.seconds, not args.no_regressions) for n in names]
        for fut in concurrent.futures.as_completed(futures):
            r = fut.result()
            results.append(r)
            name, ok, took, msg, details = r
            print(f"fuzz: {name}: {'ok' if ok else 'FAILED'} ({took:.0f} s) {msg}", file=sys.stderr)
            if details:
                print(details, file=sys.stderr)
    results.sort(key=lambda r: names.index(r[0]))
    if args.junit:
        write_junit(args.junit, results)
    failed = sum(1 for r in results if not r[1])
    print(f"fuzz: {len(results) - failed} passed, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
