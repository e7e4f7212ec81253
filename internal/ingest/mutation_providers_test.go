package ingest

// Tests added for mutants that lived (docs/testing.md, "Mutation testing"):
// each pins one provider behaviour no other test did.

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// normalizeSample normalizes body as kind with the given headers and returns
// its single event.
func normalizeSample(t *testing.T, kind string, header map[string]string, body string) event.Event {
	t.Helper()
	res, err := normalizeRaw(t, kind, header, body)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1 {
		t.Fatalf("%d events, want 1", len(res.Events))
	}
	return res.Events[0]
}

func normalizeRaw(t *testing.T, kind string, header map[string]string, body string) (Result, error) {
	t.Helper()
	h := http.Header{}
	for k, v := range header {
		h.Set(k, v)
	}
	return lookupProvider(t, kind).Normalize(&Request{Header: h, Body: []byte(body)})
}

func extOf(ev event.Event, name string) string {
	s, _ := ev.Extensions()[name].(string)
	return s
}

func TestBitbucketServerActorSlugFirst(t *testing.T) {
	body := func(actor string) string {
		return `{"eventKey":"repo:refs_changed","actor":` + actor + `,
		"repository":{"slug":"app","project":{"key":"ACME"}},
		"changes":[{"ref":{"id":"refs/heads/main","displayId":"main","type":"BRANCH"},"fromHash":"` + strings.Repeat("a", 40) + `","toHash":"` + strings.Repeat("b", 40) + `","type":"UPDATE"}]}`
	}
	header := map[string]string{"Content-Type": "application/json", "X-Event-Key": "repo:refs_changed", "X-Request-Id": "r-1"}
	for name, tc := range map[string]struct{ actor, want string }{
		"slug and name": {`{"slug":"jdoe","name":"John Doe"}`, "jdoe"},
		"name only":     {`{"name":"jdoe2"}`, "jdoe2"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := extOf(normalizeSample(t, "bitbucket-server", header, body(tc.actor)), "actor"); got != tc.want {
				t.Errorf("actor %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadBodyAtExactlyTheLimit(t *testing.T) {
	b := newBodyBudget(1 << 20)
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("0123456789"))
	body, release, err := b.readBody(r, 10)
	defer release()
	if err != nil || string(body) != "0123456789" {
		t.Fatalf("body of exactly the limit: %q, %v; want it read", body, err)
	}
	r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader("0123456789x"))
	_, release2, err := b.readBody(r, 10)
	defer release2()
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over the limit: %v, want ErrTooLarge", err)
	}
}

func TestDistributionHostFromRequestThenURL(t *testing.T) {
	body := func(host string) string {
		return `{"events":[{"id":"e-1","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json",
		"digest":"sha256:` + strings.Repeat("c", 64) + `","repository":"team/app","tag":"v1",
		"url":"https://from-url.example:5000/v2/team/app/manifests/v1"},"request":{"host":"` + host + `"},"actor":{"name":"ci"}}]}`
	}
	header := map[string]string{"Content-Type": distributionMediaType}
	for name, tc := range map[string]struct{ host, want string }{
		"request host":        {"registry.example", "registry.example/team/app"},
		"no host: target url": {"", "from-url.example:5000/team/app"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := extOf(normalizeSample(t, "distribution", header, body(tc.host)), "repository"); got != tc.want {
				t.Errorf("repository %q, want %q", got, tc.want)
			}
		})
	}
}

// A payload without a push time has no event time, not the Unix epoch.
func TestNoProviderTimeIsNotTheEpoch(t *testing.T) {
	for name, tc := range map[string]struct {
		kind, contentType, body string
	}{
		"dockerhub": {"dockerhub", "application/json", `{"push_data":{"tag":"v1","pusher":"ci"},"repository":{"repo_name":"acme/app"}}`},
		"harbor": {"harbor", "application/json", `{"type":"PUSH_ARTIFACT","operator":"admin","event_data":{"resources":[{"digest":"sha256:` +
			strings.Repeat("d", 64) + `","tag":"v1","resource_url":"harbor.example/acme/app:v1"}],"repository":{"repo_full_name":"acme/app"}}}`},
	} {
		t.Run(name, func(t *testing.T) {
			ev := normalizeSample(t, tc.kind, map[string]string{"Content-Type": tc.contentType}, tc.body)
			if !ev.Time().IsZero() {
				t.Errorf("time %v, want none", ev.Time())
			}
		})
	}
}

func TestGARMessageIDSnakeCase(t *testing.T) {
	data := base64.StdEncoding.EncodeToString([]byte(`{"action":"INSERT","tag":"europe-docker.pkg.dev/p/r/app:v1"}`))
	ev := normalizeSample(t, "gar", map[string]string{"Content-Type": "application/json"},
		`{"message":{"data":"`+data+`","message_id":"snake-42"},"subscription":"s"}`)
	if ev.ID() != "snake-42" {
		t.Errorf("id %q, want the message_id snake-42", ev.ID())
	}
}

