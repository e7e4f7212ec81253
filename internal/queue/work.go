package queue

import (
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Work is one unit of dispatch: one (event, app, trigger). It travels on the
// work stream as JSON.
type Work struct {
	// Source is the router source (or endpoint) name that accepted the
	// event; with the event id it scopes deduplication.
	Source string `json:"source"`
	// Event carries the CloudEvent attributes and extensions, without data:
	// dispatch needs them for names, labels and annotations, never the
	// provider payload.
	Event  event.Event    `json:"event"`
	Target routing.Target `json:"target"`
	// Accepted is when the event was accepted: its sender's 202 (the
	// Switchyard-Answered header of a webhook stored in a burst; for a
	// held target released by its approval, when it was held), else when
	// the work was stored. A replay or a dead letter's retry is accepted
	// anew. The consumer sets it from the message; it is not part of the
	// JSON. Concurrency groups order their runs by it, so runs dispatched
	// in parallel, or events judged two at a time, keep the order their
	// events were accepted in.
	Accepted time.Time `json:"-"`
}
