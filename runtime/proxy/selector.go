package proxy

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"

	"github.com/orchestro/orchestro/cellspec"
)

// Selector picks the upstream for a request among candidates: the
// replicas a try may go to, never empty. Which replicas those are
// (healthy, not draining, not ejected, not tried yet for this request) is
// the proxy's decision; a selector only applies its balance policy. It is
// called concurrently and must not retain the slice.
type Selector interface {
	Select(cands []*Upstream, r *http.Request) *Upstream
}

// NewSelector returns a fresh selector for a balance policy: "round_robin"
// (also the empty string) or "least_request".
func NewSelector(policy string) (Selector, error) {
	switch policy {
	case "", cellspec.BalanceRoundRobin:
		return &RoundRobin{}, nil
	case cellspec.BalanceLeastRequest:
		return &LeastRequest{}, nil
	}
	return nil, fmt.Errorf("unknown balance policy %q (want %s or %s)", policy, cellspec.BalanceRoundRobin, cellspec.BalanceLeastRequest)
}

// RoundRobin hands requests to the candidates in turn. Its single counter
// indexes the candidates rather than the whole pool, so an unavailable
// upstream's share is spread evenly instead of falling on its neighbour.
type RoundRobin struct {
	next atomic.Uint64
}

// Select implements Selector.
func (s *RoundRobin) Select(cands []*Upstream, _ *http.Request) *Upstream {
	if len(cands) == 0 {
		return nil
	}
	return cands[(s.next.Add(1)-1)%uint64(len(cands))]
}

// LeastRequest picks two distinct candidates at random and takes the one
// with fewer requests in flight, or on a tie the one that has served fewer
// ("power of two choices"). It avoids the herd behaviour of a strict
// least-loaded pick while staying close to it.
type LeastRequest struct{}

// Select implements Selector.
func (s *LeastRequest) Select(cands []*Upstream, _ *http.Request) *Upstream {
	switch len(cands) {
	case 0:
		return nil
	case 1:
		return cands[0]
	}
	i := rand.IntN(len(cands))
	j := rand.IntN(len(cands) - 1)
	if j >= i {
		j++
	}
	return lessLoaded(cands[i], cands[j])
}

// lessLoaded returns the upstream with fewer requests in flight, then the
// one that has served fewer, then a.
func lessLoaded(a, b *Upstream) *Upstream {
	ia, ib := a.inflight.Load(), b.inflight.Load()
	switch {
	case ib < ia:
		return b
	case ia < ib:
		return a
	case b.served.Load() < a.served.Load():
		return b
	}
	return a
}
