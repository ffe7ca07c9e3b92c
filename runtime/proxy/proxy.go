package proxy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// ErrUnknownUpstream is returned for an upstream ID the proxy does not know.
var ErrUnknownUpstream = errors.New("unknown replica")

// DefaultDialTimeout bounds connecting to a replica with the default
// transport.
const DefaultDialTimeout = 3 * time.Second

// Options configures a Proxy. The zero value is usable.
type Options struct {
	// Now is the clock for ejections and records; nil means time.Now.
	Now func() time.Time
	// Logf reports notable events such as ejections; nil discards them.
	Logf func(format string, args ...any)
	// OnRequest receives a record of every request, from the goroutine of
	// Run; records are queued and dropped (and counted) when the queue is
	// full, so a slow sink never delays a request. The record is only valid
	// during the call. Nil disables records.
	OnRequest func(*RequestRecord)
	// RecordBuffer is the record queue's length; 0 means
	// DefaultRecordBuffer.
	RecordBuffer int
	// OnEject is called when passive health checking ejects a replica, on
	// the goroutine of the request that tipped it over: it must not block.
	OnEject func(up *Upstream, reason string, until time.Time)
	// OnPanic is called when a service enters or leaves panic mode (see
	// Proxy), on the goroutine of the request that noticed: it must not
	// block. healthy and available count the service's replicas at that
	// moment.
	OnPanic func(service string, panicking bool, healthy, available int)
	// Outlier tunes passive health checking for services the cell does
	// not tune itself; zero fields take defaults.
	Outlier Outlier
	// Transport sends requests to replicas; nil means the proxy's own
	// transport, which pools connections per replica and does the I/O of
	// a request on the request's goroutine (and hands Upgrade requests to
	// an http.Transport). Upgrade requests need a transport that returns
	// an io.ReadWriteCloser body for 101 answers, as http.Transport does.
	Transport http.RoundTripper
	// DialTimeout bounds connecting with the default transport; 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// Wake is called when a request finds no available replica of a
	// service. When it returns true the controller is starting one, and the
	// request is held until a replica is available or HoldTimeout passes
	// (then 503 with Retry-After). Nil never holds.
	Wake func(service string) bool
	// HoldTimeout bounds how long a request waits for a replica; 0 means
	// DefaultHoldTimeout.
	HoldTimeout time.Duration
	// MaxHeld bounds how many requests wait at once; 0 means
	// DefaultMaxHeld.
	MaxHeld int
}

// Defaults for holding requests while a replica starts.
const (
	DefaultHoldTimeout = 30 * time.Second
	DefaultMaxHeld     = 1024
)

// Proxy is a cell gateway's data plane: an http.Handler that routes each
// request by path to a service, picks an available replica with the
// cell's balance policy and forwards the request, retrying on other
// replicas when that is safe.
//
// The set of replicas is pushed by a controller with SetUpstreams and kept
// in copy-on-write snapshots, so the request path reads it with one atomic
// load and takes no lock.
type Proxy struct {
	cell      string
	forward   bool
	tbl       atomic.Pointer[table]
	held      atomic.Int64
	icpt      atomic.Pointer[Interceptor]
	opts      Options
	now       func() time.Time
	transport http.RoundTripper
	copyBufs  *BufferPool
	bodies    bodyPools
	ids       *idGen
	records   chan RequestRecord
	dropped   atomic.Uint64

	// mu serializes control-plane changes; requests never take it.
	mu     sync.Mutex
	policy string
	byName map[string]*servicePool
	byID   map[string]*Upstream
}

// table is the routing state: replaced as a whole by SetRoutes, read with
// one atomic load per request.
type table struct {
	router    *Router
	routeList string
	pools     []*servicePool // indexed like router.services
	// byService holds every service's pool, for calls the gateway makes
	// itself (Call), which name a service rather than a path.
	byService map[string]*servicePool
}

// servicePool is one service's replicas, its selector and its passive
// health settings.
type servicePool struct {
	name    string
	sel     Selector
	ups     atomic.Pointer[[]*Upstream] // immutable once stored
	outlier atomic.Pointer[Outlier]     // with defaults applied
	panic   atomic.Bool
	// ejectMu makes the check of the ejection cap and the ejection one
	// step, so two replicas failing at once cannot both pass the check.
	ejectMu sync.Mutex
}

