package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Azure Container Registry event types, as Event Grid names them
// (https://learn.microsoft.com/azure/event-grid/event-schema-container-registry).
const (
	acrTypePrefix        = "Microsoft.ContainerRegistry."
	acrImagePushed       = acrTypePrefix + "ImagePushed"
	acrImageDeleted      = acrTypePrefix + "ImageDeleted"
	acrChartPushed       = acrTypePrefix + "ChartPushed"
	acrChartDeleted      = acrTypePrefix + "ChartDeleted"
	eventGridValidation  = "Microsoft.EventGrid.SubscriptionValidationEvent"
	acrWebhookTypePrefix = "com.azure.containerregistry."
)

func init() { Register(acrProvider{}) }

// acrProvider handles Azure Container Registry events, delivered three ways
// to the same source:
//
//   - the ACR webhook
//     (https://learn.microsoft.com/azure/container-registry/container-registry-webhook-reference):
//     one JSON object {"id", "timestamp", "action", "target", "request"} per
//     event; actions push, delete, chart_push, chart_delete, quarantine, and
//     ping (`az acr webhook ping`);
//   - Event Grid with the Event Grid schema: a JSON array of events whose
//     data is that same object, starting with a subscription validation
//     event answered with its validationCode
//     (https://learn.microsoft.com/azure/event-grid/webhook-event-delivery);
//   - Event Grid with the CloudEvents 1.0 schema (structured or batch mode),
//     validated first by the CloudEvents OPTIONS handshake.
//
// ACR cannot sign: the webhook's custom headers carry a static token
// ("Authorization: Bearer <secret>" by default; the source's header field
// names another), and Event Grid sends the same header when it is set as a
// static delivery property of the subscription
// (https://learn.microsoft.com/azure/event-grid/delivery-properties).
// Azure does not document that delivery properties are sent on the
// validation request, so every POST needs the token (fail closed): set it
// as a delivery property when creating the subscription.
type acrProvider struct{}

var (
	_ Provider      = acrProvider{}
	_ EarlyVerifier = acrProvider{}
	_ Handshaker    = acrProvider{}
)

func (acrProvider) Kind() string { return "acr" }

// Verify checks the static token in the configured header, in constant
// time.
func (acrProvider) Verify(req *Request, src *routing.Source) error {
	if err := verifyHeaderToken(req, src, "Authorization"); err != nil {
		return fmt.Errorf("verify acr token: %w", err)
	}
	return nil
}

// VerifyBeforeBody checks the header token: it does not depend on the body.
func (p acrProvider) VerifyBeforeBody(req *Request, src *routing.Source) error {
	return p.Verify(req, src)
}

// Handshake answers Event Grid's CloudEvents-schema validation (OPTIONS
// with WebHook-Request-Origin).
func (acrProvider) Handshake(h http.Header) *Reply { return cloudEventsHandshake(h) }

// acrPayload is the ACR event: the webhook body, and the data of an Event
// Grid event.
type acrPayload struct {
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Action    string `json:"action"`
	Target    struct {
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request struct {
		Host string `json:"host"`
	} `json:"request"`
}

// eventGridEvent is one event of the Event Grid schema
// (https://learn.microsoft.com/azure/event-grid/event-schema).
type eventGridEvent struct {
	ID        string          `json:"id"`
	Topic     string          `json:"topic"`
	Subject   string          `json:"subject"`
	EventType string          `json:"eventType"`
	EventTime string          `json:"eventTime"`
	Data      json.RawMessage `json:"data"`
}

// Normalize tells the three formats apart by their headers and shape. In
// every format the event data is the ACR payload (the webhook body, or the
// Event Grid event's data) unchanged, so rules read the same data whichever
// way the registry delivers.
func (acrProvider) Normalize(req *Request) (Result, error) {
	if cloudEventsMode(req.Header) != binding.EncodingUnknown {
		return normalizeACRCloudEvents(req)
	}
	body, err := requireJSON(req, "Azure Container Registry", false)
	if err != nil {
		return Result{}, err
	}
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		return normalizeEventGrid(body)
	}

	var p acrPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return Result{}, fmt.Errorf("%w: acr webhook: %v", ErrMalformed, err)
	}
	var typ string
	switch p.Action {
	case "ping":
		return Result{Ping: true}, nil
	case "":
		return Result{}, fmt.Errorf("%w: acr webhook has no action", ErrMalformed)
	case "push":
		typ = TypeImagePush
	case "delete":
		typ = TypeImageDelete
	case "chart_push":
		typ = acrChartPushed // the name Event Grid gives it, so one rule matches both
	case "chart_delete":
		typ = acrChartDeleted
	default:
		typ = acrWebhookTypePrefix + p.Action
	}
	ev, err := acrEvent(p.ID, typ, p, p.Timestamp, body)
	if err != nil {
		return Result{}, err
	}
	return Result{Events: []event.Event{ev}}, nil
}

