#!/usr/bin/env bash
# selftest.sh - run the real kubectl (and curl) against local-cluster / kube_emulator.py.
# Prints PASS/FAIL per step; exits non-zero if any step failed.
# Usage: selftest.sh [--keep]   (--keep leaves the temp dir for inspection)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LOCAL_CLUSTER=${LOCAL_CLUSTER:-$HERE/../../scripts/local-cluster}
export KUBE_EMULATOR=${KUBE_EMULATOR:-$HERE/kube_emulator.py}
WORK=$(mktemp -d /tmp/emu-selftest.XXXXXX)
export KUBECONFIG=$WORK/kubeconfig KUBECACHEDIR=$WORK/kube-cache
FAILS=0
CLUSTER_PID=

cleanup() {
  [ -n "$CLUSTER_PID" ] && kill -TERM "$CLUSTER_PID" 2>/dev/null && wait "$CLUSTER_PID" 2>/dev/null
  [ "${1:-}" = "--keep" ] || rm -rf "$WORK"
}
trap 'cleanup "${KEEP:-}"' EXIT
[ "${1:-}" = "--keep" ] && KEEP=--keep

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; FAILS=$((FAILS + 1)); [ -n "${2:-}" ] && sed 's/^/    | /' <<<"$2"; }
# step NAME EXPECTED_REGEX CMD...  -> runs CMD, passes if it exits 0 and output matches the regex
step() {
  local name=$1 want=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ] && grep -Eq -- "$want" <<<"$out"; then pass "$name"; else fail "$name (rc=$rc)" "$out"; fi
}
# step_fail NAME EXPECTED_REGEX CMD... -> passes if CMD fails and output matches
step_fail() {
  local name=$1 want=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ] && grep -Eq -- "$want" <<<"$out"; then pass "$name"; else fail "$name (rc=$rc)" "$out"; fi
}

# --- start the cluster ----------------------------------------------------------------------
"$LOCAL_CLUSTER" --kubeconfig "$KUBECONFIG" -- --request-log "$WORK/requests.log" \
  >"$WORK/cluster.out" 2>"$WORK/cluster.err" &
CLUSTER_PID=$!
for _ in $(seq 1 100); do grep -q '^ready$' "$WORK/cluster.out" 2>/dev/null && break; sleep 0.1; done
if grep -q '^ready$' "$WORK/cluster.out"; then pass "local-cluster ready"; else
  fail "local-cluster ready" "$(cat "$WORK/cluster.err")"; exit 1; fi

SERVER=$(sed -n 's/^ *server: //p' "$KUBECONFIG")
TOKEN=$(sed -n 's/^ *token: //p' "$KUBECONFIG")
sed -n 's/^ *certificate-authority-data: //p' "$KUBECONFIG" | base64 -d >"$WORK/ca.crt"
CURL=(curl -sS --cacert "$WORK/ca.crt" -H "Authorization: Bearer $TOKEN")

# --- manifests --------------------------------------------------------------------------------
cat >"$WORK/guitar-crd.yaml" <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: guitars.kool.karmalabs.local
spec:
  group: kool.karmalabs.local
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              brand:
                type: string
              review:
                type: boolean
  scope: Namespaced
  names:
    plural: guitars
    singular: guitar
    kind: Guitar
    shortNames:
    - guitar
EOF
cat >"$WORK/guitarz-crd.yaml" <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: guitarz.music.example.com
spec:
  group: music.example.com
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
  scope: Cluster
  names:
    plural: guitarz
    singular: guitarr
    kind: Guitarr
EOF
cat >"$WORK/namespace.yaml" <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  creationTimestamp: null
  name: guitar-eventing
EOF
cat >"$WORK/rbac.yaml" <<'EOF'
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: guitar-sa
  namespace: guitar-eventing
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: guitar-get
  namespace: guitar-eventing
rules:
- apiGroups:
  - "kool.karmalabs.local"
  resources:
  - guitars
  verbs:
  - get
  - list
  - watch
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: guitar-get-binding
  namespace: guitar-eventing
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: guitar-get
subjects:
- kind: ServiceAccount
  name: guitar-sa
  namespace: guitar-eventing
EOF
cat >"$WORK/d15.yaml" <<'EOF'
apiVersion: "kool.karmalabs.local/v1"
kind: Guitar
metadata:
  name: d15
  namespace: guitar-eventing
spec:
  brand: martin
  review: false
EOF

# --- kubectl walkthrough ----------------------------------------------------------------------
step "kubectl version (server minor 32)" 'Server Version: v1\.32\.' kubectl version
step "apply guitar CRD" 'guitars.kool.karmalabs.local created' kubectl apply -f "$WORK/guitar-crd.yaml"
step "apply namespace" 'namespace/guitar-eventing created' kubectl apply -f "$WORK/namespace.yaml"
step "apply ServiceAccount/Role/RoleBinding" 'rolebinding.rbac.authorization.k8s.io/guitar-get-binding created' \
  kubectl apply -f "$WORK/rbac.yaml"
