package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/health"
	"github.com/orchestro/orchestro/runtime/proxy"
)

// Timings of finding replicas and peers by DNS.
const (
	// dnsInterval is how often every name is looked up again.
	dnsInterval = time.Second
	// dnsMinGap bounds how soon a kicked lookup (a request that found no
	// replica) follows the previous one.
	dnsMinGap = 250 * time.Millisecond
	// dnsTimeout bounds one lookup.
	dnsTimeout = 2 * time.Second
	// dnsEmptyAfter is how many empty answers in a row empty a pool: one
	// could be a resolver's hiccup, two are a service scaled to zero.
	dnsEmptyAfter = 2
)

// resolver looks a name up; net.DefaultResolver is one, tests bring
// their own answers.
type resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

var (
	_ source = (*Controller)(nil)
	_ source = (*dnsSource)(nil)
)

// answer is what one name resolves to, as far as the gateway acts on it.
type answer struct {
	// addrs are the addresses in force, sorted.
	addrs []string
	// empty counts the empty answers in a row.
	empty int
	// failing is set while lookups fail.
	failing bool
}

// fold takes the outcome of one lookup in. Addresses replace those in
// force. An empty answer, or a name that does not exist (a Swarm service
// with no task), empties them only once repeated dnsEmptyAfter times. Any
// other failure keeps them, since a resolver that times out says nothing
// of the replicas; fold returns the error of the first failure in a row,
// for the caller to report.
func (a *answer) fold(addrs []string, err error) error {
	var dnsErr *net.DNSError
	switch {
	case err == nil && len(addrs) > 0:
		a.addrs, a.empty, a.failing = sortAddrs(addrs), 0, false
	case err == nil, errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		a.failing = false
		if a.empty++; a.empty >= dnsEmptyAfter {
			a.addrs = nil
		}
	default:
		first := !a.failing
		a.failing = true
		if first {
			return err
		}
	}
	return nil
}

// sortAddrs returns addrs without repeats, IP addresses in numeric order.
func sortAddrs(addrs []string) []string {
	out := slices.Clone(addrs)
	slices.SortFunc(out, func(a, b string) int {
		pa, errA := netip.ParseAddr(a)
		pb, errB := netip.ParseAddr(b)
		if errA == nil && errB == nil {
			return pa.Compare(pb)
		}
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	return slices.Compact(out)
}

// poller looks a fixed set of names up at once, then every interval or
// sooner when kicked, and hands each round's addresses in force (see
// answer) to apply. Services and peers are found by one each.
type poller struct {
	res      resolver
	interval time.Duration
	kick     chan struct{}
	// apply receives the addresses of every name after each round.
	apply func(addrs map[string][]string)
	// failed, when set, is told of the first failed lookup of a name in a
	// row.
	failed func(name string, err error)

	// names and answers are set before Run and then touched by rounds
	// only.
	names   []string
	answers map[string]*answer
}

func newPoller(res resolver, apply func(map[string][]string), failed func(string, error)) *poller {
	return &poller{
		res:      res,
		interval: dnsInterval,
		kick:     make(chan struct{}, 1),
		apply:    apply,
		failed:   failed,
		answers:  map[string]*answer{},
	}
}

// watch adds a name to look up; it is called before Run.
func (p *poller) watch(name string) {
	if p.answers[name] == nil {
		p.names = append(p.names, name)
		p.answers[name] = &answer{}
	}
}

// Kick asks for a round soon.
func (p *poller) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run looks the names up until ctx ends.
func (p *poller) Run(ctx context.Context) error {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.round(ctx)
		last := time.Now()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-p.kick:
			if wait := dnsMinGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
			}
		}
	}
}

