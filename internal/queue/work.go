package queue

import (
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
}
