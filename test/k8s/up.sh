#!/usr/bin/env bash
# Starts a local etcd + kube-apiserver with Tekton's CRDs for tests.
#
#   test/k8s/up.sh            # state in ${SWITCHYARD_K8S_STATE:-$(mktemp -d)}
#
# Everything listens on 127.0.0.1 only, on free ports. Authentication is a
# static token for user "admin" (group system:masters) plus service-account
# tokens; authorization is RBAC. Logs go to stderr; the LAST line of stdout is
# the path of the admin kubeconfig (written to <state>/admin.kubeconfig).
#
# Idempotent: run it again with the same SWITCHYARD_K8S_STATE and it restarts
# whatever is not running (same ports, same etcd data) and re-applies the CRDs.
# Stop with test/k8s/down.sh <state>; restart only the API server with
# test/k8s/apiserver.sh stop|start <state>.
#
# Environment:
#   SWITCHYARD_K8S_STATE      state dir (created if missing; default: mktemp -d)
#   SWITCHYARD_CACHE          binary cache root (see build.sh)
#   SWITCHYARD_K8S_OWNER_PID  if set, a watchdog runs down.sh once that process
#                             exits (k8senv sets it to the test binary's pid so
#                             a crashed or timed-out test never leaks a cluster)
#   SWITCHYARD_TEKTON_VERSION tektoncd/pipeline module whose config/300-crds
#                             are installed (default v1.15.0, as in go.mod)
set -euo pipefail

# Keep stdout for the final result only.
exec 3>&1 1>&2

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TEKTON_VERSION=${SWITCHYARD_TEKTON_VERSION:-v1.15.0}
START_MS=$(now_ms)

for tool in curl go base64; do
	command -v "$tool" >/dev/null || die "$tool is required"
done

BIN_DIR=$(bin_dir)
[[ -x $BIN_DIR/kube-apiserver && -x $BIN_DIR/etcd ]] || die "build.sh did not produce binaries"

STATE=${SWITCHYARD_K8S_STATE:-}
if [[ -z $STATE ]]; then
	STATE=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-k8s.XXXXXX")
fi
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)
if [[ ! -f $STATE/$STATE_MARKER ]]; then
	[[ -z $(ls -A "$STATE") ]] || die "$STATE is neither empty nor a cluster state dir"
	touch "$STATE/$STATE_MARKER"
fi
mkdir -p "$STATE/logs" "$STATE/pki"
log "state dir $STATE"

# --- watchdog -------------------------------------------------------------------
# Started before any daemon, so a crashed owner never leaks processes.
if [[ -n ${SWITCHYARD_K8S_OWNER_PID:-} ]] && ! pid_of watchdog >/dev/null; then
	kill -0 "$SWITCHYARD_K8S_OWNER_PID" 2>/dev/null || die "SWITCHYARD_K8S_OWNER_PID=$SWITCHYARD_K8S_OWNER_PID is not running"
	# shellcheck disable=SC2016
	spawn watchdog bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec bash "$2" "$3"' \
		switchyard-k8s-watchdog "$SWITCHYARD_K8S_OWNER_PID" "$K8S_DIR/down.sh" "$STATE"
fi