func (sp *servicePool) load() []*Upstream { return *sp.ups.Load() }

// New returns the ingress proxy of a cell. Its routes are the cell
// gateway's, as loading the cell file left them: an empty list is no
// routes. It returns an error for an unknown balance policy.
func New(cell *cellspec.Cell, opts Options) (*Proxy, error) {
	p, err := newProxy(cell.Name, NewGatewayRouter(cell.Gateway), cell.Gateway.Balance, opts)
	if err != nil {
		return nil, fmt.Errorf("gateway of cell %s: %w", cell.Name, err)
	}
	p.mu.Lock()
	p.configureLocked(cell)
	p.mu.Unlock()
	return p, nil
}

// configureLocked makes a pool for every service of the cell and applies
// the passive health settings the cell writes, or Options.Outlier where it
// writes none. p.mu must be held.
func (p *Proxy) configureLocked(cell *cellspec.Cell) {
	for _, name := range cell.ServiceNames() {
		sp := p.poolLocked(name)
		o := p.opts.Outlier
		if svc := cell.Services[name]; cell.Gateway.Outlier != nil || (svc != nil && svc.Outlier != nil) {
			o = outlierOf(cell.OutlierFor(name)).withDefaults()
		}
		sp.outlier.Store(&o)
	}
}

// outlierOf converts a cell's outlier settings.
func outlierOf(o cellspec.Outlier) Outlier {
	out := Outlier{Consecutive5xx: o.Consecutive5xx, BaseEjection: time.Duration(o.BaseEjection), MaxEjectionPercent: o.MaxEjectionPercent}
	if o.MaxEjectionPercent == 0 {
		out.MaxEjectionPercent = -1 // the cell allows no ejection
	}
	return out
}

// NewForward returns an egress proxy that forwards every request, whatever
// its path, to upstreams (typically the gateway of the cell called name),
// with the same balancing, retries, passive health checks and records as
// the ingress proxy. Tries use DefaultTimeout and DefaultRetries. The
// upstreams can be replaced later with SetUpstreams(name, ...).
func NewForward(name string, upstreams []*Upstream, opts Options) *Proxy {
	router := NewRouter([]cellspec.Route{{Path: "/", Service: name, Retries: DefaultRetries}})
	p, err := newProxy(name, router, cellspec.BalanceRoundRobin, opts)
	if err != nil {
		panic(err) // unreachable: the policy is a known one
	}
	p.forward = true
	p.SetUpstreams(name, upstreams)
	return p
}

func newProxy(cell string, router *Router, policy string, opts Options) (*Proxy, error) {
	if _, err := NewSelector(policy); err != nil {
		return nil, err
	}
	opts.Outlier = opts.Outlier.withDefaults()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.HoldTimeout <= 0 {
		opts.HoldTimeout = DefaultHoldTimeout
	}
	if opts.MaxHeld <= 0 {
		opts.MaxHeld = DefaultMaxHeld
	}
	transport := opts.Transport
	if transport == nil {
		transport = newUpstreamTransport(opts.DialTimeout)
	}
	p := &Proxy{
		cell:      cell,
		opts:      opts,
		now:       opts.Now,
		transport: transport,
		copyBufs:  NewBufferPool(32 << 10),
		bodies:    newBodyPools(),
		ids:       newIDGen(),
		policy:    policy,
		byName:    map[string]*servicePool{},
		byID:      map[string]*Upstream{},
	}
	if opts.OnRequest != nil {
		n := opts.RecordBuffer
		if n <= 0 {
			n = DefaultRecordBuffer
		}
		p.records = make(chan RequestRecord, n)
	}
	p.mu.Lock()
	p.installLocked(router)
	p.mu.Unlock()
	return p, nil
}

// installLocked makes router the live routing table. p.mu must be held.
func (p *Proxy) installLocked(router *Router) {
	t := &table{router: router, routeList: router.describe()}
	for _, svc := range router.services {
		t.pools = append(t.pools, p.poolLocked(svc))
	}
	t.byService = maps.Clone(p.byName)
	p.tbl.Store(t)
}

