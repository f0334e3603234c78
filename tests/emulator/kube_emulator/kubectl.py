"""What only kubectl needs: decoding the protobuf bodies its typed `create` generators send, and
the OpenAPI v3 documents it reads to decide on server-side field validation."""
import base64
import hashlib
import time
from types import MappingProxyType

from .common import ApiError, dumps


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


PB_KEEP_ZERO = frozenset({"replicas", "parallelism", "completions", "backoffLimit"})   # pointer ints


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
PB_KINDS = MappingProxyType({
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
})


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
# OpenAPI v3 (just enough for kubectl's server-side-validation detection)
# ----------------------------------------------------------------------------------------------
def openapi_doc(registry, group, version):
    """The OpenAPI v3 document of one group/version (caller holds the store lock)."""
    resources = registry.resources(group, version)
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


class OpenAPIRoutes:
    """Handler mixin: /openapi/v3 (index with per-document hashes) and /openapi/v3/<gv>."""
    def openapi_index(self):
        paths = {}
        with self.store.lock:
            for g, vs in self.store.group_versions().items():
                for v in vs:
                    key = f"apis/{g}/{v}" if g else f"api/{v}"
                    h = hashlib.sha512(dumps(openapi_doc(self.store, g, v))).hexdigest().upper()
                    paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={h}"}
        self.send_json(200, {"paths": paths})

    def openapi_gv(self, path):
        key = path[len("/openapi/v3/"):].strip("/").split("/")
        doc = None
        with self.store.lock:
            if key[0] == "api" and len(key) == 2:
                doc = openapi_doc(self.store, "", key[1])
            elif key[0] == "apis" and len(key) == 3:
                doc = openapi_doc(self.store, key[1], key[2])
        if doc is None:
            raise ApiError(404, "the server could not find the requested resource")
        self.send_json(200, doc)
