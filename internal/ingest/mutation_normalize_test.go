package ingest

// More tests added for mutants that lived (docs/testing.md, "Mutation
// testing"): normalization details, handshakes and signing helpers.

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Event Grid events: a registry event other than an image push or delete
// (a chart push) is still a registry event; an event that names no
// repository keeps Event Grid's type and source.
func TestACREventGridOtherTypes(t *testing.T) {
	header := map[string]string{"Content-Type": "application/json"}
	eg := func(typ, data string) string {
		return `[{"id":"eg-1","topic":"/subscriptions/s/registries/r","eventType":"` + typ + `","eventTime":"2024-01-02T03:04:05Z","data":` + data + `}]`
	}
	chart := normalizeSample(t, "acr", header, eg("Microsoft.ContainerRegistry.ChartPushed",
		`{"action":"chart_push","target":{"repository":"charts/app","tag":"1.0.0"},"request":{"host":"demo.azurecr.io"}}`))
	if chart.Type() != "Microsoft.ContainerRegistry.ChartPushed" || extOf(chart, "repository") != "demo.azurecr.io/charts/app" {
		t.Errorf("chart push: type %q repository %q, want the Event Grid type and demo.azurecr.io/charts/app", chart.Type(), extOf(chart, "repository"))
	}
	other := normalizeSample(t, "acr", header, eg("Microsoft.ContainerRegistry.ImageQuarantined", `{"action":"quarantine"}`))
	if other.Type() != "Microsoft.ContainerRegistry.ImageQuarantined" || other.Source() != "/subscriptions/s/registries/r" {
		t.Errorf("no repository: type %q source %q, want the Event Grid type and topic", other.Type(), other.Source())
	}
	if _, err := normalizeRaw(t, "acr", header, eg("Microsoft.ContainerRegistry.ImagePushed", `{"action":"push"}`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("an image push without a repository: %v, want ErrMalformed", err)
	}
}

func TestCloudEventsHandshakeRate(t *testing.T) {
	h := http.Header{"Webhook-Request-Origin": {"eventgrid.azure.net"}}
	if got := cloudEventsHandshake(h).Header.Get("WebHook-Allowed-Rate"); got != "" {
		t.Errorf("no rate asked: WebHook-Allowed-Rate %q, want none", got)
	}
	h.Set("WebHook-Request-Rate", "120")
	if got := cloudEventsHandshake(h).Header.Get("WebHook-Allowed-Rate"); got != "*" {
		t.Errorf("rate asked: WebHook-Allowed-Rate %q, want *", got)
	}
}

func TestCDEventRepository(t *testing.T) {
	for raw, want := range map[string]string{
		`{"owner":"acme","name":"app","id":"https://git.example/acme/app"}`: "acme/app",
		`{"name":"app","id":"https://git.example/acme/app"}`:                "https://git.example/acme/app",
		`{"owner":"acme","id":"https://git.example/acme/app"}`:              "https://git.example/acme/app",
	} {
		if got := cdeventRepo([]byte(raw)); got != want {
			t.Errorf("cdeventRepo(%s) = %q, want %q", raw, got, want)
		}
	}
}

// Sign's default event names: what `router send` uses when none is given.
func TestSignDefaultEventNames(t *testing.T) {
	for _, tc := range []struct{ kind, header, def string }{
		{"cloudevents", "Ce-Type", "com.example.event"},
		{"github", githubEventHeader, "push"},
	} {
		signer := lookupProvider(t, tc.kind).(Signer)
		req := &Request{Header: http.Header{}, Body: []byte(`{}`)}
		signer.Sign(req, "", "d-1", []byte("s"))
		if got := req.Header.Get(tc.header); got != tc.def {
			t.Errorf("%s, no event name: %s %q, want %q", tc.kind, tc.header, got, tc.def)
		}
		req = &Request{Header: http.Header{}, Body: []byte(`{}`)}
		signer.Sign(req, "com.acme.x", "d-1", []byte("s"))
		if got := req.Header.Get(tc.header); got != "com.acme.x" {
			t.Errorf("%s, event name given: %s %q, want com.acme.x", tc.kind, tc.header, got)
		}
	}
}

// The Standard Webhooks window is inclusive: a timestamp exactly
// webhookTolerance away is accepted, as the reference libraries do.
func TestStandardWebhookToleranceEdges(t *testing.T) {
	secret := newSecret(t)
	src := &routing.Source{Name: "ci", Kind: "generic-hmac", Secret: secret}
	body := []byte(`{"a":1}`)
	now := time.Unix(1_700_000_000, 0)
	for name, tc := range map[string]struct {
		at time.Time
		ok bool
	}{
		"exactly the tolerance old":   {now.Add(-webhookTolerance), true},
		"exactly the tolerance ahead": {now.Add(webhookTolerance), true},
		"a second older":              {now.Add(-webhookTolerance - time.Second), false},
		"a second further ahead":      {now.Add(webhookTolerance + time.Second), false},
	} {
		t.Run(name, func(t *testing.T) {
			err := verifyStandardWebhook(&Request{Header: swHeader(secret, "m-1", tc.at, body), Body: body}, src, now)
			if tc.ok != (err == nil) {
				t.Errorf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func githubNormalize(t *testing.T, eventName, body string) event.Event {
	t.Helper()
	return normalizeSample(t, "github", map[string]string{"Content-Type": "application/json", githubEventHeader: eventName, githubDeliveryHeader: "d-1"}, body)
}

// The sender's login is the push's actor; the pusher's name stands in
// only when there is no sender.
func TestGitHubPushActor(t *testing.T) {
	push := `"ref":"refs/heads/main","before":"` + strings.Repeat("1", 40) + `","after":"` + strings.Repeat("2", 40) + `","pusher":{"name":"pusher-name"}`
	if got := extOf(githubNormalize(t, "push", `{`+push+`}`), "actor"); got != "pusher-name" {
		t.Errorf("no sender: actor %q, want pusher-name", got)
	}
	if got := extOf(githubNormalize(t, "push", `{`+push+`,"sender":{"login":"octocat"}}`), "actor"); got != "octocat" {
		t.Errorf("sender: actor %q, want octocat", got)
	}
}

func TestGitHubContainerPackage(t *testing.T) {
	pkg := func(action, owner, version, digest string) string {
		return `{"action":"` + action + `","package":{"name":"App","namespace":"acme-ns","package_type":"CONTAINER",` + owner + `
		"package_version":{"version":"` + version + `","container_metadata":{"tag":{"name":"v1","digest":"` + digest + `"}}}}}`
	}
	sha := "sha256:" + strings.Repeat("f", 64)
	for name, tc := range map[string]struct {
		action, owner, version, digest string
		wantType, wantRepo, wantDigest string
	}{
		"published":            {"published", `"owner":{"login":"Acme"},`, "v1", sha, TypeImagePush, "ghcr.io/acme/app", sha},
		"updated":              {"updated", `"owner":{"login":"Acme"},`, "v1", sha, TypeImagePush, "ghcr.io/acme/app", sha},
		"other action":         {"deleted", `"owner":{"login":"Acme"},`, "v1", sha, "com.github.package", "", ""},
		"namespace, no owner":  {"published", ``, "v1", sha, TypeImagePush, "ghcr.io/acme-ns/app", sha},
		"digest from version":  {"published", `"owner":{"login":"Acme"},`, sha, "", TypeImagePush, "ghcr.io/acme/app", sha},
		"version not a digest": {"published", `"owner":{"login":"Acme"},`, "v1", "", TypeImagePush, "ghcr.io/acme/app", ""},
	} {
		t.Run(name, func(t *testing.T) {
			ev := githubNormalize(t, "package", pkg(tc.action, tc.owner, tc.version, tc.digest))
			if ev.Type() != tc.wantType || extOf(ev, "repository") != tc.wantRepo || extOf(ev, "digest") != tc.wantDigest {
				t.Errorf("type %q repository %q digest %q, want %q %q %q", ev.Type(), extOf(ev, "repository"), extOf(ev, "digest"),
					tc.wantType, tc.wantRepo, tc.wantDigest)
			}
		})
	}
}

func TestQuayReference(t *testing.T) {
	header := map[string]string{"Content-Type": "application/json"}
	for name, tc := range map[string]struct{ body, want string }{
		"docker_url":                {`{"docker_url":"quay.example.com/acme/app","repository":"acme/app","updated_tags":["v1"]}`, "quay.example.com/acme/app"},
		"repository, no docker_url": {`{"repository":"acme/app","updated_tags":["v1"]}`, "quay.io/acme/app"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := extOf(normalizeSample(t, "quay", header, tc.body), "repository"); got != tc.want {
				t.Errorf("repository %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := normalizeRaw(t, "quay", header, `{"updated_tags":["v1"]}`); !errors.Is(err, ErrMalformed) {
		t.Errorf("neither docker_url nor repository: %v, want ErrMalformed", err)
	}
}

// An endpoint with static tokens and OIDC: a valid OIDC token is accepted,
// a static token that matches nothing is refused as a static token.
func TestEndpointTokensAndOIDC(t *testing.T) {
	iss := newAgentIssuer(t)
	static := "static-token-value"
	ep := &routing.Endpoint{Name: "both", SubjectClaim: "sub",
		OIDC:   &routing.OIDC{Issuer: iss.url, Audience: "switchyard", JWKSURL: iss.jwksURL},
		Tokens: []routing.TokenHash{{Sum: sha256.Sum256([]byte(static)), Name: "bot", Line: 1}}}
	bearerOf := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	c, _, err := authenticate(context.Background(), bearerOf(iss.token(t, nil)), ep)
	if err != nil || c.Principal == "" {
		t.Fatalf("valid OIDC token on an endpoint with static tokens: %+v, %v", c, err)
	}
	if c, _, err := authenticate(context.Background(), bearerOf(static), ep); err != nil || c.Principal != "bot" {
		t.Fatalf("the static token: %+v, %v", c, err)
	}
	_, _, err = authenticate(context.Background(), bearerOf("not-a-token"), ep)
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "static tokens") {
		t.Errorf("an unknown opaque token: %v, want a 401 about the static tokens", err)
	}
	// Only OIDC: the refusal says nothing of static tokens.
	ep.Tokens = nil
	for _, tok := range []string{"not-a-token", "a.b.c"} {
		_, _, err = authenticate(context.Background(), bearerOf(tok), ep)
		if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "static") {
			t.Errorf("%q on an OIDC-only endpoint: %v, want a 401 that does not mention static tokens", tok, err)
		}
	}
}
