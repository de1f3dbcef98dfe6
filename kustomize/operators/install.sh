#!/usr/bin/env bash
# Bootstrap an empty cluster in one pass, in the order every later step needs:
#   1. preflight (prod): `todo-console preflight` refuses placeholder settings and a plan that does not fit
#   2. Calico in policy-only mode (prod), so every pod started afterwards is under the NetworkPolicies
#   3. the namespaces, with their LimitRanges and ResourceQuotas (base/platform/namespaces)
#   4. the Secrets the charts and the manifests read: generated here when absent (passwords, tokens), or
#      made from the operator's inputs (registry and object storage credentials, prod)
#   5. the Helm charts of versions.env, in that order, at their pinned versions, with the values next to
#      this script (values.yaml, plus values-<env>.yaml where present); CRDs come with their charts, before
#      the charts and manifests that use them
# Then point DNS at the load balancer it prints, and apply the overlay (kustomize/README.md, operator guide).
# tests/kustomize/test_bootstrap.py replays the DRY_RUN output against the manifests and fails when a step
# needs a namespace, Secret or CRD that no earlier step creates.
#
#   kustomize/operators/install.sh prod            # OKE
#   kustomize/operators/install.sh dev             # kind / minikube / k3s
#   DRY_RUN=1 kustomize/operators/install.sh prod  # print the commands instead (secret values never printed)
#
# prod reads its settings from kustomize/overlays/prod-apps/environment.yaml and these variables:
#   OCI_S3_ACCESS_KEY_ID, OCI_S3_SECRET_ACCESS_KEY   a Customer Secret Key allowed to write both buckets
#   OCIR_USERNAME ('<tenancy-namespace>/<user>'), OCIR_AUTH_TOKEN   pulls the images from OCIR
# Needs kubectl, Helm 4 and todo-console (pip install -e '.[console]') on PATH.
set -euo pipefail

env_name="${1:-}"
if [[ "$env_name" != "dev" && "$env_name" != "prod" ]]; then
  echo "usage: $0 dev|prod" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dry_run="${DRY_RUN:-}"
if [[ "$env_name" == prod ]]; then
  environment_file="$root/kustomize/overlays/prod-apps/environment.yaml"
else
  environment_file="$root/kustomize/overlays/dev/environment.yaml"
fi

die() { echo "install.sh: $*" >&2; exit 1; }

run() {
  if [[ -n "$dry_run" ]]; then
    printf '%q ' "$@"; printf '\n'
  else
    "$@"
  fi
}

# One key of the overlay's todo-environment ConfigMap (flat `  key: value` lines under data:).
setting() {
  local value
  value="$(sed -n "s/^  $1: *//p" "$environment_file" | tr -d '"')"
  [[ -n "$value" ]] || die "$environment_file has no setting '$1'"
  printf '%s' "$value"
}

secrets_dir="$(mktemp -d)"
trap 'rm -rf "$secrets_dir"' EXIT
chmod 700 "$secrets_dir"

random_token() { head -c 36 /dev/urandom | base64 | tr '+/' '-_'; }

secret_exists() {
  [[ -z "$dry_run" ]] && kubectl get secret "$2" --namespace "$1" >/dev/null 2>&1
}

# create_secret NAMESPACE NAME TYPE KEY=VALUE...: create it unless it exists (values go through files, never
# the command line; DRY_RUN prints the keys only).
create_secret() {
  local namespace="$1" name="$2" type="$3"; shift 3
  if secret_exists "$namespace" "$name"; then
    echo "secret $namespace/$name exists: kept"
    return
  fi
  local args=() pair key
  mkdir -p "$secrets_dir/$namespace/$name"
  for pair in "$@"; do
    key="${pair%%=*}"
    printf '%s' "${pair#*=}" > "$secrets_dir/$namespace/$name/$key"
    args+=("--from-file=$key=$secrets_dir/$namespace/$name/$key")
  done
  if [[ -n "$dry_run" ]]; then
    printf 'kubectl create secret generic %s --namespace %s --type %s' "$name" "$namespace" "$type"
    for pair in "$@"; do printf ' --from-file=%s=<value>' "${pair%%=*}"; done
    printf '\n'
  else
    kubectl create secret generic "$name" --namespace "$namespace" --type "$type" "${args[@]}"
  fi
}

