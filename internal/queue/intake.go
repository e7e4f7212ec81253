package queue

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The intake stream holds verified webhooks stored as they came, while the
// router is too busy to judge them before answering (ingest.Deferred): a
// burst is answered at the speed of one publish, and judged behind the
// answers. Its messages are removed once judged.
const (
	IntakeStream        = "SWITCHYARD_INTAKE"
	IntakeSubjectPrefix = "switchyard.intake."
	// intakeConsumer is the durable consumer every replica shares.
	intakeConsumer = "intake"
)

// Header names of an intake message; its data is the body as received.
const (
	intakeSource     = "Switchyard-Source"
	intakeRemote     = "Switchyard-Remote"
	intakeSecretLine = "Switchyard-Secret-Line"
	intakeReceived   = "Switchyard-Received"
	// intakeEncoding "http-header+s2" says the data is the request's
	// header in HTTP's wire format (http.Header.Write), a blank line, and
	// the body compressed with S2.
	intakeEncoding = "Switchyard-Encoding"
	intakeFormat   = "http-header+s2"
)

// Intake is one verified webhook as stored: who sent it, when, its
// headers without any credential, and its body.
type Intake struct {
	Source string
	Remote string
	// SecretLine is the line of the source's secret that verified it.
	SecretLine int
	Received   time.Time
	Header     http.Header
	Body       []byte
}

func intakeStreamConfig(cfg Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        IntakeStream,
		Description: "Verified webhooks stored as received while the router was busy, judged behind their 202; removed once judged.",
		Subjects:    []string{IntakeSubjectPrefix + ">"},
		// No MaxAge: a stored webhook is judged, never expired.
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
		Replicas:  cfg.Replicas,
	}
}

// encodeIntake is the request's header and body (compressed with S2) as
// the data, the rest in NATS headers. The request's header is written in
// HTTP's own wire format, which costs a fraction of encoding/json's map
// encoding (measured: 6% of the deferred path's CPU). The body is
// compressed because a burst's webhooks all wait in the store (and in
// nats-server's block cache) until judged: a JSON payload shrinks to about
// a third, for microseconds of CPU.
// The data is written into dst's array when it fits.
func encodeIntake(dst []byte, in Intake) (*nats.Msg, error) {
	buf := bytes.NewBuffer(dst[:0])
	if err := in.Header.Write(buf); err != nil {
		return nil, fmt.Errorf("store intake: encode headers: %w", err)
	}
	buf.WriteString("\r\n")
	limit := s2.MaxEncodedLen(len(in.Body))
	if limit < 0 {
		return nil, errors.New("store intake: body too large to compress")
	}
	data := buf.Bytes()
	n := len(data)
	// Encode writes into data's tail, which holds its worst case.
	data = slices.Grow(data, limit)[:n+limit]
	n += len(s2.Encode(data[n:], in.Body))
	m := &nats.Msg{Subject: IntakeSubjectPrefix + in.Source, Data: data[:n], Header: nats.Header{}}
	m.Header.Set(intakeEncoding, intakeFormat)
	m.Header.Set(intakeSource, in.Source)
	m.Header.Set(intakeRemote, in.Remote)
	m.Header.Set(intakeSecretLine, strconv.Itoa(in.SecretLine))
	m.Header.Set(intakeReceived, in.Received.UTC().Format(time.RFC3339Nano))
	return m, nil
}

// decodeIntake reads what encodeIntake wrote.
func decodeIntake(h nats.Header, data []byte) (Intake, error) {
	in := Intake{Source: h.Get(intakeSource), Remote: h.Get(intakeRemote)}
	if in.Source == "" {
		return in, errors.New("intake message without a source")
	}
	if enc := h.Get(intakeEncoding); enc != intakeFormat {
		return in, fmt.Errorf("intake message: unknown encoding %q", enc)
	}
	rd := bufio.NewReader(bytes.NewReader(data))
	header, err := textproto.NewReader(rd).ReadMIMEHeader()
	if err != nil {
		return in, fmt.Errorf("intake message: headers: %w", err)
	}
	in.Header = http.Header(header)
	compressed, err := io.ReadAll(rd)
	if err != nil {
		return in, fmt.Errorf("intake message: body: %w", err)
	}
	// A corrupted length must not make the router allocate gigabytes: no
	// webhook body is larger than the router's body limit (25 MiB).
	if n, err := s2.DecodedLen(compressed); err != nil || n > maxIntakeBody {
		return in, fmt.Errorf("intake message: body of %d bytes (%v)", n, err)
	}
	if in.Body, err = s2.Decode(nil, compressed); err != nil {
		return in, fmt.Errorf("intake message: body: %w", err)
	}
	if in.SecretLine, err = strconv.Atoi(h.Get(intakeSecretLine)); err != nil {
		return in, fmt.Errorf("intake message: secret line: %w", err)
	}
	if in.Received, err = time.Parse(time.RFC3339Nano, h.Get(intakeReceived)); err != nil {
		return in, fmt.Errorf("intake message: received: %w", err)
	}
	return in, nil
}

// StoreIntake stores a verified webhook as received and returns after
// JetStream acknowledged it: the 202 that follows means stored, as every
// other 202 does. A failure wraps ErrUnavailable.
func (q *Queue) StoreIntake(ctx context.Context, in Intake) error {
	bp := intakeBufs.Get().(*[]byte)
	m, err := encodeIntake(*bp, in)
	if err != nil {
		intakeBufs.Put(bp)
		return err
	}
	err = q.publish(ctx, outMsg{stream: IntakeStream, msg: m})
	// The client copied the data into its write buffer before PublishMsg
	// returned (also on an error): the buffer is free again.
	if cap(m.Data) <= pooledIntake {
		*bp = m.Data[:0]
		intakeBufs.Put(bp)
	}
	return err
}

