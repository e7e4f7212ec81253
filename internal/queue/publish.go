package queue

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// ErrInvalidName reports a source or app name that cannot be a NATS subject
// token. Names are validated when the manifest loads, so this is a bug, not
// an unavailable queue.
var ErrInvalidName = errors.New("invalid subject token")

// Content types set on the messages, so tools reading the streams (nats CLI,
// a replay command) know what they hold.
const (
	eventContentType = "application/cloudevents+json"
	workContentType  = "application/json"
)

type outMsg struct {
	stream string
	msg    *nats.Msg
	id     string
}

// Publish stores the event of a on switchyard.events.<source> and each of
// its work items on switchyard.work.<app>, sent together without waiting
// in between, and returns nil only after JetStream acknowledged every one of
// them. The acks are awaited together for at most Config.PublishTimeout
// (and no longer than ctx allows).
//
// Messages carry deduplication ids (source/event-id, and
// source/event-id/app/trigger for work), so publishing the same Accepted
// again, after a failure or a sender's redelivery, stores nothing twice
// within the duplicate window. A publish failure wraps ErrUnavailable; a
// malformed Accepted (invalid names, no event id) fails before anything is
// published, and a message over the server's max payload fails with
// nats.ErrMaxPayload or jetstream.ErrStreamMessageExceedsMaximum: retrying
// cannot fix either, so neither wraps ErrUnavailable.
//
// JSON event data set as bytes (event.SetData with a []byte) is stored as
// JSON, not base64. Each target becomes one work item; event data in a work
// item is dropped, since dispatch never reads provider payloads and a large
// payload copied into every work message would multiply its size.
//
// JetStream's own deduplication lasts only the duplicate window (and
// forgets a work message once it has been dispatched and removed, as soon
// as the server restarts). So Publish first looks the event up in the
// accepted-events bucket (and, with a BodyDigest, the body too), and
// records it there only after every message was acknowledged: a
// redelivery of a fully stored event publishes nothing, across restarts,
// for Config.EventsMaxAge.
func (q *Queue) Publish(ctx context.Context, a policy.Accepted) error {
	msgs, err := buildMessages(a)
	if err != nil {
		return err
	}
	keys := []recordRef{acceptedKey(a.Source, a.Event.ID())}
	if a.BodyDigest != "" {
		keys = append(keys, bodyKey(a.Source, a.BodyDigest))
	}
	switch stored, err := q.anyAccepted(ctx, keys); {
	case stored != nil:
		return stored // stored before: nothing to do
	case err != nil:
		return err
	}
	if a.Hold != nil {
		if err := q.hold(ctx, a); err != nil { // held targets: stored, not queued
			return err
		}
	}
	if err := q.publishAll(ctx, msgs); err != nil {
		return err
	}
	// Only now: a record written with the messages could outlive a failed
	// one, and the sender's retry would then find it and store nothing.
	record, err := json.Marshal(acceptedRecord(a))
	if err != nil {
		return fmt.Errorf("publish: encode accepted record: %w", err)
	}
	puts := make([]outMsg, 0, len(keys))
	for _, key := range keys {
		puts = append(puts, outMsg{stream: acceptedStream, msg: &nats.Msg{Subject: acceptedSubjectPrefix + key.key(), Data: record}})
	}
	if err := q.publishAll(ctx, puts); err != nil {
		// Everything is stored, but unrecorded: the sender's retry within
		// the duplicate window is deduplicated by the message ids; a later
		// one queues the work again, which finds its PipelineRun by name.
		return fmt.Errorf("publish: record accepted event: %w", err)
	}
	return nil
}

// The accepted-events bucket's stream and subjects: its records are
// written with the other publishes' asynchronous acks, as KeyValue.Put
// would write them but without a round trip each.
const (
	acceptedStream        = "KV_" + AcceptedBucket
	acceptedSubjectPrefix = "$KV." + AcceptedBucket + "."
)

