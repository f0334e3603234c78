"""Label and field selectors (labelSelector= / fieldSelector= on lists, watches and
deletecollection)."""
import re

from .common import ApiError

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