// maxIntakeBody bounds a stored webhook's body when it is read back: the
// largest body the router takes (ingest.DefaultMaxBody, 25 MiB), with room.
const maxIntakeBody = 32 << 20

// pooledIntake is the largest encoding buffer kept for reuse.
const pooledIntake = 64 << 10

// intakeBufs are StoreIntake's encoding buffers: during a burst every
// webhook needs one for the time of its publish.
var intakeBufs = sync.Pool{New: func() any { return new([]byte) }}

// IntakeJudge judges one stored webhook. It returns nil once the webhook
// is decided for good (stored, refused and audited); an error to try it
// again later (the queue was unavailable).
type IntakeJudge func(ctx context.Context, in Intake) error

// IntakeConfig configures ConsumeIntake.
type IntakeConfig struct {
	// Busy, when set, reports whether the router is answering a burst;
	// a webhook stored less than MaxDelay ago then waits, so the answers
	// get the CPU first.
	Busy func() bool
	// MaxDelay bounds how long Busy may hold a webhook back (default 5s).
	MaxDelay time.Duration
	// Timeout bounds one judgment (default 2m).
	Timeout time.Duration
	// Concurrency is how many webhooks are judged at once (default
	// DefaultIntakeConcurrency).
	Concurrency int
}

// DefaultIntakeConcurrency is how many stored webhooks a router judges at
// once: each judgment waits on a few JetStream round trips, so a few
// together keep a core busy.
const DefaultIntakeConcurrency = 2

// intakeAckWait is how long a router may hold a stored webhook without
// saying it is still on it (keepAlive, every third of it) before another
// may take it.
const intakeAckWait = 10 * time.Second

// intakeMaxAckPending bounds the stored webhooks held by all replicas.
const intakeMaxAckPending = 256

// intakeRetry is how long a webhook waits before it is judged again after
// the queue was unavailable.
const intakeRetry = time.Second

// ConsumeIntake judges the stored webhooks, in batches of Concurrency taken
// in the order they were stored and judged together (as webhooks answered
// at the same time are), until ctx is cancelled. Every router replica runs
// it on one shared consumer. A message that does not decode (written by no
// router) is logged and removed.
func (q *Queue) ConsumeIntake(ctx context.Context, cfg IntakeConfig, judge IntakeJudge) error {
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = 5 * time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultIntakeConcurrency
	}
	var cons jetstream.Consumer
	for cons == nil {
		var err error
		cons, err = q.js.CreateOrUpdateConsumer(ctx, IntakeStream, jetstream.ConsumerConfig{
			Durable:     intakeConsumer,
			Description: "Switchyard's judgment of the webhooks stored while busy, shared by every router replica.",
			AckPolicy:   jetstream.AckExplicitPolicy,
			// Held webhooks are kept alive with progress acks, so what a
			// crashed router held is judged by another after AckWait.
			AckWait: intakeAckWait,
			// Not Concurrency: every replica takes its batches, and
			// what a crashed router held blocks nobody.
			MaxAckPending: intakeMaxAckPending,
			MaxDeliver:    -1,
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			q.logger.Warn("create intake consumer failed", "err", err)
			pause(ctx, intakeRetry)
		}
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(cfg.Concurrency, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) {
				q.logger.Warn("intake fetch failed", "err", err)
				pause(ctx, intakeRetry)
			}
			continue
		}
		var wg sync.WaitGroup
		first := true
		for msg := range batch.Messages() {
			stop := keepAlive(msg, intakeAckWait/3)
			if first {
				q.waitBurst(ctx, cfg, msg)
				first = false
			}
			wg.Go(func() {
				defer stop()
				q.judgeIntake(ctx, cfg, msg, judge)
			})
		}
		wg.Wait()
		if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			q.logger.Warn("intake fetch failed", "err", err)
			pause(ctx, intakeRetry)
		}
	}
	return nil
}

// judgeIntake runs one stored webhook to its end: judged and removed, or
// given back to be tried again.
func (q *Queue) judgeIntake(ctx context.Context, cfg IntakeConfig, msg jetstream.Msg, judge IntakeJudge) {
	in, err := decodeIntake(msg.Headers(), msg.Data())
	if err != nil {
		q.logger.Error("intake message does not decode: removed", "err", err)
		_ = msg.Term()
		return
	}
	jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Timeout)
	err = judge(jctx, in)
	cancel()
	if err != nil {
		q.logger.Warn("stored webhook not judged yet: retrying", "source", in.Source, "err", err)
		_ = msg.NakWithDelay(intakeRetry)
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.cfg.PublishTimeout)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		// Judged again after the ack wait: its events are deduplicated.
		q.logger.Warn("intake ack failed", "source", in.Source, "err", err)
	}
}

// waitBurst holds back the judging of msg, the oldest of a batch, while
// the router answers a burst, until it was stored MaxDelay ago.
func (q *Queue) waitBurst(ctx context.Context, cfg IntakeConfig, msg jetstream.Msg) {
	if cfg.Busy == nil {
		return
	}
	meta, err := msg.Metadata()
	if err != nil {
		return
	}
	until := meta.Timestamp.Add(cfg.MaxDelay)
	for cfg.Busy() && time.Now().Before(until) && ctx.Err() == nil {
		pause(ctx, 5*time.Millisecond)
	}
}

// IntakePending returns how many stored webhooks wait to be judged.
func (q *Queue) IntakePending(ctx context.Context) (uint64, error) {
	return q.messages(ctx, IntakeStream, "intake pending")
}
