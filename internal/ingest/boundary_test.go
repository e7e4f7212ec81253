package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// ghSource is one GitHub source, gh, with its secret in S.
const ghSource = "  - name: gh\n    kind: github\n    secret: {env: S}\n"

type unavailableErr struct{}

func (unavailableErr) Error() string     { return "store down" }
func (unavailableErr) Unavailable() bool { return true }

// TestUnavailableByInterface: a publisher failure marked Unavailable is a
// 503 with Retry-After, without ingest knowing the queue package.
func TestUnavailableByInterface(t *testing.T) {
	secret := newSecret(t)
	rules := mustRules(t, ghSource, map[string]string{"S": string(secret)})
	pub := &memStore{fail: unavailableErr{}}
	srv := httptest.NewServer(NewServer(Config{Rules: routing.NewHolder(rules), Publisher: pub}))
	t.Cleanup(srv.Close)
	body := []byte(`{"ref":"refs/heads/main","after":"abc","repository":{"full_name":"acme/web","html_url":"https://github.com/acme/web"}}`)
	h := http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"push"}, "X-Github-Delivery": {"d-1"},
		"X-Hub-Signature-256": {"sha256=" + hexHMAC(secret, body)}}
	status, hdr, out := (&hookServer{url: srv.URL}).send(t, http.MethodPost, "/v1/hooks/gh", h, body)
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("status %d (Retry-After %q): %s, want 503 with Retry-After", status, hdr.Get("Retry-After"), out)
	}
}

// countingBody counts the bytes the server read.
type countingBody struct {
	r    io.Reader
	read atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}
func (c *countingBody) Close() error { return nil }

// TestEndpointTokenCheckedBeforeBody: a wrong token is refused before a
// byte of the body is read, so unauthenticated posts cost no body memory.
func TestEndpointTokenCheckedBeforeBody(t *testing.T) {
	es := newEndpointServer(t)
	body := &countingBody{r: bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20))}
	req := httptest.NewRequest(http.MethodPost, "/v1/events/ci-bot", body)
	req.Header.Set("Authorization", "Bearer wrong")
	req.Header.Set("Content-Type", "application/cloudevents+json")
	rec := httptest.NewRecorder()
	es.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || body.read.Load() != 0 {
		t.Fatalf("status %d after reading %d body bytes, want 401 after none", rec.Code, body.read.Load())
	}
}

// TestBodyBudget: bodies wait for room in the in-flight budget, and a
// request that finds none in time is a 503, not more memory.
func TestBodyBudget(t *testing.T) {
	b := newBodyBudget(100)
	b.wait = 50 * time.Millisecond
	req := func(n int, chunked bool) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(make([]byte, n)))
		if chunked {
			r.ContentLength = -1
		}
		return r
	}
	held, release, err := b.readBody(req(80, false), 1000)
	if err != nil || len(held) != 80 {
		t.Fatalf("first body: %d bytes, %v", len(held), err)
	}
	if _, rel, err := b.readBody(req(30, false), 1000); !errors.Is(err, ErrBusy) || statusFor(err) != http.StatusServiceUnavailable {
		t.Fatalf("second body while the first is held: %v, want ErrBusy (503)", err)
	} else {
		rel()
	}
	release()
	if _, rel, err := b.readBody(req(30, false), 1000); err != nil {
		t.Fatalf("after release: %v", err)
	} else {
		rel()
	}
	if _, _, err := b.readBody(req(2000, false), 1000); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("announced 2000 bytes over a 1000 limit: %v, want ErrTooLarge", err)
	}
	big := newBodyBudget(10 << 20)
	if got, rel, err := big.readBody(req(3<<20+5, true), 4<<20); err != nil || len(got) != 3<<20+5 {
		t.Fatalf("chunked body: %d bytes, %v", len(got), err)
	} else {
		rel()
	}
	if _, rel, err := big.readBody(req(5<<20, true), 4<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("chunked body over the limit: %v, want ErrTooLarge", err)
	} else {
		rel()
	}
}

// TestUnknownSourceAudit: a post to a source that does not exist gets no
// identity, and its name is truncated in the answer and the audit record.
func TestUnknownSourceAudit(t *testing.T) {
	rules := mustRules(t, ghSource, map[string]string{"S": "x"})
	audit := newMemStore()
	var logs bytes.Buffer
	srv := httptest.NewServer(NewServer(Config{Rules: routing.NewHolder(rules), Publisher: newMemStore(), Audit: audit.Audit,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))}))
	t.Cleanup(srv.Close)
	long := strings.Repeat("a", 100_000)
	status, _, body := (&hookServer{url: srv.URL}).send(t, http.MethodPost, "/v1/hooks/"+long, nil, []byte("{}"))
	if status != http.StatusNotFound || len(body) > 1000 {
		t.Fatalf("status %d, %d byte answer, want 404 with a short answer", status, len(body))
	}
	recs := audit.records()
	if len(recs) != 1 || recs[0].Identity != "" || len(recs[0].Source) > policy.MaxNameLen || len(recs[0].Reason) > 300 {
		t.Fatalf("audit records %+v, want one without identity and with a truncated name", recs)
	}
	if logs.Len() > 2000 {
		t.Fatalf("the log grew by %d bytes for one unknown source", logs.Len())
	}
}

