package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// agentIssuer is a test OIDC issuer whose signing key can be rotated: its
// JWKS serves the current key only.
type agentIssuer struct {
	*oidcIssuer
	mu sync.Mutex
}

func newAgentIssuer(t testing.TB) *agentIssuer {
	t.Helper()
	base := newOIDCIssuer(t) // for sign(); its own server is not used
	a := &agentIssuer{oidcIssuer: base}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		a.mu.Lock()
		key, kid := a.key, a.kid
		a.mu.Unlock()
		b64 := base64.RawURLEncoding.EncodeToString
		writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	a.url, a.jwksURL = srv.URL, srv.URL+"/jwks"
	return a
}

// rotate replaces the signing key and its id.
func (a *agentIssuer) rotate(t testing.TB, kid string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.key, a.kid = key, kid
	a.mu.Unlock()
}

// token is a GitHub Actions-like token for the release bot.
func (a *agentIssuer) token(t testing.TB, mod func(map[string]any)) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": a.url, "aud": "switchyard", "sub": "repo:acme/release-bot:ref:refs/heads/main",
		"repository": "acme/release-bot", "ref": "refs/heads/main",
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
	if mod != nil {
		mod(claims)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sign(t, "RS256", a.kid, claims)
}

func hashLine(token, name string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:]) + " " + name
}

// endpointServer is the server on an in-memory store with rules that
// declare agent endpoints.
type endpointServer struct {
	url      string
	srv      *Server
	q        *memStore
	issuer   *agentIssuer
	ciToken  string
	audToken string
	// ciToken2 is another principal of ci-bot.
	ciToken2 string
}

func newEndpointServer(t testing.TB) *endpointServer {
	t.Helper()
	es := &endpointServer{issuer: newAgentIssuer(t), ciToken: hex.EncodeToString(newSecret(t)), audToken: hex.EncodeToString(newSecret(t)),
		ciToken2: hex.EncodeToString(newSecret(t))}
	root := `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - name: web
    manifest: web.yaml
    namespaces: [web-ci]
    identities: ["endpoint:release-agent", "endpoint:ci-bot"]
  - name: api
    manifest: api.yaml
    namespaces: [api-ci]
    identities: ["endpoint:release-agent", "endpoint:ci-bot"]
endpoints:
  - name: release-agent
    auth:
      oidc:
        issuer: ` + es.issuer.url + `
        audience: switchyard
        jwksURL: ` + es.issuer.jwksURL + `
        when: claims.repository == 'acme/release-bot'
    scope:
      apps: [web]
      triggers: [web/deploy]
      eventTypes: [com.acme.deploy.requested, com.acme.build.requested, com.acme.api.deploy]
      params: [environment, revision]
      environments: [staging]
      branches: [main]
      eventsPerMinute: 3
  - name: ci-bot
    auth:
      tokens: {env: CI_TOKENS}
    scope:
      apps: [web, api]
      eventTypes: ["com.acme.*"]
      params: [environment, revision]
      maxBodyBytes: 4096
  - name: auditor
    auth:
      tokens: {env: AUDITOR_TOKENS}
    scope:
      eventTypes: [none.allowed]
auditors: ["endpoint:auditor"]
`
	web := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: deploy
    match: {types: [com.acme.deploy.requested]}
    run:
      pipelineRef: deploy
      params:
        - {name: environment, value: $(body.params.environment)}
  - name: build
    match: {types: [com.acme.build.requested]}
    run: {pipelineRef: build}
`
	api := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: api
triggers:
  - name: deploy
    match: {types: [com.acme.api.deploy]}
    run: {pipelineRef: deploy}
`
	dir := t.TempDir()
	for name, data := range map[string]string{"root.yaml": root, "web.yaml": web, "api.yaml": api} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"GH": "x", "CI_TOKENS": "# ci\n" + hashLine(es.ciToken, "ci-bot-1") + "\n" + hashLine(es.ciToken2, "ci-bot-2") + "\n", "AUDITOR_TOKENS": hashLine(es.audToken, "security")}
	opts := LoadOptions()
	opts.ResolveSecrets = true
	opts.LookupEnv = func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	rules, err := routing.LoadDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	es.q = newMemStore()
	es.srv = NewServer(Config{Rules: routing.NewHolder(rules), Publisher: es.q, Status: es.q, Audit: es.q.Audit, MaxBody: 1 << 20})
	hs := httptest.NewServer(es.srv)
	t.Cleanup(hs.Close)
	es.url = hs.URL
	return es
}

