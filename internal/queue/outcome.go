package queue

import (
	"context"
	"errors"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// StateSkipped is the state of work a Handler decided not to do (Skip).
const StateSkipped = policy.StateSkipped

// outcome is work a Handler settled itself: acked, with the state and
// reason to record. It travels as an error so the Handler signature stays.
type outcome struct {
	state, reason string
}

func (o *outcome) Error() string { return o.state + ": " + o.reason }

// Skip returns what a Handler returns for work the rules say not to do
// after all (a paths condition dispatch checked and no changed file
// matched): the consumer acks it, records the target as skipped with
// reason, and neither retries nor dead-letters it.
func Skip(reason string) error { return &outcome{state: StateSkipped, reason: reason} }

// Done returns what a Handler returns for work done under an assumption
// worth telling (a paths condition that could not be checked): the
// consumer acks it like nil and records the target as created with note
// as its reason.
func Done(note string) error { return &outcome{state: StateCreated, reason: note} }

// outcomeOf is the state and reason a Handler's result records when the
// work is acked, and whether it is acked: nil and Skip or Done are.
func outcomeOf(herr error) (state, reason string, ok bool) {
	var o *outcome
	switch {
	case herr == nil:
		return StateCreated, "", true
	case errors.As(herr, &o):
		return o.state, o.reason, true
	}
	return "", "", false
}

// attemptKey is the context key of a delivery's attempt.
type attemptKey struct{}

// attempt is which delivery of its work a Handler runs, of how many.
type attempt struct{ n, max int }

func withAttempt(ctx context.Context, n, maxAttempts int) context.Context {
	return context.WithValue(ctx, attemptKey{}, attempt{n, maxAttempts})
}

// LastAttempt reports whether the work a Handler runs is on its last
// attempt: failing now dead-letters it rather than retrying. It is false
// outside Consume.
func LastAttempt(ctx context.Context) bool {
	a, ok := ctx.Value(attemptKey{}).(attempt)
	return ok && a.n >= a.max
}
