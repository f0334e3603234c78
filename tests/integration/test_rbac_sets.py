"""The least-privilege RBAC sets in rbac/least-privilege/, proven on the real
kube-apiserver. For each set:
- sufficient: the adapter runs with a token of the set's ServiceAccount and
  nothing else, and its scenario (the events the sink must receive) passes;
- minimal: with any ONE verb removed from any rule of the set's Roles and
  ClusterRoles, the same scenario fails (the adapter is refused: it exits
  under --fail-fast, or logs the 403, or the events do not arrive).

A set is a file; its scenario is a function below, registered in SETS. Every
run of a scenario uses new object names, so one sink serves them all.
"""
import copy
import json
import os
import time

import pytest

from harness import RBAC, wait_until

GUITAR = "kool.karmalabs.local/v1/Guitar"
SETS_DIR = os.path.join(RBAC, "least-privilege")
SA_NS = "guitar-eventing"
OTHER_NS = "guitar-stage"
# How long a scenario may take to show its events, and how long a crippled
# set gets to show its refusal (the 403 comes on the first list or watch).
PASS_TIMEOUT = 30
FAIL_TIMEOUT = 20


class Refused(Exception):
    """The scenario failed the way a missing permission makes it fail."""


def load_set(cluster, path):
    """The objects of a manifest file, as the API server would read them."""
    text = cluster.kubectl("create", "--dry-run=client", "-o", "json", "-f", path).stdout
    objs, dec, i = [], json.JSONDecoder(), 0
    while i < len(text):  # one JSON document per object, one after the other
        if text[i].isspace():
            i += 1
            continue
        o, i = dec.raw_decode(text, i)
        objs += o["items"] if o.get("kind") == "List" else [o]
    return objs


def roles(objs):
    return [o for o in objs if o["kind"] in ("Role", "ClusterRole")]


def apply_objs(cluster, objs):
    """Creates or replaces each object (replace: a Role's rules are taken whole)."""
    for o in objs:
        text = json.dumps(o)
        r = cluster.kubectl("replace", "-f", "-", input=text, check=False)
        if r.returncode != 0:
            cluster.kubectl("create", "-f", "-", input=text)


def delete_objs(cluster, objs):
    for o in objs:
        args = ["delete", o["kind"].lower(), o["metadata"]["name"], "--ignore-not-found"]
        if o["metadata"].get("namespace"):
            args += ["-n", o["metadata"]["namespace"]]
        cluster.kubectl(*args)


def without_one_verb(objs):
    """(what was removed, the set without it) for every verb of every rule."""
    for oi, o in enumerate(objs):
        if o["kind"] not in ("Role", "ClusterRole"):
            continue
        for ri, rule in enumerate(o.get("rules", [])):
            for verb in rule["verbs"]:
                variant = copy.deepcopy(objs)
                rules = variant[oi]["rules"]
                rules[ri]["verbs"] = [v for v in rule["verbs"] if v != verb]
                if not rules[ri]["verbs"]:
                    del rules[ri]
                what = (f"{o['kind']} {o['metadata']['name']}: verb {verb} on "
                        f"{','.join(rule.get('resources', []))}")
                yield what, variant, (o, rule, verb)


def can_i(cluster, objs, grant):
    """What the API server's authorizer answers now for the adapter's
    ServiceAccount and one (role, rule, verb): RBAC changes reach it through
    an informer, so a test waits for the answer it expects."""
    role, rule, verb = grant
    sa, sa_ns = service_account(objs)
    res = rule["resources"][0]
    sub = None
    if "/" in res:
        res, sub = res.split("/", 1)
    group = rule["apiGroups"][0]
    target = f"{res}.{group}" if group else res
    if rule.get("resourceNames"):
        target += "/" + rule["resourceNames"][0]
    args = ["auth", "can-i", verb, target, f"--as=system:serviceaccount:{sa_ns}:{sa}"]
    if sub:
        args.append(f"--subresource={sub}")
    ns = role["metadata"].get("namespace")
    args += ["-n", ns] if ns else ["--all-namespaces"]
    return cluster.kubectl(*args, check=False).stdout.strip() == "yes"


def service_account(objs):
    sas = [o for o in objs if o["kind"] == "ServiceAccount"]
    # The first ServiceAccount is the adapter's (others are identities it uses).
    return sas[0]["metadata"]["name"], sas[0]["metadata"]["namespace"]


def token_kubeconfig(cluster, proxy, objs):
    sa, ns = service_account(objs)
    token = cluster.kubectl("-n", ns, "create", "token", sa, "--duration=10m").stdout.strip()
    return cluster.proxied_kubeconfig(proxy, token=token), token


