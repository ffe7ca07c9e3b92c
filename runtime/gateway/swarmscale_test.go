package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
	"github.com/orchestro/orchestro/runtime/internal/testnet"
)

// The SDK's client and the standard resolver are what the scaler runs on.
var (
	_ SwarmEngine  = (*client.Client)(nil)
	_ HostResolver = net.DefaultResolver
)

const (
	swProject = "demo"
	swCell    = "shop"
	swService = "api"
	swName    = "demo-shop-api"
	swID      = "svc-api"
	swGateway = "demo-shop-gateway"
	swPort    = "9000"
)

// swUpdate is one ServiceUpdate the fake swarm received.
type swUpdate struct {
	id       string
	version  uint64
	replicas int
	labels   map[string]string
	err      error
}

// fakeSwarm is a swarm of Swarm services with the version check of the
// real one: an update with a stale version is refused.
type fakeSwarm struct {
	mu       sync.Mutex
	services map[string]*swarm.Service
	updates  []swUpdate
	// beforeUpdate, when set, runs at the start of an update: another
	// writer acting between the scaler's read and its write.
	beforeUpdate func(f *fakeSwarm)
}

func newFakeSwarm(replicas int, policy cellspec.Autoscale) *fakeSwarm {
	label, err := EncodeAutoscaleLabel(&policy)
	if err != nil {
		panic(err)
	}
	n := uint64(replicas)
	gw := uint64(2)
	f := &fakeSwarm{services: map[string]*swarm.Service{
		swID: {
			ID:   swID,
			Meta: swarm.Meta{Version: swarm.Version{Index: 10}},
			Spec: swarm.ServiceSpec{
				Annotations: swarm.Annotations{Name: swName, Labels: map[string]string{
					engine.LabelProject: swProject, engine.LabelCell: swCell, engine.LabelService: swService,
					engine.LabelRole: engine.RoleReplica, engine.AutoscaleLabel: label,
				}},
				Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &n}},
			},
		},
		"svc-gw": {
			ID:   "svc-gw",
			Meta: swarm.Meta{Version: swarm.Version{Index: 3}},
			Spec: swarm.ServiceSpec{
				Annotations: swarm.Annotations{Name: swGateway, Labels: map[string]string{
					engine.LabelProject: swProject, engine.LabelCell: swCell, engine.LabelRole: engine.RoleGateway,
					engine.LabelAdminPort: swPort,
				}},
				Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &gw}},
			},
		},
	}}
	return f
}

// copyService returns a copy that shares nothing the scaler could change.
func copyService(s *swarm.Service) swarm.Service {
	c := *s
	c.Spec.Labels = maps.Clone(s.Spec.Labels)
	if r := s.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		n := *r.Replicas
		c.Spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &n}}
	}
	return c
}

func (f *fakeSwarm) ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := options.Filters.Get("label"); len(got) != 1 || got[0] != engine.LabelProject+"="+swProject {
		return nil, errors.New("unexpected filter")
	}
	var out []swarm.Service
	for _, s := range f.services {
		out = append(out, copyService(s))
	}
	return out, nil
}

func (f *fakeSwarm) ServiceUpdate(ctx context.Context, id string, version swarm.Version, spec swarm.ServiceSpec, options swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error) {
	if f.beforeUpdate != nil {
		hook := f.beforeUpdate
		f.beforeUpdate = nil
		hook(f)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.services[id]
	u := swUpdate{id: id, version: version.Index, replicas: int(*spec.Mode.Replicated.Replicas), labels: maps.Clone(spec.Labels)}
	if s.Version.Index != version.Index {
		u.err = errors.New("Error response from daemon: rpc error: code = Unknown desc = update out of sequence")
		f.updates = append(f.updates, u)
		return swarm.ServiceUpdateResponse{}, u.err
	}
	f.updates = append(f.updates, u)
	s.Spec = spec
	s.Version.Index++
	return swarm.ServiceUpdateResponse{}, nil
}

func (f *fakeSwarm) ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error) {
	return nil, nil
}

func (f *fakeSwarm) ContainerStats(ctx context.Context, id string, stream bool) (container.StatsResponseReader, error) {
	return container.StatsResponseReader{}, errors.New("no stats in this fake")
}

