package deploy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	corev1 "k8s.io/api/core/v1"
)

// TestNATSClusterConfigParses reads the rendered nats.conf with the
// nats-server version the project pins (go.mod), as a node of the
// StatefulSet would: a config the server refuses would crash-loop every node.
func TestNATSClusterConfigParses(t *testing.T) {
	objs := render(t, "switchyard", []string{"nats-cluster.yaml"})
	var cm corev1.ConfigMap
	fromUnstructured(t, one(t, objs, "ConfigMap", "switchyard-nats-config"), &cm)
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(cm.Data["nats.conf"]), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAME", "switchyard-nats-1") // set by the StatefulSet from metadata.name
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the rendered config: %v\n%s", err, cm.Data["nats.conf"])
	}
	if opts.ServerName != "switchyard-nats-1" {
		t.Errorf("server_name %q: each node needs its own (JetStream clustering)", opts.ServerName)
	}
	if !opts.JetStream || opts.StoreDir != "/data" {
		t.Errorf("JetStream %v, store %q; want enabled on the PVC at /data", opts.JetStream, opts.StoreDir)
	}
	if opts.JetStreamMaxStore != 8<<30 {
		t.Errorf("max_file_store %d, want 8 GiB", opts.JetStreamMaxStore)
	}
	// GitHub's 25 MiB deliveries must fit (README.md: at least 32 MiB).
	if opts.MaxPayload < 32<<20 {
		t.Errorf("max_payload %d, want at least 32 MiB", opts.MaxPayload)
	}
	if opts.Cluster.Name != "switchyard-nats" || opts.Cluster.Port != 6222 || len(opts.Routes) != 3 {
		t.Errorf("cluster %q port %d with %d routes, want switchyard-nats, 6222, 3", opts.Cluster.Name, opts.Cluster.Port, len(opts.Routes))
	}
	if opts.PidFile != "/var/run/nats/nats.pid" {
		t.Errorf("pid_file %q: the preStop lame-duck signal reads /var/run/nats/nats.pid", opts.PidFile)
	}
}
