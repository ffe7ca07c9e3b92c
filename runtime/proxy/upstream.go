package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
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

	inflight  atomic.Int64
	served    atomic.Uint64
	fails     atomic.Uint64
	consec5xx atomic.Int32
	consecGW  atomic.Int32
	unhealthy atomic.Bool
	draining  atomic.Bool
	// ejectedUntil is the end of the current ejection in Unix nanoseconds,
	// or 0 when the upstream has never been ejected or was un-ejected.
	ejectedUntil atomic.Int64

	// mu guards the rare paths: ejection bookkeeping, drain waiters and
	// the lost context.
	mu        sync.Mutex
	ejections int
	lastEnd   int64
	reason    string // why the current or last ejection happened
	idle      chan struct{}
	// lost ends when the replica is gone (see Lose); made on first use.
	lost context.Context
	lose context.CancelCauseFunc
}

// errReplicaGone is why a dial to a replica that is gone was abandoned.
var errReplicaGone = errors.New("the replica is gone")

// Lose records that the replica is gone: its container exited. It leaves
// rotation, and the dials to it still under way are abandoned at once, so
// their requests go to another replica. They would not be refused: once a
// container is gone nothing answers for its address on the bridge, and a
// dial hangs until its timeout while the request waits. An upstream once
// lost stays lost; a replica that runs again gets a new one.
func (u *Upstream) Lose() {
	u.SetHealthy(false)
	u.lostContext()
	u.lose(errReplicaGone)
}

// Lost reports whether Lose was called.
func (u *Upstream) Lost() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lost != nil && u.lost.Err() != nil
}

func (u *Upstream) lostContext() context.Context {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.lost == nil {
		u.lost, u.lose = context.WithCancelCause(context.Background())
	}
	return u.lost
}

// dialContext returns ctx, also ended when the replica is lost; stop
// releases it once the dial has returned.
func (u *Upstream) dialContext(ctx context.Context) (dctx context.Context, stop func()) {
	lost := u.lostContext()
	dctx, cancel := context.WithCancelCause(ctx)
	unhook := context.AfterFunc(lost, func() { cancel(context.Cause(lost)) })
	return dctx, func() {
		unhook()
		cancel(nil)
	}
}

// upstreamKey carries the Upstream a request is sent to in its context,
// for the dial.
type upstreamKey struct{}

// withUpstream returns ctx carrying up, so a dial for it ends when up is
// lost (see dialUpstream).
func withUpstream(ctx context.Context, up *Upstream) context.Context {
	return context.WithValue(ctx, upstreamKey{}, up)
}

// dialUpstream dials addr with dial. A dial for a request whose context
// carries its Upstream (see withUpstream) is abandoned when that replica is
// lost, with an error that says so and still reads as a failed dial.
func dialUpstream(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), network, addr string) (net.Conn, error) {
	up, _ := ctx.Value(upstreamKey{}).(*Upstream)
	if up == nil {
		return dial(ctx, network, addr)
	}
	dctx, stop := up.dialContext(ctx)
	defer stop()
	c, err := dial(dctx, network, addr)
	if err != nil && errors.Is(context.Cause(dctx), errReplicaGone) {
		err = &net.OpError{Op: "dial", Net: network, Addr: opAddr(err), Err: errReplicaGone}
	}
	return c, err
}

