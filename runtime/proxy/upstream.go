package proxy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Upstream is one replica the proxy can send requests to. The identifying
// fields are set by whoever creates it and are never written afterwards; the
// state is kept in atomic fields so the request path reads it without locks.
//
// The zero state is healthy, not ejected and not draining: a controller that
// wants a new replica to wait for its first health check calls
// SetHealthy(false) before handing it to the proxy.
type Upstream struct {
	// ID identifies the replica, normally its container ID.
	ID string
	// Service is the name of the service the replica belongs to.
	Service string
	// Replica is the replica's number within its service (1, 2, ...).
	Replica int
	// Name is a human-readable name for logs, such as the container name.
	// When empty, the ID is used.
	Name string
	// Addr is the "host:port" the proxy dials.
	Addr string

	inflight   atomic.Int64
	served     atomic.Uint64
	fails      atomic.Uint64
	consec5xx  atomic.Int32
	consecConn atomic.Int32
	unhealthy  atomic.Bool
	draining   atomic.Bool
	// ejectedUntil is the end of the current ejection in Unix nanoseconds,
	// or 0 when the upstream has never been ejected or was un-ejected.
	ejectedUntil atomic.Int64

	// mu guards the rare paths: ejection bookkeeping and drain waiters.
	mu        sync.Mutex
	ejections int
	lastEnd   int64
	idle      chan struct{}
}

// String returns the upstream's name, or its ID when it has none.
func (u *Upstream) String() string {
	if u.Name != "" {
		return u.Name
	}
	return u.ID
}

// Inflight returns the number of requests currently being served.
func (u *Upstream) Inflight() int64 { return u.inflight.Load() }

// Served returns the number of tries sent to the upstream so far.
func (u *Upstream) Served() uint64 { return u.served.Load() }

// Fails returns the number of tries that failed: connection failures,
// timeouts and 5xx answers.
func (u *Upstream) Fails() uint64 { return u.fails.Load() }

// Healthy reports the active health state last set with SetHealthy.
func (u *Upstream) Healthy() bool { return !u.unhealthy.Load() }

// Draining reports whether the upstream has been taken out of rotation.
func (u *Upstream) Draining() bool { return u.draining.Load() }

// EjectedUntil returns when the current or last passive-health ejection
// ends, or the zero time when the upstream is not ejected and never was
// (or was un-ejected by a health check).
func (u *Upstream) EjectedUntil() time.Time {
	n := u.ejectedUntil.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Ejections returns how many times passive health checking has ejected the
// upstream in its current streak; it decides the next backoff.
func (u *Upstream) Ejections() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ejections
}

// Available reports whether the upstream may receive new requests at now:
// healthy, not draining, and not ejected.
func (u *Upstream) Available(now time.Time) bool {
	if u.unhealthy.Load() || u.draining.Load() {
		return false
	}
	until := u.ejectedUntil.Load()
	return until == 0 || now.UnixNano() >= until
}

// SetHealthy records the result of an active health check. A transition
// from unhealthy to healthy also ends a passive ejection, as Envoy does on a
// successful active check: the replica has proven itself again. The
// ejection streak is kept, so a replica that keeps failing still backs off.
func (u *Upstream) SetHealthy(healthy bool) {
	was := !u.unhealthy.Swap(!healthy)
	if healthy && !was {
		u.consec5xx.Store(0)
		u.consecConn.Store(0)
		u.ejectedUntil.Store(0)
	}
}

// acquire counts a request against the upstream. It fails when the upstream
// started draining after it was selected, so Drain never misses a request
// that slipped in between selection and counting: Drain sets draining before
// reading the in-flight count, and acquire counts before reading draining.
func (u *Upstream) acquire() bool {
	u.inflight.Add(1)
	if u.draining.Load() {
		u.release()
		return false
	}
	u.served.Add(1)
	return true
}

// release ends a request counted by acquire.
func (u *Upstream) release() {
	if u.inflight.Add(-1) == 0 && u.draining.Load() {
		u.mu.Lock()
		if u.idle != nil {
			close(u.idle)
			u.idle = nil
		}
		u.mu.Unlock()
	}
}

// waitIdle blocks until no request is in flight or ctx ends.
func (u *Upstream) waitIdle(ctx context.Context) error {
	for {
		u.mu.Lock()
		if u.inflight.Load() <= 0 {
			u.mu.Unlock()
			return nil
		}
		if u.idle == nil {
			u.idle = make(chan struct{})
		}
		ch := u.idle
		u.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("drain replica %s: %d requests still in flight: %w", u, u.inflight.Load(), ctx.Err())
		}
	}
}