# A database owner's password, in the basic-auth Secret CloudNativePG reads (namespace postgres) and in the
# Secret the app reads through Dapr (todo-app). Both are created together or not at all: a password in one
# and not the other would lock the app out.
database_secrets() {
  local owner="$1" database="$2" owner_secret="$3" app_secret="$4" with_connection_string="$5"
  local have_owner=0 have_app=0
  secret_exists postgres "$owner_secret" && have_owner=1
  secret_exists todo-app "$app_secret" && have_app=1
  if (( have_owner && have_app )); then
    echo "secrets postgres/$owner_secret and todo-app/$app_secret exist: kept"
    return
  fi
  (( have_owner || have_app )) && die "only one of postgres/$owner_secret and todo-app/$app_secret exists: delete it and run again"
  local password host="todo-pg-rw.postgres.svc.cluster.local"
  password="$(random_token)"
  create_secret postgres "$owner_secret" kubernetes.io/basic-auth "username=$owner" "password=$password"
  local app_keys=("url=postgresql+psycopg://$owner:$password@$host:5432/$database?sslmode=require")
  if [[ "$with_connection_string" == yes ]]; then
    app_keys+=("connection-string=host=$host port=5432 user=$owner password=$password dbname=$database sslmode=require")
  fi
  create_secret todo-app "$app_secret" Opaque "${app_keys[@]}"
}

# ---------------------------------------------------------------------------------------------- 1. preflight
if [[ "$env_name" == prod ]]; then
  for var in OCI_S3_ACCESS_KEY_ID OCI_S3_SECRET_ACCESS_KEY OCIR_USERNAME OCIR_AUTH_TOKEN; do
    [[ -n "${!var:-}" ]] || die "$var is not set (see the header of this script)"
  done
  run "${TODO_CONSOLE:-todo-console}" preflight --overlay prod
fi
if [[ -z "$dry_run" ]]; then
  command -v kubectl >/dev/null || die "kubectl not found"
  helm version --short 2>/dev/null | grep -q '^v4\.' || die "Helm 4 is required (helm version --short)"
  todo_console="$(command -v "${TODO_CONSOLE:-todo-console}")" || die "todo-console not found"
  export TODO_PYTHON="${TODO_PYTHON:-$(dirname "$todo_console")/python}"
fi

# ------------------------------------------------------------------------------- 2. Calico (policy only)
if [[ "$env_name" == prod ]]; then
  # shellcheck source=calico/settings.env
  source "$here/calico/settings.env"
  manifest="$secrets_dir/calico-policy-only.yaml"
  run curl --fail --silent --show-error --location --output "$manifest" "$CALICO_MANIFEST_URL"
  if [[ -z "$dry_run" ]]; then
    echo "$CALICO_MANIFEST_SHA256  $manifest" | sha256sum --check --quiet \
      || die "$CALICO_MANIFEST_URL does not have the pinned SHA-256"
  fi
  run kubectl apply --server-side --force-conflicts -f "$manifest"
  run kubectl set resources daemonset/calico-node --namespace kube-system --containers calico-node \
    --requests "cpu=$CALICO_NODE_CPU_REQUEST,memory=$CALICO_NODE_MEMORY_REQUEST"
  run kubectl rollout status daemonset/calico-node --namespace kube-system --timeout 10m
fi

# ------------------------------------------------------------------------------------------ 3. namespaces
run kubectl apply --server-side -k "$root/kustomize/base/platform/namespaces"

