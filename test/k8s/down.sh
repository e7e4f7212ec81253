#!/usr/bin/env bash
# Stops the kube-apiserver and etcd started by up.sh and deletes their state.
#
#   test/k8s/down.sh [STATE_DIR]     # default: $SWITCHYARD_K8S_STATE
#
# SWITCHYARD_K8S_KEEP_STATE=1 stops the processes but keeps the state dir
# (logs, etcd data) for debugging.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE=${1:-${SWITCHYARD_K8S_STATE:-}}
[[ -n $STATE ]] || die "usage: $0 STATE_DIR (or set SWITCHYARD_K8S_STATE)"
if [[ ! -d $STATE ]]; then
	log "$STATE does not exist; nothing to do"
	exit 0
fi
STATE=$(cd "$STATE" && pwd -P)
[[ -f $STATE/$STATE_MARKER ]] || die "$STATE is not a cluster state dir; refusing to touch it"

stop_process kube-apiserver TERM 20
stop_process etcd TERM 20
# The watchdog may be the process running this script.
if pid=$(pid_of watchdog) && [[ $pid != "$$" ]]; then
	stop_process watchdog TERM 5
fi

if [[ ${SWITCHYARD_K8S_KEEP_STATE:-} == 1 ]]; then
	log "kept $STATE"
else
	rm -rf "$STATE"
	log "removed $STATE"
fi
