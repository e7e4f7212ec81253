package main

import (
	"context"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
)

// approvalSweep is how often serve expires held events past their
// deadline, so they end expired even if nobody calls.
const approvalSweep = time.Minute

var _ ingest.ApprovalStore = (*queueGate)(nil)

// Approvals finds held events on the queue once it is open.
func (g *queueGate) Approvals(ctx context.Context, source, eventID string) ([]policy.Approval, error) {
	q := g.q.Load()
	if q == nil {
		return nil, errQueueNotOpen
	}
	return q.Approvals(ctx, source, eventID)
}

// Decide records a decision on a held event once the queue is open.
func (g *queueGate) Decide(ctx context.Context, d policy.ApprovalDecision) (policy.Approval, error) {
	q := g.q.Load()
	if q == nil {
		return policy.Approval{}, errQueueNotOpen
	}
	return q.Decide(ctx, d)
}

// startApprovalSweeper expires held events past their deadline until ctx
// ends; wg waits for it.
func (r *router) startApprovalSweeper(ctx context.Context, wg *sync.WaitGroup, q *queue.Queue) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		q.RunApprovalSweeper(ctx, approvalSweep)
	}()
}

// HeldFor lists a pull request's held events once the queue is open.
func (g *queueGate) HeldFor(ctx context.Context, source, repo, number string) ([]policy.Approval, error) {
	q := g.q.Load()
	if q == nil {
		return nil, errQueueNotOpen
	}
	return q.HeldFor(ctx, source, repo, number)
}