// SetRoutes replaces the routes and the balance policy of an ingress
// proxy, for a cell spec that changed while the gateway runs. Replicas and
// their state are kept; requests under way finish on their old route.
func (p *Proxy) SetRoutes(cell *cellspec.Cell) error {
	if _, err := NewSelector(cell.Gateway.Balance); err != nil {
		return fmt.Errorf("gateway of cell %s: %w", cell.Name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cell.Gateway.Balance != p.policy {
		p.policy = cell.Gateway.Balance
		for name, old := range p.byName {
			sel, _ := NewSelector(p.policy)
			sp := &servicePool{name: name, sel: sel}
			sp.ups.Store(old.ups.Load())
			sp.outlier.Store(old.outlier.Load())
			p.byName[name] = sp
		}
	}
	// installLocked below publishes the new pools to Call.
	p.configureLocked(cell)
	p.installLocked(NewGatewayRouter(cell.Gateway))
	return nil
}

// poolLocked returns the pool of a service, creating an empty one. p.mu
// must be held.
func (p *Proxy) poolLocked(service string) *servicePool {
	if sp := p.byName[service]; sp != nil {
		return sp
	}
	sel, _ := NewSelector(p.policy) // the policy was checked in newProxy
	sp := &servicePool{name: service, sel: sel}
	empty := []*Upstream{}
	sp.ups.Store(&empty)
	o := p.opts.Outlier.withDefaults()
	sp.outlier.Store(&o)
	p.byName[service] = sp
	if t := p.tbl.Load(); t != nil {
		next := *t
		next.byService = maps.Clone(p.byName)
		p.tbl.Store(&next)
	}
	return sp
}

// Interceptor answers some requests itself rather than routing them to a
// service: the gateway's flows, which make calls of their own through
// Call. It sees a request before routing, after the checks every request
// gets (CONNECT refused, ambiguous framing closed).
type Interceptor interface {
	// Intercepts reports whether ServeHTTP answers requests with this
	// method and path. It is called for every request, so it must be
	// cheap and must not keep path, which may be reused.
	Intercepts(method, path string) bool
	http.Handler
}

// SetInterceptor installs ic in front of the routes; nil removes it.
func (p *Proxy) SetInterceptor(ic Interceptor) {
	if ic == nil {
		p.icpt.Store(nil)
		return
	}
	p.icpt.Store(&ic)
}

// Router returns the proxy's routes.
func (p *Proxy) Router() *Router { return p.tbl.Load().router }

// SetOutlier sets a service's passive health settings; zero fields take
// the defaults. Counts and ejections under way are kept.
func (p *Proxy) SetOutlier(service string, o Outlier) {
	o = o.withDefaults()
	p.mu.Lock()
	p.poolLocked(service).outlier.Store(&o)
	p.mu.Unlock()
}

// Panicking reports whether a service is in panic mode: it routes to its
// ejected replicas too, because too few others are available.
func (p *Proxy) Panicking(service string) bool {
	p.mu.Lock()
	sp := p.byName[service]
	p.mu.Unlock()
	return sp != nil && sp.panic.Load()
}

// SetUpstreams replaces the replicas of a service in one step; requests
// already under way finish on the replica they started on.
//
// An Upstream whose ID and Addr match one already in the service's set is
// not taken: the existing one stays, with its counters and its health,
// ejection and draining state, so a controller can rebuild the whole list on
// every reconcile without resetting anything. To change state use
// SetHealthy, SetDraining, Undrain and Drain. An ID with a new Addr is a new
// replica and starts fresh, and so does one whose existing Upstream was
// lost (see Upstream.Lose). Nil entries and repeated IDs are ignored.
func (p *Proxy) SetUpstreams(service string, ups []*Upstream) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sp := p.poolLocked(service)
	old := sp.load()
	next := make([]*Upstream, 0, len(ups))
	for _, u := range ups {
		if u == nil || slices.ContainsFunc(next, func(n *Upstream) bool { return n.ID == u.ID }) {
			continue
		}
		if i := slices.IndexFunc(old, func(o *Upstream) bool { return o.ID == u.ID && o.Addr == u.Addr && !o.Lost() }); i >= 0 {
			u = old[i]
		}
		next = append(next, u)
	}
	sp.ups.Store(&next)
	p.byID = map[string]*Upstream{}
	for _, pool := range p.byName {
		for _, u := range pool.load() {
			p.byID[u.ID] = u
		}
	}
}

// Upstreams returns the current replicas of a service, in the order they
// were set. The slice is a copy; the Upstreams are the live ones.
func (p *Proxy) Upstreams(service string) []*Upstream {
	p.mu.Lock()
	sp := p.byName[service]
	p.mu.Unlock()
	if sp == nil {
		return nil
	}
	return slices.Clone(sp.load())
}

func (p *Proxy) upstream(id string) *Upstream {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byID[id]
}

// SetHealthy records an active health check result for the replica with
// the given ID (see Upstream.SetHealthy). Unknown IDs are ignored.
func (p *Proxy) SetHealthy(id string, healthy bool) {
	if u := p.upstream(id); u != nil {
		u.SetHealthy(healthy)
	}
}

// SetDraining takes a replica out of rotation: it receives no new
// requests, while those in flight finish. Unknown IDs are ignored.
func (p *Proxy) SetDraining(id string) {
	if u := p.upstream(id); u != nil {
		u.draining.Store(true)
	}
}

// Undrain puts a draining replica back into rotation, for a controller
// that changed its mind (a scale-down cancelled by new load). Because
// SetUpstreams keeps existing Upstreams with their state, this is the only
// way back for a replica that stays. Unknown IDs are ignored.
func (p *Proxy) Undrain(id string) {
	if u := p.upstream(id); u != nil {
		u.draining.Store(false)
	}
}

// Drain takes a replica out of rotation and waits until it has no request
// in flight or ctx ends. Long-lived requests (streams, upgraded
// connections) count until they end, so callers bound the wait with ctx.
func (p *Proxy) Drain(ctx context.Context, id string) error {
	u := p.upstream(id)
	if u == nil {
		return fmt.Errorf("drain replica %s: %w", id, ErrUnknownUpstream)
	}
	u.draining.Store(true)
	return u.waitIdle(ctx)
}

// CloseIdleConnections closes idle connections to replicas, when the
// transport supports it.
func (p *Proxy) CloseIdleConnections() {
	if t, ok := p.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// failKind classifies a try that got no usable response.
type failKind uint8

const (
	failNone    failKind = iota
	failConnect          // no connection could be made
	failNotSent          // the connection broke before any byte of the request was written
	failBroken           // the connection broke after the request (or part of it) was written, before an answer
	failTimeout          // no response headers within the route's timeout
	failClient           // the client went away, or its body failed
)

// attempt is the outcome of one try.
type attempt struct {
	up     *Upstream
	resp   *http.Response
	err    error
	fail   failKind
	cancel context.CancelFunc
	rd     *bodyReader
}

// status is the status of the try's answer, 0 without one.
func (a *attempt) status() int {
	if a.resp == nil {
		return 0
	}
	return a.resp.StatusCode
}

// nextTry decides, after a request's tries-th try ended with fail and
// status, whether another try follows, and picks its replica: when the
// route allows more tries, the outcome allows a retry (mayRetry), the body
// can be sent again (replayable) and a replica not tried yet is
// available. It returns nil when the last try's outcome is the answer.
// Both request paths decide through it.
func (p *Proxy) nextTry(sp *servicePool, ups, tried, cands []*Upstream, route *Route, tries int, fail failKind, status int, idempotent, replayable bool, r *http.Request) (*Upstream, []*Upstream) {
	if tries > route.Retries || !mayRetry(fail, status, idempotent) || !replayable {
		return nil, tried
	}
	return p.pick(sp, ups, tried, cands, r)
}

// mayResend reports whether a try whose connection failed may be sent
// again at once on a new connection to the same replica: the failed
// connection was a reused one (the replica may just have closed it), and
// either no byte of the request was written, or the connection ended
// before any answer (stale) and the request is idempotent.
func mayResend(reused, sent, stale, idempotent bool) bool {
	return reused && (!sent || (stale && idempotent))
}

// tryTimeoutError is the failure of a try that got no answer head within
// its route's timeout.
type tryTimeoutError struct{ d time.Duration }

func (e *tryTimeoutError) Error() string { return fmt.Sprintf("no response within %s", e.d) }

// failKindOf classifies the error of a try that got no answer; both
// request paths classify through it.
func failKindOf(err error) failKind {
	var timeout *tryTimeoutError
	switch {
	case errors.As(err, &timeout):
		return failTimeout
	case isDialError(err):
		return failConnect
	case isNotSent(err):
		return failNotSent
	}
	return failBroken
}

// failureAnswer is the proxy's own answer to a request whose last try got
// no usable answer: 504 after a timeout, 502 otherwise.
func failureAnswer(fail failKind, up *Upstream, service string, err error) (int, string) {
	status := http.StatusBadGateway
	if fail == failTimeout {
		status = http.StatusGatewayTimeout
	}
	return status, fmt.Sprintf("replica %s of service %q: %v", up, service, err)
}

// unsent reports whether no byte of the request can have reached the
// replica.
func (f failKind) unsent() bool { return f == failConnect || f == failNotSent }

// mayRetry reports whether a try's outcome allows another try, whatever
// the body. A request no byte of which reached a replica may be retried
// whatever its method: the replica cannot have acted on it. Once any byte
// was written, the replica may have acted on the request even if no answer
// came (it may have crashed after its side effect), so a broken connection,
// a timeout or a 502, 503 or 504 answer allow another try only for an
// idempotent request.
func mayRetry(fail failKind, status int, idempotent bool) bool {
	switch fail {
	case failConnect, failNotSent:
		return true
	case failBroken, failTimeout:
		return idempotent
	case failNone:
		switch status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return idempotent
		}
	}
	return false
}

// discard gives up a try in favour of another. The response body is closed
// unread: draining it could stall the retry behind a slow replica, and a
// lost keep-alive connection is cheap on this rare path.
func (a *attempt) discard() {
	if a.resp != nil {
		_ = a.resp.Body.Close()
	}
	a.close()
}

func (a *attempt) close() {
	a.cancel()
	if a.rd != nil {
		_ = a.rd.Close()
	}
	a.up.release()
}

// isIdempotent reports whether a request may be repeated without changing
// its effect: by its method, or because the client sent an
// Idempotency-Key.
func isIdempotent(r *http.Request) bool {
	return idempotentMethod(r.Method) || len(r.Header[hdrIdempotencyKey]) > 0
}

// target is what every try of a request sends.
type target struct {
	path    string
	rawPath string
	hdr     http.Header
	body    *requestBody
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rec RequestRecord
	if p.records != nil {
		rec = RequestRecord{Time: p.now(), Method: r.Method, Host: r.Host, Path: r.URL.Path, Remote: r.RemoteAddr}
	}
	reqID := firstValue(r.Header, hdrRequestID)
	if reqID == "" {
		reqID = p.ids.next()
	}
	tp := nextTraceparent(r.Header[hdrTraceparent])
	rec.RequestID, rec.TraceID, rec.SpanID = reqID, traceID(tp), spanID(tp)

	if r.Method == http.MethodConnect {
		// A gateway is no forward proxy: a tunnel to wherever the client
		// names would bypass routing and isolation.
		w.Header()[hdrRequestID] = []string{reqID}
		w.Header().Set("Allow", allowedMethods)
		p.reply(w, http.StatusMethodNotAllowed, fmt.Sprintf("CONNECT is not served by the gateway of cell %q", p.cell), &rec)
		p.emit(&rec)
		return
	}
	if mustCloseAfter(r) {
		w.Header().Set(hdrConnection, "close")
	}
	if ic := p.icpt.Load(); ic != nil && (*ic).Intercepts(r.Method, r.URL.Path) {
		(*ic).ServeHTTP(w, r)
		return
	}

	tb := p.tbl.Load()
	port, _ := r.Context().Value(portKey{}).(int)
	route, path := tb.router.MatchOn(port, r.URL.Path)
	if route == nil {
		w.Header()[hdrRequestID] = []string{reqID}
		p.reply(w, http.StatusNotFound, fmt.Sprintf("no route for path %q in cell %q; %s", r.URL.Path, p.cell, tb.routeList), &rec)
		p.emit(&rec)
		return
	}
	rec.Route, rec.Service = route.Name, route.Service

	upgrade := ""
	if r.ProtoMajor == 1 {
		upgrade = upgradeType(r.Header)
	}
	t := target{path: path, rawPath: rawPathFor(r.URL, route), hdr: outboundHeader(r, reqID, tp, upgrade)}
	w.Header()[hdrRequestID] = t.hdr[hdrRequestID]

	body, err := p.prepareBody(r)
	if err != nil {
		p.replyBodyError(w, r, err, &rec)
		p.emit(&rec)
		return
	}
	if body != nil {
		defer body.release()
	}
	t.body = body

	sp := tb.pools[route.svc]
	ups := sp.load()
	var triedBuf [4]*Upstream
	cands := make([]*Upstream, 0, 8)
	up, tried := p.pick(sp, ups, triedBuf[:0], cands, r)
	if up == nil && p.opts.Wake != nil && p.opts.Wake(route.Service) {
		up, ups, tried = p.hold(r.Context(), r, sp, tried[:0], cands)
	}
	if up == nil {
		w.Header().Set("Retry-After", "1")
		p.reply(w, http.StatusServiceUnavailable, p.noReplicaMessage(route.Service), &rec)
		p.emit(&rec)
		return
	}

	idempotent := isIdempotent(r)
	var a attempt
	for {
		a = p.try(r, route, sp, up, &t)
		rec.Tries++
		var next *Upstream
		replayable := body.canReplay(a.rd, a.fail.unsent())
		next, tried = p.nextTry(sp, ups, tried, cands, route, rec.Tries, a.fail, a.status(), idempotent, replayable, r)
		if next == nil && a.fail.unsent() && replayable && rec.Tries <= route.Retries && p.opts.Wake != nil && p.opts.Wake(route.Service) {
			// The replica refused the connection (killed a moment ago)
			// and no other is available: as a request that found none,
			// wait for the one the controller is starting, rather than
			// fail a request that never reached any replica.
			next, ups, tried = p.hold(r.Context(), r, sp, tried, cands)
		}
		if next == nil {
			break
		}
		a.discard()
		up = next
	}
	p.finish(w, r, sp, &a, upgrade, &rec)
}

// hold keeps a request that found no available replica while the
// controller starts one (a service scaled to zero, or one whose replicas
// are all starting), up to HoldTimeout; the replicas in tried are not
// picked. At most MaxHeld requests wait at once; the others are answered
// at once.
func (p *Proxy) hold(ctx context.Context, r *http.Request, sp *servicePool, tried, cands []*Upstream) (*Upstream, []*Upstream, []*Upstream) {
	if p.held.Add(1) > int64(p.opts.MaxHeld) {
		p.held.Add(-1)
		return nil, nil, tried
	}
	defer p.held.Add(-1)
	timeout := time.NewTimer(p.opts.HoldTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil, tried
		case <-timeout.C:
			return nil, nil, tried
		case <-tick.C:
			ups := sp.load()
			if up, t := p.pick(sp, ups, tried[:len(tried):len(tried)], cands, r); up != nil {
				return up, ups, t
			}
		}
	}
}