# -------------------------------------------------------------------------------------------- 4. secrets
create_secret monitoring grafana-admin Opaque "admin-user=admin" "admin-password=$(random_token)"
create_secret todo-app todo-auth Opaque "jwt-secret=$(random_token)"
create_secret todo-app todo-internal Opaque "token=$(random_token)"
create_secret todo-app todo-notification Opaque "webhook-secret=$(random_token)"
database_secrets todo todo todo-db-owner todo-db yes
database_secrets audit audit todo-audit-owner todo-audit-db no
if [[ "$env_name" == prod ]]; then
  registry="$(setting image-prefix)"
  registry="${registry%%/*}"
  auth="$(printf '%s:%s' "$OCIR_USERNAME" "$OCIR_AUTH_TOKEN" | base64 | tr -d '\n')"
  create_secret todo-app ocir-pull kubernetes.io/dockerconfigjson \
    ".dockerconfigjson={\"auths\":{\"$registry\":{\"auth\":\"$auth\"}}}"
  create_secret postgres oci-object-storage Opaque \
    "ACCESS_KEY_ID=$OCI_S3_ACCESS_KEY_ID" "ACCESS_SECRET_KEY=$OCI_S3_SECRET_ACCESS_KEY" "REGION=$(setting oci-region)"
  create_secret monitoring loki-object-storage Opaque \
    "LOKI_S3_ENDPOINT=$(setting object-storage-endpoint)" "LOKI_S3_REGION=$(setting oci-region)" \
    "LOKI_S3_BUCKET=$(setting logs-bucket)" "LOKI_S3_ACCESS_KEY_ID=$OCI_S3_ACCESS_KEY_ID" \
    "LOKI_S3_SECRET_ACCESS_KEY=$OCI_S3_SECRET_ACCESS_KEY"
fi

# --------------------------------------------------------------------------------------- 5. Helm charts
plugin_installed=""
while IFS='|' read -r release namespace repo chart version envs post_render; do
  [[ -z "$release" || "$release" == \#* ]] && continue
  [[ ",$envs," == *",$env_name,"* ]] || continue
  values=(-f "$here/$release/values.yaml")
  [[ -f "$here/$release/values-$env_name.yaml" ]] && values+=(-f "$here/$release/values-$env_name.yaml")
  post=()
  if [[ -n "$post_render" ]]; then
    if [[ -z "$plugin_installed" ]]; then
      if [[ -n "$dry_run" ]] || ! helm plugin list | grep -q '^todo-postrender'; then
        run helm plugin install "$here/helm-plugins/todo-postrender"
      fi
      plugin_installed=1
    fi
    post=(--post-renderer todo-postrender --post-renderer-args "$post_render")
  fi
  if [[ "$repo" == oci://* ]]; then
    ref="$repo/$chart"
  else
    run helm repo add "$release" "$repo" --force-update
    ref="$release/$chart"
  fi
  run helm upgrade --install "$release" "$ref" --version "$version" \
    --namespace "$namespace" --create-namespace "${values[@]}" "${post[@]}" --wait --timeout 10m
done < "$here/versions.env"

# ------------------------------------------------------------------------------------------- next steps
if [[ -z "$dry_run" ]]; then
  address="$(kubectl get service nginx-ingress-controller --namespace nginx-ingress \
    -o jsonpath='{.status.loadBalancer.ingress[0].ip}' 2>/dev/null || true)"
  echo
  echo "Operators installed. Next (kustomize/README.md, operator guide):"
  if [[ "$env_name" == prod ]]; then
    echo "  1. point $(setting host) at ${address:-the load balancer (kubectl -n nginx-ingress get svc)}"
    echo "  2. todo-console preflight --overlay prod --resolves-to ${address:-<load balancer address>}"
    echo "  3. kubectl apply --server-side -k kustomize/overlays/prod"
  else
    echo "  kubectl apply --server-side -k kustomize/overlays/dev"
  fi
fi
