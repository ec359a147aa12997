#!/usr/bin/env bash
# The local Kubernetes control plane: a real kube-apiserver, kube-controller-manager and
# kube-scheduler on loopback, etcd for their state, and kwok simulating three nodes in three
# zones (pods are scheduled, admitted and reconciled for real; their containers never run).
#
#   scripts/cluster.sh up           start it (idempotent), wait for /readyz, print the kubeconfig path
#   scripts/cluster.sh down [--wipe] stop exactly the processes `up` started; --wipe also deletes state
#   scripts/cluster.sh status       which processes run and whether the API server is ready
#   scripts/cluster.sh kubeconfig   print the admin kubeconfig path
#
# The API server's audit log (<state>/logs/audit.log, JSON lines) records every request made by a
# ServiceAccount: who, which verb on which object, and the answer (403 when RBAC refused it).
#
# Binaries come from scripts/cluster-build.sh (built once, cached outside the repo).
#
# Environment:
#   KNHK_CLUSTER_DIR        state folder: PKI, etcd data, logs, PIDs, kubeconfigs
#                           (default <repo>/.tools/local-cluster; gitignored)
#   KNHK_CLUSTER_API_PORT   kube-apiserver port on 127.0.0.1 (default 16443)
#   KNHK_CLUSTER_ETCD_PORT  etcd client port on 127.0.0.1 (default 12379; peer port +1)
#   KNHK_CLUSTER_KWOK_PORT  kwok's own server on 127.0.0.1 (default 10247)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${KNHK_CLUSTER_DIR:-$repo/.tools/local-cluster}"
api_port="${KNHK_CLUSTER_API_PORT:-16443}"
etcd_port="${KNHK_CLUSTER_ETCD_PORT:-12379}"
kwok_port="${KNHK_CLUSTER_KWOK_PORT:-10247}"
pki="$state/pki"
admin_kubeconfig="$state/admin.kubeconfig"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
# Simulated nodes: one per zone, so zone anti-affinity and PDBs can be satisfied.
NODES=(knhk-node-a:zone-a knhk-node-b:zone-b knhk-node-c:zone-c)
SERVICE_CIDR=10.96.0.0/16
POD_CIDR=10.244.0.0/16

log() { echo "cluster: $*" >&2; }
die() { echo "cluster: error: $*" >&2; exit 1; }

bin_dir() { bash "$repo/scripts/cluster-build.sh"; }

