"""PATCH bodies: JSON merge patch (also used for server-side apply), strategic merge patch with
a small table of list merge keys, and JSON patch."""
import copy
from types import MappingProxyType

from .common import ApiError


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
SMP_MERGE_KEYS = MappingProxyType({
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "env": "name", "imagePullSecrets": "name",
    "volumeMounts": "mountPath", "ports": "containerPort", "volumeDevices": "devicePath"})


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

