# shellcheck shell=bash
# Shared helpers for up.sh, apiserver.sh and down.sh. Source it; do not run it.
#
# State directory layout (everything the cluster owns lives here):
#   .switchyard-k8s        marker; down.sh refuses to delete a dir without it
#   env                    ports and admin token (sourced by the scripts)
#   sa.key                 RSA key signing/verifying service-account tokens
#   tokens.csv             --token-auth-file (admin user in system:masters)
#   pki/                   kube-apiserver --cert-dir (self-signed serving cert)
#   etcd-data/             etcd data dir
#   etcd.pid kube-apiserver.pid watchdog.pid
#   logs/                  etcd.log kube-apiserver.log watchdog.log
#   admin.kubeconfig       cluster-admin kubeconfig (token auth)

K8S_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE_MARKER=.switchyard-k8s

log() { printf '[k8s] %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

now_ms() { date +%s%3N; }

# pid_of NAME: prints the pid recorded in $STATE/NAME.pid if that process is
# alive (and not a zombie) and still one of ours (its command line mentions
# the state dir); returns 1 otherwise.
pid_of() {
	local f=$STATE/$1.pid pid st
	[[ -s $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	if [[ -r /proc/$pid/stat ]]; then
		st=$(<"/proc/$pid/stat")
		st=${st##*) }
		[[ ${st%% *} != Z ]] || return 1
		grep -qaF -- "$STATE" "/proc/$pid/cmdline" 2>/dev/null || return 1
	fi
	echo "$pid"
}

# stop_process NAME SIGNAL TIMEOUT_S: signals the process in NAME.pid and waits
# until it is gone (SIGKILL after TIMEOUT_S), then removes the pid file.
stop_process() {
	local name=$1 sig=$2 timeout=$3 pid deadline
	if pid=$(pid_of "$name"); then
		kill "-$sig" "$pid" 2>/dev/null || true
		deadline=$(($(date +%s) + timeout))
		while pid_of "$name" >/dev/null; do
			if (($(date +%s) >= deadline)); then
				log "$name (pid $pid) ignored SIG$sig for ${timeout}s; sending SIGKILL"
				kill -KILL "$pid" 2>/dev/null || true
				sleep 0.2
				break
			fi
			sleep 0.05
		done
		log "stopped $name (pid $pid)"
	fi
	rm -f "$STATE/$name.pid"
}

# port_in_use PORT: true if something accepts connections on 127.0.0.1:PORT.
port_in_use() { (exec 5<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port [EXCLUDE...]: a currently unused loopback port in 20000-32767
# (below Linux's default ephemeral range, so outgoing connections rarely
# collide). Racy by nature; callers retry with new ports on bind failures.
free_port() {
	local p i x
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
		for x in "$@"; do [[ $p == "$x" ]] && continue 2; done
		port_in_use "$p" || {
			echo "$p"
			return 0
		}
	done
	return 1
}

load_env() {
	[[ -f $STATE/$STATE_MARKER && -f $STATE/env ]] || die "$STATE is not a cluster state dir (run up.sh first)"
	# shellcheck disable=SC1091
	source "$STATE/env"
}

save_env() {
	cat >"$STATE/env.tmp" <<-EOF
		ETCD_PORT=$ETCD_PORT
		ETCD_PEER_PORT=$ETCD_PEER_PORT
		APISERVER_PORT=$APISERVER_PORT
		ADMIN_TOKEN=$ADMIN_TOKEN
	EOF
	mv -f "$STATE/env.tmp" "$STATE/env"
}

# bin_dir: builds or reuses the cached binaries; prints their directory.
bin_dir() { bash "$K8S_DIR/build.sh" | tail -n 1; }

# Starts a daemon detached from the caller's stdio (so callers reading our
# stdout through a pipe see EOF when the script exits) and records its pid.
# Usage: spawn NAME COMMAND ARGS...
spawn() {
	local name=$1
	shift
	mkdir -p "$STATE/logs"
	printf '\n=== %s starting %s\n' "$(date -u +%FT%TZ)" "$name" >>"$STATE/logs/$name.log"
	nohup "$@" </dev/null >>"$STATE/logs/$name.log" 2>&1 3>&- 4>&- 9>&- &
	echo $! >"$STATE/$name.pid"
}

# exit_reason NAME: describes how the process in NAME.pid ended (it must be a
# child of this shell, i.e. started by spawn here) and, if a signal killed it,
# the memory situation, since SIGKILL at startup usually means the kernel's
# OOM killer or an exec that failed after its point of no return.
exit_reason() {
	local pid status=0 f
	pid=$(<"$STATE/$1.pid") || return 0
	wait "$pid" 2>/dev/null || status=$?
	if ((status > 128)); then
		log "$1 (pid $pid) was killed by signal $((status - 128)) ($(kill -l $((status - 128)) 2>/dev/null || echo '?'))"
		log "memory: $(awk '/^(MemTotal|MemAvailable|SwapFree):/ {printf "%s %d MiB  ", $1, $2 / 1024}' /proc/meminfo 2>/dev/null)"
		for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.current /sys/fs/cgroup/memory.events /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids.current; do
			[[ -r $f ]] && log "$f: $(tr '\n' ' ' <"$f")"
		done
		log "limits: $(ulimit -v) KiB virtual, $(ulimit -u) processes"
	else
		log "$1 (pid $pid) exited with status $status"
	fi
}

log_tail() { tail -n "${2:-25}" "$STATE/logs/$1.log" 2>/dev/null | sed 's/^/    /' >&2 || true; }

# wait_for NAME TIMEOUT_S CHECK...: polls CHECK until it succeeds; fails early
# if the process NAME died.
wait_for() {
	local name=$1 timeout=$2 deadline
	shift 2
	deadline=$(($(date +%s) + timeout))
	until "$@"; do
		if ! pid_of "$name" >/dev/null; then
			log "$name exited during startup; last log lines:"
			log_tail "$name"
			return 1
		fi
		if (($(date +%s) >= deadline)); then
			log "$name not ready after ${timeout}s; last log lines:"
			log_tail "$name"
			return 1
		fi
		sleep 0.1
	done
}

etcd_healthy() {
	curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'
}

start_etcd() {
	spawn etcd "$BIN_DIR/etcd" \
		--name=switchyard \
		--data-dir="$STATE/etcd-data" \
		--listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
		--advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster="switchyard=http://127.0.0.1:$ETCD_PEER_PORT" \
		--unsafe-no-fsync \
		--log-level=warn
}

# curl against the API server as the admin user.
api() {
	curl -sS --max-time 30 --cacert "$STATE/pki/apiserver.crt" \
		-H "Authorization: Bearer $ADMIN_TOKEN" "$@"
}

apiserver_ready() {
	[[ $(curl -sk --max-time 2 -H "Authorization: Bearer $ADMIN_TOKEN" \
		"https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null) == ok ]]
}

start_apiserver() {
	spawn kube-apiserver "$BIN_DIR/kube-apiserver" \
		--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
		--cert-dir="$STATE/pki" \
		--bind-address=127.0.0.1 \
		--advertise-address=127.0.0.1 \
		--secure-port="$APISERVER_PORT" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$STATE/sa.key" \
		--service-account-signing-key-file="$STATE/sa.key" \
		--token-auth-file="$STATE/tokens.csv" \
		--authorization-mode=RBAC \
		--service-cluster-ip-range=10.0.0.0/24 \
		--endpoint-reconciler-type=none \
		--profiling=false
}

# wait_apiserver_stopped: the port no longer accepts connections.
wait_port_closed() {
	local i
	for ((i = 0; i < 200; i++)); do
		port_in_use "$1" || return 0
		sleep 0.05
	done
	return 1
}