// normalizeEventGrid maps an Event Grid schema delivery. A subscription
// validation event is answered with its code and stores nothing.
func normalizeEventGrid(body []byte) (Result, error) {
	var egs []eventGridEvent
	if err := json.Unmarshal(body, &egs); err != nil {
		return Result{}, fmt.Errorf("%w: event grid events: %v", ErrMalformed, err)
	}
	var res Result
	for i, eg := range egs {
		if eg.EventType == eventGridValidation {
			var v struct {
				ValidationCode string `json:"validationCode"`
			}
			if err := json.Unmarshal(eg.Data, &v); err != nil || v.ValidationCode == "" {
				return Result{}, fmt.Errorf("%w: event grid validation event has no validationCode", ErrMalformed)
			}
			reply, err := json.Marshal(map[string]string{"validationResponse": v.ValidationCode})
			if err != nil {
				return Result{}, fmt.Errorf("%w: %v", ErrMalformed, err)
			}
			res.Reply = &Reply{Status: http.StatusOK, Body: reply}
			continue
		}
		if eg.ID == "" || eg.EventType == "" {
			return Result{}, fmt.Errorf("%w: event grid event %d needs id and eventType", ErrMalformed, i)
		}
		ev, err := acrEventGridEvent(eg.ID, eg.EventType, eg.Topic, eg.EventTime, eg.Data)
		if err != nil {
			return Result{}, err
		}
		res.Events = append(res.Events, ev)
	}
	return res, nil
}

// normalizeACRCloudEvents maps Event Grid deliveries in the CloudEvents
// schema, parsed by the sdk-go HTTP binding.
func normalizeACRCloudEvents(req *Request) (Result, error) {
	ces, err := readCloudEvents(req)
	if err != nil {
		return Result{}, err
	}
	var res Result
	for _, ce := range ces {
		t := ""
		if !ce.Time().IsZero() {
			t = ce.Time().Format(time.RFC3339Nano)
		}
		ev, err := acrEventGridEvent(ce.ID(), ce.Type(), ce.Source(), t, ce.Data())
		if err != nil {
			return Result{}, err
		}
		res.Events = append(res.Events, ev)
	}
	return res, nil
}

// acrEventGridEvent maps one Event Grid event (either schema) whose data is
// an ACR payload. Types other than image push and delete keep their Event
// Grid type.
func acrEventGridEvent(id, egType, topic, eventTime string, data []byte) (event.Event, error) {
	if !json.Valid(data) {
		return event.Event{}, fmt.Errorf("%w: event %q: data is not JSON", ErrMalformed, id)
	}
	var p acrPayload
	if err := json.Unmarshal(data, &p); err != nil {
		return event.Event{}, fmt.Errorf("%w: event %q data: %v", ErrMalformed, id, err)
	}
	// Some Event Grid topics name the types without their namespace
	// ("ImagePushed"): they are the same events.
	typ := egType
	if !strings.Contains(egType, ".") && slices.Contains([]string{acrImagePushed, acrImageDeleted, acrChartPushed, acrChartDeleted}, acrTypePrefix+egType) {
		typ = acrTypePrefix + egType
	}
	switch typ {
	case acrImagePushed:
		typ = TypeImagePush
	case acrImageDeleted:
		typ = TypeImageDelete
	}
	if p.Target.Repository == "" && typ != TypeImagePush && typ != TypeImageDelete {
		// Not a registry event: keep it as Event Grid described it.
		source := topic
		if source == "" {
			source = "/azure/eventgrid"
		}
		ev := newEvent("acr", id, source, typ, data)
		setTime(&ev, eventTime, time.RFC3339Nano)
		return ev, setData(&ev, data)
	}
	return acrEvent(id, typ, p, eventTime, data)
}

// acrEvent is the image event of an ACR payload: repository
// "<registry host>/<repository>", tag, digest, action.
func acrEvent(id, typ string, p acrPayload, when string, data []byte) (event.Event, error) {
	if p.Target.Repository == "" {
		return event.Event{}, fmt.Errorf("%w: acr event %q has no target.repository", ErrMalformed, id)
	}
	ev := newImageEvent("acr", id, typ, p.Request.Host, p.Target.Repository, p.Target.Tag, p.Target.Digest, data)
	setExt(&ev, "action", p.Action)
	if when == "" {
		when = p.Timestamp
	}
	setTime(&ev, when, time.RFC3339Nano)
	return ev, setData(&ev, data)
}