// Held reports how many requests wait for a replica right now.
func (p *Proxy) Held() int64 { return p.held.Load() }

func (p *Proxy) noReplicaMessage(service string) string {
	if p.forward {
		return fmt.Sprintf("no healthy gateway of cell %q", p.cell)
	}
	return fmt.Sprintf("no healthy replica of service %q in cell %q", service, p.cell)
}

// pick selects a replica not tried yet among the candidates (see
// candidates) and counts the request against it. It returns tried with
// every replica it considered added. buf is scratch space for the
// candidates.
func (p *Proxy) pick(sp *servicePool, ups, tried, buf []*Upstream, r *http.Request) (*Upstream, []*Upstream) {
	for range len(ups) + 1 {
		cands := p.candidates(sp, ups, tried, buf[:0])
		if len(cands) == 0 {
			return nil, tried
		}
		up := sp.sel.Select(cands, r)
		if up == nil {
			return nil, tried
		}
		tried = append(tried, up)
		if up.acquire() {
			return up, tried
		}
	}
	return nil, tried
}

// candidates appends to buf the replicas a new try may go to (see
// appendCandidates), and reports the service entering and leaving panic
// mode through Options.OnPanic.
func (p *Proxy) candidates(sp *servicePool, ups, tried, buf []*Upstream) []*Upstream {
	buf, st := appendCandidates(buf, ups, tried, p.now)
	panicking := st.panicking()
	if sp.panic.Load() != panicking && sp.panic.CompareAndSwap(!panicking, panicking) {
		if panicking {
			p.opts.Logf("proxy %s: service %s in panic mode: %d of %d healthy replicas available; routing to ejected ones too", p.cell, sp.name, st.available, st.healthy)
		} else {
			p.opts.Logf("proxy %s: service %s out of panic mode: %d of %d healthy replicas available", p.cell, sp.name, st.available, st.healthy)
		}
		if p.opts.OnPanic != nil {
			p.opts.OnPanic(sp.name, panicking, st.healthy, st.available)
		}
	}
	return buf
}

