package report

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// checksHost stands in for GitHub's App and Checks APIs under /api/v3.
type checksHost struct {
	mu       sync.Mutex
	requests []string         // "METHOD path"
	bodies   []map[string]any // check-run bodies, in order
	srv      *httptest.Server
}

func newChecksHost(t *testing.T) *checksHost {
	h := &checksHost{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.requests = append(h.requests, r.Method+" "+r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		auth := r.Header.Get("Authorization")
		switch {
		case r.URL.Path == "/api/v3/repos/acme/shop/installation" && strings.HasPrefix(auth, "Bearer "):
			_, _ = fmt.Fprint(w, `{"id": 77}`)
		case r.URL.Path == "/api/v3/app/installations/77/access_tokens" && strings.HasPrefix(auth, "Bearer "):
			w.WriteHeader(http.StatusCreated)
			_, _ = fmt.Fprint(w, `{"token": "ghs_installationToken", "expires_at": "2099-01-01T00:00:00Z"}`)
		case strings.HasPrefix(r.URL.Path, "/api/v3/repos/acme/shop/check-runs") && auth == "token ghs_installationToken":
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			h.bodies = append(h.bodies, body)
			if r.Method == http.MethodPost {
				w.WriteHeader(http.StatusCreated)
			}
			_, _ = fmt.Fprint(w, `{"id": 42}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprint(w, `{"message": "Bad credentials"}`)
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func checksRules(t *testing.T, apiURL string, installation int64) *routing.Rules {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	root := fmt.Sprintf(`apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: github
    secret: {env: HOOK_SECRET}
    apiURL: %s/api/v3
    report: checks
    githubApp: {appID: 12, installationID: %d, privateKey: {env: APP_KEY}}
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [ci]
    sources: [github]
statusURL: "https://dashboard.example.com/#/namespaces/{namespace}/pipelineruns/{name}"
`, apiURL, installation)
	env := map[string]string{"HOOK_SECRET": "s", "APP_KEY": string(pemKey)}
	rules, err := routing.Load(fstest.MapFS{"root.yaml": {Data: []byte(root)}, "apps/web.yaml": {Data: []byte(reportApp)}}, "rules",
		routing.Options{ResolveSecrets: true, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// TestSenderCheckRuns: report: checks creates the check run at pending
// (as the App's installation, found per repository) and updates the same
// run with the final conclusion and a summary per task.
func TestSenderCheckRuns(t *testing.T) {
	for _, installation := range []int64{0, 77} {
		t.Run(fmt.Sprint("installation ", installation), func(t *testing.T) {
			q, _ := testQueue(t)
			host := newChecksHost(t)
			runSender(t, q, checksRules(t, host.srv.URL, installation), nil, nil)
			ctx := context.Background()
			if err := q.Publish(ctx, testJob(StatePending)); err != nil {
				t.Fatal(err)
			}
			drained(t, q, KindStatus)
			final := testJob(StateFailure)
			final.TimedOut = true
			final.Description = "PipelineRun web-build-1 timed out"
			final.Tasks = []Task{{PipelineTask: "unit|tests", Kind: "TaskRun", Name: "web-build-1-unit"}}
			if err := q.Publish(ctx, final); err != nil {
				t.Fatal(err)
			}
			waitDelivered(t, q, KindStatus, 2)
			drained(t, q, KindStatus)

			host.mu.Lock()
			defer host.mu.Unlock()
			if len(host.bodies) != 2 {
				t.Fatalf("check run requests %v", host.requests)
			}
			created, updated := host.bodies[0], host.bodies[1]
			if created["name"] != "switchyard/web/build" || created["head_sha"] != final.Run.Revision || created["status"] != "in_progress" ||
				created["external_id"] != CheckRunExternalID(final.Run) || created["details_url"] != "https://dashboard.example.com/#/namespaces/ci/pipelineruns/web-build-1" {
				t.Errorf("created %v", created)
			}
			if updated["status"] != "completed" || updated["conclusion"] != "timed_out" {
				t.Errorf("updated %v", updated)
			}
			output, _ := updated["output"].(map[string]any)
			if summary, _ := output["summary"].(string); !strings.Contains(summary, "| unit\\|tests | TaskRun | `web-build-1-unit` |") {
				t.Errorf("summary %q", summary)
			}
			last := host.requests[len(host.requests)-1]
			if last != "PATCH /api/v3/repos/acme/shop/check-runs/42" {
				t.Errorf("last request %s, want the update of check run 42 (all: %v)", last, host.requests)
			}
		})
	}
}

// TestCheckRunsWrongAppIsRejected: GitHub refusing the App's token (a
// wrong App id or key) is permanent: reported once, not retried for hours.
func TestCheckRunsWrongAppIsRejected(t *testing.T) {
	host := newChecksHost(t)
	rules := checksRules(t, host.srv.URL, 99) // no such installation: 401
	c := newChecks(nil)
	_, err := c.post(context.Background(), rules.Source("github"), testJob(StatePending), "", 0)
	if err == nil || !permanent(err) {
		t.Fatalf("err %v, want a permanent error", err)
	}
}

// TestCheckRunRerunAction: a finished check run of a source with comment
// commands carries the Re-run button, and its external_id names what
// ingest needs to run the target again.
func TestCheckRunRerunAction(t *testing.T) {
	host := newChecksHost(t)
	rules := gatedRules(t, routing.ReportChecks, host.srv.URL+"/api/v3") // commands: {approve: [carol]}
	c := newChecks(nil)
	final := testJob(StateFailure)
	if _, err := c.post(context.Background(), rules.Source("github"), testJob(StatePending), "", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.post(context.Background(), rules.Source("github"), final, "", 42); err != nil {
		t.Fatal(err)
	}
	host.mu.Lock()
	defer host.mu.Unlock()
	if _, ok := host.bodies[0]["actions"]; ok {
		t.Errorf("a running check run offers a Re-run: %v", host.bodies[0])
	}
	actions, _ := host.bodies[1]["actions"].([]any)
	if len(actions) != 1 || actions[0].(map[string]any)["identifier"] != RerunAction || actions[0].(map[string]any)["label"] != "Re-run" {
		t.Errorf("actions %v", host.bodies[1]["actions"])
	}
	ext, _ := host.bodies[0]["external_id"].(string)
	src, app, trigger, id, ok := ingest.ParseCheckRunExternalID(ext)
	if !ok || src != "github" || app != "web" || trigger != "build" || id != final.Run.EventID {
		t.Errorf("external_id %q reads %q %q %q %q %v", ext, src, app, trigger, id, ok)
	}
}
