#!/usr/bin/env python3
"""kube_emulator.py - a small, single-process Kubernetes API server emulator for tests.

WHAT IT EMULATES (enough for the real kubectl 1.32 and for list/watch clients such as an
ApiServerSource-style adapter):
  * /version (minor "32": the installed kubectl dispatcher picks its kubectl binary from it),
    /healthz /readyz /livez, legacy discovery (/api, /apis, /api/v1, /apis/G, /apis/G/V).
  * /openapi/v3 index + per-group-version docs.  They only carry what kubectl needs: a `patch`
    operation per kind with x-kubernetes-group-version-kind and a `fieldValidation` query
    parameter, so kubectl skips client-side validation and relies on server-side validation.
  * Built-in kinds (core v1 namespaces/configmaps/pods/secrets/serviceaccounts/events, batch/v1
    jobs, apps/v1 deployments, rbac v1 roles/rolebindings/clusterroles/clusterrolebindings,
    apiextensions v1 customresourcedefinitions) and any kind registered through a CRD.
  * create/get/list/watch/update/patch/delete/deletecollection, one global resourceVersion
    counter, uid/creationTimestamp/generation, label and field selectors, paging with continue
    tokens, watch history with 410 Expired, bookmarks, sendInitialEvents, finalizers
    (deletionTimestamp until the last finalizer is removed), dryRun, Status error objects,
    fieldValidation Strict/Warn/Ignore (CRs checked against the CRD's openAPIV3Schema, built-ins
    with a light top-level field check), bearer-token auth, optional TLS.
  * A fault-injection control API under /_emulator/ (see CONTROL API below).

WHAT IT DOES NOT EMULATE: authorization/RBAC (any accepted token is admin), admission, server-side
apply field ownership (apply-patch is treated as a merge patch), managedFields, Table output,
protobuf responses (protobuf *request bodies* of common built-in kinds are decoded, because
`kubectl create configmap|secret|role|...` sends nothing else), aggregated discovery, controllers (no GC, no default ServiceAccount, namespaces are
deleted immediately instead of going Terminating), CRD conversion (one stored copy is served
under every version), most built-in validation (names are checked, field types of built-ins are
not), strategic merge patch beyond a small table of list merge keys, HTTP/2, consistent
snapshots for paged lists (later pages read current data), status subresource for built-ins
other than "keep status on main-resource writes".

Lists of built-in kinds omit apiVersion/kind on items (like the real server); lists of custom
resources and all watch events carry them.

CLI: --port 0 (prints `port N`) --host 127.0.0.1 --tls-cert F --tls-key F --token T (repeatable)
     --token-file F (re-read per request; first comma field of each line, so a kube-apiserver
     token-auth-file works too) --history N (watch events kept, default 1000)
     --expire-mode stream|status --bookmark-interval S (default 5) --request-log F (JSON lines:
     time, method, path+query, status, auth=bool; never the token).
AUTH: when tokens are configured every request needs `Authorization: Bearer <token>` (else 401
Status) except /healthz, /readyz, /livez (public on a real apiserver too) and /_emulator/.

CHECKED AGAINST THE REAL SERVER: the integration scenarios that use the `cluster` fixture run
unchanged against this emulator and against kube-apiserver v1.37.2 (scripts/local-cluster --real),
so these behaviours are the real server's as far as the adapter can see: legacy discovery and CRD
registration (regular and irregular plurals, namespaced and cluster-scoped), paged lists, watch
from a resourceVersion with ADDED/MODIFIED/DELETED, label-selector watches (an object leaving the
selector arrives as DELETED), DELETED carrying the last state, list items of built-in kinds without
apiVersion/kind, a resumed watch after expiry answered with an in-stream ERROR 410, and kubectl's
apply/label/delete requests. Not checked there (emulator-only faults): HTTP 410 as a status,
chunking, malformed lines, stalls, injected 429/5xx, and token replacement through /_emulator/.

CONTROL API (no auth, loopback clients only; JSON in and out):
  POST /_emulator/compact         drop retained watch history (resuming older RVs -> 410)
  POST /_emulator/close-watches   end every open watch cleanly (terminating chunk)
  POST /_emulator/reset-watches   shut down every watch socket mid-stream (no terminating chunk)
  POST /_emulator/faults          {"path_regex","method","status","count","retry_after","watch",
                                   "message","delay"} next `count` matching requests fail
                                   (count <= 0 = forever; status 0 with delay = only slow down)
  GET  /_emulator/faults, DELETE /_emulator/faults   list / clear pending faults
  POST /_emulator/watch-options   {"chunk_bytes":N,"stall":bool,"inject_lines":[...],
                                   "reset_mid_event":N}
                                  reset_mid_event: the next N object events (ADDED/MODIFIED/DELETED;
                                  not bookmarks or inject_lines) written to any open watch are cut:
                                  the first half of the event's line goes out in its own chunk, then
                                  the socket is shut down and closed (no terminating chunk), so the
                                  client sees a truncated line.  The counter is global (N events =
                                  N cut streams).  The event stays in the history: resuming from the
                                  last complete resourceVersion delivers it again.
  POST /_emulator/bulk            {"apiVersion","kind","namespace","op":"create"|"update"|"delete",
                                   "names":[...] | "prefix","count","start", "labels":{..},
                                   "spec":{..},"spec_bytes":N}  -> {"done":N,"resourceVersion":"<last>"}
                                  Many writes of one kind in one request (names, or prefix+start ..
                                  prefix+start+count-1).  The kind resolves like a REST mapping
                                  (built-ins and CRD kinds; not CustomResourceDefinition itself);
                                  cluster-scoped kinds ignore "namespace", namespaced ones default to
                                  "default".  create: {apiVersion,kind,metadata{name,namespace,labels},
                                  spec (default {}; spec_bytes adds a string spec.padding of N bytes)}.
                                  update: merges "labels" into metadata.labels (null removes a key)
                                  and sets annotation bulk/seq to a new counter value, so every update
                                  is a real change.  delete: like DELETE (finalizers -> mark only,
                                  namespaces cascade).  Every write goes through the normal commit
                                  path (global RV, uid, history/410, watch fan-out with selector
                                  transitions, namespace existence), 500 objects per hold of the
                                  store lock.  Unlike the API it does NOT apply fieldValidation or
                                  CRD schema pruning (so spec.padding survives a schema without it).
                                  Names are checked up front: 409 AlreadyExists / 404 NotFound /
                                  422 bad name before anything is written; an error in mid-run (a
                                  concurrent writer) is a Status carrying "done" and "resourceVersion".
  POST /_emulator/tokens          {"tokens":[...]} replace the --token set
  GET  /_emulator/stats           open watches, list/watch counts per path, current RV

WATCH BUFFERING: writes never wait for watch readers.  Each write appends (type, object) to every
matching watch's unbounded in-memory queue under the store lock; the watch's own thread takes the
whole queue, releases the lock, serialises and writes.  A paused or stalled reader therefore costs
memory, not latency: ~64 bytes per queued event per watch plus the queued object versions (shared
between watches; a created object is the stored one, each update/delete pins its own version).
"""
import argparse, base64, collections, copy, hashlib, json, os, random, re, select, signal
import socket, ssl, string, sys, threading, time, traceback, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

ARGS = None
LOG_LOCK = threading.Lock()
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType",
           422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}


class ApiError(Exception):
    """Raised anywhere in request handling; turned into a Status response."""
    def __init__(self, code, message, reason=None, details=None, headers=None, metadata=None):
        super().__init__(message)
        self.code, self.message = code, message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details, self.headers, self.metadata = details, headers or {}, metadata

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": self.metadata or {},
              "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            st["details"] = self.details
        return st


def now_ts():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