// appendCandidates appends to buf the replicas of ups a new try may go
// to: those available (healthy, not draining, not ejected) and not in
// tried; in panic mode (poolState.panicking), the ejected ones too. It
// returns them with the state of the pool. The clock is read once, and
// only when some replica has an ejection end to compare with.
func appendCandidates(buf, ups, tried []*Upstream, clock func() time.Time) ([]*Upstream, poolState) {
	var st poolState
	now := int64(0)
	for _, u := range ups {
		if u.draining.Load() {
			continue
		}
		st.inRotation++
		if u.unhealthy.Load() {
			continue
		}
		st.healthy++
		if u.ejectedUntil.Load() != 0 {
			if now == 0 {
				now = clock().UnixNano()
			}
			if u.ejectedAt(now) {
				st.ejected++
				continue
			}
		}
		st.available++
		if !slices.Contains(tried, u) {
			buf = append(buf, u)
		}
	}
	if st.panicking() {
		for _, u := range ups {
			if !u.draining.Load() && !u.unhealthy.Load() && u.ejectedAt(now) && !slices.Contains(tried, u) {
				buf = append(buf, u)
			}
		}
	}
	return buf, st
}

// rawPathFor returns the encoded path to send upstream when the client's
// path had an encoding of its own, or "" to let net/url encode it.
func rawPathFor(u *url.URL, route *Route) string {
	if u.RawPath == "" || !route.StripPrefix {
		return u.RawPath
	}
	rest, ok := matchPrefix(route.Prefix, u.RawPath)
	if !ok {
		return ""
	}
	return rest
}

