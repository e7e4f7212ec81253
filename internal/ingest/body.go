package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// DefaultMaxInflight bounds the memory all request bodies being read or
// processed may hold at once: an unauthenticated flood of large posts
// waits or gets 503 instead of taking the router's memory.
const DefaultMaxInflight = 64 << 20

// bodyWait is how long a request waits for room in the body budget before
// it is answered 503 with Retry-After.
const bodyWait = 2 * time.Second

// readStep is how much a body of unknown length reserves at a time.
const readStep = 1 << 20

// bodyBudget is a byte semaphore over request bodies.
type bodyBudget struct {
	sem  *semaphore.Weighted
	size int64
	wait time.Duration
}

func newBodyBudget(size int64) *bodyBudget {
	return &bodyBudget{sem: semaphore.NewWeighted(size), size: size, wait: bodyWait}
}

// reserve takes n bytes of the budget, waiting at most b.wait.
func (b *bodyBudget) reserve(ctx context.Context, n int64) error {
	n = min(n, b.size) // a body larger than the budget waits for all of it
	if b.sem.TryAcquire(n) {
		return nil // the common case, without a timer
	}
	ctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	if err := b.sem.Acquire(ctx, n); err != nil {
		return fmt.Errorf("%w: too many request bodies in flight; retry", ErrBusy)
	}
	return nil
}

func (b *bodyBudget) release(n int64) { b.sem.Release(min(n, b.size)) }

// pooledBody is the largest body kept for reuse: a typical webhook.
const pooledBody = 64 << 10

// bodies holds the buffers of bodies no longer referenced (recycleBody),
// so a burst's deferred webhooks do not each allocate one.
var bodies = sync.Pool{New: func() any { return new([]byte) }}

// newBody returns a buffer of n bytes, reused when one is free.
func newBody(n int64) []byte {
	if n > pooledBody {
		return make([]byte, n)
	}
	bp := bodies.Get().(*[]byte)
	if int64(cap(*bp)) < n {
		*bp = make([]byte, n, max(n, 8<<10))
	}
	return (*bp)[:n]
}

// recycleBody gives back the buffer of a body nothing references any
// more. Only the deferred path can say so (its body was copied into the
// stored message); a judged body lives on in the event, so the sync path
// never recycles.
func recycleBody(body []byte) {
	if cap(body) == 0 || cap(body) > pooledBody {
		return
	}
	body = body[:0]
	bodies.Put(&body)
}

// readBody reads at most limit bytes of r's body within the budget. A body
// announced larger than limit is refused before a byte is read. The caller
// must call release once it no longer holds the body.
func (b *bodyBudget) readBody(r *http.Request, limit int64) (body []byte, release func(), err error) {
	var held int64
	release = func() { b.release(held); held = 0 }
	tooLarge := fmt.Errorf("%w: limit is %d bytes", ErrTooLarge, limit)
	if r.ContentLength > limit {
		return nil, release, tooLarge
	}
	if r.ContentLength >= 0 {
		if err := b.reserve(r.Context(), r.ContentLength); err != nil {
			return nil, release, err
		}
		held = r.ContentLength
		body = newBody(r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, release, fmt.Errorf("%w: read body: %v", ErrMalformed, err)
		}
		return body, release, nil
	}
	// Unknown length (chunked): reserve as the body grows.
	rd := http.MaxBytesReader(nil, r.Body, limit)
	for {
		if err := b.reserve(r.Context(), readStep); err != nil {
			return nil, release, err
		}
		held += readStep
		body = slices.Grow(body, readStep)
		n, err := io.ReadFull(rd, body[len(body):len(body)+readStep])
		body = body[:len(body)+n]
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return body, release, nil
		case err != nil:
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, release, tooLarge
			}
			return nil, release, fmt.Errorf("%w: read body: %v", ErrMalformed, err)
		}
	}
}
