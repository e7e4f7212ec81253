package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/google/go-github/v60/github"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// errNotComparable marks a compare question GitHub cannot answer whatever
// the retries: the payload or the source's apiURL is unusable.
var errNotComparable = errors.New("not comparable")

// compareCacheSize bounds the answers a ChangesFetcher keeps: a push whose
// paths check fires many triggers asks GitHub once.
const compareCacheSize = 256

// ChangesFetcher asks GitHub's compare API for the files of a push whose
// paths check routing deferred (routing.PathsCheck). Dispatch calls it
// after the 202, so a slow GitHub delays a run, never a sender; it
// implements dispatch.ChangesFetcher. Answers are kept (the changes between
// two commits never change) and concurrent questions about one push share
// one call, so a push that fires many triggers costs one or two requests.
type ChangesFetcher struct {
	source func(name string) *routing.Source

	mu      sync.Mutex
	answers map[string]*compareCall
	order   []string // kept answers, oldest first
}

// compareCall is one question to the compare API, running or answered.
type compareCall struct {
	done chan struct{}
	ch   *routing.Changes
	err  error
}

// NewChangesFetcher returns a ChangesFetcher that finds each source (its
// kind, apiURL and apiToken) with source, which should read the rules in
// force; source returns nil for a source that is not configured.
func NewChangesFetcher(source func(name string) *routing.Source) *ChangesFetcher {
	return &ChangesFetcher{source: source, answers: map[string]*compareCall{}}
}

// Changes returns the files c's push changed. They are incomplete, with a
// Reason, when they cannot be known: the source is gone, is not GitHub or
// has no apiToken, GitHub refused the question (a 4xx), or listed its
// maximum of files; a paths condition then matches. The error is for
// failures a retry may heal: a timeout, a 5xx, a rate limit. The Changes
// returned are shared: callers must not change them.
func (f *ChangesFetcher) Changes(ctx context.Context, c routing.PathsCheck) (*routing.Changes, error) {
	src := f.source(c.Source)
	switch {
	case src == nil:
		return &routing.Changes{Reason: "source " + c.Source + " is not configured any more"}, nil
	case src.Kind != "github":
		return &routing.Changes{Reason: "source " + c.Source + " is not a github source"}, nil
	case len(src.APIToken) == 0:
		return &routing.Changes{Reason: "source " + c.Source + " has no apiToken to ask GitHub's compare API"}, nil
	}
	key := c.Source + "\x00" + c.Repository + "\x00" + c.Before + "\x00" + c.After
	f.mu.Lock()
	call, ok := f.answers[key]
	if !ok {
		call = &compareCall{done: make(chan struct{})}
		f.answers[key] = call
		f.mu.Unlock()
		call.ch, call.err = askCompare(ctx, src, c.ChangesQuery)
		close(call.done)
		f.keep(key, call)
	} else {
		f.mu.Unlock()
	}
	select {
	case <-call.done:
		return call.ch, call.err
	case <-ctx.Done():
		return nil, fmt.Errorf("compare API: %w", ctx.Err())
	}
}

// keep remembers an answered call, or forgets a failed one so the retry
// asks again.
func (f *ChangesFetcher) keep(key string, call *compareCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if call.err != nil {
		delete(f.answers, key)
		return
	}
	f.order = append(f.order, key)
	if len(f.order) > compareCacheSize {
		delete(f.answers, f.order[0])
		f.order = f.order[1:]
	}
}

// askCompare is compareChanges with its failures sorted: those a retry may
// heal are errors, the others incomplete Changes saying why.
func askCompare(ctx context.Context, src *routing.Source, q routing.ChangesQuery) (*routing.Changes, error) {
	ch, err := compareChanges(ctx, src, q)
	switch {
	case err == nil:
		return ch, nil
	case transientCompareError(err):
		return nil, fmt.Errorf("compare API: %w", err)
	}
	return &routing.Changes{Reason: "compare API: " + err.Error()}, nil
}

// transientCompareError reports whether asking again may heal err: a
// network error or timeout, a 5xx, a rate limit. A 4xx (bad credentials,
// an unknown repository or commit) and an unusable question will not heal.
func transientCompareError(err error) bool {
	var limit *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	var resp *github.ErrorResponse
	switch {
	case errors.Is(err, errNotComparable):
		return false
	case errors.As(err, &limit), errors.As(err, &abuse):
		return true
	case errors.As(err, &resp) && resp.Response != nil:
		code := resp.Response.StatusCode
		return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
	}
	return true
}