// opAddr is the remote address a dial error names, if any.
func opAddr(err error) net.Addr {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Addr
	}
	return nil
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
// gateway failures (broken connections, timeouts) and 5xx answers.
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
// successful active check: the replica has proven itself again. A
// successful check of a replica that stayed healthy ends an ejection for a
// failed connection, which the check, having connected, disproves. The
// ejection streak is kept, so a replica that keeps failing still backs off.
func (u *Upstream) SetHealthy(healthy bool) {
	was := !u.unhealthy.Swap(!healthy)
	switch {
	case !healthy:
	case !was:
		u.consec5xx.Store(0)
		u.consecGW.Store(0)
		u.ejectedUntil.Store(0)
	case u.ejectedUntil.Load() != 0:
		u.mu.Lock()
		if u.reason == EjectConnectFailure {
			u.ejectedUntil.Store(0)
		}
		u.mu.Unlock()
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
	// EjectConnectFailure means a connection to the replica could not be
	// made.
	EjectConnectFailure = "connect_failure"
	// EjectGatewayFailure means tries to the replica failed too many times
	// in a row after the request was sent: the connection broke or was
	// reset, or no answer came within the route's timeout.
	EjectGatewayFailure = "consecutive_gateway_failure"
	// EjectConsecutive5xx means the replica answered 5xx too many times in
	// a row, for a service whose outlier settings ask for that.
	EjectConsecutive5xx = "consecutive_5xx"
)

// Outlier configures passive health checking, modelled on Envoy's outlier
// detection and made safe for the small pools of a developer's machine. A
// failed connection ejects a replica at once; gateway failures (a
// connection broken after the request was sent, a reset, a timeout) eject
// it after several in a row; 5xx answers only when asked to, since an
// application error, often a dependency's, says nothing of the replica's
// own health. However many fail, at most MaxEjectionPercent of a
// service's replicas are ejected at once, and never the last available
// one.
type Outlier struct {
	// Consecutive5xx is how many 5xx answers in a row eject a replica.
	// 0, the default, means 5xx answers never do.
	Consecutive5xx int
	// ConsecutiveGatewayFailures is how many gateway failures in a row
	// eject a replica; 0 means DefaultConsecutiveGatewayFailures.
	ConsecutiveGatewayFailures int
	// BaseEjection is the first ejection's length; each further ejection in
	// a streak doubles it. 0 means DefaultBaseEjection.
	BaseEjection time.Duration
	// MaxEjection caps the ejection length. A replica that stays
	// un-ejected for this long starts a new streak. 0 means
	// DefaultMaxEjection.
	MaxEjection time.Duration
	// MaxEjectionPercent bounds the share of a service's replicas (those
	// not draining) that may be ejected at once. 0 means
	// DefaultMaxEjectionPercent; a negative value allows no ejection.
	MaxEjectionPercent int
}

// Defaults of Outlier.
const (
	DefaultConsecutiveGatewayFailures = 5
	DefaultBaseEjection               = 30 * time.Second
	DefaultMaxEjection                = 5 * time.Minute
	DefaultMaxEjectionPercent         = 50
)

func (o Outlier) withDefaults() Outlier {
	if o.Consecutive5xx < 0 {
		o.Consecutive5xx = 0
	}
	if o.ConsecutiveGatewayFailures <= 0 {
		o.ConsecutiveGatewayFailures = DefaultConsecutiveGatewayFailures
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
	if o.MaxEjectionPercent == 0 {
		o.MaxEjectionPercent = DefaultMaxEjectionPercent
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

// failure is what passive health checking learns from one try.
type failure uint8

const (
	// noFailure: an answer other than 5xx.
	noFailure failure = iota
	// failure5xx: a 5xx answer.
	failure5xx
	// failureGateway: the connection broke or was reset after the request
	// was sent, or no answer came in time.
	failureGateway
	// failureConnect: no connection could be made.
	failureConnect
	// failureNone: the try tells nothing of the replica (the client left).
	failureNone
)

// failureOf classifies a try's outcome for passive health checking.
func failureOf(fail failKind, status int) failure {
	switch fail {
	case failNone:
		if status >= 500 {
			return failure5xx
		}
		return noFailure
	case failConnect:
		return failureConnect
	case failNotSent, failBroken, failTimeout:
		return failureGateway
	}
	return failureNone
}

// record counts a try's outcome against the upstream and reports whether
// the upstream crossed a threshold that ejects it, and which. Healthy
// traffic only reads the counters, so it does not bounce their cache line.
func (u *Upstream) record(f failure, cfg Outlier) (reason string, eject bool) {
	switch f {
	case noFailure, failure5xx:
		// An answer: the connection works.
		if u.consecGW.Load() != 0 {
			u.consecGW.Store(0)
		}
		if f == noFailure {
			if u.consec5xx.Load() != 0 {
				u.consec5xx.Store(0)
			}
			return "", false
		}
		u.fails.Add(1)
		if cfg.Consecutive5xx <= 0 {
			return "", false
		}
		return EjectConsecutive5xx, crossed(&u.consec5xx, cfg.Consecutive5xx)
	case failureGateway:
		u.fails.Add(1)
		return EjectGatewayFailure, crossed(&u.consecGW, cfg.ConsecutiveGatewayFailures)
	case failureConnect:
		u.fails.Add(1)
		return EjectConnectFailure, true
	}
	return "", false
}

// crossed counts one more failure in a row and reports whether it reached
// limit, starting the count over when it did.
func crossed(counter *atomic.Int32, limit int) bool {
	n := counter.Add(1)
	return int(n) >= limit && counter.CompareAndSwap(n, 0)
}

// eject takes the upstream out of rotation until now plus the backoff of its
// streak. An upstream that is already ejected stays as it is.
func (u *Upstream) eject(now time.Time, cfg Outlier, reason string) (time.Time, bool) {
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
	u.reason = reason
	u.ejectedUntil.Store(u.lastEnd)
	return until, true
}

// ejected reports whether the upstream is ejected at now (Unix
// nanoseconds).
func (u *Upstream) ejectedAt(now int64) bool {
	until := u.ejectedUntil.Load()
	return until != 0 && now < until
}

// poolState is what the ejection and panic rules need to know of a
// service's replicas.
type poolState struct {
	// inRotation counts the replicas not draining, healthy or not.
	inRotation int
	// healthy counts those healthy by active checks.
	healthy int
	// available counts the healthy ones not ejected.
	available int
	// ejected counts the healthy ones ejected.
	ejected int
}

// mayEject reports whether one more of a pool's replicas, cand, may be
// ejected: the ejected would stay within maxPercent of the replicas in
// rotation, and another replica would stay available.
func (s poolState) mayEject(candAvailable bool, maxPercent int) bool {
	if maxPercent < 0 {
		return false
	}
	others := s.available
	if candAvailable {
		others--
	}
	return others >= 1 && (s.ejected+1)*100 <= maxPercent*s.inRotation
}

// panicking reports whether the pool routes to its ejected replicas too,
// as Envoy's panic threshold does: fewer than half of its healthy replicas
// are available. Ejection then stops protecting anyone and only
// concentrates the load on too few replicas.
func (s poolState) panicking() bool {
	return s.healthy > 0 && 2*s.available < s.healthy
}