// Reasons passed to Options.OnEject.
const (
	// EjectConsecutive5xx means the replica answered 5xx too many times in
	// a row.
	EjectConsecutive5xx = "consecutive_5xx"
	// EjectConnectFailure means connections to the replica failed.
	EjectConnectFailure = "connect_failure"
)

// Outlier configures passive health checking, modelled on Envoy's outlier
// detection. Zero fields take the defaults.
type Outlier struct {
	// Consecutive5xx is how many 5xx answers (and try timeouts) in a row
	// eject a replica. Default 5.
	Consecutive5xx int
	// ConsecutiveConnectFailures is how many failed or broken connections
	// in a row eject a replica. Default 1: a replica that cannot be reached
	// leaves rotation at once.
	ConsecutiveConnectFailures int
	// BaseEjection is the first ejection's length; each further ejection in
	// a streak doubles it. Default 30s.
	BaseEjection time.Duration
	// MaxEjection caps the ejection length. A replica that stays
	// un-ejected for this long starts a new streak. Default 5m.
	MaxEjection time.Duration
}

// Defaults of Outlier.
const (
	DefaultConsecutive5xx             = 5
	DefaultConsecutiveConnectFailures = 1
	DefaultBaseEjection               = 30 * time.Second
	DefaultMaxEjection                = 5 * time.Minute
)

func (o Outlier) withDefaults() Outlier {
	if o.Consecutive5xx <= 0 {
		o.Consecutive5xx = DefaultConsecutive5xx
	}
	if o.ConsecutiveConnectFailures <= 0 {
		o.ConsecutiveConnectFailures = DefaultConsecutiveConnectFailures
	}
	if o.BaseEjection <= 0 {
		o.BaseEjection = DefaultBaseEjection
	}
	if o.MaxEjection <= 0 {
		o.MaxEjection = DefaultMaxEjection
	}
	if o.MaxEjection < o.BaseEjection {
		o.MaxEjection = o.BaseEjection
	}
	return o
}

// EjectionDuration returns the length of the n-th ejection of a streak
// (n starts at 1): BaseEjection doubled n-1 times, capped at MaxEjection.
func (o Outlier) EjectionDuration(n int) time.Duration {
	o = o.withDefaults()
	d := o.BaseEjection
	for i := 1; i < n && d < o.MaxEjection; i++ {
		d *= 2
	}
	return min(d, o.MaxEjection)
}

// succeeded records a try that got a non-5xx answer. It only writes when a
// count is non-zero, so healthy traffic does not bounce the cache line.
func (u *Upstream) succeeded() {
	if u.consec5xx.Load() != 0 {
		u.consec5xx.Store(0)
	}
	if u.consecConn.Load() != 0 {
		u.consecConn.Store(0)
	}
}

// failed records a failed try and ejects the upstream when the failure
// crosses its threshold. It reports the ejection's reason and end.
func (u *Upstream) failed(connect bool, now time.Time, cfg Outlier) (reason string, until time.Time, ejected bool) {
	u.fails.Add(1)
	counter, limit, reason := &u.consec5xx, cfg.Consecutive5xx, EjectConsecutive5xx
	if connect {
		counter, limit, reason = &u.consecConn, cfg.ConsecutiveConnectFailures, EjectConnectFailure
	}
	n := counter.Add(1)
	if int(n) < limit || !counter.CompareAndSwap(n, 0) {
		return "", time.Time{}, false
	}
	until, ejected = u.eject(now, cfg)
	return reason, until, ejected
}

// eject takes the upstream out of rotation until now plus the backoff of its
// streak. An upstream that is already ejected stays as it is.
func (u *Upstream) eject(now time.Time, cfg Outlier) (time.Time, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := now.UnixNano()
	if cur := u.ejectedUntil.Load(); cur != 0 && n < cur {
		return time.Time{}, false
	}
	if u.ejections > 0 && time.Duration(n-u.lastEnd) >= cfg.MaxEjection {
		u.ejections = 0
	}
	u.ejections++
	until := now.Add(cfg.EjectionDuration(u.ejections))
	u.lastEnd = until.UnixNano()
	u.ejectedUntil.Store(u.lastEnd)
	return until, true
}
