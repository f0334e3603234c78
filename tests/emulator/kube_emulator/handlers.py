"""The HTTP handler: request plumbing, authentication, fault injection on the way in, routing,
and the object verbs (get, list, create, update, patch, delete, deletecollection).  Watches,
discovery, OpenAPI, validation and the control API are mixins from their own modules."""
import base64
import copy
import json
import random
import re
import socket
import ssl
import string
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from .bulk import BulkRoutes
from .common import Abort, ApiError, dumps, now_ts
from .discovery import CRD_GK, NS_GK, DiscoveryRoutes
from .faults import ControlRoutes
from .kubectl import OpenAPIRoutes, decode_k8s_protobuf
from .patches import json_patch, merge_patch, strategic_merge_patch
from .selectors import FieldSelector, LabelSelector
from .validation import BUILTIN_FIELDS, Validation
from .watch import WatchRoutes


class Handler(ControlRoutes, BulkRoutes, WatchRoutes, OpenAPIRoutes, DiscoveryRoutes, Validation,
              BaseHTTPRequestHandler):
    """One connection's requests.  All state is the server's Emulator (self.server.emu)."""
    protocol_version = "HTTP/1.1"
    server_version = "kube-emulator/1.32"
    disable_nagle_algorithm = True   # headers and body go out in separate writes

    @property
    def store(self):
        return self.server.emu.store

    @property
    def ctl(self):
        return self.server.emu.ctl

    @property
    def opts(self):
        return self.server.emu.opts

    def log_message(self, *a):
        pass

    def log_request(self, code="-", size="-"):
        self.server.emu.log_request({"time": time.time(), "method": self.command, "path": self.path,
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
            with self.ctl.lock:
                self.ctl.requests += 1
            fault = self.ctl.take_fault(self.command, self.path, is_watch)
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
            toks = self.ctl.accepted_tokens()
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

    # --- routing --------------------------------------------------------------------------------
    def route(self, path, is_watch):
        m = self.command
        if path == "/version":
            return self.send_json(200, dict(self.VERSION))
        if path.rstrip("/") == "/openapi/v3":
            return self.openapi_index()
        if path.startswith("/openapi/v3/"):
            return self.openapi_gv(path)
        parts = [p for p in path.split("/") if p]
        if self.discovery(parts):
            return None
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
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
        res = self.store.res.get((group, version, plural))
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
        if ns is not None and (None, ns) not in self.store.data[NS_GK]:
            raise ApiError(404, f'namespaces "{ns}" not found',
                           details={"name": ns, "kind": "namespaces"})

    def respond_obj(self, code, res, obj):
        hdrs = {}
        if getattr(self, "warnings", None):
            hdrs["Warning"] = ", ".join(self.warnings)
        self.send_json(code, self.out(res, obj), hdrs)

    # --- verbs ----------------------------------------------------------------------------------
    def get(self, res, ns, name):
        with self.store.lock:
            obj = self.store.data[res.gk].get((ns, name))
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
        with self.ctl.lock:
            self.ctl.stats_lists[urlsplit(self.path).path] += 1
        limit = int(self.q.get("limit") or 0)
        start, list_rv = None, None
        if self.q.get("continue"):
            try:
                tok = json.loads(base64.urlsafe_b64decode(self.q["continue"].encode()))
                start, list_rv = tuple(tok["start"]), int(tok["rv"])
            except Exception:
                raise ApiError(400, "continue key is not valid")
        with self.store.lock:
            if list_rv is not None and list_rv < self.store.floor:
                raise ApiError(410, "The provided continue parameter is too old to display a consistent "
                                    "list result. You can start a new list without the continue parameter.")
            rv = list_rv if list_rv is not None else self.store.rv
            items = sorted((k, o) for k, o in self.store.data[res.gk].items() if ok(o))
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
        with self.store.lock:
            self.require_ns(ns)
            if (ns, name) in self.store.data[res.gk]:
                raise ApiError(409, f'{res.qres} "{name}" already exists', reason="AlreadyExists",
                               details={"name": name, "group": res.group, "kind": res.plural})
            if not self.dry_run():
                if res.gk == CRD_GK:
                    self.store.register_crd(obj)   # discovery shows the new kind before we answer
                self.store.commit(res.gk, "ADDED", obj)
        self.respond_obj(201, res, obj)

    def write_existing(self, res, ns, name, sub, mutate):
        """Shared read-modify-write for PUT and PATCH.  mutate(old_copy) -> new object."""
        with self.store.lock:
            old = self.store.data[res.gk].get((ns, name))
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
                return self.store.commit(res.gk, "DELETED", new, old)   # last finalizer removed
            if res.gk == CRD_GK:
                self.store.register_crd(new)
            return self.store.commit(res.gk, "MODIFIED", new, old)

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
            for gk, objs in list(self.store.data.items()):
                for k in sorted(k for k in objs if k[0] == key[1]):
                    self.store.commit(gk, "DELETED", copy.deepcopy(objs[k]), objs[k])
        if res.gk == CRD_GK:
            spec = old.get("spec", {})
            gk = (spec.get("group"), spec.get("names", {}).get("plural"))
            for k in sorted(self.store.data[gk], key=lambda k: (k[0] or "", k[1])):
                self.store.commit(gk, "DELETED", copy.deepcopy(self.store.data[gk][k]), self.store.data[gk][k])
            for w in list(self.store.watches):     # the resource is gone: end its watches
                if w.res.gk == gk:
                    w.closing = True
                    w.cond.notify_all()
            self.store.unregister_crd(old["metadata"]["name"])
        return self.store.commit(res.gk, "DELETED", copy.deepcopy(old), old)

    def delete(self, res, ns, name):
        try:   # DeleteOptions are optional; an undecodable body (e.g. protobuf) is ignored
            opts = self.json_body() if self.body else {}
        except ApiError:
            opts = {}
        pre = (opts if isinstance(opts, dict) else {}).get("preconditions") or {}
        with self.store.lock:
            old = self.store.data[res.gk].get((ns, name))
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
                    obj = self.store.commit(res.gk, "MODIFIED", new, old)
            else:
                obj = self.delete_locked(res, (ns, name), old)
        self.send_json(200, self.out(res, obj))

    def delete_collection(self, res, ns):
        _l, _f, ok = self.selected(res, ns)
        with self.store.lock:
            if res.namespaced and ns is not None:
                self.require_ns(ns)
            victims = sorted((k, o) for k, o in self.store.data[res.gk].items() if ok(o))
            done = victims if self.dry_run() else \
                [(k, self.delete_locked(res, k, o)) for k, o in victims]
            rv = self.store.rv
        self.send_json(200, {"kind": res.list_kind, "apiVersion": res.gv,
                             "metadata": {"resourceVersion": str(rv)},
                             "items": [self.out(res, o, in_list=True) for _, o in done]})
