package recovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Hook names one webhook: a repository's, an organization's or the GitHub
// App's.
type Hook = routing.RecoverHook

// Delivery is one attempt of the host to deliver an event.
type Delivery struct {
	ID          int64 // the attempt's id, what a redelivery names
	GUID        string
	Event       string
	Action      string
	Status      string
	StatusCode  int
	DeliveredAt time.Time
	Redelivery  bool
}

// OK reports whether the attempt succeeded: a 2xx and, where the host
// says, status OK.
func (d Delivery) OK() bool {
	return d.StatusCode >= 200 && d.StatusCode < 300 && (d.Status == "" || strings.EqualFold(d.Status, "OK"))
}

// Host is the deliveries API of a Git host. List returns one page, newest
// first, and the cursor of the next ("" after the last).
type Host interface {
	List(ctx context.Context, hook Hook, cursor string) (page []Delivery, next string, err error)
	Redeliver(ctx context.Context, hook Hook, deliveryID int64) error
}

// Store says whether Switchyard stored an event (queue.Queue.Stored).
type Store interface {
	Stored(ctx context.Context, source, eventID string) (bool, error)
}

// Action is what Run did about one delivery.
type Action string

// The actions, as the command prints them and metrics count them.
const (
	Redelivered   Action = "redelivered"
	AlreadyStored Action = "already stored"
	Succeeded     Action = "succeeded"
	DryRun        Action = "dry-run"
	GaveUp        Action = "gave up"
	Failed        Action = "redeliver failed"
)

// DefaultMaxAttempts: the original attempt and two redeliveries.
const DefaultMaxAttempts = 3

// Options say what Run recovers.
type Options struct {
	Source string // the Switchyard source the hook delivers to
	Hook   Hook
	Since  time.Time // deliveries before it are not looked at
	DryRun bool
	// MaxAttempts stops redelivering a GUID that failed this many times;
	// DefaultMaxAttempts when zero.
	MaxAttempts int
	// Progress, when set, is told the count listed so far after each page.
	Progress func(listed int)
}

// Result is one GUID's outcome: its newest attempt, how many attempts it
// had, and the action taken.
type Result struct {
	Delivery Delivery
	Attempts int
	Action   Action
	Err      error // with Failed: why the host refused the redelivery
}

// Report is what a Run did.
type Report struct {
	Listed  int // attempts listed within Since
	Results []Result
}

// Count is how many results took action a.
func (r Report) Count(a Action) int {
	n := 0
	for _, res := range r.Results {
		if res.Action == a {
			n++
		}
	}
	return n
}

// ErrRedeliver wraps the error Run returns when some redeliveries failed;
// the Report says which.
var ErrRedeliver = errors.New("some redeliveries failed")

// Run recovers the failed, unstored deliveries of o.Hook (see the package
// doc). An error listing or looking up ends it with the report so far.
func Run(ctx context.Context, host Host, store Store, o Options) (Report, error) {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	groups, order, listed, err := list(ctx, host, o)
	rep := Report{Listed: listed}
	if err != nil {
		return rep, err
	}
	failed := 0
	for _, guid := range order {
		attempts := groups[guid]
		res := Result{Delivery: attempts[0], Attempts: len(attempts)}
		if res.Action, err = decide(ctx, store, o, attempts); err != nil {
			return rep, err
		}
		if res.Action == Redelivered {
			if res.Err = host.Redeliver(ctx, o.Hook, res.Delivery.ID); res.Err != nil {
				res.Action = Failed
				failed++
			}
		}
		rep.Results = append(rep.Results, res)
	}
	if failed > 0 {
		return rep, fmt.Errorf("%w: %d of %d", ErrRedeliver, failed, failed+rep.Count(Redelivered))
	}
	return rep, nil
}

// decide says what to do about one GUID's attempts, newest first.
func decide(ctx context.Context, store Store, o Options, attempts []Delivery) (Action, error) {
	for _, d := range attempts {
		if d.OK() {
			return Succeeded, nil
		}
	}
	stored, err := store.Stored(ctx, o.Source, attempts[0].GUID)
	switch {
	case err != nil:
		return "", fmt.Errorf("recover %s: %w", attempts[0].GUID, err)
	case stored:
		return AlreadyStored, nil
	case len(attempts) >= o.MaxAttempts:
		return GaveUp, nil
	case o.DryRun:
		return DryRun, nil
	}
	return Redelivered, nil
}

// list pages through the hook's deliveries until one older than o.Since,
// and groups the attempts by GUID, newest first, in the order of each
// GUID's newest attempt.
func list(ctx context.Context, host Host, o Options) (map[string][]Delivery, []string, int, error) {
	groups := map[string][]Delivery{}
	var order []string
	listed, cursor := 0, ""
	for {
		page, next, err := host.List(ctx, o.Hook, cursor)
		if err != nil {
			return nil, nil, listed, fmt.Errorf("list deliveries of %s: %w", o.Hook, err)
		}
		done := next == "" || next == cursor // a host repeating its cursor would page forever
		for _, d := range page {
			if d.DeliveredAt.Before(o.Since) {
				done = true // newest first: the rest is older still
				continue
			}
			if d.GUID == "" {
				continue
			}
			listed++
			if _, seen := groups[d.GUID]; !seen {
				order = append(order, d.GUID)
			}
			groups[d.GUID] = append(groups[d.GUID], d)
		}
		if o.Progress != nil {
			o.Progress(listed)
		}
		if done {
			return groups, order, listed, nil
		}
		cursor = next
	}
}