// TestUnauthenticatedAuditSampled: a flood of unsigned posts keeps a bounded
// number of audit records, and the kept ones count what was dropped.
func TestUnauthenticatedAuditSampled(t *testing.T) {
	rules := mustRules(t, ghSource, map[string]string{"S": "x"})
	audit := newMemStore()
	s := NewServer(Config{Rules: routing.NewHolder(rules), Publisher: newMemStore(), Audit: audit.Audit})
	t0 := time.Now()
	s.now = func() time.Time { return t0 }
	for range 1000 {
		req := httptest.NewRequest(http.MethodPost, "/v1/hooks/gh", strings.NewReader("{}"))
		s.ServeHTTP(httptest.NewRecorder(), req)
	}
	if n := len(audit.records()); n > 200 || n == 0 {
		t.Fatalf("%d audit records for 1000 unsigned posts in one instant, want at most the 200 burst", n)
	}
	s.now = func() time.Time { return t0.Add(time.Second) }
	s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1/hooks/gh", strings.NewReader("{}")))
	recs := audit.records()
	if last := recs[len(recs)-1]; last.Suppressed != 800 {
		t.Fatalf("next kept record counts %d suppressed, want 800", last.Suppressed)
	}
}

type failedReload struct{ RulesSource }

func (failedReload) LastError() error {
	return errors.New("/etc/switchyard/rules/apps/secret-team/app.yaml:3: bad")
}

// TestReadyzHidesReloadDetail: /readyz is unauthenticated; a failed reload
// is reported without the files and messages (they are in the log).
func TestReadyzHidesReloadDetail(t *testing.T) {
	rules := mustRules(t, ghSource, map[string]string{"S": "x"})
	s := NewServer(Config{Rules: failedReload{routing.NewHolder(rules)}, Publisher: newMemStore()})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "secret-team") || !strings.Contains(rec.Body.String(), "last reload failed") {
		t.Fatalf("readyz %d %s", rec.Code, rec.Body)
	}
}

// TestAgentParamsCaseAttack is the attack on the shipped rules' scope: a
// case variant of "params" passed a struct-decoded check while the binding
// rendered production.
func TestAgentParamsCaseAttack(t *testing.T) {
	es := newEndpointServer(t)
	body, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": "atk-1", "source": "x", "type": "com.acme.deploy.requested",
		"branch": "main", "datacontenttype": "application/json",
		"data": json.RawMessage(`{"params":{"environment":"production"},"PARAMS":{"environment":"staging"}}`)})
	status, _, out := es.post(t, "release-agent", es.issuer.token(t, nil), body)
	if status != http.StatusForbidden {
		t.Fatalf("status %d: %s, want 403", status, out)
	}
}

// TestClaimsConditionNotEchoed: a refused token's answer does not show the
// endpoint's claims condition (it tells an attacker what to forge).
func TestClaimsConditionNotEchoed(t *testing.T) {
	es := newEndpointServer(t)
	tok := es.issuer.token(t, func(c map[string]any) { c["repository"] = "evil/repo" })
	status, _, out := es.post(t, "release-agent", tok, agentEvent("w-1", "com.acme.deploy.requested", onMain, nil))
	if status != http.StatusUnauthorized || strings.Contains(string(out), "acme/release-bot") {
		t.Fatalf("status %d: %s, want 401 without the condition", status, out)
	}
}

// TestSourceMaxBodyBytes: a source's own maxBodyBytes lowers the server's
// cap for that source only, and an announced oversize body is refused
// before it is read.
func TestSourceMaxBodyBytes(t *testing.T) {
	sources := ghSource + "    maxBodyBytes: 100\n  - name: other\n    kind: github\n    secret: {env: S}\n"
	rules := mustRules(t, sources, map[string]string{"S": "x"})
	srv := httptest.NewServer(NewServer(Config{Rules: routing.NewHolder(rules), Publisher: newMemStore()}))
	t.Cleanup(srv.Close)
	hs := &hookServer{url: srv.URL}
	big := bytes.Repeat([]byte(" "), 200)
	if status, _, out := hs.send(t, http.MethodPost, "/v1/hooks/gh", nil, big); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("200 bytes to a 100-byte source: %d %s, want 413", status, out)
	}
	if status, _, out := hs.send(t, http.MethodPost, "/v1/hooks/other", nil, big); status != http.StatusUnauthorized {
		t.Fatalf("200 unsigned bytes to a source with the default cap: %d %s, want 401", status, out)
	}
}

