package ingest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

func signCloudEvents(secret, body []byte) string { return signGitHub(secret, body) }

func TestCloudEventsVerify(t *testing.T) {
	secret := newSecret(t)
	_, body := busSample(t, "cloudevents", "structured")
	tests := []struct {
		name    string
		set     map[string]string
		secret  []byte
		wantErr bool
	}{
		{name: "hmac", set: map[string]string{"X-Signature": signCloudEvents(secret, body)}, secret: secret},
		{name: "bearer", set: map[string]string{"Authorization": "Bearer " + string(secret)}, secret: secret},
		{name: "missing", secret: secret, wantErr: true},
		{name: "wrong hmac", set: map[string]string{"X-Signature": signCloudEvents([]byte("other"), body)}, secret: secret, wantErr: true},
		{name: "tampered body", set: map[string]string{"X-Signature": signCloudEvents(secret, append([]byte(" "), body...))}, secret: secret, wantErr: true},
		{name: "wrong hmac beside a good token", set: map[string]string{"X-Signature": "sha256=00", "Authorization": "Bearer " + string(secret)}, secret: secret, wantErr: true},
		{name: "wrong bearer", set: map[string]string{"Authorization": "Bearer guess"}, secret: secret, wantErr: true},
		{name: "basic scheme", set: map[string]string{"Authorization": "Basic " + string(secret)}, secret: secret, wantErr: true},
		{name: "no secret configured (hmac)", set: map[string]string{"X-Signature": signCloudEvents(nil, body)}, wantErr: true},
		{name: "no secret configured (bearer)", set: map[string]string{"Authorization": "Bearer x"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := acrHeader("application/cloudevents+json")
			for k, v := range tt.set {
				h.Set(k, v)
			}
			err := cloudEventsProvider{}.Verify(&Request{Header: h, Body: body}, &routing.Source{Kind: "cloudevents", Secret: tt.secret})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Verify() = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("error %v does not wrap ErrUnauthorized", err)
			}
		})
	}
}

