package queue

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
)

// PullRequestEvents returns the status of every stored event of source
// whose repository and pullrequest extensions are repo and number (what a
// /cancel comment on that pull request stops), oldest first.
func (q *Queue) PullRequestEvents(ctx context.Context, source, repo, number string) ([]EventStatus, error) {
	var ids []string
	err := q.readStream(ctx, EventsStream, time.Time{}, func(msg jetstream.Msg, _ *jetstream.MsgMetadata) (bool, error) {
		if msg.Subject() != EventsSubjectPrefix+source {
			return true, nil
		}
		var ev event.Event
		if json.Unmarshal(msg.Data(), &ev) != nil {
			return true, nil // not an event this router wrote
		}
		ext := ev.Extensions()
		if ext["repository"] == repo && ext["pullrequest"] == number {
			ids = append(ids, ev.ID())
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	var out []EventStatus
	for _, id := range ids {
		st, err := q.Status(ctx, source, id)
		if errors.Is(err, ErrNotFound) {
			continue // stored, but its accepted record expired
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}
