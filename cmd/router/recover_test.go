package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
)

// hookDelivery is one attempt as GitHub's deliveries API lists it.
type hookDelivery struct {
	ID          int64     `json:"id"`
	GUID        string    `json:"guid"`
	DeliveredAt time.Time `json:"delivered_at"`
	Redelivery  bool      `json:"redelivery"`
	Status      string    `json:"status"`
	StatusCode  int       `json:"status_code"`
	Event       string    `json:"event"`
}

// fakeGitHub speaks GitHub's hook deliveries endpoints: listing with
// cursor paging (pageSize a page), and redelivery, which it records.
type fakeGitHub struct {
	t        *testing.T
	srv      *httptest.Server
	token    string
	appID    int64
	appKey   *rsa.PublicKey
	pageSize int
	// hooks maps a hook's path (/repos/acme/web/hooks/123) to its
	// deliveries, newest first.
	hooks map[string][]hookDelivery
	// refuse lists the attempt ids whose redelivery is answered 422.
	refuse map[string]bool

	mu          sync.Mutex
	redelivered []string // "<hook path> <attempt id>"
	listed      []string // the cursor of each list request
}

func newFakeGitHub(t *testing.T, token string, hooks map[string][]hookDelivery) *fakeGitHub {
	f := &fakeGitHub{t: t, token: token, pageSize: 2, hooks: hooks}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(r) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`)
		return
	}
	base, rest, ok := strings.Cut(r.URL.Path, "/deliveries")
	deliveries, known := f.hooks[base]
	if !ok || !known {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodPost && strings.HasSuffix(rest, "/attempts") {
		if f.refuse[strings.Split(rest, "/")[1]] {
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprint(w, `{"message":"Validation Failed"}`)
			return
		}
		f.mu.Lock()
		f.redelivered = append(f.redelivered, base+" "+strings.TrimSuffix(strings.TrimPrefix(rest, "/"), "/attempts"))
		f.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{}`)
		return
	}
	if r.Method != http.MethodGet || rest != "" {
		http.NotFound(w, r)
		return
	}
	cursor := r.URL.Query().Get("cursor")
	f.mu.Lock()
	f.listed = append(f.listed, cursor)
	f.mu.Unlock()
	from, _ := strconv.Atoi(cursor)
	to := min(from+f.pageSize, len(deliveries))
	if to < len(deliveries) {
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?per_page=100&cursor=%d>; rel="next"`, f.srv.URL, r.URL.Path, to))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(deliveries[from:to])
}

// authorized checks the token, or for the App's hook an App JWT signed
// with the App's key.
func (f *fakeGitHub) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(r.URL.Path, "/app/") {
		return auth == "Bearer "+f.token
	}
	parts := strings.Split(strings.TrimPrefix(auth, "Bearer "), ".")
	if f.appKey == nil || len(parts) != 3 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(f.appKey, crypto.SHA256, sum[:], sig) != nil {
		return false
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Iss string `json:"iss"`
	}
	return json.Unmarshal(claims, &c) == nil && c.Iss == strconv.FormatInt(f.appID, 10)
}

func (f *fakeGitHub) redeliveries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.redelivered)
}

func (f *fakeGitHub) lists() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.listed)
}

const (
	repoHook   = "/repos/acme/web/hooks/123"
	recoverTok = "ghp_recoverTestToken0123456789"
)

// failedDeliveries is a hook's history, newest first: a failed, unstored
// delivery (a), a success (b), a failed one Switchyard stored anyway (c), a
// delivery that failed twice (d: redelivered once, its newest attempt),
// one failed then redelivered successfully (e), one that failed three
// times (g: given up), and one older than a day (f).
func failedDeliveries(now time.Time) []hookDelivery {
	ago := func(m int) time.Time { return now.Add(-time.Duration(m) * time.Minute).UTC() }
	fail := func(id int64, guid string, m int, redelivery bool) hookDelivery {
		return hookDelivery{ID: id, GUID: guid, DeliveredAt: ago(m), Redelivery: redelivery, Status: "Invalid HTTP Response: 503", StatusCode: 503, Event: "push"}
	}
	ok := func(id int64, guid string, m int, redelivery bool) hookDelivery {
		return hookDelivery{ID: id, GUID: guid, DeliveredAt: ago(m), Redelivery: redelivery, Status: "OK", StatusCode: 202, Event: "push"}
	}
	timedOut := fail(104, "guid-d", 40, true)
	timedOut.Status, timedOut.StatusCode = "timed out", 0
	return []hookDelivery{
		fail(101, "guid-a", 10, false),
		ok(102, "guid-b", 20, false),
		fail(103, "guid-c", 30, false),
		timedOut,
		ok(106, "guid-e", 45, true),
		fail(107, "guid-g", 50, true),
		fail(108, "guid-g", 55, true),
		fail(105, "guid-d", 120, false),
		fail(109, "guid-e", 130, false),
		fail(110, "guid-g", 140, false),
		fail(111, "guid-f", 25*60, false),
	}
}

// queueWithStored starts a JetStream server and stores events of source
// github with the given ids, as ingest does (queue.Publish).
func queueWithStored(t *testing.T, ids ...string) string {
	t.Helper()
	url, _ := openQueueWithStored(t, ids...)
	return url
}

// openQueueWithStored is queueWithStored, with the queue.
func openQueueWithStored(t *testing.T, ids ...string) (string, *queue.Queue) {
	t.Helper()
	srv := startNATS(t, func(*server.Options) {})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := context.Background()
	q, err := queue.Open(ctx, nc, queue.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		ev := event.New()
		ev.SetID(id)
		ev.SetSource("https://github.com/acme/web")
		ev.SetType("dev.switchyard.git.push")
		if err := q.Publish(ctx, policy.Accepted{Source: "github", Event: ev}); err != nil {
			t.Fatal(err)
		}
	}
	return srv.ClientURL(), q
}

// recoverRules copies the shipped rules and gives the github source an API
// token, the fake's URL and recoverBlock (YAML under the source, may be "").
func recoverRules(t *testing.T, apiURL, recoverBlock string) string {
	t.Helper()
	dir := copyTree(t, "../../rules")
	root := filepath.Join(dir, "root.yaml")
	data, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	old := "    secret:\n      env: GITHUB_WEBHOOK_SECRET\n"
	add := old + "    apiToken:\n      env: GITHUB_API_TOKEN\n    apiURL: " + apiURL + "\n" + recoverBlock
	if !strings.Contains(string(data), old) {
		t.Fatal("shipped root.yaml changed: update recoverRules")
	}
	if err := os.WriteFile(root, []byte(strings.Replace(string(data), old, add, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRecoverRedeliversExactlyTheFailedUnstored: router recover asks
// GitHub to redeliver the failed deliveries Switchyard never stored, once
// per delivery id, and nothing else; --dry-run redelivers nothing.
func TestRecoverRedeliversExactlyTheFailedUnstored(t *testing.T) {
	t.Setenv("GITHUB_API_TOKEN", recoverTok)
	gh := newFakeGitHub(t, recoverTok, map[string][]hookDelivery{repoHook: failedDeliveries(time.Now())})
	natsURL := queueWithStored(t, "guid-c", "guid-unrelated")
	rules := recoverRules(t, gh.srv.URL, "")
	args := []string{"recover", "--rules", rules, "--nats-url", natsURL, "--source", "github", "--repository", "acme/web", "--hook-id", "123"}

	code, out, errOut := runCmd(t, "", append(args, "--dry-run")...)
	if code != 0 {
		t.Fatalf("dry run exited %d: %s %s", code, out, errOut)
	}
	if got := gh.redeliveries(); len(got) != 0 {
		t.Fatalf("dry run redelivered %v", got)
	}
	for guid, want := range map[string]string{"guid-a": "101 dry-run", "guid-b": "102 succeeded", "guid-c": "103 already stored",
		"guid-d": "104 dry-run", "guid-e": "106 succeeded", "guid-g": "107 gave up"} {
		if got := tableRow(out, guid); !strings.HasPrefix(got, strings.Fields(want)[0]) || !strings.HasSuffix(got, want[strings.Index(want, " ")+1:]) {
			t.Errorf("row of %s: %q, want attempt and action %q", guid, got, want)
		}
	}

	code, out, errOut = runCmd(t, "", args...)
	if code != 0 {
		t.Fatalf("recover exited %d: %s %s", code, out, errOut)
	}
	want := []string{repoHook + " 101", repoHook + " 104"}
	if got := gh.redeliveries(); !slices.Equal(got, want) {
		t.Fatalf("redelivered %v, want %v\n%s", got, want, out)
	}
	if strings.Contains(out, "guid-f") {
		t.Errorf("a delivery older than --since is listed:\n%s", out)
	}
	// Paged with the cursor, and stopped at the first page reaching past --since.
	if got := gh.lists(); !slices.Equal(got[len(got)-6:], []string{"", "2", "4", "6", "8", "10"}) {
		t.Errorf("list requests' cursors %v", got)
	}
	if !strings.Contains(errOut, "listed 4 deliveries") {
		t.Errorf("no progress on stderr for a long listing: %q", errOut)
	}
}

// tableRow is the row of guid in a recover table, its columns after the
// GUID joined by single spaces.
func tableRow(out, guid string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == guid {
			return strings.Join(f[1:], " ")
		}
	}
	return ""
}

// TestRecoverSinceBoundsTheListing: --since 35m looks at the three newest
// deliveries only, and stops paging there.
func TestRecoverSinceBoundsTheListing(t *testing.T) {
	t.Setenv("GITHUB_API_TOKEN", recoverTok)
	gh := newFakeGitHub(t, recoverTok, map[string][]hookDelivery{repoHook: failedDeliveries(time.Now())})
	natsURL := queueWithStored(t, "guid-c")
	rules := recoverRules(t, gh.srv.URL, "")
	code, out, errOut := runCmd(t, "", "recover", "--rules", rules, "--nats-url", natsURL, "--source", "github",
		"--repository", "acme/web", "--hook-id", "123", "--since", "35m")
	if code != 0 {
		t.Fatalf("recover exited %d: %s %s", code, out, errOut)
	}
	if got, want := gh.redeliveries(), []string{repoHook + " 101"}; !slices.Equal(got, want) {
		t.Fatalf("redelivered %v, want %v", got, want)
	}
	if got := gh.lists(); !slices.Equal(got, []string{"", "2"}) {
		t.Errorf("listed pages %v, want the first two only", got)
	}
}

// TestRecoverUnauthorized: a 401 from the host is a clear error that never
// shows the token.
func TestRecoverUnauthorized(t *testing.T) {
	t.Setenv("GITHUB_API_TOKEN", recoverTok)
	gh := newFakeGitHub(t, "another-token", map[string][]hookDelivery{repoHook: failedDeliveries(time.Now())})
	natsURL := queueWithStored(t)
	rules := recoverRules(t, gh.srv.URL, "")
	code, out, errOut := runCmd(t, "", "recover", "--rules", rules, "--nats-url", natsURL, "--source", "github",
		"--repository", "acme/web", "--hook-id", "123")
	if code != 1 || !strings.Contains(errOut, "refused the credentials: 401 Bad credentials") || !strings.Contains(errOut, "admin:repo_hook") {
		t.Fatalf("exit %d, stderr %q; want a 401 naming the scope", code, errOut)
	}
	if strings.Contains(out+errOut, recoverTok) {
		t.Fatalf("the token is in the output: %s %s", out, errOut)
	}
}

// TestRecoverOrgAndAppHooks: --org and --app list and redeliver at the
// organization's and the App's endpoints; the App's with an App JWT.
func TestRecoverOrgAndAppHooks(t *testing.T) {
	t.Setenv("GITHUB_API_TOKEN", recoverTok)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	one := func(id int64) []hookDelivery {
		return []hookDelivery{{ID: id, GUID: "guid-" + strconv.FormatInt(id, 10), DeliveredAt: now, Status: "Invalid HTTP Response: 502", StatusCode: 502, Event: "push"}}
	}
	gh := newFakeGitHub(t, recoverTok, map[string][]hookDelivery{"/orgs/acme/hooks/7": one(201), "/app/hook": one(301)})
	gh.appID, gh.appKey = 42, &key.PublicKey
	natsURL := queueWithStored(t)
	// The App's hook is listed with the source's githubApp (the credentials of its check runs).
	block := "    githubApp: {appID: 42, privateKey: {file: " + keyFile + "}}\n" +
		"    recover:\n      hooks: [{organization: acme, hookID: 7}, {app: true}]\n"
	rules := recoverRules(t, gh.srv.URL, block)
	base := []string{"recover", "--rules", rules, "--nats-url", natsURL, "--source", "github"}
	for _, args := range [][]string{{"--org", "acme", "--hook-id", "7"}, {"--app"}} {
		if code, out, errOut := runCmd(t, "", append(base, args...)...); code != 0 {
			t.Fatalf("%v exited %d: %s %s", args, code, out, errOut)
		}
	}
	want := []string{"/orgs/acme/hooks/7 201", "/app/hook 301"}
	if got := gh.redeliveries(); !slices.Equal(got, want) {
		t.Fatalf("redelivered %v, want %v", got, want)
	}
	// Without App credentials, --app is refused before any request.
	plain := recoverRules(t, gh.srv.URL, "")
	code, _, errOut := runCmd(t, "", "recover", "--rules", plain, "--nats-url", natsURL, "--source", "github", "--app")
	if code != 1 || !strings.Contains(errOut, "needs the App's credentials") {
		t.Fatalf("--app without credentials: exit %d, %s", code, errOut)
	}
}

// TestRecoverReportsARefusedRedelivery: a redelivery the host refuses is
// reported on its row and in the exit code; the others still go out.
func TestRecoverReportsARefusedRedelivery(t *testing.T) {
	t.Setenv("GITHUB_API_TOKEN", recoverTok)
	gh := newFakeGitHub(t, recoverTok, map[string][]hookDelivery{repoHook: failedDeliveries(time.Now())})
	gh.refuse = map[string]bool{"101": true}
	natsURL := queueWithStored(t, "guid-c")
	rules := recoverRules(t, gh.srv.URL, "")
	code, out, errOut := runCmd(t, "", "recover", "--rules", rules, "--nats-url", natsURL, "--source", "github",
		"--repository", "acme/web", "--hook-id", "123")
	if code != 1 || !strings.Contains(errOut, "some redeliveries failed: 1 of 2") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if row := tableRow(out, "guid-a"); !strings.HasSuffix(row, "redeliver failed: github: 422 Validation Failed") {
		t.Fatalf("row of guid-a %q", row)
	}
	if got, want := gh.redeliveries(), []string{repoHook + " 104"}; !slices.Equal(got, want) {
		t.Fatalf("redelivered %v, want %v", got, want)
	}
}
