"""Checks on what clients write: fieldValidation (Strict / Warn / Ignore, with pruning) against
a CRD's openAPIV3Schema or a built-in kind's top-level fields, object names, the common
create/update checks (kind, apiVersion, namespace) and CRD definitions."""
import base64
import copy
import json
import re
from types import MappingProxyType

from .common import ApiError, now_ts
from .discovery import RBAC_GROUP

# Light strict-validation for built-ins: allowed top-level fields (apiVersion/kind/metadata implied).
BUILTIN_FIELDS = MappingProxyType({kind: frozenset(fields) for kind, fields in {
    "Namespace": {"spec", "status"}, "ConfigMap": {"data", "binaryData", "immutable"},
    "Pod": {"spec", "status"}, "Secret": {"data", "stringData", "type", "immutable"},
    "ServiceAccount": {"secrets", "imagePullSecrets", "automountServiceAccountToken"},
    "Job": {"spec", "status"}, "Deployment": {"spec", "status"}, "Role": {"rules"},
    "RoleBinding": {"subjects", "roleRef"}, "ClusterRole": {"rules", "aggregationRule"},
    "ClusterRoleBinding": {"subjects", "roleRef"}, "CustomResourceDefinition": {"spec", "status"},
}.items()})
META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields"})


TYPE_OK = MappingProxyType({
    "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list)})


JSON_TYPE = MappingProxyType({str: "string", bool: "boolean", int: "integer", float: "number",
                              dict: "object", list: "array"})


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


class Validation:
    """Handler mixin: validate / check_name / prepare / crd_check."""
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
