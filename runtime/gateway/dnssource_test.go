package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/proxy"
)

// The DNS source tests answer lookups from a fake resolver with loopback
// addresses (127.0.0.2, 127.0.0.3, …, all of them the local host on
// Linux), where stub replicas listen on one port, the service's, as the
// tasks of a Swarm service do on their own addresses.

// fakeDNS answers lookups from a table the test changes.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][]string
	errs    map[string]error
}

func newFakeDNS() *fakeDNS {
	return &fakeDNS{answers: map[string][]string{}, errs: map[string]error{}}
}

// set makes name resolve to addrs (none: the name does not exist).
func (r *fakeDNS) set(name string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers[name] = addrs
	delete(r.errs, name)
}

// fail makes lookups of name fail with err.
func (r *fakeDNS) fail(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs[name] = err
}

func (r *fakeDNS) LookupHost(ctx context.Context, name string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.errs[name]; err != nil {
		return nil, err
	}
	if addrs := r.answers[name]; len(addrs) > 0 {
		return slices.Clone(addrs), nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// serverMisbehaving is a lookup failure that says nothing of the name.
func serverMisbehaving(name string) error {
	return &net.DNSError{Err: "server misbehaving", Name: name, Server: "127.0.0.11:53", IsTemporary: true}
}

// dnsStub is a replica listening on a loopback address: it answers
// its address, /healthz as healthy says, and /slow once release is closed.
type dnsStub struct {
	ip      string
	healthy atomic.Bool
	release chan struct{}
}

func (s *dnsStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		if !s.healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	case "/slow":
		<-s.release
	}
	_, _ = io.WriteString(w, s.ip)
}

// startDNSStubs starts a stub replica on each of ips, all on one free
// port, which it returns.
func startDNSStubs(t *testing.T, ips ...string) (int, map[string]*dnsStub) {
	t.Helper()
	for range 20 {
		lns, port, err := listenDNSStubs(ips)
		if err != nil {
			continue
		}
		reps := map[string]*dnsStub{}
		for i, ip := range ips {
			rep := &dnsStub{ip: ip, release: make(chan struct{})}
			rep.healthy.Store(true)
			srv := httptest.NewUnstartedServer(rep)
			srv.Listener.Close()
			srv.Listener = lns[i]
			srv.Start()
			t.Cleanup(func() {
				select {
				case <-rep.release:
				default:
					close(rep.release)
				}
				srv.Close()
			})
			reps[ip] = rep
		}
		return port, reps
	}
	t.Skip("cannot listen on loopback addresses other than 127.0.0.1 here")
	return 0, nil
}

// listenDNSStubs listens on one port on each of ips.
func listenDNSStubs(ips []string) ([]net.Listener, int, error) {
	first, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
	if err != nil {
		return nil, 0, err
	}
	port := first.Addr().(*net.TCPAddr).Port
	lns := []net.Listener{first}
	for _, ip := range ips[1:] {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, 0, err
		}
		lns = append(lns, ln)
	}
	return lns, port, nil
}

// dnsSpec is a cell on a swarm whose service catalog listens on port and
// is found as tasks.demo-shop-catalog.
func dnsSpec(port int, h *cellspec.Health) *api.GatewaySpec {
	cell := &cellspec.Cell{
		Name: "shop",
		Gateway: cellspec.Gateway{Port: 8081, Balance: cellspec.BalanceRoundRobin,
			Routes: []cellspec.Route{{Path: "/", Service: "catalog", Timeout: cellspec.Duration(10 * time.Second), Retries: 1}}},
		Services: map[string]*cellspec.Service{
			"catalog": {Name: "catalog", Image: "catalog:1", Port: port, Replicas: 2, Restart: cellspec.RestartAlways, Health: h},
		},
	}
	return &api.GatewaySpec{Project: "demo", Cell: cell, Target: api.TargetSwarm,
		Images:    map[string]api.ServiceImage{"catalog": {Ref: "registry.local/catalog:1", ID: "sha256:1"}},
		Discovery: map[string]string{"catalog": "tasks.demo-shop-catalog"}}
}

