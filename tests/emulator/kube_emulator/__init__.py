"""kube_emulator - a small, single-process Kubernetes API server emulator for tests.

Run it as `python3 tests/emulator/kube_emulator.py [options]` (a shim kept for every caller)
or `python3 -m kube_emulator [options]` from tests/emulator.

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

CONTROL API (no auth, loopback clients only; JSON in and out): /_emulator/compact,
close-watches, reset-watches, faults, watch-options, bulk, tokens, stats.  README.md next to
this package documents every operation and fault (faults.py, bulk.py, watch.py implement them).

LAYOUT: server.py (options, the Emulator state object, main), store.py (objects, RV, history),
discovery.py (resource registry, discovery documents), handlers.py (plumbing, routing, verbs),
watch.py (watch streams), faults.py + bulk.py (control API), selectors.py, patches.py,
validation.py (fieldValidation, names, CRDs), kubectl.py (protobuf bodies, OpenAPI v3),
common.py (Status errors, JSON).  No module-level mutable state: one Emulator per server.

WATCH BUFFERING: writes never wait for watch readers.  Each write appends (type, object) to every
matching watch's unbounded in-memory queue under the store lock; the watch's own thread takes the
whole queue, releases the lock, serialises and writes.  A paused or stalled reader therefore costs
memory, not latency: ~64 bytes per queued event per watch plus the queued object versions (shared
between watches; a created object is the stored one, each update/delete pins its own version).
"""
from .server import Emulator, main, parse_args  # noqa: E402,F401
