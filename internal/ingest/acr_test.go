package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// busSample reads test/testdata/<kind>/<name>.json and the headers beside
// it (<name>.headers, "Name: value" per line), as `router normalize` does.
func busSample(t testing.TB, kind, name string) (http.Header, []byte) {
	t.Helper()
	body := readSample(t, kind, name+".json")
	f, err := os.Open(filepath.Join(sampleDir, kind, name+".headers"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := http.Header{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return h, body
}

// checkExt fails for every extension that differs from want; "" means the
// extension must be absent.
func checkExt(t *testing.T, ev event.Event, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got, ok := ev.Extensions()[k]
		if v == "" {
			if ok {
				t.Errorf("extension %s = %v, want none", k, got)
			}
			continue
		}
		if got != v {
			t.Errorf("extension %s = %v, want %q", k, got, v)
		}
	}
}

func acrHeader(ct string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", ct)
	return h
}

func TestACRVerify(t *testing.T) {
	secret := newSecret(t)
	_, body := busSample(t, "acr", "webhook-push")
	tests := []struct {
		name    string
		header  string // the source's header field
		set     map[string]string
		secret  []byte
		wantErr bool
	}{
		{name: "bearer token in Authorization", set: map[string]string{"Authorization": "Bearer " + string(secret)}, secret: secret},
		{name: "raw token in Authorization", set: map[string]string{"Authorization": string(secret)}, secret: secret},
		{name: "custom header", header: "X-Registry-Token", set: map[string]string{"X-Registry-Token": string(secret)}, secret: secret},
		{name: "custom header configured, token in Authorization", header: "X-Registry-Token", set: map[string]string{"Authorization": "Bearer " + string(secret)}, secret: secret, wantErr: true},
		{name: "missing", secret: secret, wantErr: true},
		{name: "wrong", set: map[string]string{"Authorization": "Bearer guess"}, secret: secret, wantErr: true},
		{name: "no secret configured", set: map[string]string{"Authorization": "Bearer "}, secret: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := acrHeader("application/json")
			for k, v := range tt.set {
				h.Set(k, v)
			}
			src := &routing.Source{Name: "acr", Kind: "acr", Secret: tt.secret, Header: tt.header}
			err := acrProvider{}.Verify(&Request{Header: h, Body: body}, src)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Verify() = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("error %v does not wrap ErrUnauthorized", err)
			}
			if err != nil && strings.Contains(err.Error(), string(secret)) {
				t.Fatal("error reveals the secret")
			}
		})
	}
}

