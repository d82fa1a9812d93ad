#!/usr/bin/env bash
# Static security checks of the Dockerfiles and the rendered Helm chart with checkov.
# checkov pins many libraries of its own, so it lives in a virtualenv of its own (kept in
# the user cache) instead of the project's .venv. Settings and deliberate skips:
# .checkov.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.3.30
venv="${CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/recon-operator/checkov-$CHECKOV_VERSION}"
if [[ ! -x "$venv/bin/checkov" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "checkov==$CHECKOV_VERSION"
fi

helm="$(.venv/bin/python -c 'from recon_stack.binaries import resolve_binaries; print(resolve_binaries(build=False)["helm"])' 2>/dev/null || command -v helm)"
rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
# Every optional object switched on, so each is checked.
"$helm" template recon charts/recon-operator --namespace recon-system \
    --set networkPolicy.enabled=true --set metrics.serviceMonitor.enabled=true \
    > "$rendered/chart.yaml"
"$helm" template recon charts/recon-operator --namespace recon-system \
    --set 'watchNamespaces={team-a,team-b}' > "$rendered/chart-namespaced.yaml"

exec "$venv/bin/checkov" --config-file .checkov.yaml \
    -f Dockerfile.operator -f Dockerfile.runner \
    -f "$rendered/chart.yaml" -f "$rendered/chart-namespaced.yaml"