# --- credentials and ports (first run only) -----------------------------------
FRESH=false
if [[ ! -f $STATE/env ]]; then
	FRESH=true
	ADMIN_TOKEN=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
	[[ ${#ADMIN_TOKEN} -eq 64 ]] || die "could not generate a token"
	ETCD_PORT=$(free_port) || die "no free port"
	ETCD_PEER_PORT=$(free_port "$ETCD_PORT") || die "no free port"
	APISERVER_PORT=$(free_port "$ETCD_PORT" "$ETCD_PEER_PORT") || die "no free port"
	save_env
else
	load_env
fi

if [[ ! -s $STATE/sa.key ]]; then
	if command -v openssl >/dev/null; then
		openssl genrsa -out "$STATE/sa.key.tmp" 2048 2>/dev/null
	else
		log "openssl not found; generating the service-account key with Go"
		(cd "$K8S_DIR/tools" && GOWORK=off go run ./keygen "$STATE/sa.key.tmp")
	fi
	chmod 0600 "$STATE/sa.key.tmp"
	mv -f "$STATE/sa.key.tmp" "$STATE/sa.key"
fi
printf '%s,admin,admin,"system:masters"\n' "$ADMIN_TOKEN" >"$STATE/tokens.csv"
chmod 0600 "$STATE/tokens.csv"

# bind_failed NAME OFFSET: the process logged a bind failure after byte OFFSET.
bind_failed() { tail -c "+$(($2 + 1))" "$STATE/logs/$1.log" 2>/dev/null | grep -q 'address already in use'; }
log_size() { stat -c %s "$STATE/logs/$1.log" 2>/dev/null || echo 0; }

# --- etcd ---------------------------------------------------------------------
if pid_of etcd >/dev/null; then
	log "etcd already running on 127.0.0.1:$ETCD_PORT"
else
	for attempt in 1 2 3 4 5; do
		off=$(log_size etcd)
		start_etcd
		if wait_for etcd 60 etcd_healthy; then
			log "etcd ready on 127.0.0.1:$ETCD_PORT (pid $(<"$STATE/etcd.pid"))"
			break
		fi
		died=false
		pid_of etcd >/dev/null || died=true
		$died && exit_reason etcd
		stop_process etcd KILL 5
		if $died && ! bind_failed etcd "$off" && ((attempt < 3)); then
			log "retrying etcd (attempt $((attempt + 1)))"
			sleep 1
			continue
		fi
		if $FRESH && ((attempt < 5)) && bind_failed etcd "$off"; then
			ETCD_PORT=$(free_port "$APISERVER_PORT") || die "no free port"
			ETCD_PEER_PORT=$(free_port "$ETCD_PORT" "$APISERVER_PORT") || die "no free port"
			save_env
			rm -rf "$STATE/etcd-data"
			log "port taken; retrying etcd on 127.0.0.1:$ETCD_PORT"
			continue
		fi
		die "etcd did not start (log: $STATE/logs/etcd.log)"
	done
fi

# --- kube-apiserver -------------------------------------------------------------
if pid_of kube-apiserver >/dev/null && apiserver_ready; then
	log "kube-apiserver already running on 127.0.0.1:$APISERVER_PORT"
else
	stop_process kube-apiserver TERM 20
	for attempt in 1 2 3 4 5; do
		off=$(log_size kube-apiserver)
		start_apiserver
		if wait_for kube-apiserver 90 apiserver_ready; then
			log "kube-apiserver ready on https://127.0.0.1:$APISERVER_PORT (pid $(<"$STATE/kube-apiserver.pid"))"
			break
		fi
		died=false
		pid_of kube-apiserver >/dev/null || died=true
		$died && exit_reason kube-apiserver
		stop_process kube-apiserver KILL 5
		if $FRESH && ((attempt < 5)) && bind_failed kube-apiserver "$off"; then
			APISERVER_PORT=$(free_port "$ETCD_PORT" "$ETCD_PEER_PORT") || die "no free port"
			save_env
			log "port taken; retrying kube-apiserver on 127.0.0.1:$APISERVER_PORT"
			continue
		fi
		# A process killed during startup (seen once in CI: SIGKILL before
		# its first log line, cause unknown) gets another chance; a
		# configuration error fails the same way every time and ends here
		# after a few seconds.
		if $died && ((attempt < 3)); then
			log "retrying kube-apiserver (attempt $((attempt + 1)))"
			sleep 1
			continue
		fi
		die "kube-apiserver did not start (log: $STATE/logs/kube-apiserver.log)"
	done
fi

# --- Tekton CRDs ----------------------------------------------------------------
crd_dir=${SWITCHYARD_TEKTON_CRDS_DIR:-}
if [[ -z $crd_dir ]]; then
	mod_dir=$(GOWORK=off go env GOMODCACHE)/github.com/tektoncd/pipeline@$TEKTON_VERSION
	if [[ ! -d $mod_dir/config/300-crds ]]; then
		log "downloading github.com/tektoncd/pipeline@$TEKTON_VERSION"
		# Outside any module, so no go.mod/go.sum is touched.
		mod_dir=$(cd / && GOWORK=off GOFLAGS='' go mod download -json "github.com/tektoncd/pipeline@$TEKTON_VERSION" |
			sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	fi
	crd_dir=$mod_dir/config/300-crds
fi
[[ -d $crd_dir ]] || die "Tekton CRDs not found at $crd_dir"

base=https://127.0.0.1:$APISERVER_PORT/apis/apiextensions.k8s.io/v1/customresourcedefinitions
crds=()
for f in "$crd_dir"/*.yaml; do
	name=$(awk '/^metadata:/ {m = 1; next} m && /^  name:/ {print $2; exit}' "$f")
	[[ -n $name ]] || die "no metadata.name in $f"
	crds+=("$name")
	# Server-side apply: creates or updates, so re-running is harmless.
	code=$(api -o "$STATE/logs/crd-apply.out" -w '%{http_code}' -X PATCH \
		-H 'Content-Type: application/apply-patch+yaml' --data-binary "@$f" \
		"$base/$name?fieldManager=switchyard-k8s-up&force=true")
	[[ $code == 200 || $code == 201 ]] || {
		cat "$STATE/logs/crd-apply.out" >&2
		die "applying $f failed with HTTP $code"
	}
done
deadline=$(($(date +%s) + 30))
for name in "${crds[@]}"; do
	until api "$base/$name" | tr -d ' \n' | grep -q '"type":"Established","status":"True"'; do
		(($(date +%s) < deadline)) || die "CRD $name not Established after 30s"
		sleep 0.1
	done
done
log "Tekton $TEKTON_VERSION CRDs established: ${crds[*]}"

# --- kubeconfig -----------------------------------------------------------------
kubeconfig=$STATE/admin.kubeconfig
cat >"$kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: switchyard-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$STATE/pki/apiserver.crt")
users:
- name: admin
  user:
    token: $ADMIN_TOKEN
contexts:
- name: switchyard-test
  context:
    cluster: switchyard-test
    user: admin
current-context: switchyard-test
EOF
chmod 0600 "$kubeconfig.tmp"
mv -f "$kubeconfig.tmp" "$kubeconfig"

log "cluster up in $(($(now_ms) - START_MS))ms; stop with: $K8S_DIR/down.sh $STATE"
echo "$kubeconfig" >&3
