package dispatch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// compareAPI stands in for GitHub's compare endpoint: each repository of
// acme answers with its own status and files, and questions are counted.
type compareAPI struct {
	mu    sync.Mutex
	calls map[string]int
}

func newCompareAPI(t *testing.T) (*compareAPI, string) {
	c := &compareAPI{calls: map[string]int{}}
	answers := map[string]struct {
		status int
		body   string
	}{
		"match":   {200, `{"status":"ahead","files":[{"filename":"docs/a.md"},{"filename":"src/a.go"}]}`},
		"nomatch": {200, `{"status":"ahead","files":[{"filename":"docs/a.md"},{"filename":"src/a.md"}]}`},
		"gone":    {404, `{"message":"Not Found"}`},
		"flaky":   {502, `{"message":"Server Error"}`},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, _ := strings.CutPrefix(r.URL.Path, "/api/v3/repos/acme/")
		repo, _, _ := strings.Cut(rest, "/")
		c.mu.Lock()
		c.calls[repo]++
		c.mu.Unlock()
		a, ok := answers[repo]
		if !ok || r.Header.Get("Authorization") != "Bearer api-token" {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		fmt.Fprint(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL + "/api/v3"
}

func (c *compareAPI) count(repo string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[repo]
}

// TestDeferredPathsCheck (issue 12): dispatch finishes the paths check
// routing deferred, through the real queue: a matching file creates the
// run, none skips it (state skipped, nothing created, the work acked), a
// 4xx creates it with a note, and a 5xx is retried, then creates it with a
// note once the work's attempts are used up.
func TestDeferredPathsCheck(t *testing.T) {
	ctx := context.Background()
	api, apiURL := newCompareAPI(t)
	e, err := queue.StartEmbedded(queue.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := queue.Open(ctx, nc, queue.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}

	repos := []string{"match", "nomatch", "gone", "flaky"}
	for _, repo := range repos {
		w := testWork(func(w *queue.Work) {
			w.Event.SetID("d-" + repo)
			w.Target.App = repo
			w.Target.Name = routing.PipelineRunName(repo, "build", w.Source, "d-"+repo)
			w.Target.PathsCheck = &routing.PathsCheck{Source: w.Source,
				ChangesQuery: routing.ChangesQuery{Repository: "acme/" + repo, Before: "b0", After: "a1"},
				Paths:        []string{"src/**", "!**/*.md"}, Reason: "the push payload lists 20 commits"}
		})
		if err := w.Event.SetData("application/json", map[string]string{"ref": "refs/heads/main"}); err != nil {
			t.Fatal(err)
		}
		if err := q.Publish(ctx, policy.Accepted{Source: w.Source, Event: w.Event, Targets: []routing.Target{w.Target}}); err != nil {
			t.Fatal(err)
		}
	}

	src := &routing.Source{Name: "github-acme", Kind: "github", APIToken: []byte("api-token"), APIURL: apiURL}
	fetcher := ingest.NewChangesFetcher(func(name string) *routing.Source {
		if name == src.Name {
			return src
		}
		return nil
	})
	reg := prometheus.NewRegistry()
	pm, err := NewPathsMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	client := fake.NewSimpleClientset()
	d := New(NewKubeCreatorForClient(client), nil, WithChanges(fetcher, pm))
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(cctx, queue.ConsumerConfig{MaxAttempts: 2, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond}, d.Handle)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Consume: %v", err)
		}
	})

	want := map[string]struct{ state, reason string }{
		"match":   {queue.StateCreated, ""},
		"nomatch": {queue.StateSkipped, "no changed file matches paths src/**, !**/*.md (2 files changed, from GitHub's compare API (b0...a1))"},
		"gone":    {queue.StateCreated, "paths not checked: the push payload lists 20 commits; compare API: GET "},
		"flaky":   {queue.StateCreated, "paths not checked: the push payload lists 20 commits; compare API: GET "},
	}
	got := map[string]policy.TargetStatus{}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		settled := 0
		for _, repo := range repos {
			st, err := q.Status(ctx, "github-acme", "d-"+repo)
			if err != nil {
				t.Fatal(err)
			}
			got[repo] = st.Targets[0]
			if s := st.Targets[0].State; s == queue.StateCreated || s == queue.StateSkipped {
				settled++
			}
		}
		n, err := q.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if settled == len(repos) && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: states %+v, %d pending", got, n)
		}
	}
	for _, repo := range repos {
		g, w := got[repo], want[repo]
		if g.State != w.state || !strings.HasPrefix(g.Reason, w.reason) || (w.reason == "" && g.Reason != "") {
			t.Errorf("%s: state %s %q, want %s %q", repo, g.State, g.Reason, w.state, w.reason)
		}
	}
	for repo, code := range map[string]string{"gone": "404", "flaky": "502"} {
		if r := got[repo].Reason; !strings.Contains(r, code) || !strings.HasSuffix(r, "; treated as matched") {
			t.Errorf("%s: reason %q, want the %s and treated as matched", repo, r, code)
		}
	}
	if n := api.count("flaky"); n != 2 {
		t.Errorf("a 502 was asked %d times, want 2 (retried once, then created)", n)
	}
	if n := api.count("match") + api.count("nomatch") + api.count("gone"); n != 3 {
		t.Errorf("%d questions for the three other pushes, want 3", n)
	}
	list, err := client.TektonV1().PipelineRuns("shop-ci").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var made []string
	for _, pr := range list.Items {
		made = append(made, pr.Labels[LabelApp])
	}
	if len(made) != 3 || strings.Contains(strings.Join(made, ","), "nomatch") {
		t.Errorf("PipelineRuns of %v, want match, gone and flaky", made)
	}
	if dls, err := q.DeadLetters(ctx); err != nil || len(dls) != 0 {
		t.Errorf("dead letters %+v (%v), want none", dls, err)
	}
	for result, n := range map[string]float64{PathsMatched: 1, PathsSkipped: 1, PathsUnchecked: 2} {
		var m dto.Metric
		if err := pm.checks.WithLabelValues(result).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != n {
			t.Errorf("switchyard_paths_checks_total{result=%q} = %v, want %v", result, got, n)
		}
	}
}

// TestDeferredPathsCheckWithoutFetcher: a dispatcher that cannot ask the
// API creates the run all the same, with the note.
func TestDeferredPathsCheckWithoutFetcher(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	d := New(NewKubeCreatorForClient(client), nil)
	w := testWork(func(w *queue.Work) {
		w.Target.PathsCheck = &routing.PathsCheck{Source: w.Source, Paths: []string{"src/**"}, Reason: "forced push"}
	})
	err := d.Handle(ctx, w)
	if err == nil || !strings.Contains(err.Error(), "paths not checked: forced push; this router does not ask the provider's API; treated as matched") || queue.IsPermanent(err) {
		t.Errorf("Handle = %v, want the created-with-a-note outcome", err)
	}
	list, lerr := client.TektonV1().PipelineRuns(w.Target.Namespace).List(ctx, metav1.ListOptions{})
	if lerr != nil || len(list.Items) != 1 {
		t.Errorf("%d PipelineRuns (%v), want 1", len(list.Items), lerr)
	}
}
