"""Scenario tests: Knative Eventing's real controller (v0.49.2) reconciles ApiServerSources on
the real kube-apiserver; the kubelet stand-in runs the Deployment it creates from the adapter
image's root file system, in a pod network namespace, with a projected service-account token.

Run: python3 -m pytest tests/knative   (root; see docs/knative-testing.md)

A scenario records every failed expectation it can survive (Checks) and reports them all at the
end, so one missing adapter feature does not hide the state of the others.
"""
import contextlib
import json
import os
import re
import signal
import time

from ground import ROOT, wait_until

SAMPLES = os.path.join(ROOT, "samples")
RBAC = os.path.join(ROOT, "rbac")

# The adapter's Prometheus counter of events delivered to the sink, as one sample selector,
# e.g. 'apiserversource_events_sent_total{result="delivered"}'. Empty: look for counter
# samples whose name contains "sent" or "delivered" (see delivered_count()).
DELIVERED_METRIC = "apiserversource_events_sent_total{result=\"delivered\"}"

GUITAR_PATH = "/apis/kool.karmalabs.local/v1/namespaces/{ns}/guitars/{name}"
TYPE_ADD = "dev.knative.apiserver.resource.add"
TYPE_UPDATE = "dev.knative.apiserver.resource.update"
TYPE_DELETE = "dev.knative.apiserver.resource.delete"
ISO8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
READY_TIMEOUT = 45


class Checks:
    """Soft assertions: `with checks.soft("what"):` records an AssertionError and goes on;
    `with checks.run():` around a scenario reports the recorded ones together with the one that
    stopped it, plus checks.context (callables giving pod/controller state)."""

    def __init__(self):
        self.failed = []
        self.context = []

    @contextlib.contextmanager
    def soft(self, what):
        try:
            yield
        except AssertionError as e:
            self.failed.append(f"{what}: {e}")

    @contextlib.contextmanager
    def run(self):
        try:
            yield
        except AssertionError as e:
            self.failed.append(f"stopped at: {e}")
        self.done()

    def done(self):
        if self.failed:
            raise AssertionError("\n\n".join([f"{len(self.failed)} expectation(s) failed:"]
                                             + [f"- {f}" for f in self.failed]
                                             + [c() if callable(c) else str(c)
                                                for c in self.context]))


# --- cluster set-up ------------------------------------------------------------------------