func TestGARSplitRefLeadingAt(t *testing.T) {
	host, path, tag, digest := garSplitRef("@registry.example/app")
	if host != "" || path != "" || tag != "" || digest != "" {
		t.Errorf("garSplitRef(\"@registry.example/app\") = %q %q %q %q, want no image (no name before the digest)", host, path, tag, digest)
	}
}

func TestForgejoAcceptsGiteaSignatureHeader(t *testing.T) {
	p := lookupProvider(t, "forgejo")
	secret := newSecret(t)
	src := &routing.Source{Name: "s", Kind: "forgejo", Secret: secret}
	body := []byte(`{"ref":"refs/heads/main"}`)
	for name, h := range map[string]map[string]string{
		"gitea header only":          {"X-Gitea-Signature": hexHMAC(secret, body)},
		"own header, gitea is wrong": {"X-Forgejo-Signature": hexHMAC(secret, body), "X-Gitea-Signature": hexHMAC([]byte("other"), body)},
	} {
		t.Run(name, func(t *testing.T) {
			req := &Request{Header: http.Header{}, Body: body}
			for k, v := range h {
				req.Header.Set(k, v)
			}
			if err := p.Verify(req, src); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestGiteaActorAndMergedAction(t *testing.T) {
	header := map[string]string{"Content-Type": "application/json", "X-Gitea-Event": "pull_request", "X-Gitea-Delivery": "d-1"}
	body := func(sender string, action string, merged bool) string {
		m := "false"
		if merged {
			m = "true"
		}
		return `{"action":"` + action + `","number":7,"sender":` + sender + `,"repository":{"full_name":"acme/app","html_url":"https://gitea.example/acme/app"},
		"pull_request":{"merged":` + m + `,"base":{"ref":"main"},"head":{"ref":"topic","sha":"` + strings.Repeat("e", 40) + `"}}}`
	}
	for name, tc := range map[string]struct {
		sender, action string
		merged         bool
		actor, wantAct string
	}{
		"login first":        {`{"login":"alice","username":"alice-user"}`, "opened", false, "alice", "opened"},
		"username fallback":  {`{"username":"bob"}`, "opened", false, "bob", "opened"},
		"closed and merged":  {`{"login":"alice"}`, "closed", true, "alice", "merged"},
		"closed, not merged": {`{"login":"alice"}`, "closed", false, "alice", "closed"},
	} {
		t.Run(name, func(t *testing.T) {
			ev := normalizeSample(t, "gitea", header, body(tc.sender, tc.action, tc.merged))
			if got := extOf(ev, "actor"); got != tc.actor {
				t.Errorf("actor %q, want %q", got, tc.actor)
			}
			if got := extOf(ev, "action"); got != tc.wantAct {
				t.Errorf("action %q, want %q", got, tc.wantAct)
			}
		})
	}
}

func TestHarborOtherTypes(t *testing.T) {
	header := map[string]string{"Content-Type": "application/json"}
	ev := normalizeSample(t, "harbor", header, `{"type":"SCANNING_COMPLETED","operator":"auto","event_data":{}}`)
	if ev.Type() != "io.goharbor.scanning_completed" || extOf(ev, "actor") != "auto" {
		t.Errorf("type %q actor %q, want io.goharbor.scanning_completed, auto", ev.Type(), extOf(ev, "actor"))
	}
	if _, err := normalizeRaw(t, "harbor", header, `{"operator":"auto","event_data":{}}`); !errors.Is(err, ErrMalformed) {
		t.Errorf("no type: %v, want ErrMalformed", err)
	}
}

// Harbor's CloudEvents format posted as plain application/json is still
// read as a CloudEvent.
func TestHarborCloudEventAsPlainJSON(t *testing.T) {
	req := sampleRequest(t, "harbor", "cloudevents-push")
	req.Header.Set("Content-Type", "application/json")
	res, err := lookupProvider(t, "harbor").Normalize(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) == 0 || res.Events[0].Type() != TypeImagePush {
		t.Fatalf("events %v, want an image push", res.Events)
	}
}

func TestHarborSignContentType(t *testing.T) {
	signer := lookupProvider(t, "harbor").(Signer)
	req := &Request{Header: http.Header{}, Body: []byte(`{}`)}
	signer.Sign(req, "", "", []byte("s"))
	if got := req.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("no content type: set to %q, want application/json", got)
	}
	req = &Request{Header: http.Header{"Content-Type": {event.ApplicationCloudEventsJSON}}, Body: []byte(`{}`)}
	signer.Sign(req, "", "", []byte("s"))
	if got := req.Header.Get("Content-Type"); got != event.ApplicationCloudEventsJSON {
		t.Errorf("content type %q replaced by %q", event.ApplicationCloudEventsJSON, got)
	}
}