// round looks every name up, at once, and applies the answers.
func (p *poller) round(ctx context.Context) {
	type lookup struct {
		addrs []string
		err   error
	}
	got := make([]lookup, len(p.names))
	var wg sync.WaitGroup
	for i, name := range p.names {
		wg.Go(func() {
			lctx, cancel := context.WithTimeout(ctx, dnsTimeout)
			defer cancel()
			got[i].addrs, got[i].err = p.res.LookupHost(lctx, name)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	out := make(map[string][]string, len(p.names))
	for i, name := range p.names {
		a := p.answers[name]
		if err := a.fold(got[i].addrs, got[i].err); err != nil && p.failed != nil {
			p.failed(name, err)
		}
		out[name] = a.addrs
	}
	p.apply(out)
}

// addrPool keeps the upstreams of one DNS name on a proxy: one per
// address, stable across lookups, numbered 1, 2, … with the lowest number
// free when an address appears. An address that leaves DNS drains: it
// takes no new request and leaves the pool once its requests have ended.
// It is not safe for concurrent use.
type addrPool struct {
	px      *proxy.Proxy
	service string
	port    int
	live    map[string]*proxy.Upstream // by address
	leaving map[string]leavingUpstream // by address
}

// leavingUpstream is an upstream draining since its address left DNS.
type leavingUpstream struct {
	up    *proxy.Upstream
	since time.Time
}

func newAddrPool(px *proxy.Proxy, service string, port int) *addrPool {
	return &addrPool{px: px, service: service, port: port,
		live: map[string]*proxy.Upstream{}, leaving: map[string]leavingUpstream{}}
}

// update makes addrs the pool's addresses and returns, in replica order,
// the upstreams that joined (new, or back in DNS while draining), those
// that left, which drain, and those that finished draining and are gone:
// their requests ended, or they drained for drainTimeout. An upstream
// that leaves with no request in flight goes at once, so its number is
// free for the next to join. publish hands the change to the proxy.
func (p *addrPool) update(addrs []string, now time.Time) (joined, left, gone []*proxy.Upstream) {
	in := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		in[a] = true
	}
	for a, up := range p.live {
		if !in[a] {
			delete(p.live, a)
			p.leaving[a] = leavingUpstream{up: up, since: now}
			p.px.SetDraining(up.ID)
			left = append(left, up)
		}
	}
	for a, l := range p.leaving {
		switch {
		case in[a]:
			delete(p.leaving, a)
			p.px.Undrain(l.up.ID)
			p.live[a] = l.up
			joined = append(joined, l.up)
		case l.up.Inflight() <= 0 || now.Sub(l.since) >= drainTimeout:
			delete(p.leaving, a)
			gone = append(gone, l.up)
		}
	}
	for _, a := range addrs {
		if p.live[a] != nil {
			continue
		}
		n := p.freeNumber()
		up := &proxy.Upstream{ID: p.service + "@" + a, Service: p.service, Replica: n,
			Name: p.service + "-" + strconv.Itoa(n), Addr: net.JoinHostPort(a, strconv.Itoa(p.port))}
		p.live[a] = up
		joined = append(joined, up)
	}
	byReplica := func(a, b *proxy.Upstream) int { return a.Replica - b.Replica }
	slices.SortFunc(joined, byReplica)
	slices.SortFunc(left, byReplica)
	slices.SortFunc(gone, byReplica)
	return joined, left, gone
}

// freeNumber returns the lowest replica number no upstream of the pool
// has.
func (p *addrPool) freeNumber() int {
	used := map[int]bool{}
	for _, up := range p.live {
		used[up.Replica] = true
	}
	for _, l := range p.leaving {
		used[l.up.Replica] = true
	}
	n := 1
	for used[n] {
		n++
	}
	return n
}

// upstreams returns the pool's upstreams, draining ones too, in replica
// order.
func (p *addrPool) upstreams() []*proxy.Upstream {
	out := make([]*proxy.Upstream, 0, len(p.live)+len(p.leaving))
	for _, up := range p.live {
		out = append(out, up)
	}
	for _, l := range p.leaving {
		out = append(out, l.up)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Replica < out[j].Replica })
	return out
}

// publish hands the pool's upstreams to the proxy.
func (p *addrPool) publish() { p.px.SetUpstreams(p.service, p.upstreams()) }

// dnsSource is the source of a gateway on a target that runs the replicas
// itself (a swarm): it finds each service's replicas by looking up the
// service's DNS name (spec.Discovery), health-checks them and hands them
// to the proxy. Scaling, restarts and spec changes go through the target,
// not through it.
type dnsSource struct {
	hooks
	// spec never changes: a new spec rolls the gateway instead.
	spec   *api.GatewaySpec
	proxy  *proxy.Proxy
	prober *health.Prober
	events publisher
	now    func() time.Time
	poll   *poller
	// byName maps a DNS name to the service it finds, for events.
	byName map[string]string

	mu       sync.Mutex
	pools    map[string]*addrPool // by service
	replicas map[string]*replica  // by upstream ID
	// observed is set once the names were looked up: until then, a
	// request finding no replica is held rather than refused.
	observed bool
}

// newDNSSource returns the source of the cell in spec, finding replicas
// with res.
func newDNSSource(spec *api.GatewaySpec, px *proxy.Proxy, events publisher, res resolver) *dnsSource {
	s := &dnsSource{
		spec:     spec,
		proxy:    px,
		events:   events,
		now:      time.Now,
		byName:   map[string]string{},
		pools:    map[string]*addrPool{},
		replicas: map[string]*replica{},
	}
	s.prober = health.NewProber(s.onHealth)
	s.poll = newPoller(res, s.apply, s.lookupFailed)
	for _, name := range spec.Cell.ServiceNames() {
		dn := spec.Discovery[name]
		if dn == "" {
			s.emit(api.Event{Service: name, Type: api.EventError, Message: "the spec names no DNS name to find its replicas by"})
			continue
		}
		s.pools[name] = newAddrPool(px, name, spec.Cell.Services[name].Port)
		s.byName[dn] = name
		s.poll.watch(dn)
	}
	return s
}

// Spec returns the spec the source runs.
func (s *dnsSource) Spec() *api.GatewaySpec { return s.spec }

// emit publishes an event about the cell.
func (s *dnsSource) emit(e api.Event) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Cell = s.spec.Cell.Name
	s.events.Publish(e)
}