// onMain is the extension of an event on branch main, which the
// release-agent's scope requires.
var onMain = map[string]string{"branch": "main"}

// agentEvent is a structured-mode CloudEvent as an agent sends it.
func agentEvent(id, typ string, ext map[string]string, params map[string]string) []byte {
	ev := map[string]any{"specversion": "1.0", "id": id, "source": "agent://release-bot", "type": typ,
		"datacontenttype": "application/json", "data": map[string]any{"params": params}}
	for k, v := range ext {
		ev[k] = v
	}
	b, _ := json.Marshal(ev)
	return b
}

func (es *endpointServer) post(t *testing.T, endpoint, token string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/cloudevents+json"}}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return (&hookServer{url: es.url}).send(t, http.MethodPost, "/v1/events/"+endpoint, h, body)
}

func TestEndpointOIDC(t *testing.T) {
	es := newEndpointServer(t)
	deploy := func(id string) []byte {
		return agentEvent(id, "com.acme.deploy.requested", map[string]string{"branch": "main"}, map[string]string{"environment": "staging"})
	}
	tests := []struct {
		name  string
		token func() string
		want  int
	}{
		{"valid", func() string { return es.issuer.token(t, nil) }, http.StatusAccepted},
		{"no token", func() string { return "" }, http.StatusUnauthorized},
		{"expired", func() string {
			return es.issuer.token(t, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
		}, http.StatusUnauthorized},
		{"not yet valid", func() string {
			return es.issuer.token(t, func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })
		}, http.StatusUnauthorized},
		{"wrong audience", func() string { return es.issuer.token(t, func(c map[string]any) { c["aud"] = "someone-else" }) }, http.StatusUnauthorized},
		{"wrong issuer", func() string { return es.issuer.token(t, func(c map[string]any) { c["iss"] = "https://evil.example" }) }, http.StatusUnauthorized},
		{"claims condition fails", func() string {
			return es.issuer.token(t, func(c map[string]any) { c["repository"] = "acme/other" })
		}, http.StatusUnauthorized},
		{"alg none", func() string { return es.issuer.sign(t, "none", es.issuer.kid, es.issuer.oidcIssuer.claims()) }, http.StatusUnauthorized},
		{"HS256 with the public key", func() string {
			c := es.issuer.oidcIssuer.claims()
			c["aud"], c["repository"] = "switchyard", "acme/release-bot"
			return es.issuer.sign(t, "HS256", es.issuer.kid, c)
		}, http.StatusUnauthorized},
		{"unknown kid", func() string {
			c := map[string]any{"iss": es.issuer.url, "aud": "switchyard", "sub": "x", "repository": "acme/release-bot", "exp": time.Now().Add(time.Hour).Unix()}
			return es.issuer.sign(t, "RS256", "no-such-key", c)
		}, http.StatusUnauthorized},
		{"a static token of another endpoint", func() string { return es.ciToken }, http.StatusUnauthorized},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if i > 0 {
				// Keep clear of the endpoint's 3 events a minute.
				es.srv.now = func() time.Time { return time.Now().Add(time.Duration(i) * time.Hour) }
			}
			status, hd, body := es.post(t, "release-agent", tt.token(), deploy("oidc-"+strconv.Itoa(i)))
			if status != tt.want {
				t.Fatalf("status %d, want %d: %s", status, tt.want, body)
			}
			if status == http.StatusUnauthorized && hd.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	t.Run("rotated key", func(t *testing.T) {
		old := es.issuer.token(t, nil)
		es.issuer.rotate(t, "test-key-2")
		es.srv.now = func() time.Time { return time.Now().Add(100 * time.Hour) }
		if status, _, body := es.post(t, "release-agent", es.issuer.token(t, nil), deploy("rotated-1")); status != http.StatusAccepted {
			t.Fatalf("token signed with the new key: %d %s", status, body)
		}
		es.srv.now = func() time.Time { return time.Now().Add(101 * time.Hour) }
		if status, _, _ := es.post(t, "release-agent", old, deploy("rotated-2")); status != http.StatusUnauthorized {
			t.Fatalf("token signed with the retired key: %d, want 401", status)
		}
	})
}

func TestEndpointScope(t *testing.T) {
	es := newEndpointServer(t)
	tests := []struct {
		name, rule string
		body       []byte
	}{
		{"another app", "scope.apps", agentEvent("s-1", "com.acme.api.deploy", onMain, nil)},
		{"another trigger of the app", "scope.triggers", agentEvent("s-2", "com.acme.build.requested", onMain, nil)},
		{"another type", "scope.eventTypes", agentEvent("s-3", "com.acme.other", onMain, nil)},
		{"a forbidden param", "scope.params", agentEvent("s-4", "com.acme.deploy.requested", onMain, map[string]string{"environment": "staging", "image": "evil:latest"})},
		{"another environment", "scope.environments", agentEvent("s-5", "com.acme.deploy.requested", onMain, map[string]string{"environment": "production"})},
		{"another branch", "scope.branches", agentEvent("s-6", "com.acme.deploy.requested", map[string]string{"branch": "feature/x"}, nil)},
		// A scope that lists branches is not "any branch" for an event
		// that names none (it used to pass).
		{"no branch", "scope.branches", agentEvent("s-7", "com.acme.deploy.requested", nil, map[string]string{"environment": "staging"})},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es.srv.now = func() time.Time { return time.Now().Add(time.Duration(i) * time.Hour) }
			status, _, body := es.post(t, "release-agent", es.issuer.token(t, nil), tt.body)
			if status != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %s", status, body)
			}
			var e ErrorResponse
			if err := json.Unmarshal(body, &e); err != nil || e.Rule != tt.rule {
				t.Fatalf("body %s: rule %q, want %q", body, e.Rule, tt.rule)
			}
		})
	}
	if n, err := es.q.Pending(context.Background()); err != nil || n != 0 {
		t.Fatalf("%d work items queued after refusals (%v), want 0", n, err)
	}
	// Within the scope: the param reaches the PipelineRun's params.
	es.srv.now = func() time.Time { return time.Now().Add(50 * time.Hour) }
	status, _, body := es.post(t, "release-agent", es.issuer.token(t, nil),
		agentEvent("ok-1", "com.acme.deploy.requested", map[string]string{"branch": "main"}, map[string]string{"environment": "staging"}))
	if status != http.StatusAccepted {
		t.Fatalf("in scope: %d %s", status, body)
	}
	if r := accepted(t, body); len(r.Targets) != 1 || r.Targets[0].App != "web" || r.Targets[0].Trigger != "deploy" {
		t.Fatalf("targets %s", body)
	}
}

