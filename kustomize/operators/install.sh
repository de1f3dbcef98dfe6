#!/usr/bin/env bash
# Install or upgrade the cluster operators with Helm, in the order of versions.env, at the pinned chart
# versions, with the values kept next to this script (values.yaml, plus values-<env>.yaml where present).
#
#   kustomize/operators/install.sh prod     # OKE
#   kustomize/operators/install.sh dev      # kind / minikube / k3s
#   DRY_RUN=1 kustomize/operators/install.sh prod   # print the helm commands only
#
# Then create the Secrets (kustomize/secrets/README.md) and run: kubectl apply -k kustomize/overlays/<env>
set -euo pipefail

env_name="${1:-}"
if [[ "$env_name" != "dev" && "$env_name" != "prod" ]]; then
  echo "usage: $0 dev|prod" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

run() {
  if [[ -n "${DRY_RUN:-}" ]]; then
    printf '%q ' "$@"; printf '\n'
  else
    "$@"
  fi
}

while IFS='|' read -r release namespace repo chart version envs; do
  [[ -z "$release" || "$release" == \#* ]] && continue
  [[ ",$envs," == *",$env_name,"* ]] || continue
  values=(-f "$here/$release/values.yaml")
  [[ -f "$here/$release/values-$env_name.yaml" ]] && values+=(-f "$here/$release/values-$env_name.yaml")
  if [[ "$repo" == oci://* ]]; then
    ref="$repo/$chart"
  else
    run helm repo add "$release" "$repo" --force-update >/dev/null
    ref="$release/$chart"
  fi
  run helm upgrade --install "$release" "$ref" --version "$version" \
    --namespace "$namespace" --create-namespace "${values[@]}" --wait --timeout 10m
done < "$here/versions.env"
