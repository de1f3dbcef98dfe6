#!/usr/bin/env bash
# After `kubectl apply -k kustomize/overlays/<env>`: wait for the rollouts and the certificate, then prove the
# NetworkPolicies are enforced. A throwaway pod in todo-app that no policy names (the namespace's default deny
# is all that applies to it) must resolve DNS (the control: the network works) and must NOT reach Kafka,
# PostgreSQL, the backend or the API server. Where nothing enforces NetworkPolicies (OKE's flannel without
# Calico) every connection succeeds and this script fails, saying so.
# tests/kustomize/test_bootstrap.py checks every probe below against the rendered policies (DRY_RUN lists them).
#
#   kustomize/operators/verify.sh prod|dev
#   DRY_RUN=1 kustomize/operators/verify.sh prod   # print the checks and probes instead of running them
set -euo pipefail

env_name="${1:-}"
if [[ "$env_name" != "dev" && "$env_name" != "prod" ]]; then
  echo "usage: $0 dev|prod" >&2
  exit 2
fi
dry_run="${DRY_RUN:-}"
probe_image="busybox:1.37.0"
probe_labels="app.kubernetes.io/name=network-probe"

run() {
  if [[ -n "$dry_run" ]]; then
    printf '%q ' "$@"; printf '\n'
  else
    "$@"
  fi
}

# probe EXPECT TARGET_NAMESPACE TARGET_LABELS HOST PORT PROTOCOL: one path from the probe pod, and which pods
# (namespace, labels) answer at HOST:PORT.
probes=()
probe() { probes+=("$*"); }
probe allowed kube-system k8s-app=kube-dns kube-dns.kube-system.svc.cluster.local 53 UDP
probe denied kafka strimzi.io/cluster=todo-kafka,strimzi.io/kind=Kafka,strimzi.io/broker-role=true \
  todo-kafka-kafka-bootstrap.kafka.svc.cluster.local 9092 TCP
probe denied postgres cnpg.io/cluster=todo-pg todo-pg-rw.postgres.svc.cluster.local 5432 TCP
probe denied todo-app app.kubernetes.io/name=backend backend.todo-app.svc.cluster.local 8000 TCP
# The API server: kube-proxy rewrites kubernetes.default:443 to the API endpoint (its subnet, port 6443).
probe denied api-endpoint - kubernetes.default.svc.cluster.local 443 TCP

run kubectl --namespace todo-app rollout status deployment/backend deployment/worker deployment/notification \
  deployment/websocket deployment/audit deployment/frontend --timeout 10m
run kubectl --namespace kafka wait kafka/todo-kafka --for=condition=Ready --timeout 10m
run kubectl --namespace postgres wait cluster/todo-pg --for=condition=Ready --timeout 10m
run kubectl --namespace todo-app wait certificate/todo-tls --for=condition=Ready --timeout 10m

# The pod's script: one line per probe, "EXPECT HOST PORT open|closed"; UDP (DNS) is checked by resolving.
script=""
for p in "${probes[@]}"; do
  read -r expect _ns _labels host port protocol <<<"$p"
  if [[ "$protocol" == UDP ]]; then
    script+="if nslookup -timeout=3 kubernetes.default.svc.cluster.local >/dev/null 2>&1; then r=open; else r=closed; fi; echo $expect $host $port \$r; "
  else
    script+="if nc -w 3 $host $port </dev/null >/dev/null 2>&1; then r=open; else r=closed; fi; echo $expect $host $port \$r; "
  fi
done
overrides='{"apiVersion":"v1","spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":65534,"runAsGroup":65534,
"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"network-probe","image":"'"$probe_image"'",
"command":["sh","-c","'"$script"'"],"securityContext":{"allowPrivilegeEscalation":false,"readOnlyRootFilesystem":true,
"capabilities":{"drop":["ALL"]}}}]}}'

if [[ -n "$dry_run" ]]; then
  for p in "${probes[@]}"; do echo "probe todo-app $probe_labels $p"; done
  exit 0
fi

results="$(kubectl run network-probe --namespace todo-app --restart=Never --rm --attach --quiet \
  --image "$probe_image" --labels "$probe_labels" --overrides "$overrides")"
echo "$results"
failed=0
while read -r expect host port got; do
  [[ -z "$expect" ]] && continue
  if [[ "$expect" == allowed && "$got" != open ]]; then
    echo "FAIL: $host:$port should be reachable (is DNS or the pod network broken?)" >&2; failed=1
  elif [[ "$expect" == denied && "$got" != closed ]]; then
    echo "FAIL: $host:$port is reachable from a pod no policy admits: NetworkPolicies are not enforced (is Calico running?)" >&2
    failed=1
  fi
done <<<"$results"
(( failed == 0 )) || exit 1
echo "NetworkPolicies enforced: every denied path is denied, DNS works."