func TestEndpointDedupRateLimitAndStatus(t *testing.T) {
	ctx := context.Background()
	es := newEndpointServer(t)
	t0 := time.Now()
	es.srv.now = func() time.Time { return t0 }
	tok := es.issuer.token(t, nil)
	ev := func(id string) []byte {
		return agentEvent(id, "com.acme.deploy.requested", onMain, map[string]string{"environment": "staging"})
	}
	for i := range 2 { // the same event id twice
		if status, _, body := es.post(t, "release-agent", tok, ev("dup-1")); status != http.StatusAccepted {
			t.Fatalf("send %d: %d %s", i, status, body)
		}
	}
	if n, err := es.q.Pending(ctx); err != nil || n != 1 {
		t.Fatalf("work queued %d (%v), want 1: the same event id dispatches once", n, err)
	}
	if status, _, _ := es.post(t, "release-agent", tok, ev("rate-3")); status != http.StatusAccepted {
		t.Fatalf("third event: %d", status)
	}
	status, hd, body := es.post(t, "release-agent", tok, ev("rate-4"))
	if status != http.StatusTooManyRequests {
		t.Fatalf("fourth event in a minute: %d %s, want 429", status, body)
	}
	wait, err := strconv.Atoi(hd.Get("Retry-After"))
	if err != nil || wait < 1 || wait > 20 {
		t.Fatalf("Retry-After %q: want the seconds until one event is allowed (20 at 3/min)", hd.Get("Retry-After"))
	}
	es.srv.now = func() time.Time { return t0.Add(time.Duration(wait) * time.Second) }
	if status, _, body := es.post(t, "release-agent", tok, ev("rate-4")); status != http.StatusAccepted {
		t.Fatalf("after Retry-After: %d %s", status, body)
	}

	get := func(token, query string) (int, []byte) {
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		status, _, body := (&hookServer{url: es.url}).send(t, http.MethodGet, "/v1/events/dup-1"+query, h, nil)
		return status, body
	}
	status, body = get(tok, "")
	if status != http.StatusOK {
		t.Fatalf("owner reads status: %d %s", status, body)
	}
	var st policy.EventStatus
	if err := json.Unmarshal(body, &st); err != nil || st.Identity != "endpoint:release-agent" ||
		st.Principal != "repo:acme/release-bot:ref:refs/heads/main" || len(st.Targets) != 1 || st.Targets[0].State != policy.StateQueued {
		t.Fatalf("status %s", body)
	}
	if status, body := get(es.ciToken, "?source=release-agent"); status != http.StatusNotFound {
		t.Fatalf("another identity reads it: %d %s, want 404", status, body)
	}
	if status, _ := get(es.audToken, "?source=release-agent"); status != http.StatusOK {
		t.Fatalf("auditor: %d", status)
	}
	if status, _ := get("", ""); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", status)
	}

	// Every decision is in the audit stream, with the subject.
	var decisions []string
	for _, r := range es.q.records() {
		if r.Kind == "endpoint" && r.Subject == "repo:acme/release-bot:ref:refs/heads/main" {
			decisions = append(decisions, r.Decision)
		}
	}
	if strings.Join(decisions, ",") != "accepted,accepted,accepted,rate-limited,accepted" {
		t.Fatalf("audit decisions %v", decisions)
	}
}