// Run finds and checks the replicas until ctx ends: their names are looked
// up at once and then every second.
func (s *dnsSource) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.prober.Run(ctx) })
	g.Go(func() error { return s.poll.Run(ctx) })
	return g.Wait()
}

// apply folds one round of lookups into the replicas and the proxy.
func (s *dnsSource) apply(addrs map[string][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, name := range s.spec.Cell.ServiceNames() {
		pool := s.pools[name]
		if pool == nil {
			continue
		}
		joined, left, gone := pool.update(addrs[s.spec.Discovery[name]], now)
		for _, up := range left {
			if r := s.replicas[up.ID]; r != nil {
				r.removing = true
				s.unprobe(r)
			}
			s.emit(api.Event{Service: name, Replica: strconv.Itoa(up.Replica), Type: api.EventRemoved,
				Message: up.Addr + " is no longer in DNS"})
		}
		for _, up := range joined {
			r := &replica{id: up.ID, name: up.Name, service: name, n: up.Replica, hash: serviceHash(s.spec, name),
				state: ContainerRunning, addr: up.Addr, started: now, up: up}
			s.replicas[up.ID] = r
			s.startProbing(r)
			s.emit(api.Event{Service: name, Replica: strconv.Itoa(up.Replica), Type: api.EventStarted,
				Message: "found at " + up.Addr})
		}
		for _, up := range gone {
			delete(s.replicas, up.ID)
		}
		pool.publish()
	}
	s.observed = true
}

// lookupFailed reports the first failed lookup of a name in a row.
func (s *dnsSource) lookupFailed(name string, err error) {
	s.emit(api.Event{Service: s.byName[name], Type: api.EventError,
		Message: fmt.Sprintf("%v; the replicas found before stay", err)})
}

// startProbing starts the active health checks of a replica that joined;
// s.mu must be held. HTTP and TCP checks run from here; an exec check
// cannot, and Swarm runs it as the container's own health check, which
// keeps a failing task out of DNS: such a replica counts as healthy.
func (s *dnsSource) startProbing(r *replica) {
	h := s.spec.Cell.Services[r.service].Health
	r.probed = true
	switch {
	case h == nil || h.Kind() == "":
		r.health = health.StateNone
	case h.Kind() == "exec":
		r.health = health.StateHealthy
	default:
		r.health = health.StateStarting
		_ = s.prober.Add(health.Target{ID: r.id, Health: h, Checker: health.NewChecker(h, r.addr, "", nil), Started: r.started})
	}
	r.up.SetHealthy(r.health.Ready())
}

// unprobe stops the health checks of a replica; s.mu must be held.
func (s *dnsSource) unprobe(r *replica) {
	if r.probed {
		s.prober.Remove(r.id)
		r.probed = false
	}
}

// onHealth receives every health check result from the prober.
func (s *dnsSource) onHealth(res health.Result) {
	s.mu.Lock()
	r := s.replicas[res.ID]
	if r == nil || !r.probed {
		s.mu.Unlock()
		return
	}
	r.health = res.State
	if s.onCheck != nil {
		s.onCheck(r.service, r.n, res.OK)
	}
	r.up.SetHealthy(res.State.Ready())
	tr := res.Transition
	s.mu.Unlock()
	if tr == nil {
		return
	}
	if e, ok := healthEvent(r, tr); ok {
		s.emit(e)
	}
}

// Status reports the cell as the controller does. Desired counts the
// replicas found in DNS: the command line knows the count Swarm converges
// to and reports that instead.
func (s *dnsSource) Status() api.CellStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	cell := s.spec.Cell
	st := api.CellStatus{
		Cell:     cell.Name,
		Gateway:  "running",
		URL:      fmt.Sprintf("http://127.0.0.1:%d", cell.Gateway.Port),
		SpecHash: s.spec.Hash(),
	}
	bySvc := map[string][]*replica{}
	for _, r := range s.replicas {
		bySvc[r.service] = append(bySvc[r.service], r)
	}
	for _, name := range cell.ServiceNames() {
		ss := api.ServiceStatus{Service: name, Image: s.spec.Images[name].Ref, Replicas: []api.ReplicaStatus{}}
		if ss.Image == "" {
			ss.Image = cell.Services[name].Image
		}
		reps := bySvc[name]
		sort.Slice(reps, func(i, j int) bool { return reps[i].n < reps[j].n })
		var tally serviceTally
		for _, r := range reps {
			if !r.removing {
				ss.Desired++
				if r.health.Ready() {
					ss.Ready++
				}
			}
			tally.add(&ss, replicaStatus(r, now), s.traffic == nil)
		}
		ss.Health = tally.health(ss.Desired, ss.Ready, len(reps), false)
		s.serviceTraffic(&ss, now)
		st.Services = append(st.Services, ss)
	}
	if s.flowStatus != nil {
		st.Flows = s.flowStatus(now)
	}
	return st
}

