#!/usr/bin/env bash
# Builds (first time) or reuses a cached helm CLI for the chart tests
# (test/deploy). Built from the Go module proxy with `go install`; nothing
# else is downloaded.
#
# Cache: ${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}/helm-<v>/helm
# Prints timing and progress to stderr and the binary's path as the last line
# of stdout. A cold build took 157 s on 2 shared cores (2026-11-29, helm's
# dependencies not yet in the module cache); afterwards this script returns
# in about 0.05 s, the time to check that the cached helm runs.
set -euo pipefail

HELM_VERSION=v3.22.0

cache_root=${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}
bin_dir=$cache_root/helm-$HELM_VERSION
helm=$bin_dir/helm

log() { printf '[k8s/helm] %s\n' "$*" >&2; }

# runs: the cached binary executes and reports the pinned version. A cache
# restored damaged fails here instead of in the middle of a test.
runs() {
	local out
	if ! out=$("$helm" version --short 2>&1) || [[ $out != "$HELM_VERSION"* ]]; then
		log "helm does not run as expected: ${out:-(no output)}"
		return 1
	fi
}

if [[ -x $helm ]] && runs; then
	echo "$helm"
	exit 0
fi

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }
mkdir -p "$bin_dir"

# Several test packages may need helm at the same time: build only once.
exec 9>"$bin_dir/.build.lock"
if command -v flock >/dev/null; then
	if ! flock -n 9; then
		log "another build is running; waiting for it"
		flock 9
	fi
fi
if [[ -x $helm ]]; then
	if runs; then
		echo "$helm"
		exit 0
	fi
	log "removing the damaged cached helm; rebuilding"
	rm -f "$helm"
fi

start=$(date +%s)
tmp=$(mktemp -d "$bin_dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "building helm $HELM_VERSION into $bin_dir; this is a one-time cost"
# helm's version package is stamped the way its Makefile does it, so
# `helm version` reports the pinned version rather than a pseudo-version.
if ! CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false GOBIN="$tmp" go install \
	-ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
	"helm.sh/helm/v3/cmd/helm@$HELM_VERSION"; then
	log "building helm failed"
	exit 1
fi
chmod 0755 "$tmp/helm"
mv -f "$tmp/helm" "$helm"
runs || { log "the helm just built does not run"; exit 1; }
log "built helm in $(( $(date +%s) - start ))s"
echo "$helm"
