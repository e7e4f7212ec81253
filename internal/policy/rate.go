package policy

import (
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxBuckets bounds the token buckets kept; past it, buckets that are full
// again (their caller has been idle long enough to have its whole burst
// back) are dropped, which changes nothing for those callers.
const maxBuckets = 4096

// Meter holds one token bucket per caller. The zero value is ready to use.
type Meter struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// Take takes n events from c's bucket (c's events per minute, refilled
// continuously, burst a minute's worth) at now. It returns nil, or a
// *RateLimit saying how long to wait when there are not enough tokens;
// then it takes none. Callers without a limit (sources) always pass.
func (m *Meter) Take(c Caller, n int, now time.Time) error {
	perMinute := c.EventsPerMinute()
	if perMinute <= 0 {
		return nil
	}
	// A reload that changes the limit starts a new bucket.
	key := c.Identity + "\x00" + c.Principal + "\x00" + strconv.Itoa(perMinute)
	m.mu.Lock()
	if m.m == nil {
		m.m = map[string]*rate.Limiter{}
	}
	lim, ok := m.m[key]
	if !ok {
		if len(m.m) >= maxBuckets {
			m.evictFull(now)
		}
		lim = rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute)
		m.m[key] = lim
	}
	m.mu.Unlock()
	res := lim.ReserveN(now, n)
	if !res.OK() {
		return &RateLimit{PerMinute: perMinute, RetryAfter: time.Minute}
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return &RateLimit{PerMinute: perMinute, RetryAfter: d}
	}
	return nil
}

// evictFull drops the buckets that are full at now. m.mu is held.
func (m *Meter) evictFull(now time.Time) {
	for k, lim := range m.m {
		if lim.TokensAt(now) >= float64(lim.Burst()) {
			delete(m.m, k)
		}
	}
}

// Len is the number of buckets kept.
func (m *Meter) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// Sampler keeps the audit trail of unauthenticated traffic bounded: such
// records are kept at most at its rate, and the next one kept counts those
// dropped in between. Decisions about authenticated callers are always
// kept.
type Sampler struct {
	mu         sync.Mutex
	lim        *rate.Limiter
	suppressed int
}

// NewSampler keeps at most perSecond unauthenticated records a second on
// average, with bursts of burst.
func NewSampler(perSecond float64, burst int) *Sampler {
	return &Sampler{lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// Keep reports whether rec goes to the audit trail, setting its
// Suppressed count. Records with an identity are always kept.
func (s *Sampler) Keep(rec *Record, now time.Time) bool {
	if rec.Identity != "" {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lim.AllowN(now, 1) {
		s.suppressed++
		return false
	}
	rec.Suppressed, s.suppressed = s.suppressed, 0
	return true
}