# ----------------------------------------------------------------------------------------------
# Resource registry
# ----------------------------------------------------------------------------------------------
class Res:
    """One served (group, version, plural)."""
    def __init__(self, group, version, plural, singular, kind, namespaced, short=(),
                 list_kind=None, schema=None, crd=None, status_sub=False):
        self.group, self.version, self.plural, self.singular = group, version, plural, singular
        self.kind, self.namespaced, self.short = kind, namespaced, list(short or [])
        self.list_kind = list_kind or kind + "List"
        self.schema, self.crd, self.status_sub = schema, crd, status_sub

    @property
    def gv(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gk(self):  # storage key: shared by all versions of a kind
        return (self.group, self.plural)

    @property
    def qres(self):  # "guitars.kool.karmalabs.local" / "configmaps"
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qkind(self):
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def discovery(self):
        d = {"name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
             "kind": self.kind, "verbs": ["create", "delete", "deletecollection", "get", "list",
                                          "patch", "update", "watch"]}
        if self.short:
            d["shortNames"] = self.short
        return d


BUILTINS = [  # group, version, plural, singular, kind, namespaced, shortNames, has status
    ("", "v1", "namespaces", "namespace", "Namespace", False, ["ns"], True),
    ("", "v1", "configmaps", "configmap", "ConfigMap", True, ["cm"], False),
    ("", "v1", "pods", "pod", "Pod", True, ["po"], True),
    ("", "v1", "secrets", "secret", "Secret", True, [], False),
    ("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ["sa"], False),
    ("", "v1", "events", "event", "Event", True, ["ev"], False),
    ("batch", "v1", "jobs", "job", "Job", True, [], True),
    ("apps", "v1", "deployments", "deployment", "Deployment", True, ["deploy"], True),
    ("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", True, [], False),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", True, [], False),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", False, [], False),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding",
     "ClusterRoleBinding", False, [], False),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition",
     "CustomResourceDefinition", False, ["crd", "crds"], True),
]
# Light strict-validation for built-ins: allowed top-level fields (apiVersion/kind/metadata implied).
BUILTIN_FIELDS = {
    "Namespace": {"spec", "status"}, "ConfigMap": {"data", "binaryData", "immutable"},
    "Pod": {"spec", "status"}, "Secret": {"data", "stringData", "type", "immutable"},
    "ServiceAccount": {"secrets", "imagePullSecrets", "automountServiceAccountToken"},
    "Job": {"spec", "status"}, "Deployment": {"spec", "status"}, "Role": {"rules"},
    "RoleBinding": {"subjects", "roleRef"}, "ClusterRole": {"rules", "aggregationRule"},
    "ClusterRoleBinding": {"subjects", "roleRef"}, "CustomResourceDefinition": {"spec", "status"},
}
META_FIELDS = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
               "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
               "labels", "annotations", "ownerReferences", "finalizers", "managedFields"}
RBAC_GROUP = "rbac.authorization.k8s.io"
CRD_GK = ("apiextensions.k8s.io", "customresourcedefinitions")
NS_GK = ("", "namespaces")