step "re-apply CRD is unchanged" 'unchanged' kubectl apply -f "$WORK/guitar-crd.yaml"
step "apply Guitar d15" 'guitar.kool.karmalabs.local/d15 created' kubectl apply -f "$WORK/d15.yaml"
step "get guitars" '^d15 ' kubectl get guitars -n guitar-eventing
step "label guitar d15" 'd15 labeled' kubectl label guitar d15 helloknative="" -n guitar-eventing
step "get guitar d15 -o yaml shows label" 'helloknative: ""' kubectl get guitar d15 -n guitar-eventing -o yaml
step "get by shortName / label selector" '^d15 ' kubectl get guitar -n guitar-eventing -l helloknative
step_fail "strict validation rejects spec.colour" 'strict decoding error: unknown field "spec.colour"' \
  sh -c "sed 's/brand: martin/colour: red/' '$WORK/d15.yaml' | kubectl apply -f -"
step_fail "create twice -> AlreadyExists" 'AlreadyExists' kubectl create -f "$WORK/d15.yaml"
step "delete guitar d15" 'd15" deleted' kubectl delete guitar d15 -n guitar-eventing
step_fail "guitar d15 is gone" 'NotFound' kubectl get guitar d15 -n guitar-eventing
step_fail "apply into missing namespace -> NotFound" 'namespaces "nowhere" not found' \
  sh -c "sed 's/namespace: guitar-eventing/namespace: nowhere/' '$WORK/d15.yaml' | kubectl apply -f -"

step "apply CRD with irregular plural guitarz" 'guitarz.music.example.com created' kubectl apply -f "$WORK/guitarz-crd.yaml"
step "create a guitarz object" 'guitarr.music.example.com/g1 created' sh -c \
  "printf 'apiVersion: music.example.com/v1alpha1\nkind: Guitarr\nmetadata:\n  name: g1\nspec:\n  strings: 12\n' | kubectl apply -f -"
step "get guitarz" '^g1 ' kubectl get guitarz
step "get by singular guitarr" '^g1 ' kubectl get guitarr g1
step "discovery lists guitarz" '"name":"guitarz"' "${CURL[@]}" "$SERVER/apis/music.example.com/v1alpha1"
step "delete guitarz CRD" 'deleted' kubectl delete -f "$WORK/guitarz-crd.yaml"
step_fail "guitarz group gone from discovery" '404|NotFound' \
  sh -c "${CURL[*]@Q} -f '$SERVER/apis/music.example.com/v1alpha1'"

step "create ConfigMap" 'configmap/cm1 created' kubectl create configmap cm1 -n guitar-eventing --from-literal=a=b
step "label ConfigMap" 'configmap/cm1 labeled' kubectl label configmap cm1 -n guitar-eventing env=test
step "list ConfigMaps by label" '^cm1 ' kubectl get cm -n guitar-eventing -l 'env in (test,prod)'
step "delete ConfigMap" 'deleted' kubectl delete configmap cm1 -n guitar-eventing

# --- raw watch with curl ----------------------------------------------------------------------
RV=$("${CURL[@]}" "$SERVER/api/v1/namespaces/guitar-eventing/configmaps" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
"${CURL[@]}" -N "$SERVER/api/v1/namespaces/guitar-eventing/configmaps?watch=true&resourceVersion=$RV&timeoutSeconds=20" \
  >"$WORK/watch.out" 2>&1 &
WATCH_PID=$!
# the watch starts from $RV, so events written before curl connects are replayed from history
kubectl create configmap cm2 -n guitar-eventing --from-literal=x=y >/dev/null 2>&1
kubectl label configmap cm2 -n guitar-eventing watched=yes >/dev/null 2>&1
kubectl delete configmap cm2 -n guitar-eventing >/dev/null 2>&1
for _ in $(seq 1 100); do grep -q '"type":"DELETED"' "$WORK/watch.out" && break; sleep 0.1; done
kill "$WATCH_PID" 2>/dev/null; wait "$WATCH_PID" 2>/dev/null
WOUT=$(cat "$WORK/watch.out")
if grep -q '"type":"ADDED"' <<<"$WOUT" && grep -q '"type":"MODIFIED"' <<<"$WOUT" &&
   grep -q '"type":"DELETED"' <<<"$WOUT" && [ "$(wc -l <<<"$WOUT")" -eq 3 ]; then
  pass "curl watch shows ADDED/MODIFIED/DELETED"; else fail "curl watch shows ADDED/MODIFIED/DELETED" "$WOUT"; fi

step "compact history" '"ok": ?true' curl -sS --cacert "$WORK/ca.crt" -X POST "$SERVER/_emulator/compact"
step "watch from old RV after compact -> 410 Expired" '"code":410.*"reason":"Expired"|"reason":"Expired".*"code":410' \
  "${CURL[@]}" -N "$SERVER/api/v1/namespaces/guitar-eventing/configmaps?watch=true&resourceVersion=$RV&timeoutSeconds=5"
step "unauthenticated request -> 401" '"code":401' curl -sS --cacert "$WORK/ca.crt" "$SERVER/api/v1/namespaces"

step "delete namespace" 'deleted' kubectl delete -f "$WORK/namespace.yaml"
step "delete guitar CRD" 'deleted' kubectl delete -f "$WORK/guitar-crd.yaml"

# --- shut down --------------------------------------------------------------------------------
kill -TERM "$CLUSTER_PID"; wait "$CLUSTER_PID"; RC=$?; CLUSTER_PID=
if [ $RC -eq 0 ]; then pass "local-cluster exits 0 on SIGTERM"; else fail "local-cluster exits 0 on SIGTERM (rc=$RC)"; fi

if [ $FAILS -eq 0 ]; then echo "ALL PASSED"; exit 0; fi
echo "$FAILS step(s) FAILED"; exit 1
