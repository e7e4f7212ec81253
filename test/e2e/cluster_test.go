package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

// natsCluster is three nats-server processes (natsServerBinary) clustered
// on loopback with JetStream, each with a monitoring port.
type natsCluster struct {
	nodes   []*natsProcess
	names   []string
	monitor []string // http://host:port of each node's monitoring
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNATSCluster starts three clustered JetStream nodes and returns once
// each takes client connections, before JetStream has elected a leader.
func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	const size = 3
	c := &natsCluster{}
	client, route, httpPort := make([]int, size), make([]int, size), make([]int, size)
	routes := make([]string, size)
	for i := range size {
		client[i], route[i], httpPort[i] = freePort(t), freePort(t), freePort(t)
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", route[i])
	}
	for i := range size {
		dir := t.TempDir()
		name := fmt.Sprintf("sy-nats-%d", i)
		// The router's payload limit (see queue.DefaultMaxPayload), as in
		// startNATSProcess.
		config := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
max_payload: %d
jetstream { store_dir: %q }
cluster {
  name: switchyard-e2e
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, name, client[i], httpPort[i], 32<<20, filepath.Join(dir, "store"), route[i], strings.Join(routes, ", "))
		conf := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		n := &natsProcess{t: t, conf: conf, url: fmt.Sprintf("nats://127.0.0.1:%d", client[i])}
		n.start()
		t.Cleanup(func() {
			n.kill()
			if t.Failed() {
				t.Logf("%s logs:\n%s", name, n.logs.String())
			}
		})
		c.nodes = append(c.nodes, n)
		c.names = append(c.names, name)
		c.monitor = append(c.monitor, fmt.Sprintf("http://127.0.0.1:%d", httpPort[i]))
	}
	return c
}

// urls is the client URL list a router is given: every node.
func (c *natsCluster) urls() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.url
	}
	return strings.Join(urls, ",")
}

// healthz asks node i's monitoring /healthz. nats-server answers 200 only
// when the node is current with the meta leader and with every stream and
// consumer replica assigned to it; otherwise it says why.
func (c *natsCluster) healthz(i int) (bool, string) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(c.monitor[i] + "/healthz")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode == http.StatusOK && body.Status == "ok", body.Error
}

func (c *natsCluster) waitHealthy(t *testing.T, i int, within time.Duration) {
	t.Helper()
	var why string
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var ok bool
		if ok, why = c.healthz(i); ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not healthy after %s: %s", c.names[i], within, why)
}

// node returns the index of the node named name.
func (c *natsCluster) node(t *testing.T, name string) int {
	t.Helper()
	for i, n := range c.names {
		if n == name {
			return i
		}
	}
	t.Fatalf("no node %q in %v", name, c.names)
	return -1
}

// streams returns the info of every stream in the cluster.
func (c *natsCluster) streams(t *testing.T) []*jetstream.StreamInfo {
	t.Helper()
	nc, err := nats.Connect(c.urls())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*jetstream.StreamInfo
	list := js.ListStreams(ctx)
	for info := range list.Info() {
		out = append(out, info)
	}
	if err := list.Err(); err != nil {
		t.Fatalf("list streams: %v", err)
	}
	return out
}

// TestNATSClusterNodeKilledUnderLoad: two routers on a real 3-node
// JetStream cluster, streams with 3 replicas. The node leading the events
// stream is killed with SIGKILL while signed webhooks arrive; the cluster
// elects another leader and every delivery still becomes exactly one
// PipelineRun. Then the killed node restarts and rejoins: healthy (current
// with the meta leader and its replicas) and a current replica of every
// stream.
func TestNATSClusterNodeKilledUnderLoad(t *testing.T) {
	ctx := context.Background()
	const ns, n = "e2e-nats-cluster", 60
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	nc := startNATSCluster(t)
	secret := newSecret(t)
	rules := rulesFor(t, ns, "")
	// The routers start without waiting for the cluster to elect a
	// JetStream meta leader: if they come first, they wait for it (see
	// "Start before NATS" in docs/reliability.md).
	var routers []*router
	for range 2 {
		routers = append(routers, startRouterArgs(t, routerConfig{rulesDir: rules, dataDir: t.TempDir(), kubeconfig: kubeconfig,
			natsURL: nc.urls(), secret: secret}, "--stream-replicas", "3"))
	}
	urls := []string{routers[0].url, routers[1].url}
	for i := range nc.nodes {
		nc.waitHealthy(t, i, time.Minute)
	}
	t.Logf("routers waited for JetStream: %d and %d retries", len(routers[0].logs.records("jetstream not ready: retrying")),
		len(routers[1].logs.records("jetstream not ready: retrying")))

	streams := nc.streams(t)
	var leader string
	for _, s := range streams {
		if s.Config.Replicas != 3 {
			t.Errorf("stream %s has %d replicas, want 3", s.Config.Name, s.Config.Replicas)
		}
		if s.Config.Name == queue.EventsStream && s.Cluster != nil {
			leader = s.Cluster.Leader
		}
	}
	if leader == "" {
		t.Fatalf("no leader for %s among %d streams", queue.EventsStream, len(streams))
	}
	victim := nc.node(t, leader)
	t.Logf("%d streams with 3 replicas; %s leads %s", len(streams), leader, queue.EventsStream)

	var once sync.Once
	l := drive(t, func() []string { return urls }, secret, "natscluster", n, 4, func(accepted int64) {
		if accepted == n/3 {
			once.Do(func() { nc.nodes[victim].kill() })
		}
	})
	t.Logf("killed %s (the %s leader) at %d of %d: %s", leader, queue.EventsStream, n/3, n, l)
	// Two of three nodes are a quorum: every 202 becomes one run.
	alive := strings.Join(nc.urlsWithout(victim), ",")
	checkOnePerDelivery(t, ns, "natscluster", n, 2*time.Minute, alive)

	nc.nodes[victim].start()
	nc.waitHealthy(t, victim, 2*time.Minute)
	waitUntil(t, leader+" to be a current replica of every stream", time.Minute, func() bool {
		for _, s := range nc.streams(t) {
			if !currentIn(s, leader) {
				return false
			}
		}
		return true
	})
	// The rejoin replayed nothing: still exactly one run per delivery.
	checkOnePerDelivery(t, ns, "natscluster", n, 2*time.Minute, nc.urls())
	for _, r := range routers {
		r.stop()
	}
}

// urlsWithout returns the client URLs of every node but skip.
func (c *natsCluster) urlsWithout(skip int) []string {
	var out []string
	for i, n := range c.nodes {
		if i != skip {
			out = append(out, n.url)
		}
	}
	return out
}

// currentIn reports whether name leads s or is a current replica of it.
func currentIn(s *jetstream.StreamInfo, name string) bool {
	if s.Cluster == nil {
		return false
	}
	if s.Cluster.Leader == name {
		return true
	}
	for _, p := range s.Cluster.Replicas {
		if p.Name == name {
			return p.Current && !p.Offline
		}
	}
	return false
}