// TestACRNormalizeGolden covers the three delivery formats with Azure's
// own samples.
func TestACRNormalizeGolden(t *testing.T) {
	const egDigest = "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5"
	tests := []struct {
		name     string
		wantIDs  []string
		wantType []string
		wantExt  map[string]string // on the first event
		dataIs   string            // "body", or "data" (the Event Grid event's data)
	}{
		{name: "webhook-push", wantIDs: []string{"cb8c3971-9adc-488b-xxxx-43cbb4974ff5"}, wantType: []string{TypeImagePush}, dataIs: "body",
			wantExt: map[string]string{"repository": "myregistry.azurecr.io/hello-world", "tag": "v1",
				"digest": "sha256:xxxxd5c8786bb9e621a45ece0dbxxxx1cdc624ad20da9fe62e9d25490f33xxxx", "action": "push", "provider": "acr"}},
		{name: "webhook-delete", wantIDs: []string{"afc359ce-df7f-4e32-bce7-1ff7d4e3ba6a"}, wantType: []string{TypeImageDelete}, dataIs: "body",
			wantExt: map[string]string{"repository": "myregistry.azurecr.io/hello-world", "tag": "", "action": "delete"}},
		{name: "webhook-chart-push", wantIDs: []string{"6356e9e0-627f-4fed-xxxx-d9059b5143ac"}, wantType: []string{acrChartPushed}, dataIs: "body",
			wantExt: map[string]string{"repository": "repo", "tag": "wordpress-5.4.0.tgz", "action": "chart_push"}},
		{name: "eventgrid-push", wantIDs: []string{"831e1650-001e-001b-66ab-eeb76e069631"}, wantType: []string{TypeImagePush}, dataIs: "data",
			wantExt: map[string]string{"repository": "demo.azurecr.io/aci-helloworld", "tag": "v1", "digest": egDigest, "action": "push"}},
		{name: "eventgrid-delete", wantIDs: []string{"f06e3921-301f-42ec-b368-212f7d5354bd"}, wantType: []string{TypeImageDelete}, dataIs: "data",
			wantExt: map[string]string{"repository": "demo.azurecr.io/aci-helloworld", "tag": "", "digest": egDigest}},
		{name: "cloudevents-push", wantIDs: []string{"831e1650-001e-001b-66ab-eeb76e069631"}, wantType: []string{TypeImagePush}, dataIs: "data",
			wantExt: map[string]string{"repository": "demo.azurecr.io/aci-helloworld", "tag": "v1", "digest": egDigest}},
		{name: "cloudevents-batch", wantIDs: []string{"831e1650-001e-001b-66ab-eeb76e069631", "f06e3921-301f-42ec-b368-212f7d5354bd"},
			wantType: []string{TypeImagePush, TypeImageDelete}, dataIs: "data",
			wantExt: map[string]string{"repository": "demo.azurecr.io/aci-helloworld", "tag": "v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body := busSample(t, "acr", tt.name)
			res, err := acrProvider{}.Normalize(&Request{Header: h, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != len(tt.wantIDs) || res.Reply != nil || res.Ping {
				t.Fatalf("got %d events (reply %v, ping %v), want %d", len(res.Events), res.Reply, res.Ping, len(tt.wantIDs))
			}
			var datas [][]byte
			if tt.dataIs == "data" {
				var elems []struct {
					Data json.RawMessage `json:"data"`
				}
				if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
					if err := json.Unmarshal(body, &elems); err != nil {
						t.Fatal(err)
					}
				} else {
					elems = make([]struct {
						Data json.RawMessage `json:"data"`
					}, 1)
					if err := json.Unmarshal(body, &elems[0]); err != nil {
						t.Fatal(err)
					}
				}
				for _, e := range elems {
					datas = append(datas, e.Data)
				}
			}
			for i, ev := range res.Events {
				if err := ev.Validate(); err != nil {
					t.Fatalf("not a valid CloudEvent: %v", err)
				}
				if ev.ID() != tt.wantIDs[i] || ev.Type() != tt.wantType[i] {
					t.Errorf("event %d: id %q type %q, want %q %q", i, ev.ID(), ev.Type(), tt.wantIDs[i], tt.wantType[i])
				}
				want := body
				if tt.dataIs == "data" {
					want = datas[i]
				}
				if !jsonEqual(t, ev.Data(), want) {
					t.Errorf("event %d: data is not the ACR payload:\n%s", i, ev.Data())
				}
			}
			checkExt(t, res.Events[0], tt.wantExt)
			checkGolden(t, "acr-"+tt.name, res.Events)
		})
	}
}

// jsonEqual compares two JSON documents by value (the sdk re-indents a
// structured CloudEvent's data).
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

func TestACREventGridValidation(t *testing.T) {
	h, body := busSample(t, "acr", "eventgrid-validation")
	res, err := acrProvider{}.Normalize(&Request{Header: h, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 0 || res.Reply == nil || res.Reply.Status != http.StatusOK {
		t.Fatalf("result %+v: the validation handshake stores nothing and answers 200", res)
	}
	if got := string(res.Reply.Body); got != `{"validationResponse":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}` {
		t.Fatalf("reply %s", got)
	}
	checkGolden(t, "acr-eventgrid-validation", res.Events)
}

func TestACRNormalizeErrors(t *testing.T) {
	_, push := busSample(t, "acr", "webhook-push")
	tests := []struct {
		name    string
		header  http.Header
		body    []byte
		wantErr error
		ping    bool
	}{
		{name: "ping", header: acrHeader("application/json"), body: []byte(`{"id":"p-1","timestamp":"2024-01-01T00:00:00Z","action":"ping"}`), ping: true},
		{name: "malformed json", header: acrHeader("application/json"), body: []byte(`{"action":`), wantErr: ErrMalformed},
		{name: "no action", header: acrHeader("application/json"), body: []byte(`{"id":"x"}`), wantErr: ErrMalformed},
		{name: "push without repository", header: acrHeader("application/json"), body: []byte(`{"id":"x","action":"push","target":{}}`), wantErr: ErrMalformed},
		{name: "wrong type for target", header: acrHeader("application/json"), body: []byte(`{"id":"x","action":"push","target":[]}`), wantErr: ErrMalformed},
		{name: "event grid validation without code", header: acrHeader("application/json"), body: []byte(`[{"id":"v","eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{}}]`), wantErr: ErrMalformed},
		{name: "event grid event without id", header: acrHeader("application/json"), body: []byte(`[{"eventType":"Microsoft.ContainerRegistry.ImagePushed","data":{}}]`), wantErr: ErrMalformed},
		{name: "invalid cloudevent", header: acrHeader("application/cloudevents+json"), body: []byte(`{"specversion":"1.0","id":"x"}`), wantErr: ErrMalformed},
		{name: "text/plain", header: acrHeader("text/plain"), body: push, wantErr: ErrUnsupportedMediaType},
		{name: "no content type", header: http.Header{}, body: push, wantErr: ErrUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := acrProvider{}.Normalize(&Request{Header: tt.header, Body: tt.body})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Ping != tt.ping || len(res.Events) != 0 {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

func TestACRHandshake(t *testing.T) {
	h := http.Header{}
	h.Set("WebHook-Request-Origin", "eventgrid.azure.net")
	r := acrProvider{}.Handshake(h)
	if r.Status != http.StatusOK || r.Header.Get("WebHook-Allowed-Origin") != "eventgrid.azure.net" {
		t.Fatalf("reply %+v", r)
	}
	if r := (acrProvider{}).Handshake(http.Header{}); r.Status != http.StatusBadRequest {
		t.Fatalf("without origin: %d", r.Status)
	}
}

func FuzzACR(f *testing.F) {
	secret := []byte("fuzz-secret")
	for _, s := range []string{"webhook-push", "webhook-delete", "eventgrid-push", "eventgrid-validation", "cloudevents-push", "cloudevents-batch"} {
		h, body := busSample(f, "acr", s)
		f.Add(h.Get("Content-Type"), body, true)
	}
	f.Add("application/json", []byte(`[{"id":"a","eventType":"x","data":1}]`), false)
	f.Add("application/cloudevents-batch+json", []byte(`[{}]`), true)
	f.Fuzz(func(t *testing.T, ct string, body []byte, auth bool) {
		h := acrHeader(ct)
		if auth {
			h.Set("Authorization", "Bearer "+string(secret))
		}
		p := acrProvider{}
		req := &Request{Header: h, Body: body}
		if err := p.Verify(req, &routing.Source{Secret: secret}); auth != (err == nil) {
			t.Fatalf("auth=%v but Verify=%v", auth, err)
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
		}
	})
}