def guitar_crd(cluster):
    cluster.apply(os.path.join(SAMPLES, "guitar-crd.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s",
                    "crd/guitars.kool.karmalabs.local")


def scenario_namespace(cluster, ns, sa="guitar-sa"):
    """A namespace like the walkthrough's: the ServiceAccount and Role/RoleBinding of
    rbac/guitar-rbac.yaml, and the Service cloudevents-player (a sink ref only)."""
    guitar_crd(cluster)
    cluster.apply(json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
    for path in (os.path.join(RBAC, "guitar-rbac.yaml"),
                 os.path.join(SAMPLES, "cloudevents-player-service.yaml")):
        text = open(path).read().replace("namespace: guitar-eventing", f"namespace: {ns}")
        text = text.replace("name: guitar-sa", f"name: {sa}")
        cluster.apply(text)


def guitar(cluster, ns, name, labels=None):
    meta = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    cluster.apply(json.dumps({"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar",
                              "metadata": meta, "spec": {"brand": "martin", "review": False}}))


def source_yaml(ns, name, sink_extra=None, filters=None, sa="guitar-sa"):
    sink = {"ref": {"apiVersion": "v1", "kind": "Service", "name": "cloudevents-player"}}
    sink.update(sink_extra or {})
    spec = {"serviceAccountName": sa, "mode": "Resource",
            "resources": [{"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar"}],
            "sink": sink}
    if filters is not None:
        spec["filters"] = filters
    return json.dumps({"apiVersion": "sources.knative.dev/v1", "kind": "ApiServerSource",
                       "metadata": {"name": name, "namespace": ns}, "spec": spec})


def wait_deployment(cluster, ns, source, timeout=30):
    """The receive adapter's Deployment, once Knative's controller has created it."""
    def get():
        r = cluster.kubectl("get", "deploy", "-n", ns, "-o", "json", "-l",
                            f"eventing.knative.dev/sourceName={source}")
        items = json.loads(r.stdout)["items"]
        return items[0] if items else None
    return wait_until(get, timeout, f"Knative's controller to create the Deployment of {ns}/"
                      f"{source}")


def container_env(dep):
    c = next(c for c in dep["spec"]["template"]["spec"]["containers"]
             if c["name"] == "receive-adapter")
    return c, {e["name"]: e for e in c.get("env", [])}


def wait_source_ready(cluster, ns, name, pod, controller, timeout=READY_TIMEOUT):
    r = cluster.kubectl("wait", "--for=condition=Ready", f"apiserversource/{name}", "-n", ns,
                        f"--timeout={timeout}s", check=False)  # Cluster.kubectl allows 60 s
    if r.returncode != 0:
        status = cluster.kubectl("get", "apiserversource", name, "-n", ns, "-o",
                                 "jsonpath={.status.conditions}", check=False).stdout
        raise AssertionError(
            f"kubectl wait --for=condition=Ready apiserversource/{name} failed: "
            f"{r.stderr.strip()}\nsource conditions: {status}\n"
            "(Ready follows the Deployment's Available condition, which the stand-in sets when "
            "the adapter's readiness probe GET :8080/readiness answers 2xx)\n"
            + (pod.describe() if pod else "no pod"))


def dump(pod, controller):
    def text():
        parts = []
        if pod:
            parts.append(pod.describe())
        if controller:
            parts.append("Knative controller log tail:\n" + controller.tail(15))
        return "\n".join(parts)
    return text


# --- CloudEvents at the sink ---------------------------------------------------------------

def cloudevent(req):
    """The CloudEvent of a recorded sink request (binary or structured mode)."""
    h = req["headers"]
    ctype = h.get("content-type", "")
    if ctype.startswith("application/cloudevents+json"):
        ev = json.loads(req["body"])
        if "data_base64" in ev:
            import base64
            ev["data"] = json.loads(base64.b64decode(ev["data_base64"]))
        return ev
    ev = {k[3:]: v for k, v in h.items() if k.startswith("ce-")}
    ev["datacontenttype"] = ctype
    body = req["body"]
    try:
        ev["data"] = json.loads(body) if body else None
    except ValueError:
        ev["data"] = body
    return ev


def events_of(sink):
    return [(r, cloudevent(r)) for r in sink.events()]


def wait_event(sink, pred, what, timeout=20, pod=None):
    def find():
        hits = [(r, e) for r, e in events_of(sink) if pred(e)]
        return hits or None
    try:
        return wait_until(find, timeout, what)
    except AssertionError as e:
        got = [(ev.get("type"), ev.get("subject")) for _, ev in events_of(sink)]
        raise AssertionError(f"{e}; the sink has {got}" + ("\n" + pod.describe() if pod else ""))


def subject(ns, name):
    return GUITAR_PATH.format(ns=ns, name=name)


# --- the adapter's logs --------------------------------------------------------------------

def check_zap_stdout(container):
    out = container.stdout()
    lines = [l for l in out.splitlines() if l.strip()]
    assert lines, ("the adapter wrote nothing on stdout; K_LOGGING_CONFIG's zap configuration "
                   "says outputPaths [stdout], encoding json. stderr head: "
                   + repr(container.stderr()[:500]))
    bad = []
    for l in lines:
        try:
            o = json.loads(l)
        except ValueError:
            bad.append(f"not JSON: {l[:200]!r}")
            continue
        missing = [k for k in ("ts", "level", "logger", "caller", "msg") if k not in o]
        if missing:
            bad.append(f"keys {missing} missing in {l[:200]!r}")
        elif not (isinstance(o["ts"], str) and ISO8601.match(o["ts"])):
            bad.append(f"ts {o['ts']!r} is not ISO-8601 (timeEncoder iso8601)")
    assert not bad, f"{len(bad)} of {len(lines)} stdout lines are not zap JSON: {bad[:5]}"


def check_stderr_quiet(container, allowed=2):
    lines = [l for l in container.stderr().splitlines() if l.strip()]
    assert len(lines) <= allowed, (f"stderr should be (nearly) empty under K_LOGGING_CONFIG "
                                   f"(logs go to stdout); it has {len(lines)} lines: {lines[:5]}")


def check_terminates_cleanly(pod):
    code, took, killed = pod.stop()
    assert not killed and code == 0, (f"on SIGTERM the adapter should exit 0 within the grace "
                                      f"period ({pod.grace}s); exit {code} after {took:.1f}s"
                                      f"{' (needed SIGKILL)' if killed else ''}")


# ============================================================================================

def test_walkthrough_through_knative(cluster, knative_factory, kubelet_factory, sink):
    """The seed walkthrough: Guitar CRD, guitar-eventing, guitar-sa + Role, the Service
    cloudevents-player and the walkthrough's ApiServerSource YAML unchanged."""
    ns, name = "guitar-eventing", "guitars-apisource"
    checks = Checks()
    with checks.run():
        guitar_crd(cluster)
        cluster.apply(os.path.join(SAMPLES, "guitar-namespace.yaml"))
        cluster.apply(os.path.join(RBAC, "guitar-rbac.yaml"))
        cluster.apply(os.path.join(SAMPLES, "cloudevents-player-service.yaml"))
        ctl = knative_factory()
        kl = kubelet_factory([ns], services=["cloudevents-player.guitar-eventing"],
                             ports={80: sink.port})
        cluster.apply(os.path.join(SAMPLES, "guitars-apisource-knative.yaml"))

        dep = wait_deployment(cluster, ns, name)
        c, env = container_env(dep)
        with checks.soft("the Deployment Knative's controller wrote"):
            for k in ("K_SINK", "K_SOURCE_CONFIG", "NAME", "NAMESPACE", "K_LOGGING_CONFIG",
                      "K_OBSERVABILITY_CONFIG"):
                assert k in env, f"env {k} missing: {sorted(env)}"
            assert env["K_SINK"]["value"] == \
                "http://cloudevents-player.guitar-eventing.svc.cluster.local"
            assert env["NAME"]["value"] == name
            assert env["NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
            src_cfg = json.loads(env["K_SOURCE_CONFIG"]["value"])
            assert src_cfg["namespaces"] == [ns], src_cfg
            assert src_cfg["resources"][0]["gvr"] == {"Group": "kool.karmalabs.local",
                                                      "Version": "v1",
                                                      "Resource": "guitars"}, src_cfg
            assert "zap-logger-config" in json.loads(env["K_LOGGING_CONFIG"]["value"])
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            assert ports == {"metrics": 9092, "probes": 8080}, ports
            assert c["readinessProbe"]["httpGet"]["path"] == "readiness"
            assert c["livenessProbe"]["httpGet"]["path"] == "health"
            assert c["readinessProbe"]["httpGet"]["port"] == "probes"
            assert c["livenessProbe"]["httpGet"]["port"] == "probes"
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "guitar-sa"

        pod = kl.wait_pod(ns, dep["metadata"]["name"])
        checks.context.append(dump(pod, ctl))
        with checks.soft("source Ready"):
            wait_source_ready(cluster, ns, name, pod, ctl)

        cluster.apply(os.path.join(SAMPLES, "guitar-d15.yaml"))
        sub = subject(ns, "d15")
        wait_event(sink, lambda e: e.get("type") == TYPE_ADD and e.get("subject") == sub,
                   "the add event of d15", pod=pod)
        cluster.kubectl("-n", ns, "label", "guitar", "d15", "helloknative=")
        wait_event(sink, lambda e: e.get("type") == TYPE_UPDATE and e.get("subject") == sub,
                   "the update event of d15 (label helloknative)", pod=pod)
        cluster.kubectl("-n", ns, "delete", "guitar", "d15")
        wait_event(sink, lambda e: e.get("type") == TYPE_DELETE and e.get("subject") == sub,
                   "the delete event of d15", pod=pod)

        got = events_of(sink)
        with checks.soft("exactly three CloudEvents"):
            assert [e.get("type") for _, e in got] == [TYPE_ADD, TYPE_UPDATE, TYPE_DELETE], \
                [(e.get("type"), e.get("subject")) for _, e in got]
        for req, ev in got:
            with checks.soft(f"event {ev.get('type')}"):
                assert ev.get("specversion") == "1.0", ev
                assert ev.get("id"), ev
                assert ev.get("source") == cluster.server, (ev.get("source"), cluster.server)
                assert ev.get("subject") == sub, ev.get("subject")
                assert isinstance(ev.get("data"), dict) and ev["data"]["metadata"]["name"] == "d15"
            with checks.soft(f"Kn-Namespace header on {ev.get('type')}"):
                assert req["headers"].get("kn-namespace") == ns, \
                    f"header Kn-Namespace should be {ns!r}: {req['headers']}"
        update = next((e for _, e in got if e.get("type") == TYPE_UPDATE), None)
        with checks.soft("the label in the update's data"):
            labels = update and update["data"]["metadata"].get("labels", {})
            assert update and labels.get("helloknative") == "", \
                update and update["data"]["metadata"]

        container = pod.container
        with checks.soft("zap JSON logs on stdout"):
            check_zap_stdout(container)
        with checks.soft("stderr quiet"):
            check_stderr_quiet(container)
        with checks.soft("no restarts"):
            assert pod.restarts == 0, pod.describe()
        with checks.soft("SIGTERM"):
            check_terminates_cleanly(pod)


def test_filters_through_knative(cluster, knative_factory, kubelet_factory, sink):
    """spec.filters (ANDed): a CESQL expression, a prefix, a not; only matching events arrive."""
    ns, name = "knative-filters", "filtered"
    checks = Checks()
    with checks.run():
        scenario_namespace(cluster, ns)
        ctl = knative_factory(features={"new-apiserversource-filters": "enabled"})
        kl = kubelet_factory([ns], services=[f"cloudevents-player.{ns}"], ports={80: sink.port})
        filters = [
            {"cesql": f"type = '{TYPE_ADD}' OR type = '{TYPE_DELETE}'"},   # drops updates
            {"prefix": {"subject": subject(ns, "d1")}},                    # drops x20
            {"not": {"exact": {"subject": subject(ns, "d13")}}},           # drops d13
        ]
        cluster.apply(source_yaml(ns, name, filters=filters))
        dep = wait_deployment(cluster, ns, name)
        _, env = container_env(dep)
        assert json.loads(env["K_SOURCE_CONFIG"]["value"]).get("filters") == filters, \
            ("Knative's controller should pass spec.filters in K_SOURCE_CONFIG: "
             f"{env['K_SOURCE_CONFIG']}")
        pod = kl.wait_pod(ns, dep["metadata"]["name"])
        checks.context.append(dump(pod, ctl))
        with checks.soft("source Ready"):
            wait_source_ready(cluster, ns, name, pod, ctl)

        for g in ("d10", "d11", "d13", "x20"):
            guitar(cluster, ns, g)
        cluster.kubectl("-n", ns, "label", "guitar", "d11", "color=sunburst")
        cluster.kubectl("-n", ns, "delete", "guitar", "d10")
        guitar(cluster, ns, "d19")  # the fence: matches, and comes after everything else
        wait_event(sink, lambda e: e.get("subject") == subject(ns, "d19"), "the fence event (d19)",
                   pod=pod)
        got = sorted((e.get("type"), e.get("subject")) for _, e in events_of(sink))
        want = sorted([(TYPE_ADD, subject(ns, "d10")), (TYPE_ADD, subject(ns, "d11")),
                       (TYPE_DELETE, subject(ns, "d10")), (TYPE_ADD, subject(ns, "d19"))])
        with checks.soft("exactly the matching events"):
            extra = [e for e in got if e not in want]
            missing = [e for e in want if e not in got]
            assert got == want, (f"events the filters should have dropped: {extra}; matching "
                                 "events "
                                 f"missing: {missing}; all: {got}")


def token_review(cluster, token, audience):
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
              "spec": {"token": token, "audiences": [audience]}}
    r = cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review))
    return json.loads(r.stdout)["status"]