func TestEndpointStaticTokenAndLimits(t *testing.T) {
	es := newEndpointServer(t)
	big := agentEvent("big", "com.acme.build.requested", nil, map[string]string{"revision": strings.Repeat("a", 5000)})
	if status, _, _ := es.post(t, "ci-bot", es.ciToken, big); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("over maxBodyBytes: %d, want 413", status)
	}
	if status, _, _ := es.post(t, "ci-bot", es.ciToken+"x", agentEvent("t-1", "com.acme.build.requested", nil, nil)); status != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", status)
	}
	if status, _, _ := es.post(t, "nope", es.ciToken, agentEvent("t-1", "com.acme.build.requested", nil, nil)); status != http.StatusNotFound {
		t.Fatalf("unknown endpoint: %d", status)
	}
	h := http.Header{"Content-Type": {"text/plain"}, "Authorization": {"Bearer " + es.ciToken}}
	if status, _, _ := (&hookServer{url: es.url}).send(t, http.MethodPost, "/v1/events/ci-bot", h, []byte("hi")); status != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: %d", status)
	}
	if status, _, _ := es.post(t, "ci-bot", es.ciToken, []byte(`{"specversion":"1.0"`)); status != http.StatusBadRequest {
		t.Fatalf("malformed: %d", status)
	}
	// Binary mode, through the same binding.
	h = http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + es.ciToken},
		"Ce-Specversion": {"1.0"}, "Ce-Id": {"bin-1"}, "Ce-Source": {"ci"}, "Ce-Type": {"com.acme.build.requested"},
		"Ce-Identity": {"source:github"}}
	status, _, body := (&hookServer{url: es.url}).send(t, http.MethodPost, "/v1/events/ci-bot", h, []byte(`{"params":{"revision":"abc"}}`))
	if status != http.StatusAccepted {
		t.Fatalf("binary mode: %d %s", status, body)
	}
	batch := []byte(`[` + string(agentEvent("batch-1", "com.acme.build.requested", nil, nil)) + `,` +
		string(agentEvent("batch-2", "com.acme.api.deploy", nil, nil)) + `]`)
	h = http.Header{"Content-Type": {"application/cloudevents-batch+json"}, "Authorization": {"Bearer " + es.ciToken}}
	status, _, body = (&hookServer{url: es.url}).send(t, http.MethodPost, "/v1/events/ci-bot", h, batch)
	if r := accepted(t, body); status != http.StatusAccepted || len(r.allEvents()) != 2 || r.allEvents()[1].Targets[0].App != "api" {
		t.Fatalf("batch: %d %s", status, body)
	}
	st, err := es.q.Status(context.Background(), "ci-bot", "bin-1")
	if err != nil || st.Identity != "endpoint:ci-bot" || st.Principal != "ci-bot-1" {
		t.Fatalf("the caller cannot claim an identity: %+v %v", st, err)
	}
}

