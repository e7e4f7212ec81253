package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// pushSample returns the push.json sample changed by edit, normalized.
func pushSample(t *testing.T, name string, edit func(map[string]any)) *event.Event {
	t.Helper()
	body := readSample(t, "github", name)
	if edit != nil {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		var err error
		if body, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	}
	kind := "push"
	if name == "issues.json" {
		kind = "issues"
	}
	res, err := Normalize("github", &Request{Header: githubHeader(kind, "d-1"), Body: body})
	if err != nil {
		t.Fatal(err)
	}
	return &res.Events[0]
}

// manyCommits sets n commits each touching its own file.
func manyCommits(n int) func(map[string]any) {
	return func(m map[string]any) {
		commits := make([]any, n)
		for i := range commits {
			commits[i] = map[string]any{"id": fmt.Sprintf("c%d", i), "added": []string{fmt.Sprintf("f%02d.txt", i)}}
		}
		m["commits"] = commits
	}
}

// compareServer speaks GitHub's compare endpoint: GET
// /api/v3/repos/{owner}/{repo}/compare/{base}...{head}.
type compareServer struct {
	*httptest.Server
	calls atomic.Int32
	// answers maps "base...head" to a status and a response body.
	answers map[string]compareAnswer
}

type compareAnswer struct {
	status int
	body   string
}

func newCompareServer(t *testing.T, answers map[string]compareAnswer) *compareServer {
	s := &compareServer{answers: answers}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		if got := r.Header.Get("Authorization"); got != "Bearer api-token" {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		basehead, ok := strings.CutPrefix(r.URL.Path, "/api/v3/repos/acme/web/compare/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		a, ok := s.answers[basehead]
		if !ok {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		fmt.Fprint(w, a.body)
	}))
	t.Cleanup(s.Close)
	return s
}

const (
	sampleBefore = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	sampleAfter  = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
)

