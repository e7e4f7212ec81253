package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Operator tools: dead-letter inspection and retry, and replay of stored
// events. They work on a running system: every replica's consumer picks up
// what they queue.

// ErrNotFound reports a dead letter or event that is not (or no longer) in
// its stream.
// Callers that must not import this package detect it by its NotFound
// method.
var ErrNotFound error = notFoundError{}

type notFoundError struct{}

func (notFoundError) Error() string { return "not found" }

// NotFound marks the error as an absent record.
func (notFoundError) NotFound() bool { return true }

// DeadLetterAt reads the dead letter with stream sequence seq.
func (q *Queue) DeadLetterAt(ctx context.Context, seq uint64) (DeadLetter, error) {
	_, dl, err := q.deadLetterAt(ctx, seq)
	return dl, err
}

// deadLetterAt is DeadLetterAt, also returning the dead-letter stream.
func (q *Queue) deadLetterAt(ctx context.Context, seq uint64) (jetstream.Stream, DeadLetter, error) {
	s, err := q.js.Stream(ctx, DLQStream)
	if err != nil {
		return nil, DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			err = ErrNotFound
		}
		return nil, DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	var dl DeadLetter
	if err := json.Unmarshal(raw.Data, &dl); err != nil {
		return nil, DeadLetter{}, fmt.Errorf("dead letter %d: decode: %w", seq, err)
	}
	dl.Seq = raw.Sequence
	return s, dl, nil
}

// RetryDeadLetter puts the work of dead letter seq back on the work stream
// and then removes the dead letter. The work keeps its target, so its
// PipelineRun name: if a PipelineRun was created after all, the retry finds
// it (AlreadyExists) and creates nothing. A crash between the two steps
// leaves the dead letter in place; retrying it again is deduplicated by the
// message id ("dlq-retry/<seq>") and by the PipelineRun name.
func (q *Queue) RetryDeadLetter(ctx context.Context, seq uint64) (Work, error) {
	s, dl, err := q.deadLetterAt(ctx, seq)
	if err != nil {
		return Work{}, err
	}
	if dl.Work.Event.Context == nil {
		return Work{}, fmt.Errorf("dead letter %d (%s) holds no decodable work; inspect it with dlq show", seq, dl.Reason)
	}
	// Queued again before it is published: the consumer may take it (and
	// record its own state) at once.
	q.clearStatus(ctx, dl.Work)
	if err := q.Requeue(ctx, dl.Work, "dlq-retry/"+strconv.FormatUint(seq, 10)); err != nil {
		q.setDeadLettered(ctx, dl)
		return Work{}, err
	}
	if err := s.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return dl.Work, fmt.Errorf("retry dead letter %d: queued, but not removed: %w", seq, err)
	}
	return dl.Work, nil
}

// Requeue publishes work for dispatch again (a replay). key makes the
// message id unique to this replay, so JetStream's duplicate window does not
// drop it; dispatch's own deduplication is the PipelineRun name in the
// work's target.
func (q *Queue) Requeue(ctx context.Context, w Work, key string) error {
	m, err := workMessage(w, workMsgID(w.Source, w.Event.ID(), w.Target.App, w.Target.Unit())+"/"+key)
	if err != nil {
		return err
	}
	return q.publish(ctx, m)
}

// StoredEvent is an accepted event as the events stream keeps it.
type StoredEvent struct {
	Seq    uint64
	Source string
	Stored time.Time
	Event  event.Event
}

// Events calls fn for every stored event accepted at or after since
// (zero: all), oldest first, until fn returns false or the stream's end.
func (q *Queue) Events(ctx context.Context, since time.Time, fn func(StoredEvent) bool) error {
	return q.readStream(ctx, EventsStream, since, func(msg jetstream.Msg, meta *jetstream.MsgMetadata) (bool, error) {
		ev := event.New()
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			return false, fmt.Errorf("decode message %d: %w", meta.Sequence.Stream, err)
		}
		return fn(StoredEvent{
			Seq:    meta.Sequence.Stream,
			Source: strings.TrimPrefix(msg.Subject(), EventsSubjectPrefix),
			Stored: meta.Timestamp,
			Event:  ev,
		}), nil
	})
}

// readStream reads stream from since (zero: the start) with an ordered
// consumer, calling fn per message until it returns false, an error, or
// the stream's end.
func (q *Queue) readStream(ctx context.Context, stream string, since time.Time, fn func(jetstream.Msg, *jetstream.MsgMetadata) (bool, error)) error {
	s, err := q.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	if st := s.CachedInfo().State; st.Msgs == 0 || (!since.IsZero() && st.LastTime.Before(since)) {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if !since.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &since
	}
	oc, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	it, err := oc.Messages()
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	defer it.Stop()
	for {
		nctx, cancel := context.WithTimeout(ctx, fetchWait)
		msg, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
				return nil // nothing newer arrived: the end
			}
			return fmt.Errorf("read %s: %w", stream, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		more, err := fn(msg, meta)
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if !more || meta.NumPending == 0 {
			return nil
		}
	}
}