// FuzzEndpoint: whatever an authenticated caller sends, the answer is one
// of the documented statuses, never a 5xx.
func FuzzEndpoint(f *testing.F) {
	f.Add("application/cloudevents+json", agentEvent("f-1", "com.acme.build.requested", nil, nil))
	f.Add("application/cloudevents-batch+json", []byte(`[`+string(agentEvent("f-2", "com.acme.build.requested", nil, map[string]string{"revision": "x"}))+`]`))
	f.Add("application/json", []byte(`{"params":{"x":1}}`))
	f.Add("application/cloudevents+json", []byte(`{"specversion":"1.0","id":"","type":"x"}`))
	es := newEndpointServer(f)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		es.srv.now = func() time.Time { return time.Now().Add(time.Duration(len(body)) * time.Hour) }
		req := httptest.NewRequest(http.MethodPost, "/v1/events/ci-bot", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+es.ciToken)
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Id", "fuzz")
		req.Header.Set("Ce-Source", "fuzz")
		req.Header.Set("Ce-Type", "com.acme.build.requested")
		rec := httptest.NewRecorder()
		es.srv.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusAccepted, http.StatusBadRequest, http.StatusForbidden, http.StatusUnsupportedMediaType,
			http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		default:
			t.Fatalf("status %d for %q %q: %s", rec.Code, contentType, body, rec.Body.Bytes())
		}
	})
}

// The limit is on events: a batch takes one token per event, and a batch
// larger than the whole minute's allowance is refused as too large.
func TestEndpointRateLimitCountsBatchedEvents(t *testing.T) {
	es := newEndpointServer(t)
	t0 := time.Now()
	es.srv.now = func() time.Time { return t0 }
	tok := es.issuer.token(t, nil)
	batch := func(ids ...string) []byte {
		var evs []json.RawMessage
		for _, id := range ids {
			evs = append(evs, agentEvent(id, "com.acme.deploy.requested", map[string]string{"branch": "main"}, map[string]string{"environment": "staging"}))
		}
		b, _ := json.Marshal(evs)
		return b
	}
	post := func(body []byte) (int, []byte) {
		h := http.Header{"Content-Type": {"application/cloudevents-batch+json"}, "Authorization": {"Bearer " + tok}}
		status, _, out := (&hookServer{url: es.url}).send(t, http.MethodPost, "/v1/events/release-agent", h, body)
		return status, out
	}
	// release-agent may send 3 events a minute.
	if status, body := post(batch("b-1", "b-2", "b-3", "b-4")); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a batch of 4: %d %s, want 413", status, body)
	}
	es.srv.now = func() time.Time { return t0.Add(time.Minute) } // refilled
	if status, body := post(batch("b-5", "b-6")); status != http.StatusAccepted {
		t.Fatalf("a batch of 2: %d %s", status, body)
	}
	if status, body := post(batch("b-7", "b-8")); status != http.StatusTooManyRequests {
		t.Fatalf("2 more in the same minute (1 left): %d %s, want 429", status, body)
	}
}
