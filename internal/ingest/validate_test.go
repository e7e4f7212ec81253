package ingest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// halfBroken is a test-only provider whose deliveries normalize to a valid
// event followed by an invalid one (no type), the shape of a provider bug
// on an odd payload.
type halfBroken struct{}

func (halfBroken) Kind() string                           { return "test-half-broken" }
func (halfBroken) Verify(*Request, *routing.Source) error { return nil }
func (halfBroken) Normalize(req *Request) (Result, error) {
	good := newEvent("test", "good-1", "urn:test", TypeGitPush, req.Body)
	bad := newEvent("test", "bad-1", "urn:test", "", req.Body)
	return Result{Events: []event.Event{good, bad}}, nil
}

func init() { Register(halfBroken{}) }

// A delivery whose events are not all valid CloudEvents is refused whole
// with 400: not even its valid events are stored, so the sender's
// corrected retry is not half deduplicated away.
func TestInvalidEventRefusesTheDelivery(t *testing.T) { checkInvalidEventRefused(t, newMemStore()) }

func checkInvalidEventRefused(t *testing.T, q eventStore) {
	rules := mustRules(t, "  - name: broken\n    kind: test-half-broken\n    secret: {env: S}\n", map[string]string{"S": "x"})
	srv := httptest.NewServer(NewServer(Config{Rules: routing.NewHolder(rules), Publisher: q, MaxBody: 1 << 20}))
	t.Cleanup(srv.Close)
	h := &hookServer{url: srv.URL}

	code, _, body := h.send(t, http.MethodPost, "/v1/hooks/broken", http.Header{"Content-Type": {"application/json"}}, []byte(`{}`))
	if code != http.StatusBadRequest || !strings.Contains(string(body), "does not make a valid event") {
		t.Fatalf("got %d %s, want 400 naming the invalid event", code, body)
	}
	if _, err := q.Status(t.Context(), "broken", "good-1"); !isNotFound(err) {
		t.Fatalf("the valid half was stored: %v", err)
	}
}
