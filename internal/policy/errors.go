package policy

import (
	"errors"
	"fmt"
	"time"
)

// ErrDenied is every refusal of an authenticated caller (403).
var ErrDenied = errors.New("forbidden")

// ErrRateLimited is a caller over its events per minute (429).
var ErrRateLimited = errors.New("rate limited")

// Denial is a refusal by one rule; the 403 body names the rule, so a caller
// (an agent) can tell what to change.
type Denial struct {
	Rule    string // "scope.eventTypes", "callers", "grant", ...
	Message string
}

func (e *Denial) Error() string { return e.Rule + ": " + e.Message }

// Unwrap makes a Denial an ErrDenied.
func (e *Denial) Unwrap() error { return ErrDenied }

// RateLimit is a refusal for rate: the caller may retry after RetryAfter.
type RateLimit struct {
	PerMinute  int
	RetryAfter time.Duration
}

func (e *RateLimit) Error() string {
	return fmt.Sprintf("rate limited: at most %d events a minute; retry in %s", e.PerMinute, e.RetryAfter.Round(time.Second))
}

// Unwrap makes a RateLimit an ErrRateLimited.
func (e *RateLimit) Unwrap() error { return ErrRateLimited }