// newTestDNSSource returns a DNS source for spec on a proxy that holds
// requests as a gateway's does, with its event log.
func newTestDNSSource(t *testing.T, spec *api.GatewaySpec, res resolver) (*dnsSource, *proxy.Proxy, *eventLog) {
	t.Helper()
	var s *dnsSource
	px, err := proxy.New(spec.Cell, proxy.Options{Wake: func(service string) bool { return s.Wake(service) }, HoldTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = px.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	events := &eventLog{}
	s = newDNSSource(spec, px, events, res)
	return s, px, events
}

// runDNSProber runs the source's health checks until the test ends.
func runDNSProber(t *testing.T, s *dnsSource) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.prober.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// dnsGet sends a request through h and returns the status and body.
func dnsGet(h http.Handler, path string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// dnsReached returns the replicas n requests through h reached, sorted, and
// "503" for a request no replica answered.
func dnsReached(t *testing.T, h http.Handler, n int) []string {
	t.Helper()
	seen := map[string]bool{}
	for range n {
		code, body := dnsGet(h, "/")
		if code != http.StatusOK {
			body = strconv.Itoa(code)
		}
		seen[body] = true
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// upstreamList lists a service's upstreams on px as "name=addr".
func upstreamList(px *proxy.Proxy, service string) []string {
	var out []string
	for _, up := range px.Upstreams(service) {
		out = append(out, up.Name+"="+up.Addr)
	}
	return out
}

func TestAnswerFold(t *testing.T) {
	notFound := &net.DNSError{Err: "no such host", Name: "n", IsNotFound: true}
	broken := serverMisbehaving("n")
	type step struct {
		addrs  []string
		err    error
		want   []string
		report bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"addresses replace, sorted and without repeats", []step{
			{addrs: []string{"10.0.0.10", "10.0.0.9", "10.0.0.9"}, want: []string{"10.0.0.9", "10.0.0.10"}},
			{addrs: []string{"10.0.0.3"}, want: []string{"10.0.0.3"}},
		}},
		{"a failure keeps the answer and is reported once", []step{
			{addrs: []string{"10.0.0.2"}, want: []string{"10.0.0.2"}},
			{err: broken, want: []string{"10.0.0.2"}, report: true},
			{err: broken, want: []string{"10.0.0.2"}},
			{addrs: []string{"10.0.0.3"}, want: []string{"10.0.0.3"}},
			{err: broken, want: []string{"10.0.0.3"}, report: true},
		}},
		{"a name gone twice in a row empties it", []step{
			{addrs: []string{"10.0.0.2"}, want: []string{"10.0.0.2"}},
			{err: notFound, want: []string{"10.0.0.2"}},
			{addrs: []string{"10.0.0.2"}, want: []string{"10.0.0.2"}},
			{err: notFound, want: []string{"10.0.0.2"}},
			{err: broken, want: []string{"10.0.0.2"}, report: true},
			{err: notFound, want: nil},
		}},
		{"an empty answer counts as gone", []step{
			{addrs: []string{"10.0.0.2"}, want: []string{"10.0.0.2"}},
			{want: []string{"10.0.0.2"}},
			{want: nil},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a answer
			for i, s := range tc.steps {
				err := a.fold(s.addrs, s.err)
				if (err != nil) != s.report {
					t.Errorf("step %d: reported %v, want a report: %v", i, err, s.report)
				}
				if !slices.Equal(a.addrs, s.want) {
					t.Errorf("step %d: addresses %v, want %v", i, a.addrs, s.want)
				}
			}
		})
	}
}

func TestDNSSourceFollowsDNS(t *testing.T) {
	port, _ := startDNSStubs(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	res := newFakeDNS()
	res.set("tasks.demo-shop-catalog", "127.0.0.3", "127.0.0.2")
	s, px, events := newTestDNSSource(t, dnsSpec(port, nil), res)
	s.poll.round(t.Context())

	p := strconv.Itoa(port)
	if diff := cmp.Diff([]string{"catalog-1=127.0.0.2:" + p, "catalog-2=127.0.0.3:" + p}, upstreamList(px, "catalog")); diff != "" {
		t.Errorf("upstreams (-want +got):\n%s", diff)
	}
	if got := dnsReached(t, px, 10); !slices.Equal(got, []string{"127.0.0.2", "127.0.0.3"}) {
		t.Errorf("requests reached %v", got)
	}
	kept := px.Upstreams("catalog")[1]

	// A task stops, another starts: the new one takes the lowest number
	// free, the one still there keeps its upstream.
	res.set("tasks.demo-shop-catalog", "127.0.0.3", "127.0.0.4")
	s.poll.round(t.Context())
	if diff := cmp.Diff([]string{"catalog-1=127.0.0.4:" + p, "catalog-2=127.0.0.3:" + p}, upstreamList(px, "catalog")); diff != "" {
		t.Errorf("upstreams (-want +got):\n%s", diff)
	}
	if px.Upstreams("catalog")[1] != kept {
		t.Error("the upstream of a replica still in DNS was replaced")
	}
	if got := dnsReached(t, px, 10); !slices.Equal(got, []string{"127.0.0.3", "127.0.0.4"}) {
		t.Errorf("requests reached %v", got)
	}
	want := sorted([]string{
		"started catalog-1: found at 127.0.0.2:" + p,
		"started catalog-2: found at 127.0.0.3:" + p,
		"removed catalog-1: 127.0.0.2:" + p + " is no longer in DNS",
		"started catalog-1: found at 127.0.0.4:" + p,
	})
	if diff := cmp.Diff(want, events.take()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestDNSSourceDrainsReplicaThatLeft(t *testing.T) {
	port, reps := startDNSStubs(t, "127.0.0.2", "127.0.0.3")
	res := newFakeDNS()
	res.set("tasks.demo-shop-catalog", "127.0.0.2")
	s, px, _ := newTestDNSSource(t, dnsSpec(port, nil), res)
	s.poll.round(t.Context())

	slow := make(chan string)
	go func() { _, body := dnsGet(px, "/slow"); slow <- body }()
	first := px.Upstreams("catalog")[0]
	waitFor(t, func() bool { return first.Inflight() == 1 })

	res.set("tasks.demo-shop-catalog", "127.0.0.3")
	s.poll.round(t.Context())
	p := strconv.Itoa(port)
	// The replica that left drains: it keeps its number while its
	// request runs, so the new one takes 2.
	if diff := cmp.Diff([]string{"catalog-1=127.0.0.2:" + p, "catalog-2=127.0.0.3:" + p}, upstreamList(px, "catalog")); diff != "" {
		t.Errorf("upstreams while draining (-want +got):\n%s", diff)
	}
	if !first.Draining() {
		t.Error("the replica that left DNS is not draining")
	}
	if got := dnsReached(t, px, 5); !slices.Equal(got, []string{"127.0.0.3"}) {
		t.Errorf("requests reached %v while 127.0.0.2 drains", got)
	}
	st := s.Status().Services[0]
	if st.Desired != 1 || st.Ready != 1 || len(st.Replicas) != 2 || st.Replicas[0].Health != "draining" {
		t.Errorf("status while draining: desired %d, ready %d, replicas %+v", st.Desired, st.Ready, st.Replicas)
	}

	close(reps["127.0.0.2"].release)
	if body := <-slow; body != "127.0.0.2" {
		t.Errorf("the drained request got %q", body)
	}
	s.poll.round(t.Context())
	if diff := cmp.Diff([]string{"catalog-2=127.0.0.3:" + p}, upstreamList(px, "catalog")); diff != "" {
		t.Errorf("upstreams after the drain (-want +got):\n%s", diff)
	}
}

func TestDNSSourceKeepsReplicasWhenLookupFails(t *testing.T) {
	port, _ := startDNSStubs(t, "127.0.0.2", "127.0.0.3")
	res := newFakeDNS()
	name := "tasks.demo-shop-catalog"
	res.set(name, "127.0.0.2", "127.0.0.3")
	s, px, events := newTestDNSSource(t, dnsSpec(port, nil), res)
	s.poll.round(t.Context())
	events.take()

	res.fail(name, serverMisbehaving(name))
	s.poll.round(t.Context())
	s.poll.round(t.Context())
	if got := len(px.Upstreams("catalog")); got != 2 {
		t.Errorf("%d upstreams after failed lookups, want the 2 found before", got)
	}
	if got := dnsReached(t, px, 10); !slices.Equal(got, []string{"127.0.0.2", "127.0.0.3"}) {
		t.Errorf("requests reached %v after failed lookups", got)
	}
	want := []string{"error catalog: lookup tasks.demo-shop-catalog on 127.0.0.11:53: server misbehaving; the replicas found before stay"}
	if diff := cmp.Diff(want, events.take()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// Scaled to zero: the name is gone, which empties the pool once
	// it is seen twice.
	res.set(name)
	s.poll.round(t.Context())
	if got := len(px.Upstreams("catalog")); got != 2 {
		t.Errorf("%d upstreams after one answer of no such host, want 2", got)
	}
	s.poll.round(t.Context())
	if got := len(px.Upstreams("catalog")); got != 0 {
		t.Errorf("%d upstreams after two answers of no such host, want none", got)
	}
	if code, _ := dnsGet(px, "/"); code != http.StatusServiceUnavailable {
		t.Errorf("a request to a service with no replica answered %d", code)
	}
	if st := s.Status().Services[0]; st.Health != "stopped" || st.Desired != 0 || len(st.Replicas) != 0 {
		t.Errorf("status of a service scaled to zero: %+v", st)
	}

	res.set(name, "127.0.0.3")
	s.poll.round(t.Context())
	if diff := cmp.Diff([]string{"catalog-1=127.0.0.3:" + strconv.Itoa(port)}, upstreamList(px, "catalog")); diff != "" {
		t.Errorf("upstreams after scaling up (-want +got):\n%s", diff)
	}
}

func TestDNSSourceHealthChecks(t *testing.T) {
	port, reps := startDNSStubs(t, "127.0.0.2", "127.0.0.3")
	reps["127.0.0.3"].healthy.Store(false)
	h := &cellspec.Health{HTTP: "/healthz", Interval: cellspec.Duration(20 * time.Millisecond),
		Timeout: cellspec.Duration(time.Second), Retries: 1}
	res := newFakeDNS()
	res.set("tasks.demo-shop-catalog", "127.0.0.2", "127.0.0.3")
	s, px, events := newTestDNSSource(t, dnsSpec(port, h), res)
	var checks atomic.Int64
	s.setHooks(hooks{onCheck: func(string, int, bool) { checks.Add(1) }})

	// Found, not checked yet: in the pool, but out of rotation.
	s.poll.round(t.Context())
	for _, up := range px.Upstreams("catalog") {
		if up.Healthy() {
			t.Errorf("%s is in rotation before its first health check", up)
		}
	}
	if st := s.Status().Services[0]; st.Ready != 0 || st.Health != "starting" || st.Replicas[0].Health != "starting" {
		t.Errorf("status before the first checks: ready %d, health %s, replicas %+v", st.Ready, st.Health, st.Replicas)
	}
	if !s.Wake("catalog") {
		t.Error("a request is not held for replicas waiting for their first check")
	}

	runDNSProber(t, s)
	ups := px.Upstreams("catalog")
	waitFor(t, func() bool {
		st := s.Status().Services[0]
		return st.Replicas[0].Health == "healthy" && st.Replicas[1].Health == "unhealthy"
	})
	if !ups[0].Healthy() || ups[1].Healthy() {
		t.Errorf("healthy: %s %v, %s %v", ups[0], ups[0].Healthy(), ups[1], ups[1].Healthy())
	}
	if got := dnsReached(t, px, 10); !slices.Equal(got, []string{"127.0.0.2"}) {
		t.Errorf("requests reached %v, want only the healthy replica", got)
	}
	if st := s.Status().Services[0]; st.Ready != 1 || st.Desired != 2 || st.Health != "unhealthy" {
		t.Errorf("status: ready %d of %d, health %s", st.Ready, st.Desired, st.Health)
	}

	// The healthy one fails, the other recovers.
	reps["127.0.0.2"].healthy.Store(false)
	reps["127.0.0.3"].healthy.Store(true)
	waitFor(t, func() bool { return !ups[0].Healthy() && ups[1].Healthy() })
	if got := dnsReached(t, px, 10); !slices.Equal(got, []string{"127.0.0.3"}) {
		t.Errorf("requests reached %v, want only the replica that recovered", got)
	}
	if checks.Load() == 0 {
		t.Error("no health check reached the metrics hook")
	}
	got := slices.DeleteFunc(events.take(), func(e string) bool { return e[:7] == "started" })
	want := []string{
		"healthy catalog-1: ",
		"healthy catalog-2: ",
		"unhealthy catalog-1: 1 failed health check: GET http://127.0.0.2:" + strconv.Itoa(port) + "/healthz: status 500 Internal Server Error: 127.0.0.2",
		"unhealthy catalog-2: 1 failed health check: GET http://127.0.0.3:" + strconv.Itoa(port) + "/healthz: status 500 Internal Server Error: 127.0.0.3",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// A replica that leaves DNS is no longer checked.
	res.set("tasks.demo-shop-catalog", "127.0.0.3")
	s.poll.round(t.Context())
	waitFor(t, func() bool { return len(s.prober.Targets()) == 1 })
}

func TestDNSSourceStatus(t *testing.T) {
	cell := &cellspec.Cell{
		Name: "shop",
		Gateway: cellspec.Gateway{Port: 8081, Balance: cellspec.BalanceRoundRobin, Routes: []cellspec.Route{
			{Path: "/catalog", Service: "catalog"}, {Path: "/search", Service: "search"}, {Path: "/idle", Service: "idle"}}},
		Services: map[string]*cellspec.Service{
			"catalog": {Name: "catalog", Image: "catalog:1", Port: 8080, Replicas: 2},
			"search":  {Name: "search", Image: "search:1", Port: 9000, Replicas: 1, Health: &cellspec.Health{Exec: []string{"true"}}},
			"idle":    {Name: "idle", Image: "idle:1", Port: 8080, Replicas: 0},
		},
	}
	spec := &api.GatewaySpec{Project: "demo", Cell: cell, Target: api.TargetSwarm,
		Images: map[string]api.ServiceImage{"catalog": {Ref: "registry.local/catalog:1", ID: "sha256:1"}},
		Discovery: map[string]string{"catalog": "tasks.demo-shop-catalog", "search": "tasks.demo-shop-search",
			"idle": "tasks.demo-shop-idle"}}
	res := newFakeDNS()
	res.set("tasks.demo-shop-catalog", "10.0.1.7", "10.0.1.5")
	res.set("tasks.demo-shop-search", "10.0.1.9")
	s, _, _ := newTestDNSSource(t, spec, res)
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return at }
	s.poll.round(t.Context())

	replica := func(svc string, n int, addr, h string) api.ReplicaStatus {
		return api.ReplicaStatus{Name: fmt.Sprintf("%s-%d", svc, n), Replica: n, State: "running", Health: h,
			Address: addr, Started: at, ConfigHash: serviceHash(spec, svc)}
	}
	want := api.CellStatus{
		Cell: "shop", Gateway: "running", URL: "http://127.0.0.1:8081", SpecHash: spec.Hash(),
		Services: []api.ServiceStatus{
			{Service: "catalog", Image: "registry.local/catalog:1", Desired: 2, Ready: 2, Health: "healthy",
				Replicas: []api.ReplicaStatus{replica("catalog", 1, "10.0.1.5:8080", "none"), replica("catalog", 2, "10.0.1.7:8080", "none")}},
			{Service: "idle", Image: "idle:1", Health: "stopped", Replicas: []api.ReplicaStatus{}},
			{Service: "search", Image: "search:1", Desired: 1, Ready: 1, Health: "healthy",
				Replicas: []api.ReplicaStatus{replica("search", 1, "10.0.1.9:9000", "healthy")}},
		},
	}
	if diff := cmp.Diff(want, s.Status()); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestDNSSourceRefusesChanges(t *testing.T) {
	spec := dnsSpec(8080, nil)
	s, _, _ := newTestDNSSource(t, spec, newFakeDNS())
	code := func(err error) int {
		var se *admin.StatusError
		if !errors.As(err, &se) {
			return 0
		}
		return se.Code
	}
	same, _ := json.Marshal(spec)
	changed := *spec
	changed.Images = map[string]api.ServiceImage{"catalog": {Ref: "registry.local/catalog:2", ID: "sha256:2"}}
	other := changed
	other.Project = "elsewhere"
	rawChanged, _ := json.Marshal(changed)
	rawOther, _ := json.Marshal(other)
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"scale", s.Scale(t.Context(), "catalog", 3), http.StatusConflict},
		{"scale an unknown service", s.Scale(t.Context(), "nope", 3), http.StatusNotFound},
		{"restart", s.Restart(t.Context(), ""), http.StatusConflict},
		{"stop", s.Stop(t.Context()), http.StatusConflict},
		{"the same spec", s.UpdateSpec(t.Context(), same), 0},
		{"a new spec", s.UpdateSpec(t.Context(), rawChanged), http.StatusConflict},
		{"another cell's spec", s.UpdateSpec(t.Context(), rawOther), http.StatusBadRequest},
	} {
		if got := code(tc.err); got != tc.want || (tc.want == 0) != (tc.err == nil) {
			t.Errorf("%s: %v (%d), want %d", tc.name, tc.err, got, tc.want)
		}
	}
	want := "cell shop runs on a swarm, which runs its replicas: scaling goes through its Swarm services (orchestro scale does it)"
	if err := s.Scale(t.Context(), "catalog", 3); err.Error() != want {
		t.Errorf("scale: %q, want %q", err, want)
	}
}

func TestDNSSourceWake(t *testing.T) {
	res := newFakeDNS()
	s, _, _ := newTestDNSSource(t, dnsSpec(8080, nil), res)
	if !s.Wake("catalog") {
		t.Error("a request before the first lookup is not held")
	}
	if s.Wake("nope") {
		t.Error("a request for an unknown service is held")
	}
	s.poll.round(t.Context())
	if s.Wake("catalog") {
		t.Error("a request for a service with no replica is held")
	}
	select {
	case <-s.poll.kick:
	default:
		t.Error("a request that found no replica asked for no lookup")
	}
}

func TestDNSSourceRun(t *testing.T) {
	port, _ := startDNSStubs(t, "127.0.0.2", "127.0.0.3")
	res := newFakeDNS()
	res.set("tasks.demo-shop-catalog", "127.0.0.2")
	s, px, _ := newTestDNSSource(t, dnsSpec(port, nil), res)
	s.poll.interval = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	// Held until the first lookup, then served.
	if code, body := dnsGet(px, "/"); code != http.StatusOK || body != "127.0.0.2" {
		t.Errorf("first request: %d %q", code, body)
	}
	res.set("tasks.demo-shop-catalog", "127.0.0.2", "127.0.0.3")
	waitFor(t, func() bool { return len(px.Upstreams("catalog")) == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func TestPeerFinderFollowsDNS(t *testing.T) {
	port, _ := startDNSStubs(t, "127.0.0.2", "127.0.0.3")
	res := newFakeDNS()
	name := "tasks.demo-users-gateway"
	res.set(name, "127.0.0.2", "127.0.0.3")
	events := &eventLog{}
	f := newPeerFinder(res, events.Publish, "shop")
	fwd := proxy.NewForward("users", nil, proxy.Options{Wake: f.wake})
	f.add(name, newAddrPool(fwd, "users", port))
	if !f.wake("users") {
		t.Error("an egress request before the first lookup is not held")
	}

	f.poll.round(t.Context())
	if f.wake("users") {
		t.Error("an egress request is held after the first lookup")
	}
	p := strconv.Itoa(port)
	if diff := cmp.Diff([]string{"users-1=127.0.0.2:" + p, "users-2=127.0.0.3:" + p}, upstreamList(fwd, "users")); diff != "" {
		t.Errorf("egress upstreams (-want +got):\n%s", diff)
	}
	if got := dnsReached(t, fwd, 10); !slices.Equal(got, []string{"127.0.0.2", "127.0.0.3"}) {
		t.Errorf("egress requests reached %v", got)
	}

	res.set(name, "127.0.0.3")
	f.poll.round(t.Context())
	if got := dnsReached(t, fwd, 10); !slices.Equal(got, []string{"127.0.0.3"}) {
		t.Errorf("egress requests reached %v after a gateway left", got)
	}

	res.fail(name, serverMisbehaving(name))
	f.poll.round(t.Context())
	if diff := cmp.Diff([]string{"users-2=127.0.0.3:" + p}, upstreamList(fwd, "users")); diff != "" {
		t.Errorf("egress upstreams after a failed lookup (-want +got):\n%s", diff)
	}
	want := []string{"error : lookup tasks.demo-users-gateway on 127.0.0.11:53: server misbehaving; the gateways found before stay"}
	if diff := cmp.Diff(want, events.take()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestRunFindsByDNS runs a gateway on a swarm, with no engine: it finds
// its replica and its peer's gateway by name (IP literals, which resolve
// to themselves). It listens on 127.0.0.4, where nothing else does: its
// egress port is the peer's.
func TestRunFindsByDNS(t *testing.T) {
	port, _ := startDNSStubs(t, "127.0.0.2")
	peerPort, _ := startDNSStubs(t, "127.0.0.3")
	free := func() int {
		ln, err := net.Listen("tcp", "127.0.0.4:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	spec := dnsSpec(port, nil)
	spec.Cell.Gateway.Port = free()
	spec.AdminPort = free()
	spec.Cell.Uses = []string{"users"}
	spec.Discovery["catalog"] = "127.0.0.2"
	spec.Peers = map[string]string{"users": net.JoinHostPort("127.0.0.3", strconv.Itoa(peerPort))}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Spec: spec, Token: "token", AccessLog: io.Discard,
			Log: slog.New(slog.DiscardHandler), ListenHost: "127.0.0.4"})
	}()
	fetch := func(port int, path string) (int, string) {
		t.Helper()
		var resp *http.Response
		waitFor(t, func() bool {
			var err error
			resp, err = http.Get(fmt.Sprintf("http://127.0.0.4:%d%s", port, path))
			return err == nil
		})
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := fetch(spec.Cell.Gateway.Port, "/"); code != http.StatusOK || body != "127.0.0.2" {
		t.Errorf("data port: %d %q", code, body)
	}
	if code, body := fetch(peerPort, "/"); code != http.StatusOK || body != "127.0.0.3" {
		t.Errorf("egress port: %d %q", code, body)
	}
	code, body := fetch(spec.AdminPort, api.PathStatus)
	var st api.CellStatus
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		t.Fatalf("status: %d %s", code, body)
	}
	if len(st.Services) != 1 || len(st.Services[0].Replicas) != 1 || st.Services[0].Replicas[0].Address != net.JoinHostPort("127.0.0.2", strconv.Itoa(port)) {
		t.Errorf("status: %+v", st.Services)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway did not stop")
	}
}
