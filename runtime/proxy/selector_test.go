package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// upstreamState describes a fabricated upstream for selector tests.
type upstreamState struct {
	id        string
	unhealthy bool
	ejected   bool // until one minute after the test clock's start
	draining  bool
	inflight  int64
	served    uint64
}

func fabricate(clock *fakeClock, states ...upstreamState) []*Upstream {
	pool := make([]*Upstream, 0, len(states))
	for _, s := range states {
		u := &Upstream{ID: s.id, Addr: s.id + ":80"}
		u.SetHealthy(!s.unhealthy)
		u.draining.Store(s.draining)
		if s.ejected {
			u.ejectedUntil.Store(clock.Now().Add(time.Minute).UnixNano())
		}
		u.inflight.Store(s.inflight)
		u.served.Store(s.served)
		pool = append(pool, u)
	}
	return pool
}

// choose picks from pool as the proxy does: the selector chooses among
// the candidates.
func choose(s Selector, clock *fakeClock, pool []*Upstream) *Upstream {
	cands, _ := appendCandidates(nil, pool, nil, clock.Now)
	if len(cands) == 0 {
		return nil
	}
	return s.Select(cands, nil)
}

func ids(ups []*Upstream) []string {
	out := make([]string, len(ups))
	for i, u := range ups {
		if u == nil {
			out[i] = "<nil>"
			continue
		}
		out[i] = u.ID
	}
	return out
}

func TestRoundRobin(t *testing.T) {
	tests := []struct {
		name  string
		pool  []upstreamState
		picks int
		want  []string
	}{
		{
			name:  "visits each in turn",
			pool:  []upstreamState{{id: "a"}, {id: "b"}, {id: "c"}},
			picks: 6,
			want:  []string{"a", "b", "c", "a", "b", "c"},
		},
		{
			name: "skips unhealthy, ejected and draining",
			pool: []upstreamState{
				{id: "a"}, {id: "b", unhealthy: true}, {id: "c", ejected: true},
				{id: "d"}, {id: "e", draining: true}, {id: "f"},
			},
			picks: 6,
			want:  []string{"a", "d", "f", "a", "d", "f"},
		},
		{
			name:  "single available",
			pool:  []upstreamState{{id: "a", unhealthy: true}, {id: "b"}},
			picks: 3,
			want:  []string{"b", "b", "b"},
		},
		{
			name:  "only an ejected one is healthy: panic mode routes to it",
			pool:  []upstreamState{{id: "a", unhealthy: true}, {id: "b", ejected: true}, {id: "c", draining: true}},
			picks: 2,
			want:  []string{"b", "b"},
		},
		{
			name:  "none available",
			pool:  []upstreamState{{id: "a", unhealthy: true}, {id: "c", draining: true}},
			picks: 2,
			want:  []string{"<nil>", "<nil>"},
		},
		{
			name:  "empty pool",
			picks: 1,
			want:  []string{"<nil>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			pool := fabricate(clock, tt.pool...)
			s := &RoundRobin{}
			got := make([]*Upstream, tt.picks)
			for i := range got {
				got[i] = choose(s, clock, pool)
			}
			if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
				t.Errorf("picks mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoundRobinEjectionEnds(t *testing.T) {
	clock := newFakeClock()
	pool := fabricate(clock, upstreamState{id: "a"}, upstreamState{id: "b", ejected: true})
	s := &RoundRobin{}
	got := []*Upstream{choose(s, clock, pool), choose(s, clock, pool)}
	clock.Advance(time.Minute)
	got = append(got, choose(s, clock, pool), choose(s, clock, pool))
	if diff := cmp.Diff([]string{"a", "a", "a", "b"}, ids(got)); diff != "" {
		t.Errorf("picks mismatch (-want +got):\n%s", diff)
	}
}

func TestLeastRequest(t *testing.T) {
	tests := []struct {
		name  string
		pool  []upstreamState
		never []string // must never be picked
		want  []string // every one of these must be picked at least once, nothing else
	}{
		{
			name: "fewer in flight wins",
			pool: []upstreamState{{id: "a", inflight: 3}, {id: "b", inflight: 1}},
			want: []string{"b"},
		},
		{
			name: "tie goes to fewer served",
			pool: []upstreamState{{id: "a", inflight: 2, served: 10}, {id: "b", inflight: 2, served: 3}},
			want: []string{"b"},
		},
		{
			name: "most loaded of three never wins",
			pool: []upstreamState{{id: "a", inflight: 0}, {id: "b", inflight: 5}, {id: "c", inflight: 9}},
			want: []string{"a", "b"},
		},
		{
			name: "unavailable are skipped however idle",
			pool: []upstreamState{
				{id: "a", unhealthy: true}, {id: "b", ejected: true}, {id: "c", draining: true},
				{id: "d", inflight: 7}, {id: "e", inflight: 8},
			},
			want: []string{"d"},
		},
		{
			name: "single available",
			pool: []upstreamState{{id: "a", inflight: 100}, {id: "b", unhealthy: true}},
			want: []string{"a"},
		},
		{
			name: "none available",
			pool: []upstreamState{{id: "a", draining: true}},
			want: []string{"<nil>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			pool := fabricate(clock, tt.pool...)
			s := &LeastRequest{}
			seen := map[string]bool{}
			for range 1000 {
				seen[ids([]*Upstream{choose(s, clock, pool)})[0]] = true
			}
			want := map[string]bool{}
			for _, id := range tt.want {
				want[id] = true
			}
			if diff := cmp.Diff(want, seen); diff != "" {
				t.Errorf("picked set mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewSelector(t *testing.T) {
	tests := []struct {
		policy  string
		want    string
		wantErr string
	}{
		{policy: "", want: "*proxy.RoundRobin"},
		{policy: "round_robin", want: "*proxy.RoundRobin"},
		{policy: "least_request", want: "*proxy.LeastRequest"},
		{policy: "random", wantErr: `unknown balance policy "random"`},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			s, err := NewSelector(tt.policy)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewSelector(%q) error = %v, want %q", tt.policy, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewSelector(%q): %v", tt.policy, err)
			}
			if got := typeName(s); got != tt.want {
				t.Errorf("NewSelector(%q) = %s, want %s", tt.policy, got, tt.want)
			}
		})
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *RoundRobin:
		return "*proxy.RoundRobin"
	case *LeastRequest:
		return "*proxy.LeastRequest"
	}
	return "?"
}

func TestSelectorsDoNotAllocate(t *testing.T) {
	clock := newFakeClock()
	pool := fabricate(clock, upstreamState{id: "a"}, upstreamState{id: "b", ejected: true}, upstreamState{id: "c"})
	for _, s := range []Selector{&RoundRobin{}, &LeastRequest{}} {
		buf := make([]*Upstream, 0, 8)
		if allocs := testing.AllocsPerRun(100, func() {
			cands, _ := appendCandidates(buf, pool, nil, clock.Now)
			s.Select(cands, nil)
		}); allocs != 0 {
			t.Errorf("%s allocates %.1f times per Select, want 0", typeName(s), allocs)
		}
	}
}
