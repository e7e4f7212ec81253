#!/usr/bin/env bash
# Stops or (re)starts only the kube-apiserver of a cluster started by up.sh,
# keeping etcd (and therefore all objects), the port, the credentials and the
# serving certificate, so existing kubeconfigs keep working.
#
#   test/k8s/apiserver.sh stop    STATE_DIR   # SIGTERM (graceful), waits until the port is closed
#   test/k8s/apiserver.sh kill    STATE_DIR   # SIGKILL (crash), waits until the port is closed
#   test/k8s/apiserver.sh start   STATE_DIR   # same port, waits for /readyz
#   test/k8s/apiserver.sh restart STATE_DIR
#   test/k8s/apiserver.sh status  STATE_DIR   # exit 0 if running and ready
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { die "usage: $0 stop|kill|start|restart|status STATE_DIR"; }
[[ $# -eq 2 ]] || usage
cmd=$1
[[ -d $2 ]] || die "no such state dir: $2"
STATE=$(cd "$2" && pwd -P)
load_env

do_stop() {
	stop_process kube-apiserver "$1" 30
	wait_port_closed "$APISERVER_PORT" || die "port $APISERVER_PORT still accepts connections"
}

do_start() {
	local start_ms
	start_ms=$(now_ms)
	local attempt
	if pid_of kube-apiserver >/dev/null; then
		log "kube-apiserver already running"
		wait_for kube-apiserver 90 apiserver_ready || die "kube-apiserver did not become ready"
	else
		pid_of etcd >/dev/null || die "etcd is not running; use up.sh"
		BIN_DIR=$(bin_dir)
		port_in_use "$APISERVER_PORT" && die "port $APISERVER_PORT is taken by another process"
		for attempt in 1 2 3; do
			start_apiserver
			wait_for kube-apiserver 90 apiserver_ready && break
			pid_of kube-apiserver >/dev/null && die "kube-apiserver did not become ready"
			# Died during startup: see up.sh for why it gets another chance.
			exit_reason kube-apiserver
			stop_process kube-apiserver KILL 5
			((attempt < 3)) || die "kube-apiserver did not start"
			log "retrying kube-apiserver (attempt $((attempt + 1)))"
			sleep 1
		done
	fi
	log "kube-apiserver ready on https://127.0.0.1:$APISERVER_PORT in $(($(now_ms) - start_ms))ms"
}

case $cmd in
stop) do_stop TERM ;;
kill) do_stop KILL ;;
start) do_start ;;
restart)
	do_stop TERM
	do_start
	;;
status) pid_of kube-apiserver >/dev/null && apiserver_ready ;;
*) usage ;;
esac
