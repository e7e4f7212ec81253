#!/usr/bin/env bash
# Builds (first time) or reuses cached kube-apiserver and etcd binaries for the
# local test cluster (see up.sh). Both are built from the Go module proxy with
# the pinned recipes in tools/kubernetes and tools/etcd; nothing is downloaded
# at run time except Go modules.
#
# Cache: ${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}/k8s/kubernetes-<v>-etcd-<v>/
# Prints timing and progress to stderr and the binary directory as the last
# line of stdout. A cold build takes ~9 minutes on 2 cores (kube-apiserver);
# afterwards this script returns in milliseconds.
set -euo pipefail

K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.5

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}
bin_dir=$cache_root/k8s/kubernetes-$K8S_VERSION-etcd-$ETCD_VERSION

log() { printf '[k8s/build] %s\n' "$*" >&2; }

have() { [[ -x $bin_dir/kube-apiserver && -x $bin_dir/etcd ]]; }

# runs: the cached binaries execute and report the pinned versions (~0.1 s).
# A cache restored damaged (truncated, or from another platform) fails here
# instead of as a daemon that dies at startup.
runs() {
	local out
	if ! out=$("$bin_dir/kube-apiserver" --version 2>&1) || [[ $out != "Kubernetes $K8S_VERSION" ]]; then
		log "kube-apiserver does not run as expected: ${out:-(no output)}"
		return 1
	fi
	if ! out=$("$bin_dir/etcd" --version 2>&1) || [[ $out != *"etcd Version: ${ETCD_VERSION#v}"* ]]; then
		log "etcd does not run as expected: ${out:-(no output)}"
		return 1
	fi
}

if have && runs; then
	echo "$bin_dir"
	exit 0
fi

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }

# The recipes must pin the same versions as the cache key.
grep -Eq "^[[:space:]]*(require )?k8s.io/kubernetes $K8S_VERSION( |\$)" "$here/tools/kubernetes/go.mod" ||
	{ log "tools/kubernetes/go.mod does not pin k8s.io/kubernetes $K8S_VERSION"; exit 1; }
grep -Eq "^[[:space:]]*(require )?go.etcd.io/etcd/server/v3 $ETCD_VERSION( |\$)" "$here/tools/etcd/go.mod" ||
	{ log "tools/etcd/go.mod does not pin go.etcd.io/etcd/server/v3 $ETCD_VERSION"; exit 1; }

mkdir -p "$bin_dir"

# Several test packages may start clusters at the same time: build only once.
exec 9>"$bin_dir/.build.lock"
if command -v flock >/dev/null; then
	if ! flock -n 9; then
		log "another build is running; waiting for it"
		flock 9
	fi
fi
if have; then
	if runs; then
		echo "$bin_dir"
		exit 0
	fi
	log "removing the damaged cached binaries; rebuilding"
	rm -f "$bin_dir/kube-apiserver" "$bin_dir/etcd"
fi

# Static, reproducible binaries built strictly from the committed go.mod/go.sum.
export CGO_ENABLED=0 GOWORK=off

build() { # name module-dir package ldflags
	local name=$1 dir=$2 pkg=$3 ldflags=$4 start tmp
	[[ -x $bin_dir/$name ]] && return 0
	start=$(date +%s)
	tmp=$(mktemp "$bin_dir/.$name.XXXXXX")
	log "building $name ($pkg) into $bin_dir; this is a one-time cost"
	if ! (cd "$dir" && go build -mod=readonly -ldflags="$ldflags" -o "$tmp" "$pkg"); then
		rm -f "$tmp"
		log "building $name failed"
		return 1
	fi
	chmod 0755 "$tmp"
	mv -f "$tmp" "$bin_dir/$name"
	log "built $name in $(( $(date +%s) - start ))s"
}

total_start=$(date +%s)
k8s_minor=${K8S_VERSION#v1.}
k8s_minor=${k8s_minor%%.*}
build etcd "$here/tools/etcd" go.etcd.io/etcd/server/v3 "-s -w"
build kube-apiserver "$here/tools/kubernetes" k8s.io/kubernetes/cmd/kube-apiserver \
	"-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor -X k8s.io/component-base/version.gitTreeState=clean"
runs || { log "the binaries just built do not run"; exit 1; }
log "binaries ready in $(( $(date +%s) - total_start ))s"
echo "$bin_dir"
