package ingest

import (
	"encoding/json"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

// checkDataIsJSON fails t when ev says its data is valid JSON (dataIsJSON,
// on which routing skips its own scan of the body) and it is not.
func checkDataIsJSON(t *testing.T, ev *event.Event) {
	t.Helper()
	if dataIsJSON(ev) && !json.Valid(ev.Data()) {
		t.Fatalf("%s: data declared application/json is not JSON: %.120q", ev.Type(), ev.Data())
	}
}

// Every provider's events say their data is JSON only when it is: a body
// cut short, with trailing bytes or with a broken value is refused, or its
// events are not marked (and routing validates their data itself). And the
// mark is there for every sample, so routing does skip its second scan on
// the payloads providers really send.
func TestMalformedBodyIsNeverDataIsJSON(t *testing.T) {
	type sample struct {
		name string
		kind string
		req  func() *Request
	}
	var samples []sample
	for _, tc := range sampleCases {
		samples = append(samples, sample{tc.kind + "/" + tc.sample, tc.kind, func() *Request { return sampleRequest(t, tc.kind, tc.sample) }})
	}
	samples = append(samples, sample{"github/push", "github", func() *Request {
		return &Request{Header: githubHeader("push", "d-1"), Body: readSample(t, "github", "push.json")}
	}})
	for _, bus := range [][2]string{{"cloudevents", "structured"}, {"cloudevents", "batch"}, {"acr", "webhook-push"}, {"acr", "cloudevents-push"}, {"gar", "insert"}} {
		samples = append(samples, sample{bus[0] + "/" + bus[1], bus[0], func() *Request {
			h, body := busSample(t, bus[0], bus[1])
			return &Request{Header: h, Body: body}
		}})
	}
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			p := lookupProvider(t, s.kind)
			res, err := p.Normalize(s.req())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) == 0 {
				t.Fatal("no events")
			}
			for _, ev := range res.Events {
				if json.Valid(ev.Data()) && !dataIsJSON(&ev) {
					t.Errorf("%s: JSON data not marked as such (content type %q, base64 %v): routing scans it twice", ev.Type(), ev.DataContentType(), ev.DataBase64)
				}
			}
			body := s.req().Body
			broken := [][]byte{
				body[:len(body)-1],
				body[:len(body)/2],
				append(append([]byte{}, body...), []byte(`}x`)...),
				append(append([]byte{}, body...), []byte(` {"a":1}`)...),
				append([]byte(`{"a":tru,`), body[1:]...),
				append([]byte(`{"a":"\x01",`), body[1:]...),
			}
			for i, b := range broken {
				req := s.req()
				req.Body = b
				res, err := p.Normalize(req)
				if err != nil {
					continue
				}
				for _, ev := range res.Events {
					if dataIsJSON(&ev) && !json.Valid(ev.Data()) {
						t.Errorf("broken body %d: %s marked JSON: %.80q", i, ev.Type(), ev.Data())
					}
				}
			}
		})
	}
}

// RouteInput tells routing that a provider's JSON data is valid (so
// routing skips its own scan), and nothing else: not data of another
// content type, not base64 data, not no data.
func TestRouteInputKnowsProvidersValidateJSON(t *testing.T) {
	rules := mustRules(t, ghSource, map[string]string{"S": "x"})
	src := rules.Source("gh")
	res, err := lookupProvider(t, "github").Normalize(&Request{Header: githubHeader("push", "d-1"), Body: readSample(t, "github", "push.json")})
	if err != nil {
		t.Fatal(err)
	}
	if in := RouteInput(rules, src, &res.Events[0], nil); !in.DataIsJSON {
		t.Error("a normalized GitHub push: DataIsJSON false, want true")
	}
	for name, set := range map[string]func(*event.Event) error{
		"text": func(ev *event.Event) error { return ev.SetData("text/plain", []byte("{not json")) },
		"json with parameters": func(ev *event.Event) error {
			return ev.SetData("application/json; charset=utf-8", []byte(`{"a":1}`))
		},
		"base64": func(ev *event.Event) error {
			if err := ev.SetData(event.ApplicationJSON, []byte("{not json")); err != nil {
				return err
			}
			ev.DataBase64 = true
			return nil
		},
		"none": func(ev *event.Event) error { ev.DataEncoded = nil; return nil },
	} {
		ev := event.New()
		ev.SetID("1")
		ev.SetSource("s")
		ev.SetType("t")
		if err := set(&ev); err != nil {
			t.Fatal(err)
		}
		if in := RouteInput(rules, src, &ev, nil); in.DataIsJSON {
			t.Errorf("%s: DataIsJSON true, want false", name)
		}
	}
}
