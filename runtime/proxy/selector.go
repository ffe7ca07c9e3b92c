package proxy

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// Selector picks the upstream for a request from a pool. It must consider
// only available upstreams (healthy, not ejected, not draining) and return
// nil when there is none. It is called concurrently and must not retain
// the pool.
type Selector interface {
	Select(pool []*Upstream, r *http.Request) *Upstream
}

// NewSelector returns a fresh selector for a balance policy: "round_robin"
// (also the empty string) or "least_request". now is the clock used to
// decide whether an ejection has ended; nil means time.Now.
func NewSelector(policy string, now func() time.Time) (Selector, error) {
	switch policy {
	case "", cellspec.BalanceRoundRobin:
		return &RoundRobin{Now: now}, nil
	case cellspec.BalanceLeastRequest:
		return &LeastRequest{Now: now}, nil
	}
	return nil, fmt.Errorf("unknown balance policy %q (want %s or %s)", policy, cellspec.BalanceRoundRobin, cellspec.BalanceLeastRequest)
}

// RoundRobin hands requests to the available upstreams in turn. Its single
// counter indexes the available upstreams rather than the whole pool, so
// an unavailable upstream's share is spread evenly instead of falling on
// its neighbour.
type RoundRobin struct {
	// Now is the clock; nil means time.Now.
	Now  func() time.Time
	next atomic.Uint64
}

// Select implements Selector.
func (s *RoundRobin) Select(pool []*Upstream, _ *http.Request) *Upstream {
	c := clock{now: s.Now}
	k := 0
	for _, u := range pool {
		if c.available(u) {
			k++
		}
	}
	if k == 0 {
		return nil
	}
	target := int((s.next.Add(1) - 1) % uint64(k))
	var last *Upstream
	i := 0
	for _, u := range pool {
		if !c.available(u) {
			continue
		}
		if i == target {
			return u
		}
		last = u
		i++
	}
	// An upstream left rotation between the two passes.
	return last
}

// LeastRequest picks two distinct available upstreams at random and takes
// the one with fewer requests in flight, or on a tie the one that has
// served fewer ("power of two choices"). It avoids the herd behaviour of a
// strict least-loaded pick while staying close to it.
type LeastRequest struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Select implements Selector.
func (s *LeastRequest) Select(pool []*Upstream, _ *http.Request) *Upstream {
	c := clock{now: s.Now}
	k := 0
	var only *Upstream
	for _, u := range pool {
		if c.available(u) {
			k++
			only = u
		}
	}
	if k <= 1 {
		return only
	}
	i := rand.IntN(k)
	j := rand.IntN(k - 1)
	if j >= i {
		j++
	}
	var a, b *Upstream
	n := 0
	for _, u := range pool {
		if !c.available(u) {
			continue
		}
		switch n {
		case i:
			a = u
		case j:
			b = u
		}
		n++
	}
	switch {
	case a == nil && b == nil:
		return only
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return lessLoaded(a, b)
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

// clock reads the time at most once per selection, and only when some
// upstream has an ejection end to compare with.
type clock struct {
	now func() time.Time
	t   int64
	set bool
}

func (c *clock) available(u *Upstream) bool {
	if u.unhealthy.Load() || u.draining.Load() {
		return false
	}
	until := u.ejectedUntil.Load()
	if until == 0 {
		return true
	}
	if !c.set {
		if c.now != nil {
			c.t = c.now().UnixNano()
		} else {
			c.t = time.Now().UnixNano()
		}
		c.set = true
	}
	return c.t >= until
}