def bearer(req):
    auth = req["headers"].get("authorization", "")
    assert auth.startswith("Bearer ") and len(auth) > 20, \
        f"the sink should get Authorization: Bearer <token>; headers {req['headers']}"
    return auth[len("Bearer "):]


def test_oidc_through_knative(cluster, knative_factory, kubelet_factory, sink):
    """authentication-oidc enabled + sink audience: the controller sets K_AUDIENCE and
    K_OIDC_SERVICE_ACCOUNT and lets guitar-sa create tokens for the OIDC service account; the
    adapter sends Authorization: Bearer <token for that audience>, and after a 401 it fetches a
    new token once and retries."""
    ns, name, audience = "knative-oidc", "oidc-guitars", "cloudevents-player.knative-oidc"
    checks = Checks()
    with checks.run():
        scenario_namespace(cluster, ns)
        ctl = knative_factory(features={"authentication-oidc": "enabled"})
        kl = kubelet_factory([ns], services=[f"cloudevents-player.{ns}"], ports={80: sink.port})
        cluster.apply(source_yaml(ns, name, sink_extra={"audience": audience}))

        dep = wait_until(lambda: (lambda d: d if "K_OIDC_SERVICE_ACCOUNT" in container_env(d)[1]
                                  else None)(wait_deployment(cluster, ns, name)), 30,
                         "the Deployment with K_OIDC_SERVICE_ACCOUNT")
        _, env = container_env(dep)
        assert env.get("K_AUDIENCE", {}).get("value") == audience, env.get("K_AUDIENCE")
        oidc_sa = env["K_OIDC_SERVICE_ACCOUNT"]["value"]
        assert oidc_sa == f"{name}-oidc-sources.knative.dev-apiserversource", oidc_sa
        cluster.kubectl("get", "serviceaccount", oidc_sa, "-n", ns)
        role = json.loads(cluster.kubectl("get", "role", f"{name}-create-oidc-token", "-n", ns,
                                          "-o", "json").stdout)
        assert role["rules"][0]["resources"] == ["serviceaccounts/token"], role["rules"]
        assert role["rules"][0]["resourceNames"] == [oidc_sa], role["rules"]
        cluster.kubectl("get", "rolebinding", f"{name}-create-oidc-token", "-n", ns)

        pod = kl.wait_pod(ns, dep["metadata"]["name"])
        checks.context.append(dump(pod, ctl))
        with checks.soft("source Ready"):
            wait_source_ready(cluster, ns, name, pod, ctl)

        guitar(cluster, ns, "o1")
        (req, ev), = wait_event(sink, lambda e: e.get("subject") == subject(ns, "o1"),
                                "the add event of o1", pod=pod)
        first = None
        with checks.soft("bearer token for the OIDC audience"):
            first = bearer(req)
            st = token_review(cluster, first, audience)
            assert st.get("authenticated") is True, st
            assert audience in st.get("audiences", []), st
            assert st["user"]["username"] == f"system:serviceaccount:{ns}:{oidc_sa}", st["user"]

        with checks.soft("401 -> one new token, one retry"):
            sink.set_responses([401])
            guitar(cluster, ns, "o2")
            wait_until(lambda: len([r for r in sink.requests()
                                    if cloudevent(r).get("subject") == subject(ns, "o2")]) >= 2, 20,
                       "the o2 event to be retried after the sink answered 401")
            guitar(cluster, ns, "o3")  # fence
            wait_event(sink, lambda e: e.get("subject") == subject(ns, "o3"),
                       "the fence event (o3)", pod=pod)
            tries = [r for r in sink.requests()
                     if cloudevent(r).get("subject") == subject(ns, "o2")]
            assert [r["status"] for r in tries] == [401, 200], [r["status"] for r in tries]
            assert cloudevent(tries[0]).get("id") == cloudevent(tries[1]).get("id")
            t1, t2 = bearer(tries[0]), bearer(tries[1])
            assert t2 != t1, "after a 401 the adapter should request a new token, not resend it"
            st = token_review(cluster, t2, audience)
            assert st.get("authenticated") is True and audience in st.get("audiences", []), st