def version_sort_key(v):
    """Kubernetes version priority: GA > beta > alpha, higher numbers first, others last."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (3, 0, 0, v)
    return ({None: 0, "beta": 1, "alpha": 2}[m.group(2)], -int(m.group(1)), -int(m.group(3) or 0), "")


# ----------------------------------------------------------------------------------------------
# Selectors
# ----------------------------------------------------------------------------------------------
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VAL = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


class LabelSelector:
    """=, ==, !=, in, notin, exists (key), !exists (!key).  != and notin match missing keys."""
    def __init__(self, text):
        self.reqs = []
        parts, depth, cur = [], 0, ""
        for ch in text or "":  # split on commas outside parentheses
            depth += ch == "("
            depth -= ch == ")"
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        parts.append(cur)
        for part in (p.strip() for p in parts):
            if not part:
                continue
            m = re.fullmatch(r"(\S+)\s+(in|notin)\s*\((.*)\)", part)
            if m:
                key, op = m.group(1), m.group(2)
                vals = {v.strip() for v in m.group(3).split(",")}
            elif part.startswith("!"):
                key, op, vals = part[1:].strip(), "!exists", set()
            elif "!=" in part:
                key, v = part.split("!=", 1)
                op, vals = "!=", {v.strip()}
            elif "=" in part:
                key, v = re.split("==?", part, maxsplit=1)
                op, vals = "=", {v.strip()}
            else:
                key, op, vals = part, "exists", set()
            key = key.strip()
            if not LABEL_KEY.match(key) or not all(LABEL_VAL.match(v) for v in vals):
                raise ApiError(400, f"unable to parse requirement: invalid label selector {part!r}")
            self.reqs.append((key, op, vals))

    def matches(self, labels):
        for key, op, vals in self.reqs:
            present = key in labels
            if op == "exists" and not present or op == "!exists" and present:
                return False
            if op in ("=", "in") and (not present or labels[key] not in vals):
                return False
            if op in ("!=", "notin") and present and labels[key] in vals:
                return False
        return True


class FieldSelector:
    """k=v, k==v, k!=v on any dotted path (metadata.name, metadata.namespace, ...)."""
    def __init__(self, text):
        self.reqs = []
        for part in (p.strip() for p in (text or "").split(",")):
            if not part:
                continue
            m = re.fullmatch(r"([^=!]+)(!=|==|=)(.*)", part)
            if not m:
                raise ApiError(400, f"invalid field selector: {part!r}")
            self.reqs.append((m.group(1).strip(), m.group(2) != "!=", m.group(3).strip()))

    def matches(self, obj):
        for path, eq, want in self.reqs:
            cur = obj
            for seg in path.split("."):
                cur = cur.get(seg) if isinstance(cur, dict) else None
            got = "" if cur is None else (str(cur).lower() if isinstance(cur, bool) else str(cur))
            if (got == want) != eq:
                return False
        return True


# ----------------------------------------------------------------------------------------------
# Patches
# ----------------------------------------------------------------------------------------------
def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# Strategic merge patch is a merge patch plus per-field list strategies; we know a few merge keys.
SMP_MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
                  "volumes": "name", "env": "name", "imagePullSecrets": "name",
                  "volumeMounts": "mountPath", "ports": "containerPort", "volumeDevices": "devicePath"}


def strategic_merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k in ("$retainKeys", "$patch"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            result[field] = [x for x in result.get(field) or [] if x not in v]
        elif v is None or isinstance(v, dict) and v.get("$patch") == "delete":
            result.pop(k, None)
        elif isinstance(v, list) and k in SMP_MERGE_KEYS and isinstance(result.get(k), list):
            result[k] = _smp_list(result[k], v, SMP_MERGE_KEYS[k])
        else:
            result[k] = strategic_merge_patch(result.get(k), v)
    if isinstance(patch.get("$retainKeys"), list):
        result = {k: v for k, v in result.items() if k in patch["$retainKeys"]}
    return result


def _smp_list(orig, patch, key):
    out = copy.deepcopy(orig)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            return copy.deepcopy(patch)
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
        elif idx is None:
            out.append(strategic_merge_patch({}, item))
        else:
            out[idx] = strategic_merge_patch(out[idx], item)
    return out


def json_patch(doc, ops):
    """RFC 6902: add, remove, replace, move, copy, test."""
    if not isinstance(ops, list):
        raise ApiError(400, "json patch must be an array of operations")

    def tokens(p):
        if p == "":
            return []
        if not p.startswith("/"):
            raise ApiError(422, f"invalid JSON pointer {p!r}")
        return [t.replace("~1", "/").replace("~0", "~") for t in p[1:].split("/")]

    def parent(d, toks):
        for t in toks[:-1]:
            try:
                d = d[int(t)] if isinstance(d, list) else d[t]
            except (KeyError, IndexError, ValueError, TypeError):
                raise ApiError(422, f"json patch: path not found: /{'/'.join(toks)}")
        return d, toks[-1]

    def get(d, toks):
        p, last = parent(d, toks)
        try:
            return p[int(last)] if isinstance(p, list) else p[last]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ApiError(422, f"json patch: path not found: /{'/'.join(toks)}")

    def remove(d, toks):
        val = get(d, toks)
        p, last = parent(d, toks)
        if isinstance(p, list):
            p.pop(int(last))
        else:
            del p[last]
        return val

    def add(d, toks, val):
        if not toks:
            return val
        p, last = parent(d, toks)
        if isinstance(p, list):
            idx = len(p) if last == "-" else int(last)
            if not 0 <= idx <= len(p):
                raise ApiError(422, "json patch: array index out of range")
            p.insert(idx, val)
        elif isinstance(p, dict):
            p[last] = val
        else:
            raise ApiError(422, "json patch: parent is not a container")
        return d

    doc = copy.deepcopy(doc)
    for op in ops:
        kind, toks = op.get("op"), tokens(op.get("path", ""))
        if kind == "add":
            doc = add(doc, toks, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            remove(doc, toks)
        elif kind == "replace":
            if not toks:
                doc = copy.deepcopy(op.get("value"))
                continue
            get(doc, toks)   # must exist
            p, last = parent(doc, toks)
            p[int(last) if isinstance(p, list) else last] = copy.deepcopy(op.get("value"))
        elif kind == "move":
            doc = add(doc, toks, remove(doc, tokens(op.get("from", ""))))
        elif kind == "copy":
            doc = add(doc, toks, copy.deepcopy(get(doc, tokens(op.get("from", "")))))
        elif kind == "test":
            if (get(doc, toks) if toks else doc) != op.get("value"):
                raise ApiError(422, f"json patch: test operation failed for {op.get('path')}")
        else:
            raise ApiError(422, f"json patch: unsupported operation {kind!r}")
    return doc


# ----------------------------------------------------------------------------------------------
# Schema validation of custom resources (strict decoding / pruning / simple type checks)
# ----------------------------------------------------------------------------------------------
TYPE_OK = {"string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
           "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
           "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
           "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list)}


JSON_TYPE = {str: "string", bool: "boolean", int: "integer", float: "number", dict: "object", list: "array"}


def check_schema(value, schema, path, unknown, invalid):
    """Collect unknown field paths (and delete them: pruning) and type errors."""
    if not isinstance(schema, dict) or schema.get("x-kubernetes-int-or-string"):
        return
    t = schema.get("type")
    if t in TYPE_OK and not TYPE_OK[t](value) and not (value is None and schema.get("nullable")):
        invalid.append((path, value, t))
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        if schema.get("x-kubernetes-preserve-unknown-fields") and props is None:
            return
        embedded = schema.get("x-kubernetes-embedded-resource")
        for k in list(value):
            sub = f"{path}.{k}" if path else k
            if props and k in props:
                check_schema(value[k], props[k], sub, unknown, invalid)
            elif isinstance(addl, dict):
                check_schema(value[k], addl, sub, unknown, invalid)
            elif addl is True or schema.get("x-kubernetes-preserve-unknown-fields") or \
                    embedded and k in ("apiVersion", "kind", "metadata"):
                continue
            else:
                unknown.append(sub)
                del value[k]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            check_schema(item, schema["items"], f"{path}[{i}]", unknown, invalid)


# ----------------------------------------------------------------------------------------------
# Minimal Kubernetes protobuf decoding.  `kubectl create configmap|secret|namespace|...` (typed
# clients) always POST `application/vnd.kubernetes.protobuf` and do not fall back on 415, so we
# decode the common built-in kinds into JSON-shaped dicts.  Unmapped fields are dropped.
# Field numbers follow k8s.io/api generated.proto.
# ----------------------------------------------------------------------------------------------
def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def _pb_fields(buf):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            val, i = buf[i:i + n], i + n
        elif wt == 1:
            val, i = buf[i:i + 8], i + 8
        elif wt == 5:
            val, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("unsupported protobuf wire type")
        yield num, val


def _pb_decode(buf, schema):
    out = {}
    for num, val in _pb_fields(buf):
        if num not in schema:
            continue
        name, typ = schema[num]
        rep = isinstance(typ, tuple) and typ[0] == "rep"
        t = typ[1] if rep else typ
        if t == "str":
            v = val.decode()
        elif t == "bytes":
            v = base64.b64encode(val).decode()
        elif t == "int":
            v = val - (1 << 64) if val >= 1 << 63 else val
        elif t == "bool":
            v = bool(val)
        elif t == "time":
            secs = _pb_decode(val, {1: ("s", "int")}).get("s", 0)
            v = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs)) if secs else None
        elif t == "quantity":
            v = _pb_decode(val, {1: ("s", "str")}).get("s", "")
        elif t in ("map", "mapb", "mapq"):
            e = _pb_decode(val, {1: ("k", "str"), 2: ("v", {"map": "str", "mapb": "bytes", "mapq": "quantity"}[t])})
            out.setdefault(name, {})[e.get("k", "")] = e.get("v", "")
            continue
        else:   # nested message schema
            v = _pb_decode(val, t)
        if rep:
            out.setdefault(name, []).append(v)
        elif v not in ("", None) and not (v == 0 and t == "int" and name not in PB_KEEP_ZERO):
            out[name] = v
    return out


PB_KEEP_ZERO = {"replicas", "parallelism", "completions", "backoffLimit"}   # pointer ints


def _rep(t):
    return ("rep", t)


PB_OWNER = {1: ("kind", "str"), 3: ("name", "str"), 4: ("uid", "str"), 5: ("apiVersion", "str"),
            6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")}
PB_META = {1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"), 5: ("uid", "str"),
           6: ("resourceVersion", "str"), 7: ("generation", "int"), 8: ("creationTimestamp", "time"),
           11: ("labels", "map"), 12: ("annotations", "map"), 13: ("ownerReferences", _rep(PB_OWNER)),
           14: ("finalizers", _rep("str"))}
PB_SELECTOR = {1: ("matchLabels", "map"), 2: ("matchExpressions", _rep(
    {1: ("key", "str"), 2: ("operator", "str"), 3: ("values", _rep("str"))}))}
PB_RULE = {1: ("verbs", _rep("str")), 2: ("apiGroups", _rep("str")), 3: ("resources", _rep("str")),
           4: ("resourceNames", _rep("str")), 5: ("nonResourceURLs", _rep("str"))}
PB_SUBJECT = {1: ("kind", "str"), 2: ("apiGroup", "str"), 3: ("name", "str"), 4: ("namespace", "str")}
PB_ROLEREF = {1: ("apiGroup", "str"), 2: ("kind", "str"), 3: ("name", "str")}
PB_CONTAINER = {1: ("name", "str"), 2: ("image", "str"), 3: ("command", _rep("str")), 4: ("args", _rep("str")),
                5: ("workingDir", "str"),
                6: ("ports", _rep({1: ("name", "str"), 2: ("hostPort", "int"), 3: ("containerPort", "int"),
                                   4: ("protocol", "str")})),
                7: ("env", _rep({1: ("name", "str"), 2: ("value", "str")})),
                8: ("resources", {1: ("limits", "mapq"), 2: ("requests", "mapq")}),
                13: ("terminationMessagePath", "str"), 14: ("imagePullPolicy", "str")}
PB_PODSPEC = {2: ("containers", _rep(PB_CONTAINER)), 3: ("restartPolicy", "str"),
              7: ("nodeSelector", "map"), 8: ("serviceAccountName", "str"),
              20: ("initContainers", _rep(PB_CONTAINER))}
PB_TEMPLATE = {1: ("metadata", PB_META), 2: ("spec", PB_PODSPEC)}
PB_KINDS = {
    "ConfigMap": {1: ("metadata", PB_META), 2: ("data", "map"), 3: ("binaryData", "mapb"), 4: ("immutable", "bool")},
    "Secret": {1: ("metadata", PB_META), 2: ("data", "mapb"), 3: ("type", "str"), 4: ("stringData", "map"),
               5: ("immutable", "bool")},
    "Namespace": {1: ("metadata", PB_META), 2: ("spec", {1: ("finalizers", _rep("str"))})},
    "ServiceAccount": {1: ("metadata", PB_META), 3: ("imagePullSecrets", _rep({1: ("name", "str")})),
                       4: ("automountServiceAccountToken", "bool")},
    "Role": {1: ("metadata", PB_META), 2: ("rules", _rep(PB_RULE))},
    "ClusterRole": {1: ("metadata", PB_META), 2: ("rules", _rep(PB_RULE)),
                    3: ("aggregationRule", {1: ("clusterRoleSelectors", _rep(PB_SELECTOR))})},
    "RoleBinding": {1: ("metadata", PB_META), 2: ("subjects", _rep(PB_SUBJECT)), 3: ("roleRef", PB_ROLEREF)},
    "ClusterRoleBinding": {1: ("metadata", PB_META), 2: ("subjects", _rep(PB_SUBJECT)),
                           3: ("roleRef", PB_ROLEREF)},
    "Deployment": {1: ("metadata", PB_META), 2: ("spec", {
        1: ("replicas", "int"), 2: ("selector", PB_SELECTOR), 3: ("template", PB_TEMPLATE),
        4: ("strategy", {1: ("type", "str")}), 5: ("minReadySeconds", "int"),
        6: ("revisionHistoryLimit", "int"), 9: ("progressDeadlineSeconds", "int")})},
    "Job": {1: ("metadata", PB_META), 2: ("spec", {
        1: ("parallelism", "int"), 2: ("completions", "int"), 3: ("activeDeadlineSeconds", "int"),
        4: ("selector", PB_SELECTOR), 6: ("template", PB_TEMPLATE), 7: ("backoffLimit", "int")})},
    "Pod": {1: ("metadata", PB_META), 2: ("spec", PB_PODSPEC)},
}


def decode_k8s_protobuf(body):
    """`k8s\\0` + runtime.Unknown{typeMeta{apiVersion,kind}=1, raw=2} -> dict, or None."""
    if not body.startswith(b"k8s\x00"):
        return None
    try:
        env = _pb_decode(body[4:], {1: ("typeMeta", {1: ("apiVersion", "str"), 2: ("kind", "str")}),
                                    2: ("raw", "bytes")})
        tm = env.get("typeMeta", {})
        schema = PB_KINDS.get(tm.get("kind"))
        if schema is None:
            return None
        obj = _pb_decode(base64.b64decode(env.get("raw", "")), schema)
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    obj.setdefault("metadata", {})
    return dict({"apiVersion": tm.get("apiVersion"), "kind": tm["kind"]}, **obj)


# ----------------------------------------------------------------------------------------------
# Store: objects, one global resourceVersion, watch history, watchers
# ----------------------------------------------------------------------------------------------
Event = collections.namedtuple("Event", "rv gk type obj old")


class Store:
    def __init__(self, history):
        self.lock = threading.RLock()        # guards everything below; watch Conditions share it
        self.rv = 0
        self.data = collections.defaultdict(dict)   # (group, plural) -> {(ns, name): obj}
        self.res = {}                               # (group, version, plural) -> Res
        self.history = collections.deque()
        self.history_max = history
        self.floor = 0     # watches from an RV below this are expired
        self.watches = set()
        self.stall = False
        self.chunk_bytes = 0
        self.reset_mid_event = 0   # next N object events on any watch: half a line, then abort
        self.bulk_seq = 0          # /_emulator/bulk update counter (annotation bulk/seq)
        for g, v, p, s, k, nsd, short, st in BUILTINS:
            self.res[(g, v, p)] = Res(g, v, p, s, k, nsd, short, status_sub=st)

    # --- registry -----------------------------------------------------------------------------
    def group_versions(self):
        """{group: [versions sorted by priority]} in a stable order (built-ins first)."""
        out = {}
        for (g, v, _p) in self.res:
            out.setdefault(g, [])
            if v not in out[g]:
                out[g].append(v)
        return {g: sorted(vs, key=version_sort_key) for g, vs in out.items()}

    def register_crd(self, crd):
        self.unregister_crd(crd["metadata"]["name"])
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        for ver in spec.get("versions") or []:
            if not ver.get("served", True):
                continue
            schema = (ver.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema")
            r = Res(spec["group"], ver["name"], names["plural"], names.get("singular"), names["kind"],
                    spec.get("scope", "Namespaced") == "Namespaced", names.get("shortNames"),
                    names.get("listKind"), schema, crd["metadata"]["name"],
                    bool((ver.get("subresources") or {}).get("status")))
            self.res[(r.group, r.version, r.plural)] = r

    def unregister_crd(self, crd_name):
        for key in [k for k, r in self.res.items() if r.crd == crd_name]:
            del self.res[key]

    # --- writes (caller holds self.lock) ------------------------------------------------------
    def commit(self, res_gk, etype, obj, old=None):
        """Assign the next resourceVersion, store/remove, record history, notify watchers."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if etype == "DELETED":
            self.data[res_gk].pop(key, None)
        else:
            self.data[res_gk][key] = obj
        ev = Event(self.rv, res_gk, etype, obj, old)
        if self.history_max > 0:
            if len(self.history) >= self.history_max:
                self.floor = self.history.popleft().rv
            self.history.append(ev)
        else:
            self.floor = self.rv
        for w in list(self.watches):
            w.offer(ev)
        return obj


