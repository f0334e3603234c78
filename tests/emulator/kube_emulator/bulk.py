"""POST /_emulator/bulk: many writes of one kind in one request (see README.md)."""
import copy
import time
import uuid

from .common import ApiError, now_ts
from .discovery import CRD_GK, NS_GK


class BulkRoutes:
    """Handler mixin: the bulk writes of the control API."""
    BULK_BATCH = 500   # objects written per hold of the store lock

    def bulk(self, body):
        """POST /_emulator/bulk: many creates/updates/deletes of one kind in one request.  Every
        write goes through Store.commit (resourceVersion, history, watch fan-out) under the store
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
        with self.store.lock:
            res = self.store.resolve_kind(body.get("apiVersion"), body.get("kind"))
        if res.gk == CRD_GK:
            raise ApiError(400, "bulk: CustomResourceDefinitions are not supported; use the API")
        ns = (body.get("namespace") or "default") if res.namespaced else None
        if op == "create":
            for n in names:
                self.check_name(res, n)
        gk = res.gk
        done, last_rv = 0, None
        try:
            with self.store.lock:   # up-front check so a bad request writes nothing
                objs = self.store.data[gk]
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
                last_rv = self.store.rv
            for i in range(0, len(names), self.BULK_BATCH):
                with self.store.lock:
                    if not any(r.gk == gk for r in self.store.res.values()):   # CRD deleted meanwhile
                        raise ApiError(404, "the server could not find the requested resource")
                    objs = self.store.data[gk]
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
                            self.store.commit(gk, "ADDED", obj)
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
                                self.store.bulk_seq += 1
                                meta["annotations"] = dict(meta.get("annotations") or {},
                                                           **{"bulk/seq": str(self.store.bulk_seq)})
                                new["apiVersion"], new["kind"] = res.gv, res.kind
                                self.store.commit(gk, "MODIFIED", new, old)
                            elif old["metadata"].get("finalizers") and gk != NS_GK:   # like delete()
                                if not old["metadata"].get("deletionTimestamp"):
                                    new = copy.deepcopy(old)
                                    new["metadata"].update(deletionTimestamp=now_ts(),
                                                           deletionGracePeriodSeconds=0)
                                    self.store.commit(gk, "MODIFIED", new, old)
                            else:
                                self.delete_locked(res, key, old)
                        done += 1
                        last_rv = self.store.rv
                time.sleep(0)   # let watch threads take their queues before the next batch
        except ApiError as e:
            st = e.status()
            st.update(done=done, resourceVersion=str(last_rv if last_rv is not None else self.store.rv))
            return self.send_json(e.code, st, e.headers)
        self.send_json(200, {"done": done, "resourceVersion": str(last_rv)})