// try sends the request to one replica. The route's timeout covers the
// try until the response headers arrive; the body that follows is bounded
// only by the client's context, so long downloads and streams work.
func (p *Proxy) try(r *http.Request, route *Route, sp *servicePool, up *Upstream, t *target) attempt {
	ctx, cancel := context.WithCancel(withUpstream(r.Context(), up))
	a := attempt{up: up, cancel: cancel}
	timer := time.AfterFunc(route.Timeout, cancel)

	out := r.WithContext(ctx)
	out.URL = &url.URL{Scheme: "http", Host: up.Addr, Path: t.path, RawPath: t.rawPath, RawQuery: r.URL.RawQuery}
	out.Header = t.hdr
	out.RequestURI = ""
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	out.Close = false
	out.TransferEncoding = nil
	out.Trailer = nil
	out.Body, out.GetBody, out.ContentLength = nil, nil, 0
	if t.body != nil {
		a.rd = t.body.reader()
		out.Body = a.rd
		out.ContentLength = t.body.length
		if t.body.complete() {
			out.GetBody = t.body.getBody
		}
	}

	resp, err := p.transport.RoundTrip(out)
	fired := !timer.Stop()
	if err == nil && !fired {
		a.resp = resp
		p.observe(sp, up, failNone, resp.StatusCode)
		return a
	}
	if err == nil {
		// The timer fired as the headers arrived: the body is cut off.
		_ = resp.Body.Close()
	}
	switch {
	case r.Context().Err() != nil || t.body.clientErr() != nil:
		a.fail = failClient
		a.err = err
		if cerr := t.body.clientErr(); cerr != nil {
			a.err = fmt.Errorf("read request body: %w", cerr)
		}
	default:
		if fired {
			err = &tryTimeoutError{route.Timeout}
		}
		a.fail, a.err = failKindOf(err), err
	}
	p.observe(sp, up, a.fail, 0)
	return a
}

