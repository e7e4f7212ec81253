package ingest

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Harbor webhooks (https://goharbor.io/docs/main/working-with-projects/project-configuration/configure-webhooks/):
// a webhook policy sends artifact events in Harbor's default JSON payload
// format or, since Harbor 2.10, as CloudEvents (type harbor.artifact.pushed,
// the same data). The policy's "Auth Header" value comes back in
// Authorization (or the header the source names) and is compared in
// constant time. Each resource of an event becomes one image event.

func init() { Register(harborProvider{}) }

type harborProvider struct{}

var (
	_ Provider      = harborProvider{}
	_ EarlyVerifier = harborProvider{}
	_ Signer        = harborProvider{}
)

func (harborProvider) Kind() string { return "harbor" }

func (harborProvider) Verify(req *Request, src *routing.Source) error {
	return verifyHeaderToken(req, src, "Authorization")
}

// VerifyBeforeBody checks the header token: it does not depend on the body.
func (p harborProvider) VerifyBeforeBody(req *Request, src *routing.Source) error {
	return p.Verify(req, src)
}

// harborData is event_data (default format) or data (CloudEvents format).
type harborData struct {
	Resources []struct {
		Digest      string `json:"digest"`
		Tag         string `json:"tag"`
		ResourceURL string `json:"resource_url"`
	} `json:"resources"`
	Repository struct {
		RepoFullName string `json:"repo_full_name"`
	} `json:"repository"`
}

type harborPayload struct {
	Type      string     `json:"type"`
	OccurAt   int64      `json:"occur_at"`
	Operator  string     `json:"operator"`
	EventData harborData `json:"event_data"`
}

// harborTypes maps Harbor's event types (both formats) to ours.
var harborTypes = map[string]string{
	"PUSH_ARTIFACT": TypeImagePush, "harbor.artifact.pushed": TypeImagePush,
	"DELETE_ARTIFACT": TypeImageDelete, "harbor.artifact.deleted": TypeImageDelete,
}

func (harborProvider) Normalize(req *Request) (Result, error) {
	var (
		kind, operator, baseID string
		data                   harborData
		at                     time.Time
		payload                = req.Body
	)
	ceReq := req
	isCE := cloudEventsMode(req.Header) != binding.EncodingUnknown
	if !isCE && hasTopLevelKey(req.Body, "specversion") {
		// The CloudEvents format sent as plain JSON: read it as structured.
		ceReq = &Request{Header: req.Header.Clone(), Body: req.Body}
		ceReq.Header.Set("Content-Type", event.ApplicationCloudEventsJSON)
		isCE = true
	}
	if isCE {
		events, err := readCloudEvents(ceReq)
		if err != nil {
			return Result{}, err
		}
		if len(events) != 1 {
			return Result{}, fmt.Errorf("%w: Harbor sends one CloudEvent per request", ErrMalformed)
		}
		ce := events[0]
		if err := json.Unmarshal(ce.Data(), &data); err != nil {
			return Result{}, fmt.Errorf("%w: Harbor CloudEvent data: %v", ErrMalformed, err)
		}
		kind, baseID, at = ce.Type(), ce.ID(), ce.Time()
		if op, ok := ce.Extensions()["operator"].(string); ok {
			operator = op
		}
	} else {
		if _, err := requireJSON(req, "Harbor", false); err != nil {
			return Result{}, err
		}
		var p harborPayload
		if err := json.Unmarshal(payload, &p); err != nil {
			return Result{}, fmt.Errorf("%w: Harbor payload: %v", ErrMalformed, err)
		}
		kind, operator, data = p.Type, p.Operator, p.EventData
		if p.OccurAt > 0 {
			at = time.Unix(p.OccurAt, 0).UTC()
		}
		baseID = contentID(payload) // Harbor's default format has no id
	}
	typ, ok := harborTypes[kind]
	if !ok {
		// Scans, quotas, replication: stored with Harbor's own type.
		if kind == "" {
			return Result{}, fmt.Errorf("%w: Harbor payload has no event type", ErrMalformed)
		}
		ev := newEvent("harbor", baseID, "urn:harbor", "io.goharbor."+strings.ToLower(kind), payload)
		setExt(&ev, "actor", operator)
		if err := setData(&ev, payload); err != nil {
			return Result{}, err
		}
		return Result{Events: []event.Event{ev}}, nil
	}
	events := make([]event.Event, 0, len(data.Resources))
	for _, r := range data.Resources {
		host := ""
		if h, _, found := strings.Cut(r.ResourceURL, "/"); found {
			host = h
		}
		tag := r.Tag
		if strings.HasPrefix(tag, "sha256:") {
			tag = "" // an untagged artifact: Harbor puts the digest in tag
		}
		ref := r.Digest
		if ref == "" {
			ref = r.Tag
		}
		ev := newImageEvent("harbor", baseID+"/"+ref, typ, host, data.Repository.RepoFullName, tag, r.Digest, payload)
		setExt(&ev, "actor", operator)
		if !at.IsZero() {
			ev.SetTime(at)
		}
		if err := setData(&ev, payload); err != nil {
			return Result{}, err
		}
		events = append(events, ev)
	}
	return Result{Events: events}, nil
}

// Sign sets the auth header Harbor sends.
func (harborProvider) Sign(req *Request, _, _ string, secret []byte) {
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", string(secret))
}

// hasTopLevelKey reports whether body is a JSON object with the key: how
// Harbor's CloudEvents format, sent as plain JSON, is told from its default
// format (a repository or tag named "specversion" must not confuse it).
func hasTopLevelKey(body []byte, key string) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return false
	}
	_, ok := obj[key]
	return ok
}