def run_until(adapter, delivered, timeout):
    """Waits for delivered() or a refusal: raises Refused when the adapter
    exits or logs a 403 before the events arrive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if delivered():
            return
        if adapter.proc.poll() is not None:
            raise Refused(f"adapter exited ({adapter.proc.returncode})")
        denied = [l for l in adapter.logs() if l.get("status") == 403]
        if denied:
            raise Refused(f"403: {denied[0].get('msg')} {denied[0].get('error', '')}")
        time.sleep(0.1)
    raise Refused("the events did not arrive")


def names_at(sink, type_suffix="add"):
    return {r["headers"].get("ce-name") for r in sink.requests()
            if r.get("status", 200) < 300
            and r["headers"].get("ce-type", "").endswith("." + type_suffix)}


def scenario_namespaced(cluster, sink, start, timeout, tag):
    a = start(["--resource", GUITAR, "-n", SA_NS, "--fail-fast"], {})
    name = f"ns-{tag}"
    run_until(a, lambda: a.watching_count() >= 1, timeout)
    cluster.guitar(name)
    run_until(a, lambda: name in names_at(sink), timeout)
    return a


def scenario_all_namespaces(cluster, sink, start, timeout, tag):
    a = start(["--resource", GUITAR, "--all-namespaces", "--fail-fast"], {})
    here, there = f"all-{tag}", f"all-{tag}-stage"
    run_until(a, lambda: a.watching_count() >= 1, timeout)
    cluster.guitar(here)
    cluster.guitar(there, ns=OTHER_NS)
    run_until(a, lambda: {here, there} <= names_at(sink), timeout)
    return a


def scenario_oidc(cluster, sink, start, timeout, tag):
    a = start(["--resource", GUITAR, "-n", SA_NS, "--fail-fast"],
              {"NAMESPACE": SA_NS, "K_AUDIENCE": "guitar-eventing/player",
               "K_OIDC_SERVICE_ACCOUNT": "guitar-bridge-oidc"})
    name = f"oidc-{tag}"
    run_until(a, lambda: a.watching_count() >= 1, timeout)
    cluster.guitar(name)

    def with_token():
        return any(r["headers"].get("ce-name") == name and
                   r["headers"].get("authorization", "").startswith("Bearer ")
                   for r in sink.requests())
    run_until(a, with_token, timeout)
    return a


SETS = {
    "namespaced.yaml": scenario_namespaced,
    "all-namespaces.yaml": scenario_all_namespaces,
    "oidc.yaml": scenario_oidc,
}


@pytest.fixture
def ground(cluster_factory, sink, adapter_factory, proxy_factory):
    cluster = cluster_factory(backend="real")
    cluster.guitars()
    cluster.kubectl("create", "namespace", OTHER_NS)
    proxy = proxy_factory(cluster)
    return cluster, sink, adapter_factory, proxy


def attempt(ground, objs, scenario, timeout, tag):
    """One run of the scenario with exactly `objs` granted; the adapter is
    stopped afterwards. Returns None on success, the reason on refusal."""
    cluster, sink, adapter_factory, proxy = ground
    kc, token = token_kubeconfig(cluster, proxy, objs)
    started = []

    def start(args, env):
        a = adapter_factory(args + ["--sink", sink.url], env=env, kubeconfig=kc)
        started.append(a)
        return a
    try:
        scenario(cluster, sink, start, timeout, tag)
        return None
    except Refused as e:
        return str(e)
    finally:
        for a in started:
            a.stop()
            assert token not in open(a.log_path).read(), "the token was logged"


def test_rbac_sets_are_all_proven():
    """Every file in rbac/least-privilege has a scenario here."""
    files = sorted(f for f in os.listdir(SETS_DIR) if f.endswith(".yaml"))
    assert files == sorted(SETS), f"sets without a scenario: {set(files) ^ set(SETS)}"


@pytest.mark.parametrize("set_file", sorted(SETS))
def test_rbac_set_sufficient_and_minimal(ground, set_file):
    cluster = ground[0]
    objs = load_set(cluster, os.path.join(SETS_DIR, set_file))
    assert roles(objs), f"{set_file} grants nothing"
    scenario = SETS[set_file]
    apply_objs(cluster, objs)
    why = attempt(ground, objs, scenario, PASS_TIMEOUT, "full")
    assert why is None, f"{set_file} is not sufficient: {why}"
    removed = []
    for i, (what, variant, grant) in enumerate(without_one_verb(objs)):
        apply_objs(cluster, roles(variant))
        wait_until(lambda: not can_i(cluster, objs, grant), 15, f"the authorizer to drop {what}")
        why = attempt(ground, variant, scenario, FAIL_TIMEOUT, f"v{i}")
        removed.append(what)
        assert why is not None, f"{set_file} is not minimal: the scenario passes without {what}"
        apply_objs(cluster, roles(objs))
        wait_until(lambda: can_i(cluster, objs, grant), 15, f"the authorizer to grant {what}")
    assert removed, f"{set_file}: no verb to remove"
    # Back to the whole set: the scenario passes again (the refusals above
    # came from the missing verb, not from a broken ground).
    why = attempt(ground, objs, scenario, PASS_TIMEOUT, "again")
    assert why is None, f"{set_file} after restoring every verb: {why}"