func TestCloudEventsNormalizeGolden(t *testing.T) {
	tests := []struct {
		name     string
		wantIDs  []string
		wantType []string
		wantExt  map[string]string // first event
		wantData string            // "body" (binary mode), or the JSON of the structured event's data
		subject  string
	}{
		{name: "structured", wantIDs: []string{"A234-1234-1234"}, wantType: []string{"com.github.pull_request.opened"},
			wantExt: map[string]string{"provider": "cloudevents", "comexampleextension1": "value", "identity": ""}, subject: "123"},
		{name: "batch", wantIDs: []string{"A234-1234-1234", "C234-1234-1234"}, wantType: []string{"com.github.pull_request.opened", "com.example.someevent"},
			wantExt: map[string]string{"provider": "cloudevents"}, subject: "123"},
		{name: "cdevent-artifact-published", wantIDs: []string{"271069a8-fc18-44f1-b38f-9d70a1695819"}, wantType: []string{TypeImagePush},
			wantExt: map[string]string{"repository": "ghcr.io/myorg/myapp", "tag": "v1.2.0",
				"digest":      "sha256:244fd47e07d1004f0aed9c156e36a3a8b4b0e28e3f0e0c1f8e0a9d1b2c3d4e5f",
				"cdeventtype": "dev.cdevents.artifact.published.0.3.0-draft", "provider": "cloudevents"}, subject: "v1.2.0"},
		{name: "cdevent-artifact-published-golang", wantIDs: []string{"271069a8-fc18-44f1-b38f-9d70a1695819"},
			wantType: []string{"dev.cdevents.artifact.published.0.3.0-draft"},
			wantExt:  map[string]string{"repository": "", "cdeventtype": "dev.cdevents.artifact.published.0.3.0-draft"}},
		{name: "cdevent-branch-deleted", wantIDs: []string{"271069a8-fc18-44f1-b38f-9d70a1695819"}, wantType: []string{TypeGitBranchDeleted},
			wantExt: map[string]string{"repository": "TestRepo/TestOrg", "branch": "mySubject123", "ref": "refs/heads/mySubject123",
				"cdeventtype": "dev.cdevents.branch.deleted.0.3.0-draft"}, subject: "refs/heads/mySubject123"},
		{name: "cdevent-change-merged-binary", wantIDs: []string{"271069a8-fc18-44f1-b38f-9d70a1695819"}, wantType: []string{TypeGitPush},
			wantExt: map[string]string{"repository": "TestRepo/TestOrg", "action": "merged", "branch": "",
				"cdeventtype": "dev.cdevents.change.merged.0.3.0-draft"}, wantData: "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body := busSample(t, "cloudevents", tt.name)
			res, err := cloudEventsProvider{}.Normalize(&Request{Header: h, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != len(tt.wantIDs) {
				t.Fatalf("got %d events, want %d", len(res.Events), len(tt.wantIDs))
			}
			var incoming []struct {
				Data json.RawMessage `json:"data"`
			}
			if tt.wantData != "body" {
				raw := body
				if tt.name != "batch" {
					raw = []byte("[" + string(body) + "]")
				}
				if err := json.Unmarshal(raw, &incoming); err != nil {
					t.Fatal(err)
				}
			}
			for i, ev := range res.Events {
				if err := ev.Validate(); err != nil {
					t.Fatalf("not a valid CloudEvent: %v", err)
				}
				if ev.ID() != tt.wantIDs[i] || ev.Type() != tt.wantType[i] || ev.SpecVersion() != "1.0" {
					t.Errorf("event %d: id %q type %q", i, ev.ID(), ev.Type())
				}
				switch {
				case tt.wantData == "body":
					if string(ev.Data()) != string(body) {
						t.Errorf("binary mode: data must be the body")
					}
				case ev.DataContentType() == "application/json":
					if !jsonEqual(t, ev.Data(), incoming[i].Data) {
						t.Errorf("event %d: data is not the incoming event's data: %s", i, ev.Data())
					}
				default: // the XML string of the spec sample
					var s string
					if err := json.Unmarshal(incoming[i].Data, &s); err != nil || string(ev.Data()) != s {
						t.Errorf("event %d: data %q", i, ev.Data())
					}
				}
			}
			if tt.subject != "" && res.Events[0].Subject() != tt.subject {
				t.Errorf("subject %q, want %q", res.Events[0].Subject(), tt.subject)
			}
			checkExt(t, res.Events[0], tt.wantExt)
			checkGolden(t, "cloudevents-"+tt.name, res.Events)
		})
	}
}

func ceBinary(typ string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", "e-1")
	h.Set("Ce-Source", "/tests")
	h.Set("Ce-Type", typ)
	return h
}

func TestCloudEventsNormalizeRules(t *testing.T) {
	t.Run("identity is the router's to set", func(t *testing.T) {
		h := ceBinary("com.example.built")
		h.Set("Ce-Identity", "source:github")
		h.Set("Ce-Provider", "github")
		h.Set("Ce-Repository", "acme/web")
		res, err := cloudEventsProvider{}.Normalize(&Request{Header: h, Body: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		checkExt(t, res.Events[0], map[string]string{"identity": "", "provider": "cloudevents", "repository": "acme/web"})
	})
	t.Run("reserved type refused", func(t *testing.T) {
		_, err := cloudEventsProvider{}.Normalize(&Request{Header: ceBinary(TypeGitPush), Body: []byte(`{}`)})
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "reserved") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("reserved type refused in a batch", func(t *testing.T) {
		body := []byte(`[{"specversion":"1.0","id":"1","source":"/s","type":"com.example.ok"},{"specversion":"1.0","id":"2","source":"/s","type":"dev.switchyard.image.push"}]`)
		_, err := cloudEventsProvider{}.Normalize(&Request{Header: acrHeader("application/cloudevents-batch+json"), Body: body})
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("spec 0.3 upgraded to 1.0", func(t *testing.T) {
		h := ceBinary("com.example.old")
		h.Set("Ce-Specversion", "0.3")
		res, err := cloudEventsProvider{}.Normalize(&Request{Header: h, Body: []byte(`{}`)})
		if err != nil || res.Events[0].SpecVersion() != "1.0" {
			t.Fatalf("%v %v", err, res.Events)
		}
	})
	t.Run("purl without repository_url names the image", func(t *testing.T) {
		body := []byte(`{"context":{"type":"dev.cdevents.artifact.packaged.0.2.0"},"subject":{"id":"pkg:oci/alpine@sha256%3Aabc"}}`)
		res, err := cloudEventsProvider{}.Normalize(&Request{Header: ceBinary("dev.cdevents.artifact.packaged.0.2.0"), Body: body})
		if err != nil {
			t.Fatal(err)
		}
		ev := res.Events[0]
		if ev.Type() != TypeImagePush || ev.Subject() != "sha256:abc" {
			t.Fatalf("type %q subject %q", ev.Type(), ev.Subject())
		}
		checkExt(t, ev, map[string]string{"repository": "alpine", "digest": "sha256:abc", "tag": ""})
	})
	t.Run("unreadable CDEvent keeps its type", func(t *testing.T) {
		res, err := cloudEventsProvider{}.Normalize(&Request{Header: ceBinary("dev.cdevents.change.merged.0.2.0"), Body: []byte(`[1, 2]`)})
		if err != nil || res.Events[0].Type() != "dev.cdevents.change.merged.0.2.0" {
			t.Fatalf("%v %v", err, res.Events)
		}
	})
}

func TestCloudEventsNormalizeErrors(t *testing.T) {
	_, structured := busSample(t, "cloudevents", "structured")
	tests := []struct {
		name    string
		header  http.Header
		body    []byte
		wantErr error
	}{
		{name: "plain json", header: acrHeader("application/json"), body: []byte(`{}`), wantErr: ErrUnsupportedMediaType},
		{name: "no content type", header: http.Header{}, body: structured, wantErr: ErrUnsupportedMediaType},
		{name: "malformed structured", header: acrHeader("application/cloudevents+json"), body: []byte(`{"specversion":`), wantErr: ErrMalformed},
		{name: "structured without id", header: acrHeader("application/cloudevents+json"), body: []byte(`{"specversion":"1.0","source":"/s","type":"t"}`), wantErr: ErrMalformed},
		{name: "malformed batch", header: acrHeader("application/cloudevents-batch+json"), body: []byte(`{}`), wantErr: ErrMalformed},
		{name: "binary JSON data that is not JSON", header: ceBinary("com.example.x"), body: []byte(`not json`), wantErr: ErrMalformed},
		{name: "binary without source", header: func() http.Header { h := ceBinary("t"); h.Del("Ce-Source"); return h }(), body: []byte(`{}`), wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := (cloudEventsProvider{}).Normalize(&Request{Header: tt.header, Body: tt.body}); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func FuzzCloudEvents(f *testing.F) {
	secret := []byte("fuzz-secret")
	for _, s := range []string{"structured", "batch", "cdevent-artifact-published", "cdevent-branch-deleted"} {
		h, body := busSample(f, "cloudevents", s)
		f.Add(h.Get("Content-Type"), "", body, true)
	}
	_, merged := busSample(f, "cloudevents", "cdevent-change-merged-binary")
	f.Add("application/json", "dev.cdevents.change.merged.0.3.0", merged, true)
	f.Add("application/json", "dev.cdevents.artifact.published.0.1.0", []byte(`{"subject":{"id":"pkg:oci/x@y?repository_url=https://"}}`), false)
	f.Fuzz(func(t *testing.T, ct, binaryType string, body []byte, sign bool) {
		h := acrHeader(ct)
		if binaryType != "" {
			h = ceBinary(binaryType)
		}
		p := cloudEventsProvider{}
		src := &routing.Source{Secret: secret}
		binary := cloudEventsMode(h) == binding.EncodingBinary
		if sign && binary {
			// A signature does not cover the ce-* headers: refused, so
			// binary mode authenticates with the token.
			signed := &Request{Header: h.Clone(), Body: body}
			signed.Header.Set("X-Signature", signCloudEvents(secret, body))
			if err := p.Verify(signed, src); !errors.Is(err, ErrUnsupportedMediaType) {
				t.Fatalf("signed binary mode: Verify=%v, want ErrUnsupportedMediaType", err)
			}
			h.Set("Authorization", "Bearer "+string(secret))
		} else if sign {
			h.Set("X-Signature", signCloudEvents(secret, body))
		}
		req := &Request{Header: h, Body: body}
		if err := p.Verify(req, src); sign != (err == nil) {
			t.Fatalf("sign=%v but Verify=%v", sign, err)
		}
		res, err := p.Normalize(req)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedMediaType) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		for _, ev := range res.Events {
			if err := ev.Validate(); err != nil {
				t.Fatalf("invalid CloudEvent: %v", err)
			}
			checkDataIsJSON(t, &ev)
			if strings.HasPrefix(ev.Type(), reservedTypePrefix) && ev.Extensions()["cdeventtype"] == nil {
				t.Fatalf("reserved type %q passed through", ev.Type())
			}
			if ev.Extensions()["identity"] != nil {
				t.Fatal("identity passed through")
			}
		}
	})
}

// TestCloudEventsSignatureCoversEveryAttribute: the HMAC covers the body
// only, so a signed request is taken only in the modes whose attributes are
// all in the body. A captured signed binary-mode request relabelled with
// another ce-type, ce-id, ce-subject or extension must not pass.
func TestCloudEventsSignatureCoversEveryAttribute(t *testing.T) {
	secret := newSecret(t)
	src := &routing.Source{Kind: "cloudevents", Secret: secret}
	p := cloudEventsProvider{}

	t.Run("binary mode with a signature is refused", func(t *testing.T) {
		h, body := busSample(t, "cloudevents", "cdevent-change-merged-binary")
		h.Set("X-Signature", signCloudEvents(secret, body))
		h.Set("Ce-Type", "com.example.relabelled") // the replay's choice
		h.Set("Ce-Id", "replayed-1")
		err := p.Verify(&Request{Header: h, Body: body}, src)
		if !errors.Is(err, ErrUnsupportedMediaType) || !strings.Contains(err.Error(), "structured mode") {
			t.Fatalf("Verify = %v, want ErrUnsupportedMediaType naming structured mode", err)
		}
		if err := p.VerifyBeforeBody(&Request{Header: h}, src); !errors.Is(err, ErrUnsupportedMediaType) {
			t.Fatalf("VerifyBeforeBody = %v, want ErrUnsupportedMediaType", err)
		}
	})
	t.Run("binary mode with the token is taken", func(t *testing.T) {
		h, body := busSample(t, "cloudevents", "cdevent-change-merged-binary")
		h.Set("Authorization", "Bearer "+string(secret))
		if err := p.Verify(&Request{Header: h, Body: body}, src); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("structured mode reads its attributes from the signed body only", func(t *testing.T) {
		h, body := busSample(t, "cloudevents", "structured")
		h.Set("X-Signature", signCloudEvents(secret, body))
		for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Type": "com.example.relabelled", "Ce-Id": "replayed-1",
			"Ce-Subject": "refs/heads/main", "Ce-Source": "/elsewhere", "Ce-Repository": "acme/prod"} {
			h.Set(k, v)
		}
		req := &Request{Header: h, Body: body}
		if err := p.Verify(req, src); err != nil {
			t.Fatal(err)
		}
		res, err := p.Normalize(req)
		if err != nil {
			t.Fatal(err)
		}
		ev := res.Events[0]
		if ev.Type() != "com.github.pull_request.opened" || ev.ID() != "A234-1234-1234" || ev.Subject() != "123" || ev.Source() != "https://github.com/cloudevents/spec/pull" {
			t.Fatalf("attributes from the headers: type %q id %q subject %q source %q", ev.Type(), ev.ID(), ev.Subject(), ev.Source())
		}
		checkExt(t, ev, map[string]string{"repository": ""})
	})
	t.Run("Sign makes requests Verify takes", func(t *testing.T) {
		for _, ct := range []string{"", "application/cloudevents+json"} {
			_, body := busSample(t, "cloudevents", "structured")
			req := &Request{Header: http.Header{}, Body: body}
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			p.Sign(req, "com.example.sent", "d-1", secret)
			if err := p.Verify(req, src); err != nil {
				t.Fatalf("Content-Type %q: %v", ct, err)
			}
			if _, err := p.Normalize(req); err != nil {
				t.Fatalf("Content-Type %q: %v", ct, err)
			}
		}
	})
}