class Watch:
    """One open watch stream.  Events are queued under the store lock; the handler thread writes."""
    def __init__(self, store, res, ns, lsel, fsel, conn):
        self.store, self.res, self.ns, self.lsel, self.fsel = store, res, ns, lsel, fsel
        self.q = collections.deque()
        self.cond = threading.Condition(store.lock)
        self.closing = self.reset = False
        self.conn = conn

    def matches(self, obj):
        meta = obj.get("metadata", {})
        if self.ns is not None and meta.get("namespace") != self.ns:
            return False
        return self.lsel.matches(meta.get("labels") or {}) and self.fsel.matches(obj)

    def offer(self, ev):
        if ev.gk != self.res.gk:
            return
        now = self.matches(ev.obj)
        etype = ev.type
        if etype == "MODIFIED":
            before = self.matches(ev.old) if ev.old is not None else now
            # like the watch cache: objects entering the selector are ADDED, leaving are DELETED
            etype = "MODIFIED" if now and before else "ADDED" if now else "DELETED" if before else None
            now = etype is not None
        if now:
            self.q.append((etype, ev.obj))
            self.cond.notify()


STORE = None


# ----------------------------------------------------------------------------------------------
# Faults, options, stats
# ----------------------------------------------------------------------------------------------
class Control:
    def __init__(self, tokens):
        self.lock = threading.Lock()
        self.faults = []
        self.tokens = set(tokens)
        self.stats_lists = collections.Counter()
        self.stats_watches = collections.Counter()
        self.requests = 0

    def take_fault(self, method, full_path, is_watch):
        with self.lock:
            for f in self.faults:
                if f["method"] and f["method"].upper() != method:
                    continue
                if f["watch"] is not None and bool(f["watch"]) != is_watch:
                    continue
                if not re.search(f["path_regex"], full_path):
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                    if f["count"] == 0:
                        self.faults.remove(f)
                return dict(f)
        return None

    def accepted_tokens(self):
        """None = auth disabled.  The token file is re-read on every request."""
        toks = set(self.tokens)
        enabled = bool(toks)
        if ARGS.token_file:
            enabled = True
            try:
                with open(ARGS.token_file) as fh:
                    for line in fh:
                        line = line.strip()
                        if line and not line.startswith("#"):
                            toks.add(line.split(",")[0])   # also accepts kube token-auth-file lines
            except OSError:
                pass
        return toks if enabled else None


CTL = None


def log_request(entry):
    if not ARGS.request_log:
        return
    with LOG_LOCK, open(ARGS.request_log, "a") as fh:
        fh.write(json.dumps(entry) + "\n")


