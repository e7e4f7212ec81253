#!/usr/bin/env bash
# Runs every Switchyard test, exactly as CI does (.ci/run calls this script):
# formatting, go vet, staticcheck, then unit, integration (embedded NATS)
# and end-to-end tests (a real kube-apiserver + etcd with Tekton's CRDs).
#
# The first run on a machine builds kube-apiserver and etcd from the Go
# module proxy (about 10 minutes on 2 cores) into
# ${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}; later runs reuse them.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }
t0=$(date +%s)

step "kube-apiserver and etcd (cached after the first build)"
bash test/k8s/build.sh >/dev/null
echo "ready after $(( $(date +%s) - t0 ))s"

step "gofmt"
unformatted=$(gofmt -l cmd internal test)
if [[ -n $unformatted ]]; then
	echo "not gofmt-clean:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Unit and package tests first; then the packages that start their own
# processes (kube-apiserver, etcd, nats-server, routers) one at a time, so
# two control planes never start side by side on a 2-core machine.
step "go test (packages)"
mapfile -t packages < <(go list ./... | grep -v '/test/')
go test -count=1 -timeout 20m "${packages[@]}"

step "go test (integration, end-to-end and fault tests; one package at a time)"
go test -count=1 -p 1 -timeout 45m ./test/...

echo
echo "all checks and tests passed in $(( $(date +%s) - t0 ))s"