func TestChangedFiles(t *testing.T) {
	files := func(names ...string) string {
		var fs []string
		for _, n := range names {
			fs = append(fs, fmt.Sprintf(`{"filename":%q,"status":"modified"}`, n))
		}
		return "[" + strings.Join(fs, ",") + "]"
	}
	many := make([]string, 300)
	for i := range many {
		many[i] = fmt.Sprintf("gen/%03d.go", i)
	}
	forward := sampleBefore + "..." + sampleAfter
	backward := sampleAfter + "..." + sampleBefore
	srv := newCompareServer(t, map[string]compareAnswer{
		forward: {200, `{"status":"ahead","files":[{"filename":"src/new.go","status":"renamed","previous_filename":"src/old.go"},{"filename":"docs/a.md","status":"added"}]}`},
	})
	diverged := newCompareServer(t, map[string]compareAnswer{
		forward:  {200, `{"status":"diverged","files":` + files("src/kept.go") + `}`},
		backward: {200, `{"status":"diverged","files":` + files("src/dropped.go") + `}`},
	})
	broken := newCompareServer(t, map[string]compareAnswer{forward: {500, `{"message":"boom"}`}})
	huge := newCompareServer(t, map[string]compareAnswer{forward: {200, `{"status":"ahead","files":` + files(many...) + `}`}})

	source := func(url string) *routing.Source {
		s := &routing.Source{Name: "github", Kind: "github"}
		if url != "" {
			s.APIToken, s.APIURL = []byte("api-token"), url+"/api/v3"
		}
		return s
	}
	setSHAs := func(m map[string]any) { m["before"], m["after"] = sampleBefore, sampleAfter }
	tests := []struct {
		name       string
		sample     string
		edit       func(map[string]any)
		src        *routing.Source
		want       *routing.Changes
		wantReason string // substring, instead of want.Reason
		wantCalls  int32
		server     *compareServer
	}{
		{name: "not a push", sample: "issues.json", src: source(srv.URL), server: srv},
		{
			name: "complete payload: no API call", sample: "push.json", src: source(srv.URL), server: srv,
			want:       &routing.Changes{Files: []string{"README.md", "api/cart.go", "api/legacy.go", "web/checkout.html", "web/index.html"}, Complete: true},
			wantReason: "from the 2 commits of the push payload",
		},
		{
			name: "deleted branch changed nothing", sample: "push-branch-deleted.json", src: source(srv.URL), server: srv,
			want: &routing.Changes{Files: []string{}, Complete: true}, wantReason: "ref deleted",
		},
		{
			name: "new tag: nothing to compare", sample: "push-tag.json", src: source(srv.URL), server: srv,
			want: &routing.Changes{}, wantReason: "new ref without new commits",
		},
		{
			name: "20 commits, no token: incomplete", sample: "push.json", edit: manyCommits(20), src: source(""), server: srv,
			want:       &routing.Changes{Files: manyFiles(20)},
			wantReason: "lists 20 commits, GitHub's maximum, so it may be cut and source github has no apiToken",
		},
		{
			name: "20 commits, token: compare API", sample: "push.json", src: source(srv.URL), server: srv, wantCalls: 1,
			edit:       func(m map[string]any) { manyCommits(20)(m); setSHAs(m) },
			want:       &routing.Changes{Files: []string{"docs/a.md", "src/new.go", "src/old.go"}, Complete: true},
			wantReason: "from GitHub's compare API (" + forward + ")",
		},
		{
			name: "no commits on an update: compare API", sample: "push.json", src: source(srv.URL), server: srv, wantCalls: 1,
			edit: func(m map[string]any) { m["commits"] = []any{}; setSHAs(m) },
			want: &routing.Changes{Files: []string{"docs/a.md", "src/new.go", "src/old.go"}, Complete: true}, wantReason: "compare API",
		},
		{
			name: "forced push compares both ways", sample: "push.json", src: source(diverged.URL), server: diverged, wantCalls: 2,
			edit: func(m map[string]any) { m["forced"] = true; setSHAs(m) },
			want: &routing.Changes{Files: []string{"src/dropped.go", "src/kept.go"}, Complete: true}, wantReason: forward + " and " + backward,
		},
		{
			name: "API error: incomplete, payload files kept", sample: "push.json", src: source(broken.URL), server: broken, wantCalls: 1,
			edit:       func(m map[string]any) { m["forced"] = true; setSHAs(m) },
			want:       &routing.Changes{Files: []string{"README.md", "api/cart.go", "api/legacy.go", "web/checkout.html", "web/index.html"}},
			wantReason: "forced push: its commits do not show what it dropped; compare API: GET",
		},
		{
			name: "a null commit lists no file", sample: "push.json", src: source(srv.URL), server: srv,
			edit:       func(m map[string]any) { m["commits"] = []any{nil, map[string]any{"added": []string{"a.go"}}} },
			want:       &routing.Changes{Files: []string{"a.go"}, Complete: true},
			wantReason: "from the 2 commits of the push payload",
		},
		{
			name: "300 files: incomplete", sample: "push.json", src: source(huge.URL), server: huge, wantCalls: 1,
			edit:       func(m map[string]any) { m["commits"] = []any{}; setSHAs(m) },
			want:       &routing.Changes{Files: many},
			wantReason: "lists 300 files, its maximum",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := pushSample(t, tt.sample, tt.edit)
			before := tt.server.calls.Load()
			// The request path reads the payload only; explain (and
			// dispatch) ask the API for what it deferred.
			got := ChangedFiles(tt.src, ev)
			if calls := tt.server.calls.Load() - before; calls != 0 {
				t.Errorf("ChangedFiles made %d API calls, want none", calls)
			}
			if got != nil && got.Deferred != nil && (got.Deferred.Before != sampleBefore || got.Deferred.Repository != "acme/web") {
				t.Errorf("Deferred = %+v, want acme/web from %s", got.Deferred, sampleBefore)
			}
			got = completeChanges(context.Background(), tt.src, got)
			if calls := tt.server.calls.Load() - before; calls != tt.wantCalls {
				t.Errorf("API calls = %d, want %d", calls, tt.wantCalls)
			}
			if tt.want == nil {
				if got != nil {
					t.Fatalf("ChangedFiles = %+v, want nil", got)
				}
				return
			}
			if got == nil {
				t.Fatal("ChangedFiles = nil")
			}
			if !strings.Contains(got.Reason, tt.wantReason) {
				t.Errorf("Reason = %q, want it to contain %q", got.Reason, tt.wantReason)
			}
			if strings.Contains(got.Reason, "api-token") {
				t.Errorf("Reason leaks the token: %q", got.Reason)
			}
			got.Reason = ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ChangedFiles = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func manyFiles(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("f%02d.txt", i)
	}
	return out
}

func BenchmarkGitHubChangedFiles(b *testing.B) {
	body := readSample(b, "github", "push.json")
	res, err := Normalize("github", &Request{Header: githubHeader("push", "d"), Body: body})
	if err != nil {
		b.Fatal(err)
	}
	src := &routing.Source{Name: "github", Kind: "github"}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if ch := ChangedFiles(src, &res.Events[0]); ch == nil || !ch.Complete {
			b.Fatalf("changes = %+v", ch)
		}
	}
}
