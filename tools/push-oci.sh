#!/usr/bin/env bash
# Push the images of build/oci/gateway-agent (tools/build-oci.sh) to a registry with skopeo.
#
#   tools/push-oci.sh REGISTRY/REPO[:TAG]       e.g. myacr.azurecr.io/gateway-agent:0.1.0
#
# TAG (default: the project version) gets the multi-arch index; each arch image present in the
# layout also goes to TAG-amd64, TAG-arm32v7, TAG-arm64v8. Digests are kept, so the pushed index
# is the one the tests checked.
#
# Credentials are never passed on a command line nor printed: either log in first
# (skopeo login REGISTRY, or an existing auth file such as ~/.docker/config.json, REGISTRY_AUTH_FILE),
# or set REGISTRY_USERNAME and REGISTRY_PASSWORD in the environment; they are then fed to
# "skopeo login --password-stdin" into a temporary auth file removed on exit.
# PUSH_TLS_VERIFY=false allows a plain-HTTP or self-signed test registry.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: push-oci.sh REGISTRY/REPO[:TAG]}
layout=${GA_OCI_LAYOUT:-build/oci/gateway-agent}
version=$(sed -n 's/^project(gateway-agent VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)

# A tag is what follows the last ':' unless that ':' is a registry port (a '/' after it).
if [[ ${dest##*/} == *:* ]]; then
  repo=${dest%:*} tag=${dest##*:}
else
  repo=$dest tag=$version
fi
[[ $repo == */* ]] || { echo "push-oci: '$dest' has no registry (REGISTRY/REPO[:TAG])" >&2; exit 2; }
registry=${repo%%/*}
[[ -f $layout/index.json ]] || { echo "push-oci: no $layout; run tools/build-oci.sh first" >&2; exit 1; }

opts=(--preserve-digests --retry-times 3)
if [[ ${PUSH_TLS_VERIFY:-true} == false ]]; then
  opts+=(--dest-tls-verify=false)
fi
if [[ -n ${REGISTRY_USERNAME:-} || -n ${REGISTRY_PASSWORD:-} ]]; then
  [[ -n ${REGISTRY_USERNAME:-} && -n ${REGISTRY_PASSWORD:-} ]] ||
    { echo "push-oci: set both REGISTRY_USERNAME and REGISTRY_PASSWORD, or neither" >&2; exit 2; }
  authdir=$(mktemp -d)
  trap 'rm -rf "$authdir"' EXIT
  login_opts=(--authfile "$authdir/auth.json" --username "$REGISTRY_USERNAME" --password-stdin)
  [[ ${PUSH_TLS_VERIFY:-true} == false ]] && login_opts+=(--tls-verify=false)
  printf '%s' "$REGISTRY_PASSWORD" | skopeo login "${login_opts[@]}" "$registry" >/dev/null
  opts+=(--dest-authfile "$authdir/auth.json")
fi

tags=$(jq -r '.manifests[].annotations."org.opencontainers.image.ref.name" // empty' "$layout/index.json")
pushed=0
for suffix in amd64 arm32v7 arm64v8; do
  grep -qx "$version-$suffix" <<<"$tags" || continue
  echo "push-oci: $version-$suffix -> $repo:$tag-$suffix"
  skopeo copy "${opts[@]}" "oci:$layout:$version-$suffix" "docker://$repo:$tag-$suffix"
  pushed=$((pushed + 1))
done
((pushed)) || { echo "push-oci: no arch image in $layout" >&2; exit 1; }
if grep -qx "$version" <<<"$tags"; then
  echo "push-oci: $version (multi-arch index) -> $repo:$tag"
  skopeo copy --all "${opts[@]}" "oci:$layout:$version" "docker://$repo:$tag"
else
  echo "push-oci: no multi-arch index $version in $layout; only the arch tags were pushed" >&2
fi
