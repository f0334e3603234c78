"""The resource registry (built-in kinds and CRD-registered kinds, each under every served
version) and the discovery documents that describe it."""
import re
from types import MappingProxyType

from .common import ApiError


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


BUILTINS = (  # group, version, plural, singular, kind, namespaced, shortNames, has status
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
)
RBAC_GROUP = "rbac.authorization.k8s.io"
CRD_GK = ("apiextensions.k8s.io", "customresourcedefinitions")
NS_GK = ("", "namespaces")


def version_sort_key(v):
    """Kubernetes version priority: GA > beta > alpha, higher numbers first, others last."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (3, 0, 0, v)
    return ({None: 0, "beta": 1, "alpha": 2}[m.group(2)], -int(m.group(1)), -int(m.group(3) or 0), "")


class Registry:
    """The served resources: the built-in kinds and every version of every registered CRD.
    The store extends it; callers hold the store lock."""
    def __init__(self):
        self.res = {}                               # (group, version, plural) -> Res
        for g, v, p, s, k, nsd, short, st in BUILTINS:
            self.res[(g, v, p)] = Res(g, v, p, s, k, nsd, short, status_sub=st)

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

    def resources(self, group, version):
        return [r for (g, v, _), r in self.res.items() if g == group and v == version]

    def resolve_kind(self, api_version, kind):
        """apiVersion + kind -> Res, like a client's REST mapping."""
        group, _, version = (api_version or "").rpartition("/")
        for (g, v, _p), r in self.res.items():
            if g == group and v == version and r.kind == kind:
                return r
        raise ApiError(404, f'no matches for kind "{kind}" in version "{api_version}"')


class DiscoveryRoutes:
    """Handler mixin: /version (VERSION) and legacy discovery (/api, /apis, /apis/G, /api/V, /apis/G/V)."""
    VERSION = MappingProxyType({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-emulator", "gitCommit": "0" * 40,
        "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0",
        "compiler": "gc", "platform": "linux/amd64"})

    def discovery(self, parts):
        """Answers a discovery request and returns True; False if `parts` (the path's
        segments) name something else."""
        if parts == ["api"]:
            host = f"{self.server.server_address[0]}:{self.server.server_address[1]}"
            self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                 "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                 "serverAddress": host}]})
        elif parts == ["apis"]:
            with self.store.lock:
                gvs = self.store.group_versions()
            self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                 "groups": [self.api_group(g, vs) for g, vs in gvs.items() if g]})
        elif len(parts) == 2 and parts[0] == "apis":
            with self.store.lock:
                vs = self.store.group_versions().get(parts[1])
            if not vs:
                raise ApiError(404, "the server could not find the requested resource")
            self.send_json(200, self.api_group(parts[1], vs))
        elif len(parts) == 2 and parts[0] == "api" or len(parts) == 3 and parts[0] == "apis":
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            with self.store.lock:
                rs = self.store.resources(group, version)
            if not rs:
                raise ApiError(404, "the server could not find the requested resource")
            self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                 "groupVersion": rs[0].gv,
                                 "resources": [r.discovery() for r in rs]})
        else:
            return False
        return True

    @staticmethod
    def api_group(g, versions):
        vs = [{"groupVersion": f"{g}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": vs,
                "preferredVersion": vs[0]}