def parse_prometheus(text):
    """{(name, labels-string): value} of the samples, and {name: type} from # TYPE lines."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, n, t = line.split(None, 3)
            types[n] = t.strip()
        elif line and not line.startswith("#"):
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)", line)
            if m:
                samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return samples, types


def delivered_count(text):
    """The delivered-events counter: DELIVERED_METRIC if set, else the candidates (counters
    named *sent* / *delivered*, success-looking labels preferred). Returns (value or None,
    candidates for the failure message)."""
    samples, types = parse_prometheus(text)
    if DELIVERED_METRIC:
        name, _, labels = DELIVERED_METRIC.partition("{")
        key = (name, "{" + labels if labels else "")
        return samples.get(key), {DELIVERED_METRIC: samples.get(key)}

    def is_counter(n):
        base = re.sub(r"_total$", "", n)
        return types.get(n) == "counter" or types.get(base) == "counter" or n.endswith("_total")
    cands = {f"{n}{l}": v for (n, l), v in samples.items()
             if re.search(r"sent|deliver", n) and is_counter(n) and
             not re.search(r"_(bucket|sum|count)$", n)}
    good = {k: v for k, v in cands.items()
            if "{" not in k or re.search(r'deliver|success|ok"|="2\d\d"|2xx|accepted', k)}
    if len(good) == 1:
        return next(iter(good.values())), cands
    names = {k.split("{")[0] for k in good}
    if len(names) == 1 and good:  # one counter split by labels that all look successful
        return sum(good.values()), cands
    return None, cands


def test_metrics_match_ledger(cluster, knative_factory, kubelet_factory, sink):
    """metrics-protocol prometheus: after N events the adapter's :9092/metrics counts exactly the
    events the sink accepted."""
    ns, name, n = "knative-metrics", "metered", 5
    checks = Checks()
    with checks.run():
        scenario_namespace(cluster, ns)
        ctl = knative_factory(observability={"metrics-protocol": "prometheus"})
        kl = kubelet_factory([ns], services=[f"cloudevents-player.{ns}"], ports={80: sink.port})
        cluster.apply(source_yaml(ns, name))
        dep = wait_deployment(cluster, ns, name)
        _, env = container_env(dep)
        obs = json.loads(env["K_OBSERVABILITY_CONFIG"]["value"])
        assert obs.get("metrics", {}).get("protocol") == "prometheus", obs
        pod = kl.wait_pod(ns, dep["metadata"]["name"])
        checks.context.append(dump(pod, ctl))
        with checks.soft("source Ready"):
            wait_source_ready(cluster, ns, name, pod, ctl)

        for i in range(n):
            guitar(cluster, ns, f"m{i}")
        wait_until(lambda: len(sink.events()) >= n, 30, f"{n} events at the sink")
        accepted = len(sink.events())
        last = {}

        def matches():
            try:
                status, body = pod.http_get(9092, "/metrics", timeout=2)
            except OSError as e:
                last["err"] = f"GET :9092/metrics from the pod netns: {e}"
                return False
            last["status"], last["text"] = status, body.decode(errors="replace")
            value, last["cands"] = delivered_count(last["text"])
            last["value"] = value
            return status == 200 and value == accepted
        with checks.soft("delivered counter == events the sink accepted"):
            try:
                wait_until(matches, 10, "the delivered counter to equal the sink's count")
            except AssertionError as e:
                raise AssertionError(
                    f"{e}: sink accepted {accepted}; "
                    f"scrape {last.get('err') or last.get('status')}; "
                    f"counter {last.get('value')}; candidates {last.get('cands')} "
                    f"(set DELIVERED_METRIC in {__file__}); metrics head: "
                    f"{(last.get('text') or '')[:1500]!r}")


def test_probes(cluster, knative_factory, kubelet_factory, sink):
    """Readiness 503 until the initial list is done and while the API server is unreachable;
    liveness 200 all along; a stopped (SIGSTOP) adapter fails liveness and is restarted."""
    ns, name = "knative-probes", "probed"
    assert os.environ.get("KNATIVE_TEST_IGNORE_PROBES") != "1", \
        "KNATIVE_TEST_IGNORE_PROBES=1 turns off the probes this test is about"
    checks = Checks()
    with checks.run():
        scenario_namespace(cluster, ns)
        ctl = knative_factory()
        kl = kubelet_factory([ns], services=[f"cloudevents-player.{ns}"], ports={80: sink.port},
                             api_reachable_at_start=False, liveness_grace=5)
        cluster.apply(source_yaml(ns, name))
        dep = wait_deployment(cluster, ns, name)
        pod = kl.wait_pod(ns, dep["metadata"]["name"])
        checks.context.append(dump(pod, ctl))
        api = pod.bridges["api"]

        def seen(kind, status, since=0.0):
            return any(t >= since and r == status for t, k, r in pod.probes(kind))

        # 1. API unreachable from the start: no initial list, so not ready; but alive.
        try:
            wait_until(lambda: seen("readiness", 503) and seen("liveness", 200), 20,
                       "readiness 503 and liveness 200 while the API server is unreachable")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{pod.describe()}")
        assert not seen("readiness", 200), f"ready without an initial list:\n{pod.describe()}"
        assert not pod.ready

        # 2. API reachable: ready, events flow.
        api.start()
        with checks.soft("ready once the initial list is done"):
            wait_until(lambda: pod.ready, 30, "readiness to pass")
            wait_source_ready(cluster, ns, name, pod, ctl)
        guitar(cluster, ns, "p1")
        wait_event(sink, lambda e: e.get("subject") == subject(ns, "p1"), "the add event of p1",
                   pod=pod)

        # 3. API unreachable again: readiness goes 503, the Deployment unavailable; liveness stays.
        t_cut = time.monotonic()
        api.stop()
        with checks.soft("not ready while the API server is unreachable"):
            wait_until(lambda: seen("readiness", 503, t_cut) and not pod.ready, 30,
                       "readiness 503 and the pod not ready once the API server is unreachable")
            wait_until(lambda: cluster.kubectl(
                "get", "deploy", "-n", ns, "-l", f"eventing.knative.dev/sourceName={name}", "-o",
                "jsonpath={.items[0].status.conditions[?(@.type=='Available')].status}"
            ).stdout == "False", 10, "the Deployment to be unavailable")
        with checks.soft("liveness stays 200 while the API server is unreachable"):
            bad = [r for t, k, r in pod.probes("liveness") if t >= t_cut and r != 200]
            assert not bad and seen("liveness", 200, t_cut), f"liveness results {bad[:5]}"
            assert pod.restarts == 0, pod.describe()
        api.start()
        with checks.soft("ready again after the API server is back"):
            wait_until(lambda: pod.ready, 30, "readiness to pass again")

        # 4. A hung adapter: liveness times out failureThreshold times -> kill and restart.
        first = pod.container
        pod.signal(signal.SIGSTOP)
        with checks.soft("restart after liveness failures"):
            wait_until(lambda: pod.restarts >= 1, 30, "the stand-in to restart the stopped adapter")
            timeouts = [r for t, k, r in pod.probes("liveness") if "timeout" in str(r).lower()]
            assert timeouts, f"liveness should have timed out: {pod.probes('liveness')[-5:]}"
            assert first.exit_code in (-9, 137, 128 + 9), f"first run exit {first.exit_code}"
            wait_until(lambda: pod.ready, 30, "the restarted adapter to be ready")
            assert pod.restarts == 1, pod.describe()