// TestHeaderTokenCheckedBeforeBody: a header-token kind (gitlab) refuses a
// wrong token before a byte of the body is read.
func TestHeaderTokenCheckedBeforeBody(t *testing.T) {
	rules := mustRules(t, "  - name: gl\n    kind: gitlab\n    secret: {env: S}\n", map[string]string{"S": "right"})
	s := NewServer(Config{Rules: routing.NewHolder(rules), Publisher: newMemStore()})
	body := &countingBody{r: bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20))}
	req := httptest.NewRequest(http.MethodPost, "/v1/hooks/gl", body)
	req.Header.Set("X-Gitlab-Token", "wrong")
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || body.read.Load() != 0 {
		t.Fatalf("status %d after reading %d body bytes, want 401 after none", rec.Code, body.read.Load())
	}
}

// eventStore is what the tests read back from a Publisher: memStore, or
// the real queue in queue_integration_test.go.
type eventStore interface {
	Publisher
	StatusReader
	Pending(ctx context.Context) (uint64, error)
}

// TestCapturedBodyNewDeliveryID: GitHub signs only the body, so a captured
// push replayed with a new delivery id verifies; it must not make a second
// run. The store finds the body's digest and stores nothing new.
func TestCapturedBodyNewDeliveryID(t *testing.T) { checkCapturedBodyNewDeliveryID(t, newMemStore()) }

func checkCapturedBodyNewDeliveryID(t *testing.T, q eventStore) {
	secret := newSecret(t)
	rules := mustRules(t, ghSource, map[string]string{"S": string(secret)})
	srv := httptest.NewServer(NewServer(Config{Rules: routing.NewHolder(rules), Publisher: q}))
	t.Cleanup(srv.Close)
	body := []byte(`{"ref":"refs/heads/main","after":"abc","repository":{"full_name":"acme/web","html_url":"https://github.com/acme/web"}}`)
	send := func(delivery string) {
		h := http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"push"}, "X-Github-Delivery": {delivery},
			"X-Hub-Signature-256": {"sha256=" + hexHMAC(secret, body)}}
		if status, _, out := (&hookServer{url: srv.URL}).send(t, http.MethodPost, "/v1/hooks/gh", h, body); status != http.StatusAccepted {
			t.Fatalf("delivery %s: %d %s", delivery, status, out)
		}
	}
	send("d-1")
	send("d-2") // the same body, a new delivery id
	if _, err := q.Status(t.Context(), "gh", "d-1"); err != nil {
		t.Fatalf("first delivery not stored: %v", err)
	}
	if _, err := q.Status(t.Context(), "gh", "d-2"); !isNotFound(err) {
		t.Fatalf("replayed body stored again as d-2 (status err %v)", err)
	}
	n, err := q.Pending(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("work pending %d (%v), want 1", n, err)
	}
}

// TestWrongStaticTokenSaysSo: on an endpoint with tokens and OIDC, a wrong
// static token is answered as a wrong static token, never with an identity
// provider's network error (issue 18: the resolver's address reached an
// unauthenticated caller).
func TestWrongStaticTokenSaysSo(t *testing.T) {
	root := "apiVersion: switchyard.dev/v1alpha1\nkind: Root\nsources:\n" + ghSource + `apps:
  - {name: all, manifest: all.yaml, namespaces: [ci], identities: ["endpoint:both"]}
endpoints:
  - name: both
    auth:
      tokens: {env: T}
      oidc: {issuer: "https://issuer.invalid", audience: x, when: "claims.sub == 'x'"}
    scope: {eventTypes: ["com.acme.*"]}
`
	app := "apiVersion: switchyard.dev/v1alpha1\nkind: App\nname: all\ntriggers:\n  - {name: any, run: {pipelineRef: noop}}\n"
	dir := t.TempDir()
	for name, data := range map[string]string{"root.yaml": root, "all.yaml": app} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts := LoadOptions()
	opts.ResolveSecrets = true
	env := map[string]string{"S": "x", "T": hashLine("right-token", "bot")}
	opts.LookupEnv = func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	rules, err := routing.LoadDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(Config{Rules: routing.NewHolder(rules), Publisher: newMemStore()}))
	t.Cleanup(srv.Close)
	for _, tok := range []string{"wrong-token", "a.jwt-shaped.token"} {
		h := http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/cloudevents+json"}}
		status, _, out := (&hookServer{url: srv.URL}).send(t, http.MethodPost, "/v1/events/both", h, agentEvent("w-1", "com.acme.x", nil, nil))
		if status != http.StatusUnauthorized || !strings.Contains(string(out), "not one of the endpoint's static tokens") ||
			strings.Contains(string(out), "lookup") || strings.Contains(string(out), ":53") {
			t.Errorf("token %q: %d %s", tok, status, out)
		}
	}
}