// anyAccepted looks the keys up together and returns what is stored
// under the first key found (the event id's before the body's), or an
// error only when none is found and a lookup failed.
func (q *Queue) anyAccepted(ctx context.Context, keys []recordRef) (*StoredBefore, error) {
	stored := make([]*StoredBefore, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Go(func() { stored[i], errs[i] = q.isAccepted(ctx, key) })
	}
	wg.Wait()
	for _, s := range stored {
		if s != nil {
			return s, nil
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// isAccepted returns the record under key in the accepted-events bucket,
// nil when there is none. A record that does not decode still says the
// event was stored: its id is then the one asked for.
func (q *Queue) isAccepted(ctx context.Context, key recordRef) (*StoredBefore, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.PublishTimeout)
	defer cancel()
	entry, err := q.record(ctx, key)
	switch {
	case err == nil:
		stored := &StoredBefore{}
		if json.Unmarshal(entry.Value(), &stored.Record) != nil {
			q.logger.Warn("accepted record does not decode", "key", key.key())
		}
		return stored, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, nil
	default:
		return nil, fmt.Errorf("publish: look up accepted event: %w: %w", ErrUnavailable, err)
	}
}

// bodyKey is the record of a body-signed delivery's body digest: a
// captured body replayed with a new delivery id finds it.
func bodyKey(source, digest string) recordRef {
	return recordRef{source, "\x00body\x00" + digest}
}

// AcceptedTarget is one target of an accepted event, as recorded.
type AcceptedTarget struct {
	App       string `json:"app"`
	Trigger   string `json:"trigger"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Index is routing.Target.Index: which run of a template this is.
	Index int `json:"index,omitempty"`
	// Status is the target's dispatch state once dispatch wrote it into
	// the record (see setStatus); nil while the target is queued.
	Status *TargetState `json:"status,omitempty"`
}

// unit is the target's trigger and index as routing.Target.Unit names
// them: what tells two targets of one event and app apart.
func (t AcceptedTarget) unit() string {
	return routing.Target{Trigger: t.Trigger, Index: t.Index}.Unit()
}

// TargetState is a target's dispatch state as its event's record keeps
// it (the rest of TargetStatus is the target itself).
type TargetState struct {
	State    string    `json:"state"`
	Reason   string    `json:"reason,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
	Updated  time.Time `json:"updated"`
}

// AcceptedRecord is what the accepted-events bucket keeps of an event.
type AcceptedRecord struct {
	Source string `json:"source"`
	ID     string `json:"id"`
	Type   string `json:"type"`
	// Identity is the identity extension: who authenticated the request.
	Identity string `json:"identity,omitempty"`
	// Principal is who, behind the identity, sent it (a token's subject).
	Principal string           `json:"principal,omitempty"`
	Time      time.Time        `json:"time"`
	Targets   []AcceptedTarget `json:"targets"`
}

func acceptedRecord(a policy.Accepted) AcceptedRecord {
	r := AcceptedRecord{Source: a.Source, ID: a.Event.ID(), Type: a.Event.Type(), Time: time.Now().UTC(), Targets: []AcceptedTarget{}}
	ext := a.Event.Extensions() // a copy per call
	r.Identity, _ = ext["identity"].(string)
	r.Principal, _ = ext["principal"].(string)
	for _, t := range a.Targets {
		r.Targets = append(r.Targets, AcceptedTarget{App: t.App, Trigger: t.Trigger, Namespace: t.Namespace, Name: t.Name, Index: t.Index})
	}
	return r
}

// recordRef names a record in the accepted-events bucket: its source and
// the text hashed into its key (an event id, or a body's digest; see
// bodyKey), since ids are arbitrary text and keys are not.
type recordRef struct{ source, name string }

// acceptedKey is the record of the event eventID of source.
func acceptedKey(source, eventID string) recordRef { return recordRef{source, eventID} }

// key is the record's key: the source, then the first 128 bits of the
// name's SHA-256 in URL-safe base64 (22 characters).
//
// Short on purpose: nats-server holds every subject of a stream in memory
// for as long as the stream keeps a message on it, and a kept event has
// one or two keys for the whole of Config.EventsMaxAge. Measured
// (BenchmarkKeptKeyHeap, 200,000 keys in an embedded server, once the
// blocks' own subject state expired): 109 B of heap per key of this form,
// 147 B with the whole digest in hex (legacyKey). Shorter keys measured
// no better (16 characters: 121 B, 20: 135 B). 128 bits keep a collision,
// which would take one event for a redelivery of another, out of reach
// (below 10^-20 for a billion kept events).
func (r recordRef) key() string {
	sum := sha256.Sum256([]byte(r.name))
	return r.source + "." + base64.RawURLEncoding.EncodeToString(sum[:16])
}

// legacyKey is the record's key in the legacy bucket (LegacyAcceptedBucket):
// the source, then the name's whole SHA-256 in hex. Status-bucket keys
// keep this form (statusKey).
func (r recordRef) legacyKey() string {
	sum := sha256.Sum256([]byte(r.name))
	return r.source + "." + hex.EncodeToString(sum[:])
}

// record returns the entry of ref: from the accepted-events bucket, or,
// while the legacy bucket holds records, from there. A record in neither
// gives an error wrapping jetstream.ErrKeyNotFound.
func (q *Queue) record(ctx context.Context, ref recordRef) (jetstream.KeyValueEntry, error) {
	entry, err := q.accepted.Get(ctx, ref.key())
	if errors.Is(err, jetstream.ErrKeyNotFound) && q.legacy.holdsRecords(ctx) {
		entry, err = q.legacy.kv.Get(ctx, ref.legacyKey())
	}
	return entry, err
}

// Accepted returns the record of an accepted event, or an error wrapping
// jetstream.ErrKeyNotFound.
func (q *Queue) Accepted(ctx context.Context, source, eventID string) (AcceptedRecord, error) {
	var r AcceptedRecord
	entry, err := q.record(ctx, acceptedKey(source, eventID))
	if err != nil {
		return r, fmt.Errorf("accepted event: %w", err)
	}
	if err := json.Unmarshal(entry.Value(), &r); err != nil {
		return r, fmt.Errorf("accepted event: decode: %w", err)
	}
	return r, nil
}

func buildMessages(a policy.Accepted) ([]outMsg, error) {
	if err := validToken("source", a.Source); err != nil {
		return nil, err
	}
	if a.Event.Context == nil {
		return nil, errors.New("publish: event has no attributes")
	}
	eventID := a.Event.ID()
	if eventID == "" {
		// An empty id would deduplicate every id-less event of the source
		// into the first one.
		return nil, errors.New("publish: event has no id")
	}
	data, err := encodeEvent(a.Event)
	if err != nil {
		return nil, err
	}
	msgs := make([]outMsg, 0, 1+len(a.Targets))
	baseID := a.Source + "/" + eventID
	msgs = append(msgs, outMsg{
		stream: EventsStream,
		msg:    newMsg(EventsSubjectPrefix+a.Source, eventContentType, data),
		id:     baseID,
	})
	for _, t := range a.Targets {
		if a.Hold.Holds(t.App, t.Trigger) {
			continue // held for approval (see hold)
		}
		w := Work{Source: a.Source, Event: a.Event, Target: t}
		m, err := workMessage(w, workMsgID(a.Source, eventID, w.Target.App, w.Target.Unit()))
		if err != nil {
			return nil, err
		}
		if !a.Answered.IsZero() {
			m.msg.Header.Set(answeredHeader, a.Answered.UTC().Format(time.RFC3339Nano))
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// workMessage is w's message on switchyard.work.<app>, with message id id.
// The event's data is dropped: dispatch never reads provider payloads.
func workMessage(w Work, id string) (outMsg, error) {
	if err := validToken("app", w.Target.App); err != nil {
		return outMsg{}, err
	}
	if w.Event.Context == nil {
		return outMsg{}, fmt.Errorf("publish: work for app %q has no event attributes", w.Target.App)
	}
	// w is a copy: clearing its data leaves the caller's event intact.
	w.Event.DataEncoded = nil
	w.Event.DataBase64 = false
	data, err := json.Marshal(w)
	if err != nil {
		return outMsg{}, fmt.Errorf("publish: encode work for app %q: %w", w.Target.App, err)
	}
	return outMsg{
		stream: WorkStream,
		msg:    newMsg(WorkSubjectPrefix+w.Target.App, workContentType, data),
		id:     id,
	}, nil
}

// jsonData returns ev with JSON data marked as such, so the stored event
// embeds the payload as JSON ("data") rather than base64 ("data_base64"):
// readable on replay, and a third smaller. event.SetData marks any []byte as
// binary, and base64 would grow a 25 MiB GitHub payload past the 32 MiB
// message limit. The caller's event is not changed.
func jsonData(ev event.Event) event.Event {
	if !ev.DataBase64 || len(ev.DataEncoded) == 0 {
		return ev
	}
	switch ev.DataMediaType() {
	case event.ApplicationJSON, event.TextJSON, "":
		if json.Valid(ev.DataEncoded) {
			ev.DataBase64 = false
		}
	}
	return ev
}

// encodeEvent is the stored form of ev. json.Marshal would validate and
// then copy the whole payload again to compact it; the SDK's encoding only
// needs the validation, since the payload is stored as the provider sent it.
func encodeEvent(ev event.Event) ([]byte, error) {
	data, err := jsonData(ev).MarshalJSON()
	if err == nil && !json.Valid(data) {
		err = errors.New("not valid JSON")
	}
	if err != nil {
		return nil, fmt.Errorf("publish: encode event: %w", err)
	}
	return data, nil
}

// answeredHeader, on a work message, is when its event's sender got the
// 202, when that was before the work was stored (policy.Accepted.Answered):
// switchyard_event_to_pipelinerun_seconds counts from it.
const answeredHeader = "Switchyard-Answered"

// answeredAt is when the sender of msg's event got its 202: the header, or
// else stored, when the work was stored.
func answeredAt(msg jetstream.Msg, stored time.Time) time.Time {
	return headerTime(msg, answeredHeader, stored)
}

// acceptedHeader, on a work message published after its event was
// accepted (a held target released by its approval), is when the event
// was accepted: Work.Accepted, its place in a concurrency group, where
// other work has answeredAt. An approval does not make an event newer
// than those accepted after it.
const acceptedHeader = "Switchyard-Accepted"

// headerTime is the time in msg's header name when it is one before
// otherwise, else otherwise.
func headerTime(msg jetstream.Msg, name string, otherwise time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, msg.Headers().Get(name)); err == nil && t.Before(otherwise) {
		return t
	}
	return otherwise
}

func workMsgID(source, eventID, app, trigger string) string {
	return source + "/" + eventID + "/" + app + "/" + trigger
}

func newMsg(subject, contentType string, data []byte) *nats.Msg {
	return &nats.Msg{
		Subject: subject,
		Data:    data,
		Header:  nats.Header{"Content-Type": []string{contentType}},
	}
}

// publish sends one message and waits for JetStream's ack.
func (q *Queue) publish(ctx context.Context, m outMsg) error {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.PublishTimeout)
	defer cancel()
	ack, err := q.js.PublishMsg(ctx, m.msg, jetstream.WithMsgID(m.id), jetstream.WithExpectStream(m.stream))
	if err != nil {
		return publishError(m, err)
	}
	if ack.Duplicate {
		q.logger.Debug("duplicate message ignored", "subject", m.msg.Subject, "msg_id", m.id)
	}
	return nil
}

// publishAll sends msgs without waiting between them, then waits for every
// ack: one round trip for the event and its work instead of one each. It
// returns nil only when JetStream acknowledged every message, and a failure
// wraps ErrUnavailable as publish's does (an oversized message excepted).
func (q *Queue) publishAll(ctx context.Context, msgs []outMsg) error {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.PublishTimeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		opts := []jetstream.PublishOpt{jetstream.WithExpectStream(m.stream)}
		if m.id != "" {
			opts = append(opts, jetstream.WithMsgID(m.id))
		}
		f, err := q.js.PublishMsgAsync(m.msg, opts...)
		if err != nil {
			return publishError(m, err)
		}
		futures[i] = f
	}
	// Every ack is awaited, also after a failure: a 2xx needs them all, and
	// an early return would not make a failed one succeed.
	var first error
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				q.logger.Debug("duplicate message ignored", "subject", msgs[i].msg.Subject, "msg_id", msgs[i].id)
			}
		case err := <-f.Err():
			if first == nil {
				first = publishError(msgs[i], err)
			}
		case <-ctx.Done():
			return publishError(msgs[i], ctx.Err())
		}
	}
	return first
}

// publishError wraps a failed publish of m: with ErrUnavailable, unless
// m can never be stored (over the maximum size).
func publishError(m outMsg, err error) error {
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) {
		return fmt.Errorf("publish %s: %w", m.msg.Subject, err)
	}
	return fmt.Errorf("publish %s: %w: %w", m.msg.Subject, ErrUnavailable, err)
}

// validToken rejects a name that would change the subject's shape: empty,
// or containing a token separator, a wildcard or whitespace.
func validToken(kind, name string) error {
	if name == "" {
		return fmt.Errorf("publish: %w: empty %s name", ErrInvalidName, kind)
	}
	if strings.ContainsFunc(name, func(r rune) bool {
		return r == '.' || r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r)
	}) {
		return fmt.Errorf("publish: %w: %s name %q", ErrInvalidName, kind, name)
	}
	return nil
}
