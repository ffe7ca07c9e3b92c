package gateway

import (
	"math"
	"sync"
	"time"
)

// trafficWindow is how far back service traffic figures look.
const trafficWindow = 10 * time.Second

// latencyBuckets are the upper bounds of the latency histogram: 100µs
// doubling up to about 100s, enough resolution for p50 and p99 on a
// dashboard.
var latencyBuckets = func() []time.Duration {
	var b []time.Duration
	for d := 100 * time.Microsecond; d < 120*time.Second; d *= 2 {
		b = append(b, d)
	}
	return b
}()

// second holds one second of a service's traffic.
type second struct {
	at     int64 // unix second
	count  int
	errors int // 5xx answers
	hist   []int
}

// serviceTraffic is a ring of per-second buckets for one service.
type serviceTraffic struct {
	ring  []second
	total uint64 // every request ever, for rates
}

// trafficStats keeps recent request figures per service, fed from the
// request records (off the request path) and read by status.
type trafficStats struct {
	mu  sync.Mutex
	svc map[string]*serviceTraffic
}

func newTrafficStats() *trafficStats { return &trafficStats{svc: map[string]*serviceTraffic{}} }

// observe adds one finished request; a 5xx answer counts as an error.
func (t *trafficStats) observe(service string, at time.Time, status int, d time.Duration) {
	t.add(service, at, status >= 500, d)
}

// add counts one finished request (or flow execution) of key.
func (t *trafficStats) add(key string, at time.Time, failed bool, d time.Duration) {
	if key == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.svc[key]
	if st == nil {
		st = &serviceTraffic{ring: make([]second, int(trafficWindow/time.Second))}
		t.svc[key] = st
	}
	sec := at.Unix()
	b := &st.ring[sec%int64(len(st.ring))]
	if b.at != sec {
		h := b.hist
		if h == nil {
			h = make([]int, len(latencyBuckets)+1)
		} else {
			clear(h)
		}
		*b = second{at: sec, hist: h}
	}
	b.count++
	st.total++
	if failed {
		b.errors++
	}
	i := 0
	for i < len(latencyBuckets) && d > latencyBuckets[i] {
		i++
	}
	b.hist[i]++
}

// Traffic is a service's recent request figures.
type Traffic struct {
	RPS       float64
	ErrorRate float64 // fraction of errors: 5xx answers, or failed flow executions
	P50, P99  time.Duration
	Requests  int
}

// read sums the complete seconds of the window before now.
func (t *trafficStats) read(service string, now time.Time) Traffic {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.svc[service]
	if st == nil {
		return Traffic{}
	}
	end := now.Unix() // the current second is still filling
	start := end - int64(len(st.ring))
	hist := make([]int, len(latencyBuckets)+1)
	var tr Traffic
	errors := 0
	for _, b := range st.ring {
		if b.at < start || b.at >= end {
			continue
		}
		tr.Requests += b.count
		errors += b.errors
		for i, n := range b.hist {
			hist[i] += n
		}
	}
	if tr.Requests == 0 {
		return tr
	}
	tr.RPS = float64(tr.Requests) / float64(len(st.ring))
	tr.ErrorRate = float64(errors) / float64(tr.Requests)
	tr.P50 = quantile(hist, tr.Requests, 0.50)
	tr.P99 = quantile(hist, tr.Requests, 0.99)
	return tr
}

// quantile returns the upper bound of the bucket holding quantile q.
func quantile(hist []int, total int, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(total)))
	seen := 0
	for i, n := range hist {
		seen += n
		if seen >= rank {
			if i < len(latencyBuckets) {
				return latencyBuckets[i]
			}
			break
		}
	}
	return latencyBuckets[len(latencyBuckets)-1]
}

// total returns how many requests a service has answered since start.
func (t *trafficStats) total(service string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.svc[service]; st != nil {
		return st.total
	}
	return 0
}