// observe feeds a try's outcome to passive health checking (see Outlier).
func (p *Proxy) observe(sp *servicePool, up *Upstream, fail failKind, status int) {
	p.observeFailure(sp, up, failureOf(fail, status))
}

// isDialError reports whether err means no connection was made.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// observeFailure counts an outcome against a replica and ejects it when
// it crossed a threshold and the pool can spare it.
func (p *Proxy) observeFailure(sp *servicePool, up *Upstream, f failure) {
	cfg := sp.outlier.Load()
	reason, over := up.record(f, *cfg)
	if !over {
		return
	}
	now := p.now()
	sp.ejectMu.Lock()
	_, st := appendCandidates(nil, sp.load(), nil, func() time.Time { return now })
	var until time.Time
	ejected := false
	if st.mayEject(up.Available(now), cfg.MaxEjectionPercent) {
		until, ejected = up.eject(now, *cfg, reason)
	}
	sp.ejectMu.Unlock()
	if !ejected {
		return
	}
	p.opts.Logf("proxy %s: ejected replica %s (%s) until %s: %s", p.cell, up, up.Addr, until.Format(time.RFC3339), reason)
	if p.opts.OnEject != nil {
		p.opts.OnEject(up, reason, until)
	}
}

// finish answers the client with the last try's outcome and releases it.
func (p *Proxy) finish(w http.ResponseWriter, r *http.Request, sp *servicePool, a *attempt, upgrade string, rec *RequestRecord) {
	rec.Upstream, rec.Replica = a.up.Addr, a.up.String()
	defer p.emit(rec)
	defer a.close()
	switch {
	case a.resp != nil && a.resp.StatusCode == http.StatusSwitchingProtocols:
		stopWatch(r)
		p.serveUpgrade(w, a.resp, upgrade, rec)
	case a.resp != nil:
		p.writeResponse(w, r, sp, a, rec)
	case a.fail == failClient:
		p.replyBodyError(w, r, a.err, rec)
	default:
		status, msg := failureAnswer(a.fail, a.up, rec.Service, a.err)
		p.reply(w, status, msg, rec)
	}
}

// replyBodyError answers a request whose body could not be read: 413 when a
// wrapping handler limited it, nothing (499 in the record) when the client
// is gone, 400 otherwise.
func (p *Proxy) replyBodyError(w http.ResponseWriter, r *http.Request, err error, rec *RequestRecord) {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		p.reply(w, http.StatusRequestEntityTooLarge, err.Error(), rec)
	case r.Context().Err() != nil:
		rec.Status = StatusClientClosed
		if err != nil {
			rec.Error = err.Error()
		}
	default:
		p.reply(w, http.StatusBadRequest, err.Error(), rec)
	}
}

// replyContentType is the type of the proxy's own answers, which both
// reply and the Server's fast path write.
const replyContentType = "text/plain; charset=utf-8"

// reply writes a plain-text answer of the proxy's own.
func (p *Proxy) reply(w http.ResponseWriter, status int, msg string, rec *RequestRecord) {
	h := w.Header()
	h.Set("Content-Type", replyContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	n, _ := fmt.Fprintln(w, msg)
	rec.Status, rec.Error, rec.Bytes = status, msg, int64(n)
}