pid_of() { # <component>: its PID when it is alive
  local file="$state/pids/$1.pid" pid
  [[ -f "$file" ]] || return 1
  pid="$(cat "$file")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

kubectl_admin() { "$BIN/kubectl" --kubeconfig "$admin_kubeconfig" "$@"; }

# --- PKI (openssl): a CA, the API server's serving certificate, the service-account signing key,
# and one client certificate per identity. Made once per state folder.
client_cert() { # <name> <CN> <O or ->
  local name="$1" cn="$2" org="$3" subj
  [[ -f "$pki/$name.crt" ]] && return 0
  subj="/CN=$cn"
  [[ "$org" != "-" ]] && subj="/O=$org/CN=$cn"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/$name.key" \
    -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile <(printf 'keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n') \
    -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr"
}

make_pki() {
  mkdir -p "$pki"
  chmod 700 "$pki"
  if [[ ! -f "$pki/ca.crt" ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/ca.key" \
      -subj "/CN=knhk-local-cluster-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$pki/ca.crt" 2>/dev/null
  fi
  if [[ ! -f "$pki/apiserver.crt" ]]; then
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/apiserver.key" \
      -subj "/CN=kube-apiserver" -out "$pki/apiserver.csr" 2>/dev/null
    openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
      -days 365 -sha256 -out "$pki/apiserver.crt" -extfile <(printf '%s\n' \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
        "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local") 2>/dev/null
    rm -f "$pki/apiserver.csr"
  fi
  [[ -f "$pki/sa.key" ]] || openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  [[ -f "$pki/sa.pub" ]] || openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  client_cert admin knhk-admin system:masters
  client_cert controller-manager system:kube-controller-manager -
  client_cert scheduler system:kube-scheduler -
  # kwok stands in for every kubelet and for the volume provisioner at once, so it gets the
  # cluster-admin group rather than the per-node identities real kubelets have.
  client_cert kwok knhk-kwok system:masters
  chmod 600 "$pki"/*.key
}

write_kubeconfig() { # <file> <client cert name>
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: knhk-local
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $pki/$2.crt
    client-key: $pki/$2.key
contexts:
- name: knhk-local
  context: { cluster: knhk-local, user: $2 }
current-context: knhk-local
EOF
  chmod 600 "$1"
}

start_component() { # <name> <command...>: in its own process group, logged, PID recorded
  local name="$1"
  shift
  if pid_of "$name" >/dev/null; then return 0; fi
  setsid "$@" >"$state/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$state/pids/$name.pid"
}

wait_for() { # <what> <seconds> <command...>
  local what="$1" seconds="$2" started=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - started >= seconds)); then
      die "$what not ready after ${seconds}s (logs in $state/logs/)"
    fi
    sleep 0.5
  done
}

audit_policy() { # what the API server's audit log keeps: every request a ServiceAccount makes
  cat <<'EOF2'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts"]
- level: None
EOF2
}

kwok_stages() { # kwok's stages, the volume stages retargeted at this cluster's storage classes
  local file
  for file in "$STAGES"/*.yaml; do
    echo "---"
    sed "s/self.spec.storageClassName == 'kwok-volume'/self.spec.storageClassName in ['standard', 'fast-ssd']/" "$file"
  done
}

cluster_objects() { # what a real cluster of this stack already has before the first deploy
  local entry name zone
  for entry in "${NODES[@]}"; do
    name="${entry%%:*}" zone="${entry#*:}"
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations: { kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0" }
  labels:
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    type: kwok
    topology.kubernetes.io/zone: $zone
    topology.kubernetes.io/region: local
spec: {}
status:
  allocatable: { cpu: "16", memory: 64Gi, pods: "110", ephemeral-storage: 200Gi }
  capacity: { cpu: "16", memory: 64Gi, pods: "110", ephemeral-storage: 200Gi }
  nodeInfo: { architecture: amd64, operatingSystem: linux, kubeletVersion: fake, kubeProxyVersion: fake }
EOF
  done
  local class default
  for class in standard fast-ssd; do
    default=false
    [[ "$class" == standard ]] && default=true
    cat <<EOF
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $class
  annotations: { storageclass.kubernetes.io/is-default-class: "$default" }
provisioner: kwok.x-k8s.io/volume
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
EOF
  done
  for name in monitoring ingress-nginx; do
    printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels: { kubernetes.io/metadata.name: %s }\n' "$name" "$name"
  done
}

up() {
  command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"
  BIN="$(bin_dir)"
  STAGES="$(readlink -f "$(dirname "$BIN")/kwok-stages")"
  local crds
  crds="$(readlink -f "$(dirname "$BIN")/crds")"
  mkdir -p "$state/logs" "$state/pids" "$state/etcd"
  chmod 700 "$state"
  make_pki
  write_kubeconfig "$admin_kubeconfig" admin
  write_kubeconfig "$state/controller-manager.kubeconfig" controller-manager
  write_kubeconfig "$state/scheduler.kubeconfig" scheduler
  write_kubeconfig "$state/kwok.kubeconfig" kwok
  audit_policy >"$state/audit-policy.yaml"
  local started=$SECONDS

  start_component etcd "$BIN/etcd" --name knhk-local --data-dir "$state/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
    --initial-cluster "knhk-local=http://127.0.0.1:$((etcd_port + 1))" \
    --quota-backend-bytes 2147483648 --log-level warn
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health"

  start_component kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --api-audiences https://kubernetes.default.svc.cluster.local,vault \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,ResourceQuota,PodSecurity,Priority,StorageObjectInUseProtection,PersistentVolumeClaimResize,RuntimeClass,MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook \
    --audit-policy-file "$state/audit-policy.yaml" --audit-log-path "$state/logs/audit.log" \
    --audit-log-maxsize 100 --audit-log-maxbackup 20 \
    --endpoint-reconciler-type none --profiling=false --v 1
  wait_for kube-apiserver 90 curl -fsS --cacert "$pki/ca.crt" "https://127.0.0.1:$api_port/readyz"

  start_component kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$state/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$state/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=true --service-cluster-ip-range "$SERVICE_CIDR" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --controllers '*,-cloud-node-lifecycle-controller,-node-route-controller,-service-lb-controller' \
    --horizontal-pod-autoscaler-sync-period 30s --v 1
  start_component kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$state/scheduler.kubeconfig" \
    --authentication-kubeconfig "$state/scheduler.kubeconfig" \
    --authorization-kubeconfig "$state/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false --v 1
  kwok_stages >"$state/kwok.yaml"
  start_component kwok "$BIN/kwok" --kubeconfig "$state/kwok.kubeconfig" -c "$state/kwok.yaml" \
    --cidr "$POD_CIDR" --node-ip 10.240.0.1 --server-address "127.0.0.1:$kwok_port" \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake --node-lease-duration-seconds 40

  # CRDs first (server-side: the generated schemas are too large for the last-applied annotation).
  kubectl_admin apply --server-side --force-conflicts -f "$crds" >/dev/null
  kubectl_admin wait --for condition=Established --timeout 60s -f "$crds" >/dev/null
  cluster_objects | kubectl_admin apply --server-side --force-conflicts -f - >/dev/null
  wait_for "the default ServiceAccount" 60 kubectl_admin get serviceaccount default -n default
  local entry
  for entry in "${NODES[@]}"; do
    wait_for "node ${entry%%:*}" 60 kubectl_admin wait --for condition=Ready --timeout 1s "node/${entry%%:*}"
  done
  log "ready in $((SECONDS - started))s: https://127.0.0.1:$api_port, ${#NODES[@]} simulated nodes"
  log "kubeconfig: $admin_kubeconfig"
  echo "$admin_kubeconfig"
}

down() {
  local wipe=false component pid
  [[ "${1:-}" == "--wipe" ]] && wipe=true
  # Reverse start order; each component runs in its own process group (setsid).
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    component="${COMPONENTS[$i]}"
    if pid="$(pid_of "$component")"; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      log "stopped $component (pid $pid)"
    fi
    rm -f "$state/pids/$component.pid"
  done
  if $wipe; then
    rm -rf "$state"
    log "wiped $state"
  fi
}

status() {
  local component pid running=0
  for component in "${COMPONENTS[@]}"; do
    if pid="$(pid_of "$component")"; then
      echo "$component: running (pid $pid)"
      running=$((running + 1))
    else
      echo "$component: stopped"
    fi
  done
  if [[ -f "$pki/ca.crt" ]] && curl -fsS --cacert "$pki/ca.crt" "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then
    echo "api server: ready at https://127.0.0.1:$api_port (kubeconfig $admin_kubeconfig)"
  else
    echo "api server: not ready"
    return 1
  fi
  ((running == ${#COMPONENTS[@]}))
}

case "${1:-}" in
  up) up ;;
  down) down "${2:-}" ;;
  status) status ;;
  kubeconfig) echo "$admin_kubeconfig" ;;
  *) die "usage: scripts/cluster.sh up | down [--wipe] | status | kubeconfig" ;;
esac