// setReplicas is another writer (`orchestro scale`) setting the count.
func (f *fakeSwarm) setReplicas(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.services[swID]
	v := uint64(n)
	s.Spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &v}}
	s.Version.Index++
}

func (f *fakeSwarm) setUpdateState(state swarm.UpdateState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services[swID].UpdateStatus = &swarm.UpdateStatus{State: state}
}

// calls returns the updates received so far.
func (f *fakeSwarm) calls() []swUpdate {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]swUpdate(nil), f.updates...)
}

// applied returns the updates that took effect.
func (f *fakeSwarm) applied() []swUpdate {
	var out []swUpdate
	for _, u := range f.calls() {
		if u.err == nil {
			out = append(out, u)
		}
	}
	return out
}

// fakeGateway is one gateway task's admin API, reporting one service.
type fakeGateway struct {
	mu       sync.Mutex
	ready    int
	inflight int64
	rps      float64
	srv      *httptest.Server
}

func (g *fakeGateway) set(ready int, inflight int64, rps float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ready, g.inflight, g.rps = ready, inflight, rps
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != api.PathStatus || r.Header.Get(api.TokenHeader) != "" {
		http.Error(w, "unexpected request", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	st := api.CellStatus{Cell: swCell, Gateway: "running", Services: []api.ServiceStatus{
		{Service: "other", Ready: 9, InFlight: 1000, RPS: 1000},
		{Service: swService, Ready: g.ready, InFlight: g.inflight, RPS: g.rps},
	}}
	g.mu.Unlock()
	_ = json.NewEncoder(w).Encode(st)
}

// swarmFixture is a scaler over a fake swarm whose cell has two gateway
// tasks, at 10.0.0.1 and 10.0.0.2, served by httptest servers.
type swarmFixture struct {
	t     *testing.T
	eng   *fakeSwarm
	gw    [2]*fakeGateway
	now   time.Time
	s     *SwarmScaler
	mu    sync.Mutex
	route map[string]string
}

func newSwarmFixture(t *testing.T, replicas int, policy cellspec.Autoscale) *swarmFixture {
	t.Helper()
	fx := &swarmFixture{
		t:     t,
		eng:   newFakeSwarm(replicas, policy),
		now:   time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		route: map[string]string{},
	}
	for i := range fx.gw {
		g := &fakeGateway{}
		g.srv = httptest.NewServer(g)
		t.Cleanup(g.srv.Close)
		fx.gw[i] = g
	}
	fx.up(0)
	fx.up(1)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		fx.mu.Lock()
		to, ok := fx.route[addr]
		fx.mu.Unlock()
		if !ok {
			return nil, errors.New("no route to " + addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, to)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	s, err := NewSwarmScaler(SwarmScalerConfig{
		Engine:   fx.eng,
		Project:  swProject,
		Resolver: swarmHosts{"tasks." + swGateway: {"10.0.0.2", "10.0.0.1"}},
		HTTP:     &http.Client{Transport: tr},
		Now:      func() time.Time { return fx.now },
		Log:      slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	fx.s = s
	return fx
}

func gatewayAddr(i int) string { return net.JoinHostPort("10.0.0."+string(rune('1'+i)), swPort) }

// up routes gateway i's address to its server.
func (fx *swarmFixture) up(i int) {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	fx.route[gatewayAddr(i)] = fx.gw[i].srv.Listener.Addr().String()
}

// down makes gateway i refuse connections: its task is listed in DNS but
// does not answer.
func (fx *swarmFixture) down(i int) {
	addr := testnet.RefusedAddr(fx.t)
	fx.mu.Lock()
	defer fx.mu.Unlock()
	fx.route[gatewayAddr(i)] = addr
}

// roundAt runs one round at d after the fixture's start.
func (fx *swarmFixture) roundAt(start time.Time, d time.Duration) {
	fx.now = start.Add(d)
	fx.s.round(context.Background())
}

type swarmHosts map[string][]string

func (r swarmHosts) LookupHost(ctx context.Context, host string) ([]string, error) {
	if a, ok := r[host]; ok {
		return append([]string(nil), a...), nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func inflightPolicy() cellspec.Autoscale {
	return cellspec.Autoscale{Min: 1, Max: 10, Inflight: 10, ScaleDownAfter: cellspec.Duration(time.Minute)}
}

func TestSwarmScalerAggregatesGateways(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy cellspec.Autoscale
		// Each gateway sees half the traffic; either half alone is
		// within the target.
		inflight int64
		rps      float64
		reason   string
	}{
		{"inflight", inflightPolicy(), 15, 0, "inflight 15/replica > target 10: 2 → 3"},
		{"rps", cellspec.Autoscale{Min: 1, Max: 10, RPS: 20, ScaleDownAfter: cellspec.Duration(time.Minute)}, 0, 30, "rps 30/replica > target 20: 2 → 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newSwarmFixture(t, 2, tc.policy)
			// One gateway has both replicas ready, the other has just
			// started and sees one: the ready count is the larger.
			fx.gw[0].set(2, tc.inflight, tc.rps)
			fx.gw[1].set(1, tc.inflight, tc.rps)
			start := fx.now
			fx.roundAt(start, 0)

			got := fx.eng.applied()
			if len(got) != 1 {
				t.Fatalf("updates = %+v, want one", fx.eng.calls())
			}
			u := got[0]
			if u.id != swID || u.version != 10 || u.replicas != 3 {
				t.Errorf("update = %s v%d → %d, want %s v10 → 3", u.id, u.version, u.replicas, swID)
			}
			ev, ok := DecodeScaledLabel(u.labels[engine.ScaledLabel])
			if !ok {
				t.Fatalf("label %s = %q, not an event", engine.ScaledLabel, u.labels[engine.ScaledLabel])
			}
			want := api.Event{Time: start, Cell: swCell, Service: swService, Type: api.EventScaled, From: 2, To: 3, Message: tc.reason}
			if ev != want {
				t.Errorf("event = %+v, want %+v", ev, want)
			}
			// The rest of the spec is kept.
			if u.labels[engine.AutoscaleLabel] == "" || u.labels[engine.LabelRole] != engine.RoleReplica {
				t.Errorf("labels = %v: the service's own labels were lost", u.labels)
			}

			// The next round carries on from 3 without writing again.
			fx.roundAt(start, time.Second)
			if n := len(fx.eng.calls()); n != 1 {
				t.Errorf("%d updates after a steady round, want 1: %+v", n, fx.eng.calls())
			}
		})
	}
}

func TestSwarmScalerStaleVersionRetries(t *testing.T) {
	fx := newSwarmFixture(t, 2, inflightPolicy())
	fx.gw[0].set(2, 15, 0)
	fx.gw[1].set(2, 15, 0)
	// Between the scaler's read and its write, someone else updates the
	// service (a deploy changing a label, not the count).
	fx.eng.beforeUpdate = func(f *fakeSwarm) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.services[swID].Spec.Labels["io.orchestro.config-hash"] = "new"
		f.services[swID].Version.Index++
	}
	start := fx.now
	fx.roundAt(start, 0)
	calls := fx.eng.calls()
	if len(calls) != 1 || calls[0].err == nil || calls[0].version != 10 {
		t.Fatalf("first round: updates = %+v, want one refused at version 10", calls)
	}
	if len(fx.eng.applied()) != 0 {
		t.Fatal("a stale write took effect")
	}

	// The next round reads the new version and decides again.
	fx.roundAt(start, time.Second)
	got := fx.eng.applied()
	if len(got) != 1 || got[0].version != 11 || got[0].replicas != 3 {
		t.Fatalf("second round: applied = %+v, want 3 replicas at version 11", got)
	}
	if got[0].labels["io.orchestro.config-hash"] != "new" {
		t.Error("the write lost the other writer's change")
	}
}

func TestSwarmScalerConcurrentManualScaleWins(t *testing.T) {
	fx := newSwarmFixture(t, 2, inflightPolicy())
	fx.gw[0].set(2, 15, 0)
	fx.gw[1].set(2, 15, 0)
	// `orchestro scale api=6` lands between the scaler's read and write.
	fx.eng.beforeUpdate = func(f *fakeSwarm) { f.setReplicas(6) }
	start := fx.now
	fx.roundAt(start, 0)
	if len(fx.eng.applied()) != 0 {
		t.Fatal("the scaler overwrote a count it had not read")
	}
	// The next round starts from 6: the 4 starting replicas count as not
	// ready, so the same load asks for no change, and none is written.
	fx.roundAt(start, time.Second)
	if calls := fx.eng.calls(); len(calls) != 1 {
		t.Fatalf("updates = %+v, want only the refused one", calls)
	}
	if st := fx.s.services[swID]; st == nil || st.seen != 6 {
		t.Fatalf("scaler state = %+v, want it to carry on from 6", st)
	}
}

func TestSwarmScalerSilentGatewayHolds(t *testing.T) {
	fx := newSwarmFixture(t, 4, inflightPolicy())
	fx.gw[0].set(4, 200, 0) // alone it would ask for many more
	fx.down(1)
	start := fx.now
	fx.roundAt(start, 0)
	if calls := fx.eng.calls(); len(calls) != 0 {
		t.Fatalf("decided on one gateway's traffic: %+v", calls)
	}

	// Long silence, while the answering gateway sees no traffic: the
	// count holds rather than shrinking on partial figures.
	fx.gw[0].set(4, 0, 0)
	for d := time.Second; d <= 3*time.Minute; d += 10 * time.Second {
		fx.roundAt(start, d)
	}
	if calls := fx.eng.calls(); len(calls) != 0 {
		t.Fatalf("decided while a gateway was silent: %+v", calls)
	}

	// The gateway is back and the cell is idle: the hold counts as a
	// recommendation to stay, so the scale-down waits a full window
	// instead of following the first reading after the gap.
	fx.up(1)
	back := 3*time.Minute + 10*time.Second
	fx.roundAt(start, back)
	fx.roundAt(start, back+30*time.Second)
	if calls := fx.eng.calls(); len(calls) != 0 {
		t.Fatalf("scaled down within a window of the gap: %+v", calls)
	}
	fx.roundAt(start, back+61*time.Second)
	got := fx.eng.applied()
	if len(got) != 1 || got[0].replicas != 1 {
		t.Fatalf("applied = %+v, want a scale-down to min 1 once the window passed", got)
	}
}

func TestSwarmScalerDNSFailureHolds(t *testing.T) {
	fx := newSwarmFixture(t, 2, inflightPolicy())
	fx.s.resolver = swarmHosts{}
	fx.gw[0].set(2, 100, 0)
	fx.gw[1].set(2, 100, 0)
	fx.roundAt(fx.now, 0)
	if calls := fx.eng.calls(); len(calls) != 0 {
		t.Fatalf("decided without finding the gateways: %+v", calls)
	}
}

func TestSwarmScalerManualScaleResetsHistory(t *testing.T) {
	fx := newSwarmFixture(t, 4, inflightPolicy())
	// 20 in flight over the cell: 5 per replica at 4, half the target,
	// so the load asks for 2.
	fx.gw[0].set(4, 10, 0)
	fx.gw[1].set(4, 10, 0)
	start := fx.now
	fx.roundAt(start, 0)
	if calls := fx.eng.calls(); len(calls) != 0 {
		t.Fatalf("scaled down at start, inside the window: %+v", calls)
	}

	// `orchestro scale api=8`. Without a reset the history (4, then 2)
	// would take it straight back to 4.
	fx.eng.setReplicas(8)
	fx.gw[0].set(8, 10, 0)
	fx.gw[1].set(8, 10, 0)
	fx.roundAt(start, 30*time.Second)
	if calls := fx.eng.calls(); len(calls) != 0 {
		t.Fatalf("the scaler undid a manual scale at once: %+v", calls)
	}
	if st := fx.s.services[swID]; st.sc.status.LastDecision != "set by hand" {
		t.Errorf("last decision = %q, want set by hand", st.sc.status.LastDecision)
	}

	// A window after the manual scale, it carries on from 8.
	fx.roundAt(start, 91*time.Second)
	got := fx.eng.applied()
	if len(got) != 1 {
		t.Fatalf("applied = %+v, want one scale-down", fx.eng.calls())
	}
	if got[0].version != 11 || got[0].replicas != 2 {
		t.Errorf("update = v%d → %d, want v11 (the manual scale's) → 2", got[0].version, got[0].replicas)
	}
	if ev, _ := DecodeScaledLabel(got[0].labels[engine.ScaledLabel]); ev.From != 8 || ev.To != 2 {
		t.Errorf("event = %+v, want 8 → 2", ev)
	}
}

func TestSwarmScalerPausedRolloutHolds(t *testing.T) {
	fx := newSwarmFixture(t, 2, inflightPolicy())
	fx.gw[0].set(2, 50, 0)
	fx.gw[1].set(2, 50, 0)
	fx.eng.setUpdateState(swarm.UpdateStatePaused)
	start := fx.now
	fx.roundAt(start, 0)
	if calls := fx.eng.calls(); len(calls) != 0 {
		t.Fatalf("wrote during a paused rollout (it would resume it): %+v", calls)
	}
	fx.eng.setUpdateState(swarm.UpdateStateCompleted)
	fx.roundAt(start, time.Second)
	if got := fx.eng.applied(); len(got) != 1 || got[0].replicas != 6 {
		t.Fatalf("applied = %+v, want 2 → 6 (the step limit) once the rollout is settled", got)
	}
}

func TestSwarmScalerLostAnswerIsOwnWrite(t *testing.T) {
	fx := newSwarmFixture(t, 2, inflightPolicy())
	fx.gw[0].set(2, 15, 0)
	fx.gw[1].set(2, 15, 0)
	// The update takes effect but its answer is lost.
	lost := &lostAnswer{fakeSwarm: fx.eng}
	fx.s.eng = lost
	start := fx.now
	fx.roundAt(start, 0)
	fx.roundAt(start, time.Second)
	st := fx.s.services[swID]
	if st.seen != 3 || !strings.Contains(st.sc.status.LastDecision, "2 → 3") {
		t.Errorf("state = seen %d, last decision %q: want its own 2 → 3 recognized", st.seen, st.sc.status.LastDecision)
	}
}

// lostAnswer applies updates but answers them with an error.
type lostAnswer struct{ *fakeSwarm }

func (l *lostAnswer) ServiceUpdate(ctx context.Context, id string, version swarm.Version, spec swarm.ServiceSpec, options swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error) {
	if _, err := l.fakeSwarm.ServiceUpdate(ctx, id, version, spec, options); err != nil {
		return swarm.ServiceUpdateResponse{}, err
	}
	return swarm.ServiceUpdateResponse{}, context.DeadlineExceeded
}

func TestSwarmLabelsRoundTrip(t *testing.T) {
	p := cellspec.Autoscale{Min: 0, Max: 7, Inflight: 12.5, RPS: 40, CPU: 70, ScaleDownAfter: cellspec.Duration(90 * time.Second)}
	raw, err := EncodeAutoscaleLabel(&p)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeAutoscaleLabel(raw)
	if err != nil {
		t.Fatal(err)
	}
	if *back != p {
		t.Errorf("autoscale label %s decodes to %+v, want %+v", raw, *back, p)
	}
	for _, bad := range []string{"", "{", `{"min":3,"max":2}`, `{"scale_down_after":"soon"}`} {
		if _, err := DecodeAutoscaleLabel(bad); err == nil {
			t.Errorf("DecodeAutoscaleLabel(%q) accepted it", bad)
		}
	}

	ev := api.Event{Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Cell: swCell, Service: swService,
		Type: api.EventScaled, From: 3, To: 6, Message: "inflight 23.5/replica > target 10: 3 → 6"}
	raw, err = EncodeScaledLabel(ev)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := DecodeScaledLabel(raw)
	if !ok || got != ev {
		t.Errorf("scaled label %s decodes to %+v, %v; want %+v", raw, got, ok, ev)
	}
	for _, bad := range []string{"", "not json"} {
		if _, ok := DecodeScaledLabel(bad); ok {
			t.Errorf("DecodeScaledLabel(%q) accepted it", bad)
		}
	}
}