# ----------------------------------------------------------------------------------------------
# OpenAPI v3 (just enough for kubectl's server-side-validation detection)
# ----------------------------------------------------------------------------------------------
def openapi_doc(group, version):
    resources = [r for (g, v, _), r in STORE.res.items() if g == group and v == version]
    if not resources:
        return None
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    qparams = [{"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
               for n in ("dryRun", "fieldManager", "fieldValidation")]
    paths = {}
    for r in sorted(resources, key=lambda r: r.plural):
        gvk = {"group": group, "version": version, "kind": r.kind}
        base = prefix + ("/namespaces/{namespace}/" if r.namespaced else "/") + r.plural
        pparams = [{"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}] \
            if r.namespaced else []
        def op(action, name):
            return {"operationId": f"{action}{r.kind}", "x-kubernetes-action": name,
                    "x-kubernetes-group-version-kind": gvk, "parameters": qparams,
                    "responses": {"200": {"description": "OK"}}}
        paths[base] = {"get": op("list", "list"), "post": op("create", "post"), "parameters": pparams}
        paths[base + "/{name}"] = {
            "get": op("read", "get"), "put": op("replace", "put"), "patch": op("patch", "patch"),
            "delete": op("delete", "delete"),
            "parameters": pparams + [{"name": "name", "in": "path", "required": True,
                                      "schema": {"type": "string"}}]}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0-emulator"},
            "paths": paths, "components": {"schemas": {}}}


# ----------------------------------------------------------------------------------------------
# HTTP handler
# ----------------------------------------------------------------------------------------------
class Abort(Exception):
    """Drop the connection without a proper HTTP ending."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-emulator/1.32"
    disable_nagle_algorithm = True   # headers and body go out in separate writes

    def log_message(self, *a):
        pass

    def log_request(self, code="-", size="-"):
        log_request({"time": time.time(), "method": self.command, "path": self.path,
                     "status": int(code) if str(code).isdigit() else code,
                     "auth": "Authorization" in self.headers})

    def do_GET(self): self.dispatch()
    def do_POST(self): self.dispatch()
    def do_PUT(self): self.dispatch()
    def do_PATCH(self): self.dispatch()
    def do_DELETE(self): self.dispatch()
    def do_HEAD(self): self.dispatch()

    # --- plumbing -------------------------------------------------------------------------------
    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send_bytes(self, code, body, ctype="application/json", headers=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, code, obj, headers=None):
        self.send_bytes(code, dumps(obj), headers=headers)

    def json_body(self):
        if "protobuf" in self.headers.get("Content-Type", ""):
            obj = decode_k8s_protobuf(self.body)   # kubectl create <kind> sends protobuf
            if obj is None:
                raise ApiError(415, "the body of the request was in an unknown format - accepted media "
                                    "types include: application/json, application/yaml")
            return obj
        try:
            obj = json.loads(self.body or b"null")
        except ValueError as e:
            raise ApiError(400, f"couldn't get version/kind; json parse error: {e}")
        return obj

    def dispatch(self):
        u = urlsplit(self.path)
        self.q = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        path = u.path
        is_watch = self.q.get("watch") in ("true", "1") or "/watch/" in path
        try:
            self.body = self.read_body()
            if path.startswith("/_emulator/"):
                return self.control(path)
            with CTL.lock:
                CTL.requests += 1
            fault = CTL.take_fault(self.command, self.path, is_watch)
            if fault:
                if fault.get("delay"):
                    time.sleep(float(fault["delay"]))
                if fault.get("status"):
                    headers = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") else {}
                    details = {"retryAfterSeconds": int(fault["retry_after"])} if fault.get("retry_after") else None
                    raise ApiError(int(fault["status"]), fault.get("message") or "injected fault",
                                   details=details, headers=headers)
            if path.rstrip("/") in ("/healthz", "/readyz", "/livez") or \
                    re.match(r"^/(healthz|readyz|livez)/", path):
                return self.send_bytes(200, b"ok", "text/plain; charset=utf-8")
            toks = CTL.accepted_tokens()
            if toks is not None:
                auth = self.headers.get("Authorization", "")
                if not (auth.startswith("Bearer ") and auth[7:].strip() in toks):
                    raise ApiError(401, "Unauthorized")
            self.route(path, is_watch)
        except ApiError as e:
            self.send_json(e.code, e.status(), e.headers)
        except Abort:
            self.close_connection = True
        except (BrokenPipeError, ConnectionError, ssl.SSLError, socket.timeout):
            self.close_connection = True
        except OSError:
            self.close_connection = True
        except Exception as e:  # noqa: keep serving; report as a 500 Status
            traceback.print_exc()
            try:
                self.send_json(500, ApiError(500, f"emulator error: {e}").status())
            except OSError:
                self.close_connection = True

    # --- control API ----------------------------------------------------------------------------
    def control(self, path):
        if not (self.client_address[0].startswith("127.") or self.client_address[0] == "::1"):
            raise ApiError(403, "control API is loopback-only")
        body = self.json_body() if self.body else {}
        body = body or {}
        op = path[len("/_emulator/"):].strip("/")
        out = {"ok": True}
        if op == "compact" and self.command == "POST":
            with STORE.lock:
                STORE.history.clear()
                STORE.floor = STORE.rv
                out["compacted_to"] = STORE.rv
        elif op in ("close-watches", "reset-watches") and self.command == "POST":
            with STORE.lock:
                ws = list(STORE.watches)
                for w in ws:
                    if op == "close-watches":
                        w.closing = True
                    else:
                        w.reset = True
                        try:  # base-class shutdown: works for SSL sockets too, wakes blocked writes
                            socket.socket.shutdown(w.conn, socket.SHUT_RDWR)
                        except OSError:
                            pass
                    w.cond.notify_all()
            out["watches"] = len(ws)
        elif op == "faults" and self.command == "POST":
            f = {"path_regex": body.get("path_regex") or ".*", "method": body.get("method"),
                 "status": int(body.get("status") or 0), "count": int(body.get("count", 1)),
                 "retry_after": body.get("retry_after"), "watch": body.get("watch"),
                 "message": body.get("message"), "delay": body.get("delay")}
            re.compile(f["path_regex"])
            with CTL.lock:
                CTL.faults.append(f)
            out["fault"] = f
        elif op == "faults" and self.command == "GET":
            with CTL.lock:
                out["faults"] = list(CTL.faults)
        elif op == "faults" and self.command == "DELETE":
            with CTL.lock:
                CTL.faults.clear()
        elif op == "watch-options" and self.command == "POST":
            with STORE.lock:
                if "chunk_bytes" in body:
                    STORE.chunk_bytes = int(body["chunk_bytes"] or 0)
                if "stall" in body:
                    STORE.stall = bool(body["stall"])
                if "reset_mid_event" in body:
                    STORE.reset_mid_event = max(0, int(body["reset_mid_event"] or 0))
                for w in STORE.watches:
                    for line in body.get("inject_lines") or []:
                        w.q.append(("RAW", line))
                    w.cond.notify_all()
                out.update(chunk_bytes=STORE.chunk_bytes, stall=STORE.stall, watches=len(STORE.watches),
                           reset_mid_event=STORE.reset_mid_event)
        elif op == "bulk" and self.command == "POST":
            return self.bulk(body)
        elif op == "tokens" and self.command == "POST":
            with CTL.lock:
                CTL.tokens = set(body.get("tokens") or [])
        elif op == "stats" and self.command == "GET":
            with STORE.lock, CTL.lock:
                out = {"open_watches": len(STORE.watches), "rv": STORE.rv,
                       "resourceVersion": str(STORE.rv), "history_floor": STORE.floor,
                       "history_len": len(STORE.history), "lists": dict(CTL.stats_lists),
                       "watches": dict(CTL.stats_watches), "requests": CTL.requests,
                       "pending_faults": len(CTL.faults), "stall": STORE.stall,
                       "chunk_bytes": STORE.chunk_bytes, "reset_mid_event": STORE.reset_mid_event}
        else:
            raise ApiError(404, f"unknown control operation {self.command} {path}")
        self.send_json(200, out)

    # --- bulk writes (control API) ---------------------------------------------------------------
    BULK_BATCH = 500   # objects written per hold of the store lock

    @staticmethod
    def resolve_kind(api_version, kind):
        """apiVersion + kind -> Res, like a client's REST mapping (caller holds STORE.lock)."""
        group, _, version = (api_version or "").rpartition("/")
        for (g, v, _p), r in STORE.res.items():
            if g == group and v == version and r.kind == kind:
                return r
        raise ApiError(404, f'no matches for kind "{kind}" in version "{api_version}"')

    def bulk(self, body):
        """POST /_emulator/bulk: many creates/updates/deletes of one kind in one request.  Every
        write goes through STORE.commit (resourceVersion, history, watch fan-out) under the store
        lock, BULK_BATCH objects per lock hold so watch threads can drain between batches."""
        if not isinstance(body, dict):
            raise ApiError(400, "bulk: body must be a JSON object")
        op = body.get("op")
        if op not in ("create", "update", "delete"):
            raise ApiError(400, 'bulk: "op" must be create, update or delete')
        if "names" in body:
            names = body["names"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ApiError(400, 'bulk: "names" must be a list of strings')
        else:
            try:
                count, start = int(body.get("count") or 0), int(body.get("start") or 0)
            except (TypeError, ValueError):
                raise ApiError(400, 'bulk: "count" and "start" must be integers')
            prefix = str(body.get("prefix") or "")
            names = [f"{prefix}{i}" for i in range(start, start + max(0, count))]
        if len(set(names)) != len(names):
            raise ApiError(400, "bulk: duplicate names")
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) or v is None and op == "update"
                                                   for v in labels.values()):
            raise ApiError(400, 'bulk: "labels" must be an object of strings (null removes, update only)')
        spec = body.get("spec")
        spec = {} if spec is None else spec
        if not isinstance(spec, dict):
            raise ApiError(400, 'bulk: "spec" must be an object')
        pad = int(body.get("spec_bytes") or 0)
        if pad > 0:
            spec = dict(spec, padding="x" * pad)
        with STORE.lock:
            res = self.resolve_kind(body.get("apiVersion"), body.get("kind"))
        if res.gk == CRD_GK:
            raise ApiError(400, "bulk: CustomResourceDefinitions are not supported; use the API")
        ns = (body.get("namespace") or "default") if res.namespaced else None
        if op == "create":
            for n in names:
                self.check_name(res, n)
        gk = res.gk
        done, last_rv = 0, None
        try:
            with STORE.lock:   # up-front check so a bad request writes nothing
                objs = STORE.data[gk]
                if op == "create":
                    self.require_ns(ns)
                    n = next((n for n in names if (ns, n) in objs), None)
                    if n is not None:
                        raise ApiError(409, f'{res.qres} "{n}" already exists', reason="AlreadyExists",
                                       details={"name": n, "group": res.group, "kind": res.plural})
                else:
                    n = next((n for n in names if (ns, n) not in objs), None)
                    if n is not None:
                        raise self.not_found(res, n)
                last_rv = STORE.rv
            for i in range(0, len(names), self.BULK_BATCH):
                with STORE.lock:
                    if not any(r.gk == gk for r in STORE.res.values()):   # CRD deleted meanwhile
                        raise ApiError(404, "the server could not find the requested resource")
                    objs = STORE.data[gk]
                    for n in names[i:i + self.BULK_BATCH]:
                        key = (ns, n)
                        if op == "create":
                            self.require_ns(ns)
                            if key in objs:
                                raise ApiError(409, f'{res.qres} "{n}" already exists', reason="AlreadyExists",
                                               details={"name": n, "group": res.group, "kind": res.plural})
                            meta = {"name": n}
                            if ns is not None:
                                meta["namespace"] = ns
                            if labels:
                                meta["labels"] = dict(labels)
                            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_ts(), generation=1)
                            obj = {"apiVersion": res.gv, "kind": res.kind, "metadata": meta,
                                   "spec": copy.deepcopy(spec)}
                            if gk == NS_GK:
                                obj["status"] = {"phase": "Active"}
                            STORE.commit(gk, "ADDED", obj)
                        else:
                            old = objs.get(key)
                            if old is None:
                                raise self.not_found(res, n)
                            if op == "update":
                                new = copy.deepcopy(old)
                                meta = new["metadata"]
                                if labels:
                                    lab = dict(meta.get("labels") or {})
                                    for k, v in labels.items():
                                        if v is None:
                                            lab.pop(k, None)
                                        else:
                                            lab[k] = v
                                    meta["labels"] = lab
                                STORE.bulk_seq += 1
                                meta["annotations"] = dict(meta.get("annotations") or {},
                                                           **{"bulk/seq": str(STORE.bulk_seq)})
                                new["apiVersion"], new["kind"] = res.gv, res.kind
                                STORE.commit(gk, "MODIFIED", new, old)
                            elif old["metadata"].get("finalizers") and gk != NS_GK:   # like delete()
                                if not old["metadata"].get("deletionTimestamp"):
                                    new = copy.deepcopy(old)
                                    new["metadata"].update(deletionTimestamp=now_ts(),
                                                           deletionGracePeriodSeconds=0)
                                    STORE.commit(gk, "MODIFIED", new, old)
                            else:
                                self.delete_locked(res, key, old)
                        done += 1
                        last_rv = STORE.rv
                time.sleep(0)   # let watch threads take their queues before the next batch
        except ApiError as e:
            st = e.status()
            st.update(done=done, resourceVersion=str(last_rv if last_rv is not None else STORE.rv))
            return self.send_json(e.code, st, e.headers)
        self.send_json(200, {"done": done, "resourceVersion": str(last_rv)})

    # --- routing --------------------------------------------------------------------------------
    def route(self, path, is_watch):
        m = self.command
        if path == "/version":
            return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-emulator",
                                        "gitCommit": "0" * 40, "gitTreeState": "clean",
                                        "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0",
                                        "compiler": "gc", "platform": "linux/amd64"})
        if path.rstrip("/") == "/openapi/v3":
            return self.openapi_index()
        if path.startswith("/openapi/v3/"):
            key = path[len("/openapi/v3/"):].strip("/").split("/")
            doc = None
            with STORE.lock:
                if key[0] == "api" and len(key) == 2:
                    doc = openapi_doc("", key[1])
                elif key[0] == "apis" and len(key) == 3:
                    doc = openapi_doc(key[1], key[2])
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource")
            return self.send_json(200, doc)
        parts = [p for p in path.split("/") if p]
        if parts == ["api"]:
            host = f"{self.server.server_address[0]}:{self.server.server_address[1]}"
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                        "serverAddress": host}]})
        if parts == ["apis"]:
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                        "groups": [self.api_group(g, vs) for g, vs in
                                                   STORE.group_versions().items() if g]})
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 2 and parts[0] == "apis":
            group = parts[1]
            if len(parts) == 2:
                vs = STORE.group_versions().get(group)
                if not vs:
                    raise ApiError(404, "the server could not find the requested resource")
                return self.send_json(200, self.api_group(group, vs))
            version, rest = parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        if not rest:
            with STORE.lock:
                rs = [r for (g, v, _), r in STORE.res.items() if g == group and v == version]
            if not rs:
                raise ApiError(404, "the server could not find the requested resource")
            return self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                        "groupVersion": rs[0].gv,
                                        "resources": [r.discovery() for r in rs]})
        if rest[0] == "watch":   # legacy /watch/ path prefix
            rest, is_watch = rest[1:], True
        ns = name = sub = None
        if len(rest) >= 3 and rest[0] == "namespaces" and not (group == "" and len(rest) == 3 and
                                                               rest[2] in ("status", "finalize")):
            ns, plural, tail = rest[1], rest[2], rest[3:]
        else:
            plural, tail = rest[0], rest[1:]
        if len(tail) > 2 or not rest:
            raise ApiError(404, "the server could not find the requested resource")
        name = tail[0] if tail else None
        sub = tail[1] if len(tail) > 1 else None
        res = STORE.res.get((group, version, plural))
        if res is None or (ns is not None and not res.namespaced) or \
                (res.namespaced and ns is None and name is not None) or \
                sub not in (None, "status", "finalize"):
            raise ApiError(404, "the server could not find the requested resource")
        if m in ("GET", "HEAD") and (is_watch):
            return self.watch(res, ns, name)
        if m in ("GET", "HEAD"):
            return self.get(res, ns, name) if name else self.list(res, ns)
        if m == "POST" and not name:
            return self.create(res, ns)
        if m == "PUT" and name:
            return self.update(res, ns, name, sub)
        if m == "PATCH" and name:
            return self.patch(res, ns, name, sub)
        if m == "DELETE":
            return self.delete(res, ns, name) if name else self.delete_collection(res, ns)
        raise ApiError(405, f"the server does not allow this method on the requested resource")

    @staticmethod
    def api_group(g, versions):
        vs = [{"groupVersion": f"{g}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": vs,
                "preferredVersion": vs[0]}

    def openapi_index(self):
        paths = {}
        with STORE.lock:
            for g, vs in STORE.group_versions().items():
                for v in vs:
                    key = f"apis/{g}/{v}" if g else f"api/{v}"
                    h = hashlib.sha512(dumps(openapi_doc(g, v))).hexdigest().upper()
                    paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={h}"}
        self.send_json(200, {"paths": paths})

    # --- helpers --------------------------------------------------------------------------------
    @staticmethod
    def out(res, obj, in_list=False):
        """Serve a stored object under the requested version."""
        o = dict(obj)
        if in_list and not res.crd:
            o.pop("apiVersion", None)   # real server: built-in list items carry no apiVersion/kind
            o.pop("kind", None)
        else:
            o["apiVersion"], o["kind"] = res.gv, res.kind
        return o

    @staticmethod
    def not_found(res, name):
        return ApiError(404, f'{res.qres} "{name}" not found',
                        details={"name": name, "group": res.group, "kind": res.plural})

    def dry_run(self):
        return bool(self.q.get("dryRun"))

    def require_ns(self, ns):
        if ns is not None and (None, ns) not in STORE.data[NS_GK]:
            raise ApiError(404, f'namespaces "{ns}" not found',
                           details={"name": ns, "kind": "namespaces"})

    def validate(self, res, obj, name_hint):
        """fieldValidation Strict -> 400; Warn (default) -> Warning headers; Ignore.  Prunes."""
        mode = self.q.get("fieldValidation", "Warn")
        if mode not in ("Strict", "Warn", "Ignore"):
            raise ApiError(400, f"fieldValidation must be one of Ignore, Warn, Strict; got {mode!r}")
        unknown, invalid = [], []
        for k in [k for k in obj.get("metadata") or {} if k not in META_FIELDS]:
            unknown.append(f"metadata.{k}")
            del obj["metadata"][k]
        if res.crd:
            if res.schema:
                body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
                check_schema(body, res.schema, "", unknown, invalid)
                for k in [k for k in obj if k not in ("apiVersion", "kind", "metadata")]:
                    if k in body:
                        obj[k] = body[k]
                    else:
                        del obj[k]
        elif res.kind in BUILTIN_FIELDS:
            for k in [k for k in obj if k not in BUILTIN_FIELDS[res.kind] | {"apiVersion", "kind", "metadata"}]:
                unknown.append(k)
                del obj[k]
        if invalid:
            causes = [{"reason": "FieldValueTypeInvalid", "field": p,
                       "message": f'Invalid value: "{JSON_TYPE.get(type(v), "null")}": {p} in body must be of type {t}: {json.dumps(v)}'}
                      for p, v, t in invalid]
            msg = "; ".join(f"{c['field']}: {c['message']}" for c in causes)
            raise ApiError(422, f'{res.qkind} "{name_hint}" is invalid: {msg}',
                           details={"name": name_hint, "group": res.group, "kind": res.kind,
                                    "causes": causes})
        if unknown and mode == "Strict":
            text = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise ApiError(400, f'{res.kind} in version "{res.version}" cannot be handled as a '
                                f'{res.kind}: strict decoding error: {text}')
        if unknown and mode == "Warn":
            self.warnings = [f'299 - "unknown field \\"{u}\\""' for u in unknown]

    def check_name(self, res, name):
        if res.group == RBAC_GROUP:   # rbac names are path segments
            ok = name not in (".", "..") and "/" not in name and "%" not in name
        elif res.kind == "Namespace":
            ok = re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63
        else:
            ok = re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) and len(name) <= 253
        if not ok:
            raise ApiError(422, f'{res.qkind} "{name}" is invalid: metadata.name: Invalid value: "{name}": '
                                f"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                                f"characters, '-' or '.'",
                           details={"name": name, "group": res.group, "kind": res.kind})

    def prepare(self, res, obj, ns, name_hint):
        """Common checks for create/update bodies."""
        if not isinstance(obj, dict):
            raise ApiError(400, "the body of the request must be a JSON object")
        if obj.get("kind") and obj["kind"] != res.kind:
            raise ApiError(400, f"the kind in the data ({obj['kind']}) does not match the expected kind ({res.kind})")
        if obj.get("apiVersion") and obj["apiVersion"].split("/")[0] != (res.group or "v1") \
                and obj["apiVersion"] != res.gv:
            raise ApiError(400, f"the API version in the data ({obj['apiVersion']}) does not match "
                                f"the expected API version ({res.gv})")
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be an object")
        self.validate(res, obj, meta.get("name") or name_hint)
        if res.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise ApiError(400, "the namespace of the provided object does not match the "
                                    "namespace sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        obj["apiVersion"], obj["kind"] = res.gv, res.kind
        if res.kind == "Secret" and isinstance(obj.get("stringData"), dict):
            obj.setdefault("data", {})
            for k, v in obj.pop("stringData").items():
                obj["data"][k] = base64.b64encode(str(v).encode()).decode()
        meta.pop("managedFields", None)
        return obj

    def crd_check(self, obj):
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        problems = []
        if not spec.get("group"):
            problems.append("spec.group: Required value")
        if not names.get("plural") or not names.get("kind"):
            problems.append("spec.names: plural and kind are required")
        if not spec.get("versions"):
            problems.append("spec.versions: Required value")
        if spec.get("scope", "Namespaced") not in ("Namespaced", "Cluster"):
            problems.append("spec.scope: Unsupported value")
        want = f"{names.get('plural')}.{spec.get('group')}"
        if obj["metadata"]["name"] != want:
            problems.append(f'metadata.name: Invalid value: "{obj["metadata"]["name"]}": '
                            f'must be spec.names.plural+"."+spec.group')
        if problems:
            name = obj["metadata"]["name"]
            raise ApiError(422, f'CustomResourceDefinition.apiextensions.k8s.io "{name}" is invalid: '
                           + "; ".join(problems),
                           details={"name": name, "group": "apiextensions.k8s.io",
                                    "kind": "CustomResourceDefinition"})
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
        spec.setdefault("scope", "Namespaced")
        obj["status"] = {"acceptedNames": copy.deepcopy(names), "storedVersions":
                         [v["name"] for v in spec["versions"] if v.get("storage", True)][:1],
                         "conditions": [{"type": t, "status": "True", "reason": r, "message": m,
                                         "lastTransitionTime": now_ts()} for t, r, m in
                                        (("NamesAccepted", "NoConflicts", "no conflicts found"),
                                         ("Established", "InitialNamesAccepted",
                                          "the initial names have been accepted"))]}

    def respond_obj(self, code, res, obj):
        hdrs = {}
        if getattr(self, "warnings", None):
            hdrs["Warning"] = ", ".join(self.warnings)
        self.send_json(code, self.out(res, obj), hdrs)

    # --- verbs ----------------------------------------------------------------------------------
    def get(self, res, ns, name):
        with STORE.lock:
            obj = STORE.data[res.gk].get((ns, name))
        if obj is None:
            raise self.not_found(res, name)
        self.send_json(200, self.out(res, obj))

    def selected(self, res, ns):
        lsel, fsel = LabelSelector(self.q.get("labelSelector")), FieldSelector(self.q.get("fieldSelector"))
        def ok(o):
            return (ns is None or o["metadata"].get("namespace") == ns) and \
                lsel.matches(o["metadata"].get("labels") or {}) and fsel.matches(o)
        return lsel, fsel, ok

    def list(self, res, ns):
        _l, _f, ok = self.selected(res, ns)
        with CTL.lock:
            CTL.stats_lists[urlsplit(self.path).path] += 1
        limit = int(self.q.get("limit") or 0)
        start, list_rv = None, None
        if self.q.get("continue"):
            try:
                tok = json.loads(base64.urlsafe_b64decode(self.q["continue"].encode()))
                start, list_rv = tuple(tok["start"]), int(tok["rv"])
            except Exception:
                raise ApiError(400, "continue key is not valid")
        with STORE.lock:
            if list_rv is not None and list_rv < STORE.floor:
                raise ApiError(410, "The provided continue parameter is too old to display a consistent "
                                    "list result. You can start a new list without the continue parameter.")
            rv = list_rv if list_rv is not None else STORE.rv
            items = sorted((k, o) for k, o in STORE.data[res.gk].items() if ok(o))
        # keys are (namespace or None, name); None sorts as ""
        items = [(("" if k[0] is None else k[0], k[1]), o) for k, o in items]
        items.sort(key=lambda kv: kv[0])
        if start is not None:
            items = [kv for kv in items if kv[0] > start]
        meta = {"resourceVersion": str(rv)}
        if limit and len(items) > limit:
            meta["continue"] = base64.urlsafe_b64encode(
                dumps({"rv": rv, "start": list(items[limit - 1][0])})).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        self.send_json(200, {"kind": res.list_kind, "apiVersion": res.gv, "metadata": meta,
                             "items": [self.out(res, o, in_list=True) for _, o in items]})

    def create(self, res, ns):
        obj = self.prepare(res, self.json_body(), ns, "")
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        name = meta.get("name")
        if not name:
            raise ApiError(422, f'{res.kind}.{res.group or "core"} is invalid: metadata.name: Required value: '
                                f"name or generateName is required",
                           details={"group": res.group, "kind": res.kind})
        self.check_name(res, name)
        if res.gk == CRD_GK:
            self.crd_check(obj)
        if res.gk == NS_GK:
            obj["status"] = {"phase": "Active"}
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(k, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_ts(), generation=1)
        with STORE.lock:
            self.require_ns(ns)
            if (ns, name) in STORE.data[res.gk]:
                raise ApiError(409, f'{res.qres} "{name}" already exists', reason="AlreadyExists",
                               details={"name": name, "group": res.group, "kind": res.plural})
            if not self.dry_run():
                if res.gk == CRD_GK:
                    STORE.register_crd(obj)   # discovery shows the new kind before we answer
                STORE.commit(res.gk, "ADDED", obj)
        self.respond_obj(201, res, obj)

    def write_existing(self, res, ns, name, sub, mutate):
        """Shared read-modify-write for PUT and PATCH.  mutate(old_copy) -> new object."""
        with STORE.lock:
            old = STORE.data[res.gk].get((ns, name))
            if old is None:
                if self.headers.get("Content-Type", "").startswith("application/apply-patch"):
                    return None   # server-side apply creates
                raise self.not_found(res, name)
            new = mutate(copy.deepcopy(old))
            new = self.prepare(res, new, ns, name)
            meta, ometa = new["metadata"], old["metadata"]
            if meta.get("name", name) != name:
                raise ApiError(400, f"the name of the object ({meta.get('name')}) does not match "
                                    f"the name on the URL ({name})")
            want_rv = meta.get("resourceVersion")
            if want_rv and want_rv != ometa["resourceVersion"]:
                raise ApiError(409, f'Operation cannot be fulfilled on {res.qres} "{name}": the object has '
                                    f"been modified; please apply your changes to the latest version and "
                                    f"try again", details={"name": name, "group": res.group, "kind": res.plural})
            # server-owned metadata
            for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "resourceVersion"):
                if k in ometa:
                    meta[k] = ometa[k]
                else:
                    meta.pop(k, None)
            meta["name"] = name
            has_status = res.status_sub or (not res.crd and "status" in BUILTIN_FIELDS.get(res.kind, ()))
            if sub in ("status",):   # only status changes through /status
                new = dict(copy.deepcopy(old), status=new.get("status"))
                if new["status"] is None:
                    new.pop("status")
            elif has_status and res.gk != CRD_GK:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
            if res.gk == CRD_GK:
                self.crd_check(new)
                if (old.get("status") or {}).get("acceptedNames") == new["status"]["acceptedNames"]:
                    new["status"] = copy.deepcopy(old["status"])   # keep condition timestamps
            def body(o):
                return {k: v for k, v in o.items() if k not in ("metadata", "status")}
            if body(new) != body(old):
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
            if new == old:
                return old   # no-op write: same resourceVersion, no event
            if self.dry_run():
                return new
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                return STORE.commit(res.gk, "DELETED", new, old)   # last finalizer removed
            if res.gk == CRD_GK:
                STORE.register_crd(new)
            return STORE.commit(res.gk, "MODIFIED", new, old)

    def update(self, res, ns, name, sub):
        body = self.json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be a JSON object")
        def mutate(old):
            new = copy.deepcopy(body)
            new.setdefault("metadata", {})
            return new
        self.respond_obj(200, res, self.write_existing(res, ns, name, sub, mutate))

    def patch(self, res, ns, name, sub):
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
        patch = self.json_body()
        if ctype == "application/json-patch+json":
            fn = lambda old: json_patch(old, patch)
        elif ctype in ("application/merge-patch+json", "application/apply-patch+yaml",
                       "application/apply-patch+json"):
            if not isinstance(patch, dict):
                raise ApiError(400, "merge patch must be a JSON object")
            fn = lambda old: merge_patch(old, patch)
        elif ctype == "application/strategic-merge-patch+json":
            if not isinstance(patch, dict):
                raise ApiError(400, "strategic merge patch must be a JSON object")
            fn = lambda old: strategic_merge_patch(old, patch)
        else:
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media types "
                                f"include: application/json-patch+json, application/merge-patch+json, "
                                f"application/apply-patch+yaml, application/strategic-merge-patch+json")
        obj = self.write_existing(res, ns, name, sub, fn)
        if obj is None:   # server-side apply of a missing object: create it
            self.body = dumps(dict(patch, metadata=dict(patch.get("metadata") or {}, name=name)))
            return self.create(res, ns)
        self.respond_obj(200, res, obj)

    def delete_locked(self, res, key, old):
        """Delete one object (caller holds the lock) with cascades for namespaces and CRDs."""
        if res.gk == NS_GK:
            for gk, objs in list(STORE.data.items()):
                for k in sorted(k for k in objs if k[0] == key[1]):
                    STORE.commit(gk, "DELETED", copy.deepcopy(objs[k]), objs[k])
        if res.gk == CRD_GK:
            spec = old.get("spec", {})
            gk = (spec.get("group"), spec.get("names", {}).get("plural"))
            for k in sorted(STORE.data[gk], key=lambda k: (k[0] or "", k[1])):
                STORE.commit(gk, "DELETED", copy.deepcopy(STORE.data[gk][k]), STORE.data[gk][k])
            for w in list(STORE.watches):     # the resource is gone: end its watches
                if w.res.gk == gk:
                    w.closing = True
                    w.cond.notify_all()
            STORE.unregister_crd(old["metadata"]["name"])
        return STORE.commit(res.gk, "DELETED", copy.deepcopy(old), old)

    def delete(self, res, ns, name):
        try:   # DeleteOptions are optional; an undecodable body (e.g. protobuf) is ignored
            opts = self.json_body() if self.body else {}
        except ApiError:
            opts = {}
        pre = (opts if isinstance(opts, dict) else {}).get("preconditions") or {}
        with STORE.lock:
            old = STORE.data[res.gk].get((ns, name))
            if old is None:
                raise self.not_found(res, name)
            for k in ("uid", "resourceVersion"):
                if pre.get(k) and pre[k] != old["metadata"].get(k):
                    raise ApiError(409, f"Precondition failed: {k} in precondition: {pre[k]}, {k} in "
                                        f"object meta: {old['metadata'].get(k)}",
                                   details={"name": name, "group": res.group, "kind": res.plural})
            if self.dry_run():
                obj = old
            elif old["metadata"].get("finalizers") and res.gk != NS_GK:
                obj = old
                if not old["metadata"].get("deletionTimestamp"):   # mark, wait for finalizers
                    new = copy.deepcopy(old)
                    new["metadata"].update(deletionTimestamp=now_ts(), deletionGracePeriodSeconds=0)
                    obj = STORE.commit(res.gk, "MODIFIED", new, old)
            else:
                obj = self.delete_locked(res, (ns, name), old)
        self.send_json(200, self.out(res, obj))

    def delete_collection(self, res, ns):
        _l, _f, ok = self.selected(res, ns)
        with STORE.lock:
            if res.namespaced and ns is not None:
                self.require_ns(ns)
            victims = sorted((k, o) for k, o in STORE.data[res.gk].items() if ok(o))
            done = victims if self.dry_run() else \
                [(k, self.delete_locked(res, k, o)) for k, o in victims]
            rv = STORE.rv
        self.send_json(200, {"kind": res.list_kind, "apiVersion": res.gv,
                             "metadata": {"resourceVersion": str(rv)},
                             "items": [self.out(res, o, in_list=True) for _, o in done]})

    # --- watch ----------------------------------------------------------------------------------
    def watch(self, res, ns, name):
        lsel, fsel, ok = self.selected(res, ns)
        if name:
            fsel.reqs.append(("metadata.name", True, name))
        with CTL.lock:
            CTL.stats_watches[urlsplit(self.path).path] += 1
        rv_param = self.q.get("resourceVersion", "")
        initial_events = self.q.get("sendInitialEvents") == "true"
        bookmarks = self.q.get("allowWatchBookmarks") == "true"
        timeout = float(self.q.get("timeoutSeconds") or 0)
        w = Watch(STORE, res, ns, lsel, fsel, self.connection)
        expired = None
        with STORE.lock:
            if rv_param in ("", "0") or initial_events:
                for k in sorted(STORE.data[res.gk], key=lambda k: (k[0] or "", k[1])):
                    o = STORE.data[res.gk][k]
                    if w.matches(o):
                        w.q.append(("ADDED", o))
                if initial_events:
                    w.q.append(("BOOKMARK", {"metadata": {"resourceVersion": str(STORE.rv), "annotations": {
                        "k8s.io/initial-events-end": "true"}}}))
            else:
                try:
                    since = int(rv_param)
                except ValueError:
                    raise ApiError(400, f'resourceVersion: Invalid value: "{rv_param}": must be an integer')
                if since < STORE.floor:
                    expired = f"too old resource version: {since} ({STORE.floor})"
                else:
                    for ev in STORE.history:
                        if ev.rv > since:
                            w.offer(ev)
            if not expired:
                STORE.watches.add(w)
        if expired:
            st = ApiError(410, expired, reason="Expired")
            if ARGS.expire_mode == "status":
                raise st
            self.start_chunked()
            self.write_line(dumps({"type": "ERROR", "object": st.status()}))
            self.wfile.write(b"0\r\n\r\n")
            return
        try:
            self.stream(w, res, timeout, bookmarks)
        finally:
            with STORE.lock:
                STORE.watches.discard(w)

    @staticmethod
    def take_reset_mid_event():
        with STORE.lock:
            if STORE.reset_mid_event > 0:
                STORE.reset_mid_event -= 1
                return True
        return False

    def write_half_and_abort(self, line):
        """reset_mid_event fault: the first half of the event's line in its own chunk, then an
        abrupt end (shutdown + close, no terminating chunk).  The event stays in the history."""
        data = line + b"\n"
        half = data[:max(1, len(data) // 2)]
        self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
        self.wfile.flush()
        try:   # base-class shutdown: works for SSL sockets too (no close_notify)
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass
        raise Abort()

    def start_chunked(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def write_line(self, data):
        data += b"\n"
        n = STORE.chunk_bytes or len(data)
        for i in range(0, len(data), n):
            part = data[i:i + n]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))

    def client_gone(self):
        """Detect a closed client connection while idle (the client never sends during a watch)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            if isinstance(self.connection, ssl.SSLSocket):
                return True    # TLS: anything readable here is close_notify/EOF
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def stream(self, w, res, timeout, bookmarks):
        self.start_chunked()
        deadline = time.monotonic() + timeout if timeout > 0 else None
        interval = ARGS.bookmark_interval
        next_bm = time.monotonic() + interval
        while True:
            items, bm_rv, end = [], None, None
            with w.cond:
                ready = lambda: w.reset or w.closing or (w.q and not STORE.stall)
                if not ready():
                    wait = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic()))
                    w.cond.wait(wait)
                if w.reset:
                    end = "reset"
                elif w.q and not STORE.stall:
                    items = list(w.q)
                    w.q.clear()
                elif w.closing:
                    end = "close"
                elif bookmarks and not STORE.stall and not w.q and time.monotonic() >= next_bm:
                    bm_rv = STORE.rv    # queue empty: every event <= rv has been delivered
            if end == "reset":
                raise Abort()
            for etype, obj in items:
                if etype == "RAW":
                    self.write_line(obj.encode() if isinstance(obj, str) else obj)
                elif etype == "BOOKMARK":
                    self.write_line(dumps({"type": "BOOKMARK", "object": dict(
                        obj, apiVersion=res.gv, kind=res.kind)}))
                else:
                    line = dumps({"type": etype, "object": self.out(res, obj)})
                    if STORE.reset_mid_event > 0 and self.take_reset_mid_event():
                        self.write_half_and_abort(line)
                    self.write_line(line)
            if bm_rv is not None:
                self.write_line(dumps({"type": "BOOKMARK", "object": {
                    "kind": res.kind, "apiVersion": res.gv, "metadata": {"resourceVersion": str(bm_rv)}}}))
                next_bm = time.monotonic() + interval
            if end == "close" or (deadline is not None and time.monotonic() >= deadline):
                self.wfile.write(b"0\r\n\r\n")
                return
            if not items and self.client_gone():
                raise Abort()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ssl_ctx = None

    def finish_request(self, request, client_address):
        # TLS handshake here, in the per-connection thread, so a slow client can't block accept().
        if self.ssl_ctx is None:
            return super().finish_request(request, client_address)
        try:
            request.settimeout(30)
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (OSError, ssl.SSLError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if not isinstance(exc, (OSError, ssl.SSLError, Abort)):
            super().handle_error(request, client_address)


def main(argv=None):
    global ARGS, STORE, CTL
    p = argparse.ArgumentParser(description="Kubernetes API emulator for tests")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--token", action="append", default=[], help="accepted bearer token (repeatable)")
    p.add_argument("--token-file", help="file with one token per line, re-read on each request")
    p.add_argument("--history", type=int, default=1000, help="watch events retained")
    p.add_argument("--expire-mode", choices=("stream", "status"), default="stream")
    p.add_argument("--bookmark-interval", type=float, default=5.0)
    p.add_argument("--request-log")
    ARGS = p.parse_args(argv)
    STORE = Store(ARGS.history)
    CTL = Control(ARGS.token)
    with STORE.lock:   # the namespaces every cluster has
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            STORE.commit(NS_GK, "ADDED", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": ns, "uid": str(uuid.uuid4()), "creationTimestamp": now_ts(), "generation": 1},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    srv = Server((ARGS.host, ARGS.port), Handler)
    if ARGS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key or None)
        ctx.set_alpn_protocols(["http/1.1"])   # Go clients offer h2; we only speak HTTP/1.1
        srv.ssl_ctx = ctx
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"port {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