// onTarget is the error of a change the target makes rather than the
// gateway: the admin API answers it 409.
func (s *dnsSource) onTarget(what, command string) error {
	return admin.Conflict(fmt.Errorf("cell %s runs on a %s, which runs its replicas: %s goes through its Swarm services (orchestro %s does it)",
		s.spec.Cell.Name, s.spec.Target, what, command))
}

// Scale refuses: Swarm keeps a service's replica count.
func (s *dnsSource) Scale(ctx context.Context, service string, replicas int) error {
	if s.spec.Cell.Services[service] == nil {
		return admin.NotFound(fmt.Errorf("cell %s has no service %q", s.spec.Cell.Name, service))
	}
	return s.onTarget("scaling", "scale")
}

// Restart refuses: Swarm rolls a service's tasks.
func (s *dnsSource) Restart(ctx context.Context, service string) error {
	if service != "" && s.spec.Cell.Services[service] == nil {
		return admin.NotFound(fmt.Errorf("cell %s has no service %q", s.spec.Cell.Name, service))
	}
	return s.onTarget("a restart", "restart")
}

// Stop refuses: removing the cell's Swarm services stops it.
func (s *dnsSource) Stop(ctx context.Context) error {
	return s.onTarget("stopping", "down")
}

// UpdateSpec accepts the spec the source runs and refuses any other: a
// new spec rolls the gateway's Swarm service, whose new tasks run it.
func (s *dnsSource) UpdateSpec(ctx context.Context, raw []byte) error {
	var spec api.GatewaySpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return admin.BadRequest(fmt.Errorf("decode spec: %w", err))
	}
	if spec.Cell == nil || spec.Cell.Name != s.spec.Cell.Name || spec.Project != s.spec.Project {
		return admin.BadRequest(fmt.Errorf("spec is for another cell"))
	}
	if spec.Hash() == s.spec.Hash() {
		return nil
	}
	return s.onTarget("a spec change", "up")
}

// Wake is called by the proxy when a request finds no available replica
// of a service. Until the first lookups the request waits for them; then
// it waits only for a replica found but not yet healthy. Either way the
// names are looked up again soon, for the requests that follow.
func (s *dnsSource) Wake(service string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pools[service] == nil {
		return false
	}
	if !s.observed {
		return true
	}
	s.poll.Kick()
	for _, r := range s.replicas {
		if r.service == service && !r.removing && r.health == health.StateStarting {
			return true
		}
	}
	return false
}

// peerFinder keeps the egress proxies of a gateway that finds its peers by
// DNS: each forwards to every gateway task its peer's name resolves to.
type peerFinder struct {
	poll  *poller
	emit  func(api.Event)
	cell  string
	peers []peerPool
	// found is set once the names were looked up: until then an egress
	// request is held rather than refused.
	found atomic.Bool
}

// peerPool is the upstreams of one peer, found by its name.
type peerPool struct {
	name string
	pool *addrPool
}

// newPeerFinder returns a finder that looks names up with res and
// publishes failures with emit, as events of cell.
func newPeerFinder(res resolver, emit func(api.Event), cell string) *peerFinder {
	f := &peerFinder{emit: emit, cell: cell}
	f.poll = newPoller(res, f.apply, f.lookupFailed)
	return f
}

// add makes the peer whose gateways name resolves to a pool of its egress
// proxy; it is called before Run.
func (f *peerFinder) add(name string, pool *addrPool) {
	f.peers = append(f.peers, peerPool{name: name, pool: pool})
	f.poll.watch(name)
}

// Run looks the peers up until ctx ends.
func (f *peerFinder) Run(ctx context.Context) error { return f.poll.Run(ctx) }

// wake is the egress proxies' Wake: a request waits for the first
// lookups.
func (f *peerFinder) wake(string) bool { return !f.found.Load() }

func (f *peerFinder) apply(addrs map[string][]string) {
	now := time.Now()
	for _, p := range f.peers {
		p.pool.update(addrs[p.name], now)
		p.pool.publish()
	}
	f.found.Store(true)
}

func (f *peerFinder) lookupFailed(name string, err error) {
	f.emit(api.Event{Time: time.Now(), Cell: f.cell, Type: api.EventError,
		Message: fmt.Sprintf("%v; the gateways found before stay", err)})
}
