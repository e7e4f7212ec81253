package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler dispatches one work item. It returns nil when the work is done (an
// already existing PipelineRun counts as done), an error marked with
// Permanent when retrying cannot help, and any other error to retry later.
// The same Work may be handled more than once (a lost ack, a router crash),
// so a Handler must be idempotent.
type Handler func(ctx context.Context, w Work) error

// ConsumerConfig configures Consume.
type ConsumerConfig struct {
	Durable       string        // prefix of the per-app consumer names, "<Durable>-<app>" (default "dispatch")
	MaxAckPending int           // bounds one app's unacknowledged work across all replicas (default 64, at least Concurrency)
	AckWait       time.Duration // default 30s; progress acks are sent every AckWait/2 while a handler runs
	MaxAttempts   int           // default 10; after this many failed deliveries the work is dead-lettered
	BackoffBase   time.Duration // default 1s, exponential with full jitter
	BackoffMax    time.Duration // default 5m
	Concurrency   int           // handler goroutines in this process (default DefaultConcurrency)
	// HandlerTimeout bounds one handler call (default 2m); a handler that
	// overruns it gets a cancelled context and its error is retried. It keeps
	// a stuck call from holding a message, with progress acks, forever.
	HandlerTimeout time.Duration
	// HandlerContext, when set, is the parent of every handler's context:
	// cancelling it interrupts running dispatches (the drain deadline), and
	// their work goes straight back to the queue for another replica.
	// Default: ctx without its cancellation, so stopping Consume lets
	// running handlers finish.
	HandlerContext context.Context
	// Metrics, when set, receive each delivery's result and the backlog.
	Metrics *Metrics
}

func (c ConsumerConfig) withDefaults() (ConsumerConfig, error) {
	if c.Durable == "" {
		c.Durable = "dispatch"
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = max(64, c.Concurrency)
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 10
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = time.Second
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 5 * time.Minute
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = 2 * time.Minute
	}
	switch {
	case c.MaxAckPending < 0, c.MaxAttempts < 0, c.Concurrency < 0:
		return c, errors.New("consumer config: counts must be positive")
	case c.AckWait < 0, c.BackoffBase < 0, c.BackoffMax < 0, c.HandlerTimeout < 0:
		return c, errors.New("consumer config: durations must not be negative")
	case c.BackoffMax < c.BackoffBase:
		return c, fmt.Errorf("consumer config: backoff max %s is below backoff base %s", c.BackoffMax, c.BackoffBase)
	}
	return c, nil
}

// Dead-letter reasons.
const (
	ReasonPermanent   = "permanent"
	ReasonExhausted   = "exhausted"
	ReasonUndecodable = "undecodable"
)

// DeadLetter is work that will not be retried, with why.
type DeadLetter struct {
	// Seq is the dead letter's sequence in SWITCHYARD_DLQ, set when read
	// back; `router dlq show|retry` take it.
	Seq       uint64    `json:"seq,omitempty"`
	Work      Work      `json:"work"`
	Reason    string    `json:"reason"` // "permanent" | "exhausted" | "undecodable"
	Attempts  int       `json:"attempts"`
	LastError string    `json:"lastError"`
	Time      time.Time `json:"time"`
	Raw       []byte    `json:"raw,omitempty"` // the original message, when it could not be decoded
}

// deadLetterWire is DeadLetter on the wire: an undecodable message has no
// Work, and a zero event.Event cannot be encoded, so work is omitted then.
type deadLetterWire struct {
	Seq       uint64    `json:"seq,omitempty"`
	Work      *Work     `json:"work,omitempty"`
	Reason    string    `json:"reason"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"lastError"`
	Time      time.Time `json:"time"`
	Raw       []byte    `json:"raw,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (d DeadLetter) MarshalJSON() ([]byte, error) {
	w := deadLetterWire{Seq: d.Seq, Reason: d.Reason, Attempts: d.Attempts, LastError: d.LastError, Time: d.Time, Raw: d.Raw}
	if d.Work.Event.Context != nil {
		w.Work = &d.Work
	}
	return json.Marshal(w)
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *DeadLetter) UnmarshalJSON(b []byte) error {
	var w deadLetterWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*d = DeadLetter{Seq: w.Seq, Reason: w.Reason, Attempts: w.Attempts, LastError: w.LastError, Time: w.Time, Raw: w.Raw}
	if w.Work != nil {
		d.Work = *w.Work
	}
	return nil
}

// DefaultConcurrency is how many dispatches run at once by default: enough
// to keep an API server busy (a create takes 10-50 ms), few enough that its
// priority and fairness does not answer 429 to one router.
const DefaultConcurrency = 32

// fetchWait bounds one request to the server made by the dispatch loop, so
// a stopped Consume does not leave a long-lived request behind.
const fetchWait = 5 * time.Second

// idlePoll is how long Consume waits before looking for work again after
// a round that found none.
const idlePoll = 100 * time.Millisecond

// consumerIdle is how long an app's consumer may go unused before the
// server removes it (it is created again when work for the app arrives).
const consumerIdle = 24 * time.Hour

// Consume dispatches work from SWITCHYARD_WORK until ctx is done. It then
// stops fetching, waits for running handlers to finish and returns nil.
// It returns an error only when the stream cannot be read at the start.
//
// Fairness: every app has its own durable pull consumer,
// "<cfg.Durable>-<app>", filtered on switchyard.work.<app> and shared by
// every router replica. Each round finds the apps with work in the stream
// and fetches from them in turn, starting one app further every round, so a
// backlog for one app delays another app's work by at most a round, not by
// the backlog (DESIGN.md section 5). MaxAckPending bounds each app's
// unacknowledged work across replicas.
//
// Per message: nil from h acks it; a Permanent error, or a failure on the
// MaxAttempts-th delivery, dead-letters it (publish to switchyard.dlq.<app>,
// then terminate); any other error redelivers it after an exponential
// backoff with full jitter. If the dead-letter publish fails the message is
// redelivered, never dropped.
func (q *Queue) Consume(ctx context.Context, cfg ConsumerConfig, h Handler) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	c := newConsumer(q, cfg, h)
	if err := c.dropSharedConsumer(ctx); err != nil {
		return err
	}
	c.loop(ctx)
	return nil
}

// newConsumer is Consume's state before its loop runs; tests drive its parts.
func newConsumer(q *Queue, cfg ConsumerConfig, h Handler) *consumer {
	return &consumer{
		q:         q,
		cfg:       cfg,
		h:         h,
		logger:    q.logger.With("consumer", cfg.Durable),
		consumers: map[string]jetstream.Consumer{},
		loads:     map[string]*appLoad{},
		pause:     pause,
	}
}

// loop is Consume's dispatch loop: it returns once ctx is done and the
// running handlers finished.
func (c *consumer) loop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	// Handlers outlive ctx so a drain finishes them; they keep its values.
	hctx := c.cfg.HandlerContext
	if hctx == nil {
		hctx = context.WithoutCancel(ctx)
	}
	slots := make(chan struct{}, c.cfg.Concurrency)
	round := 0
	for ctx.Err() == nil {
		// Pull only as many messages as there are idle handlers: a message
		// buffered here would age towards AckWait without being worked on.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		n := claimSlots(slots, c.cfg.Concurrency)

		apps, err := c.apps(ctx)
		fetched := 0
		if len(apps) > 0 {
			start := round % len(apps)
			round++
			fetched = fetchRound(ctx, apps, start, n, c.room, func(app string, most int) int {
				return c.startWork(ctx, hctx, &wg, slots, app, most)
			})
		}
		for range n - fetched {
			<-slots
		}
		wait := time.Duration(0)
		switch {
		case err != nil && ctx.Err() == nil:
			c.logger.Warn("listing the apps with work failed", "err", err)
			wait = time.Second // do not spin against a broken connection
		case fetched == 0:
			wait = idlePoll
			c.appsAt = time.Time{} // look for new apps' work at once
		}
		if wait > 0 {
			c.pause(ctx, wait)
		}
	}
}

// claimSlots takes, without waiting, every idle handler slot after the one
// the loop waited for, up to limit in all, and returns how many it holds.
func claimSlots(slots chan<- struct{}, limit int) int {
	n := 1
	for n < limit {
		select {
		case slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

// fetchRound is one round of fetches: apps in turn from apps[start], each
// asked for an equal share of the n idle slots (at least one) and never
// for more than its room, until the slots are used. take fetches up to
// most of app's work, starts it, and returns how many it started;
// fetchRound returns how many were started in all.
func fetchRound(ctx context.Context, apps []string, start, n int, room func(app string) int, take func(app string, most int) int) int {
	left := n
	share := max(1, n/len(apps))
	for i := 0; i < len(apps) && left > 0 && ctx.Err() == nil; i++ {
		app := apps[(start+i)%len(apps)]
		// Asking for more than MaxAckPending allows makes the server hold
		// the request for a second: the loop would stall.
		r := room(app)
		if r <= 0 {
			continue
		}
		left -= take(app, min(share, left, r))
	}
	return n - left
}

// room is how much more unacknowledged work app may have: MaxAckPending
// less what this process holds of it.
func (c *consumer) room(app string) int { return c.cfg.MaxAckPending - c.load(app).unacked() }

// startWork fetches up to most of app's work and runs a handler for each
// message, which gives its slot back when done; it returns how many it
// started.
func (c *consumer) startWork(ctx, hctx context.Context, wg *sync.WaitGroup, slots <-chan struct{}, app string, most int) int {
	load := c.load(app)
	started := 0
	for _, msg := range c.fetch(ctx, app, most) {
		if ctx.Err() != nil {
			// Stopping: hand it back at once rather than after AckWait.
			_ = msg.Nak()
			continue
		}
		started++
		load.running.Add(1)
		wg.Go(func() {
			defer func() { load.running.Add(-1); <-slots }()
			c.handle(hctx, msg, load)
		})
	}
	return started
}

// pause waits d, or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

type consumer struct {
	q      *Queue
	cfg    ConsumerConfig
	h      Handler
	logger *slog.Logger
	// consumers are the apps' consumers created so far; only Consume's
	// loop goroutine uses the map.
	consumers map[string]jetstream.Consumer
	stream    jetstream.Stream // the work stream's handle, once looked up
	// appList is the last appsWithWork answer, taken at appsAt: under load
	// a round then costs one fetch instead of a stream lookup and a fetch.
	appList  []string
	appsAt   time.Time
	storedAt time.Time // when the dead letters and records were last counted
	// loads are each app's unacknowledged work in this process.
	loads map[string]*appLoad
	// pause is how the loop waits between rounds; tests record it.
	pause func(ctx context.Context, d time.Duration)
}

// appLoad is one app's work this process holds unacknowledged: running
// handlers, and work waiting for its retry delay (the server counts it
// against MaxAckPending until it is delivered again).
type appLoad struct {
	running, delayed atomic.Int64
}

func (l *appLoad) unacked() int { return int(l.running.Load() + l.delayed.Load()) }

// retrying counts work handed back with a delay, until the delay is over.
func (l *appLoad) retrying(delay time.Duration) {
	l.delayed.Add(1)
	time.AfterFunc(delay, func() { l.delayed.Add(-1) })
}

// load is app's appLoad; only Consume's loop calls it.
func (c *consumer) load(app string) *appLoad {
	l, ok := c.loads[app]
	if !ok {
		l = new(appLoad)
		c.loads[app] = l
	}
	return l
}

// appsRefresh is how long the list of apps with work is reused while
// rounds find work; a round that finds none lists them again.
const appsRefresh = 100 * time.Millisecond

// apps is appsWithWork, reused for appsRefresh while rounds find work.
func (c *consumer) apps(ctx context.Context) ([]string, error) {
	if c.appList != nil && time.Since(c.appsAt) < appsRefresh {
		return c.appList, nil
	}
	apps, err := c.appsWithWork(ctx)
	if err != nil {
		c.appList = nil
		return nil, err
	}
	c.appList, c.appsAt = apps, time.Now()
	c.cfg.Metrics.countStored(ctx, c.q, &c.storedAt)
	return apps, nil
}

// dropSharedConsumer deletes the unfiltered consumer cfg.Durable that
// routers before per-app consumers shared: a work-queue stream refuses
// consumers whose subjects overlap. Its messages stay in the stream, and
// an unacknowledged one is delivered again by its app's consumer.
func (c *consumer) dropSharedConsumer(ctx context.Context) error {
	old, err := c.q.js.Consumer(ctx, WorkStream, c.cfg.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("look up consumer %s: %w", c.cfg.Durable, err)
	}
	if cfg := old.CachedInfo().Config; cfg.FilterSubject != "" || len(cfg.FilterSubjects) > 0 {
		return nil
	}
	err = c.q.js.DeleteConsumer(ctx, WorkStream, c.cfg.Durable)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("replace the shared consumer %s by per-app consumers: %w", c.cfg.Durable, err)
	}
	c.logger.Info("replaced the shared dispatch consumer by one per app")
	return nil
}

// appsWithWork lists, sorted, the apps that have messages in the work
// stream (in flight or waiting for a retry included).
func (c *consumer) appsWithWork(ctx context.Context) ([]string, error) {
	ictx, cancel := context.WithTimeout(ctx, fetchWait)
	defer cancel()
	if c.stream == nil {
		stream, err := c.q.js.Stream(ictx, WorkStream)
		if err != nil {
			return nil, err
		}
		c.stream = stream
	}
	info, err := c.stream.Info(ictx, jetstream.WithSubjectFilter(WorkSubjectPrefix+">"))
	if err != nil {
		c.stream = nil // looked up again next round
		return nil, err
	}
	apps := make([]string, 0, len(info.State.Subjects))
	counts := make(map[string]uint64, len(info.State.Subjects))
	for subject, n := range info.State.Subjects {
		app := strings.TrimPrefix(subject, WorkSubjectPrefix)
		if !consumerNameRE.MatchString(app) {
			// Not published by a router (routing only makes DNS-label
			// apps): it cannot name a consumer, so it is left alone.
			continue
		}
		apps = append(apps, app)
		counts[app] = n
	}
	c.cfg.Metrics.setPending(counts)
	sort.Strings(apps)
	return apps, nil
}

// consumerNameRE is what an app name must look like to be part of a
// consumer name.
var consumerNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// fetch takes up to n messages of app's work without waiting for more.
func (c *consumer) fetch(ctx context.Context, app string, n int) []jetstream.Msg {
	cons, ok := c.consumers[app]
	if !ok {
		var err error
		if cons, err = c.create(ctx, app); err != nil {
			// An old router may have recreated the shared consumer during
			// a rolling upgrade; it is dropped again, and this round tried
			// once more.
			if derr := c.dropSharedConsumer(ctx); derr == nil {
				cons, err = c.create(ctx, app)
			}
		}
		if err != nil {
			c.logger.Warn("create consumer failed", "app", app, "err", err)
			return nil
		}
		c.consumers[app] = cons
	}
	var msgs []jetstream.Msg
	batch, err := cons.FetchNoWait(n)
	if err == nil {
		for msg := range batch.Messages() {
			msgs = append(msgs, msg)
		}
		err = batch.Error()
	}
	switch {
	case err == nil, errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, nats.ErrNoResponders):
		// Removed while idle (a request to a removed consumer has no
		// responders): created again next round.
		delete(c.consumers, app)
	default:
		c.logger.Warn("fetch failed", "app", app, "err", err)
	}
	return msgs
}

func (c *consumer) create(ctx context.Context, app string) (jetstream.Consumer, error) {
	name := c.cfg.Durable + "-" + app
	cons, err := c.q.js.CreateOrUpdateConsumer(ctx, WorkStream, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "Switchyard dispatch of app " + app + ", shared by every router replica.",
		FilterSubject: WorkSubjectPrefix + app,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxAckPending: c.cfg.MaxAckPending,
		// The consumer decides when to give up (dead letter), so the server
		// never drops a message on its own.
		MaxDeliver:        -1,
		InactiveThreshold: consumerIdle,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", name, err)
	}
	return cons, nil
}

// handle runs one delivery to its end: ack, redelivery or dead letter.
func (c *consumer) handle(ctx context.Context, msg jetstream.Msg, load *appLoad) {
	app := strings.TrimPrefix(msg.Subject(), WorkSubjectPrefix)
	log := c.logger.With("app", app)
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery; cannot happen on a pull consumer.
		log.Error("message without metadata", "err", err)
		_ = msg.Nak()
		return
	}
	attempt := int(meta.NumDelivered)
	log = log.With("attempt", attempt, "stream_seq", meta.Sequence.Stream)
	// Settling (ack, dead letter) gets its own deadline, and still happens
	// when ctx was cancelled by a drain deadline.
	settle := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), c.q.cfg.PublishTimeout)
	}

	var w Work
	if err := json.Unmarshal(msg.Data(), &w); err != nil || w.Event.Context == nil {
		if err == nil {
			err = errors.New("work has no event")
		}
		log.Error("undecodable work", "err", err)
		sctx, cancel := settle()
		defer cancel()
		if c.deadLetter(sctx, msg, log, DeadLetter{
			Reason: ReasonUndecodable, Attempts: attempt, LastError: err.Error(), Raw: msg.Data(),
		}) {
			c.cfg.Metrics.count(app, ResultDeadLetter)
		}
		return
	}
	log = log.With("trigger", w.Target.Trigger, "event_id", w.Event.ID())
	answered := answeredAt(msg, meta.Timestamp)
	w.Accepted = headerTime(msg, acceptedHeader, answered)

	if attempt > c.cfg.MaxAttempts {
		// The previous delivery was never settled: its router crashed or its
		// terminate was lost. Crashing every router in turn is how a poison
		// message looks, so stop here.
		sctx, cancel := settle()
		defer cancel()
		if c.deadLetter(sctx, msg, log, DeadLetter{
			Work: w, Reason: ReasonExhausted, Attempts: attempt - 1,
			LastError: "delivery limit reached without a recorded result",
		}) {
			c.cfg.Metrics.count(app, ResultDeadLetter)
		}
		return
	}

	began := time.Now()
	herr := c.run(withAttempt(ctx, attempt, c.cfg.MaxAttempts), msg, w)
	took := time.Since(began)
	sctx, cancel := settle()
	defer cancel()
	result := c.settle(ctx, sctx, delivery{msg: msg, meta: meta, w: w, answered: answered, log: log, load: load}, herr)
	c.cfg.Metrics.observe(app, result, took)
}

// delivery is one message being handled, decoded.
type delivery struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
	w    Work
	// answered is when the event's sender got its 202 (answeredAt).
	answered time.Time
	log      *slog.Logger
	load     *appLoad
}

// settle acks, dead-letters or redelivers d after its handler returned
// herr, within sctx, and returns the result for the metrics. ctx is the
// handler's parent context (cancelled by the drain deadline).
func (c *consumer) settle(ctx, sctx context.Context, d delivery, herr error) string {
	msg, w, log, attempt := d.msg, d.w, d.log, int(d.meta.NumDelivered)
	result := ResultRetry
	state, reason, acked := outcomeOf(herr)
	switch {
	case acked:
		// DoubleAck waits for the server to confirm the ack. A lost ack is
		// not a loss (the work is redelivered after AckWait and the handler
		// is idempotent), but a confirmed one is the only way to log it.
		if err := msg.DoubleAck(sctx); err != nil {
			log.Warn("ack failed, work will be redelivered", "err", err)
			return result
		}
		result = ResultDone
		if state == StateCreated {
			c.cfg.Metrics.created(d.answered)
		}
		c.q.setStatus(sctx, w, state, reason, attempt)
		log.Debug("work dispatched", "state", state)
	case permanentAt(herr, attempt):
		log.Warn("work failed permanently", "err", herr)
		if c.deadLetter(sctx, msg, log, DeadLetter{
			Work: w, Reason: ReasonPermanent, Attempts: attempt, LastError: herr.Error(),
		}) {
			result = ResultDeadLetter
		}
	case ctx.Err() != nil:
		// Interrupted by the drain deadline, not failed: hand it back now
		// for another replica (or this one's next start). The attempt still
		// counts, which bounds a message that always outlasts the deadline.
		log.Info("dispatch interrupted by shutdown, left in the queue", "err", herr)
		result = ResultInterrupted
		if err := msg.Nak(); err != nil {
			log.Warn("nak failed, work will be redelivered after ack wait", "err", err)
		}
	case attempt >= c.cfg.MaxAttempts:
		log.Warn("work exhausted its attempts", "err", herr)
		if c.deadLetter(sctx, msg, log, DeadLetter{
			Work: w, Reason: ReasonExhausted, Attempts: attempt, LastError: herr.Error(),
		}) {
			result = ResultDeadLetter
		}
	default:
		delay := retryDelayFor(herr, attempt, c.cfg)
		log.Info("work failed, will retry", "err", herr, "delay", delay)
		// Recorded before the nak, so the retry's own state comes after it.
		c.q.setStatus(sctx, w, StateFailed, herr.Error(), attempt)
		if err := msg.NakWithDelay(delay); err != nil {
			log.Warn("nak failed, work will be redelivered after ack wait", "err", err)
		} else {
			d.load.retrying(delay)
		}
	}
	return result
}

// run calls the handler, sending progress acks every AckWait/2 so a slow
// dispatch is not redelivered to another replica meanwhile.
func (c *consumer) run(ctx context.Context, msg jetstream.Msg, w Work) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HandlerTimeout)
	defer cancel()
	defer keepAlive(msg, progressEvery(c.cfg.AckWait))()
	return c.h(ctx, w)
}

// keepAlive tells JetStream every period that msg is still being worked
// on (a progress ack), until the returned stop is called; stop returns
// once no more progress ack will be sent.
func keepAlive(msg jetstream.Msg, every time.Duration) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// progressEvery is the period of a running handler's progress acks: half
// of AckWait, so one reaches the server before it would redeliver.
func progressEvery(ackWait time.Duration) time.Duration { return max(ackWait/2, time.Millisecond) }

// deadLetter stores dl on switchyard.dlq.<app>, then terminates msg. If
// the store fails, msg is redelivered after a backoff instead: it is never
// removed from the work stream without its dead letter. It reports whether
// the dead letter was stored.
func (c *consumer) deadLetter(ctx context.Context, msg jetstream.Msg, log *slog.Logger, dl DeadLetter) bool {
	dl.Time = time.Now().UTC()
	data, err := json.Marshal(dl)
	if err == nil {
		id := msg.Headers().Get(jetstream.MsgIDHeader)
		if id == "" {
			// Published without an id (by hand): the stream sequence is unique.
			meta, _ := msg.Metadata()
			id = fmt.Sprintf("%s/%d", WorkStream, meta.Sequence.Stream)
		}
		subject := DLQSubjectPrefix + strings.TrimPrefix(msg.Subject(), WorkSubjectPrefix)
		err = c.q.publish(ctx, outMsg{
			stream: DLQStream,
			msg:    newMsg(subject, workContentType, data),
			id:     id + "/dlq",
		})
	}
	if err != nil {
		log.Error("dead letter failed, work will be redelivered", "reason", dl.Reason, "err", err)
		_ = msg.NakWithDelay(backoff(dl.Attempts, c.cfg.BackoffBase, c.cfg.BackoffMax))
		return false
	}
	log.Warn("work dead-lettered", "reason", dl.Reason, "attempts", dl.Attempts)
	c.q.setDeadLettered(ctx, dl)
	// A lost terminate means one more delivery, which dead-letters again
	// under the same message id: JetStream drops the duplicate.
	if err := msg.TermWithReason(dl.Reason); err != nil {
		log.Warn("terminate failed, work will be redelivered", "err", err)
	}
	return true
}

// retryDelayFor is the wait before retrying work that failed with err:
// the jittered backoff, or the server's Retry-After when that is longer,
// never more than BackoffMax.
func retryDelayFor(err error, attempt int, cfg ConsumerConfig) time.Duration {
	delay := backoff(attempt, cfg.BackoffBase, cfg.BackoffMax)
	if hint, ok := RetryDelay(err); ok && hint > delay {
		delay = min(hint, cfg.BackoffMax)
	}
	return delay
}

// backoff returns a delay for the given failed attempt (1-based): uniform in
// [0, min(max, base*2^(attempt-1))] ("full jitter"), which spreads retries of
// work that failed together, e.g. during an API server outage.
func backoff(attempt int, base, maxDelay time.Duration) time.Duration {
	ceil := base
	for i := 1; i < attempt && ceil < maxDelay; i++ {
		if ceil > maxDelay/2 {
			ceil = maxDelay
		} else {
			ceil *= 2
		}
	}
	ceil = min(ceil, maxDelay)
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil + 1)
}

// DeadLetters reads every dead letter currently in SWITCHYARD_DLQ, oldest
// first.
func (q *Queue) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	var out []DeadLetter
	err := q.readStream(ctx, DLQStream, time.Time{}, func(msg jetstream.Msg, meta *jetstream.MsgMetadata) (bool, error) {
		var dl DeadLetter
		if err := json.Unmarshal(msg.Data(), &dl); err != nil {
			return false, fmt.Errorf("decode %s: %w", msg.Subject(), err)
		}
		dl.Seq = meta.Sequence.Stream
		out = append(out, dl)
		return true, nil
	})
	return out, err
}
