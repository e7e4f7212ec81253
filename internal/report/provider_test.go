package report

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// captured is one request a stand-in Git host received.
type captured struct {
	Method, Path, Auth string
	Body               map[string]any
}

// hostServer answers every request with code and records it.
func hostServer(t *testing.T, code int, reply string) (*httptest.Server, chan captured) {
	t.Helper()
	got := make(chan captured, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		c := captured{Method: r.Method, Path: r.URL.EscapedPath(), Auth: r.Header.Get("Authorization")}
		if c.Auth == "" {
			c.Auth = "PRIVATE-TOKEN " + r.Header.Get("Private-Token")
		}
		_ = json.Unmarshal(data, &c.Body)
		got <- c
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestProviderRequests(t *testing.T) {
	const token = "tok-3f9a"
	st := Status{Repository: "acme/shop", Revision: "9fceb02", State: StateFailure, Context: "switchyard/web/build",
		Description: "PipelineRun web-build-1 failed", TargetURL: "https://tekton.example.com/#/runs/web-build-1",
		RepositoryURL: "https://git.example.com/acme/shop"}
	tests := []struct {
		name, kind, apiPath string
		status              Status
		want                captured
	}{
		{name: "github", kind: "github", apiPath: "/api/v3", status: st, want: captured{Method: "POST",
			Path: "/api/v3/repos/acme/shop/statuses/9fceb02", Auth: "Bearer " + token,
			Body: map[string]any{"state": "failure", "context": "switchyard/web/build", "description": "PipelineRun web-build-1 failed", "target_url": st.TargetURL}}},
		{name: "gitlab nested group", kind: "gitlab", apiPath: "/api/v4",
			status: func() Status {
				s := st
				s.Repository = "acme/backend/shop"
				s.Cancelled, s.State = true, StateError
				return s
			}(),
			want: captured{Method: "POST", Path: "/api/v4/projects/acme%2Fbackend%2Fshop/statuses/9fceb02", Auth: "PRIVATE-TOKEN " + token,
				Body: map[string]any{"state": "canceled", "name": "switchyard/web/build", "description": "PipelineRun web-build-1 failed", "target_url": st.TargetURL}}},
		{name: "gitea", kind: "gitea", apiPath: "/api/v1", status: st, want: captured{Method: "POST",
			Path: "/api/v1/repos/acme/shop/statuses/9fceb02", Auth: "token " + token,
			Body: map[string]any{"state": "failure", "context": "switchyard/web/build", "description": "PipelineRun web-build-1 failed", "target_url": st.TargetURL}}},
		{name: "forgejo pending", kind: "forgejo", apiPath: "/api/v1", status: func() Status { s := st; s.State = StatePending; return s }(),
			want: captured{Method: "POST", Path: "/api/v1/repos/acme/shop/statuses/9fceb02", Auth: "token " + token,
				Body: map[string]any{"state": "pending", "context": "switchyard/web/build", "description": "PipelineRun web-build-1 failed", "target_url": st.TargetURL}}},
		{name: "bitbucket cloud, cancelled, no statusURL", kind: "bitbucket", apiPath: "/2.0",
			status: func() Status { s := st; s.TargetURL, s.Cancelled, s.State = "", true, StateError; return s }(),
			want: captured{Method: "POST", Path: "/2.0/repositories/acme/shop/commit/9fceb02/statuses/build", Auth: "Bearer " + token,
				Body: map[string]any{"key": "switchyard/web/build", "name": "switchyard/web/build", "state": "STOPPED", "description": "PipelineRun web-build-1 failed", "url": st.RepositoryURL}}},
		{name: "bitbucket data center", kind: "bitbucket-server", apiPath: "", status: func() Status { s := st; s.State = StateSuccess; return s }(),
			want: captured{Method: "POST", Path: "/rest/build-status/1.0/commits/9fceb02", Auth: "Bearer " + token,
				Body: map[string]any{"key": "switchyard/web/build", "name": "switchyard/web/build", "state": "SUCCESSFUL", "description": "PipelineRun web-build-1 failed", "url": st.TargetURL}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := hostServer(t, http.StatusCreated, `{}`)
			src := &routing.Source{Name: "s", Kind: tc.kind, APIToken: []byte(token), APIURL: srv.URL + tc.apiPath}
			p, err := providers[tc.kind](src, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Post(context.Background(), tc.status); err != nil {
				t.Fatalf("post: %v", err)
			}
			if diff := cmp.Diff(tc.want, <-got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProviderErrorsNeverHoldTheToken: a host that echoes the request's
// credentials in its refusal (some proxies do) yields an error without
// them, marked permanent for a 4xx and transient for a 5xx.
func TestProviderErrorsNeverHoldTheToken(t *testing.T) {
	const token = "ghp_secretToken123"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusUnauthorized
		if strings.Contains(r.URL.Path, "flaky") {
			code = http.StatusBadGateway
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "bad credentials: " + r.Header.Get("Authorization") + r.Header.Get("Private-Token")})
	}))
	defer echo.Close()
	for _, kind := range Kinds() {
		for _, rev := range []string{"good1", "flaky1"} {
			src := &routing.Source{Name: "s", Kind: kind, APIToken: []byte(token), APIURL: echo.URL}
			p, _ := providers[kind](src, echo.Client())
			err := p.Post(context.Background(), Status{Repository: "acme/shop", Revision: rev, State: StatePending, Context: "c", TargetURL: "https://x.example.com"})
			if err == nil {
				t.Fatalf("%s: no error", kind)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("%s: error holds the token: %v", kind, err)
			}
			if !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("%s: echoed credential not redacted: %v", kind, err)
			}
			if want := rev == "good1"; permanent(err) != want {
				t.Errorf("%s %s: permanent = %v, want %v (%v)", kind, rev, permanent(err), want, err)
			}
		}
	}
}
