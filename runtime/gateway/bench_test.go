package gateway

import (
	"io"
	"testing"
	"time"

	"github.com/orchestro/orchestro/runtime/proxy"
)

func benchRecord() *proxy.RequestRecord {
	return &proxy.RequestRecord{
		Time: time.Unix(1_800_000_000, 123456789), RequestID: "3f2a9c1e8b7d-42", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Method: "GET", Path: "/orders/123", Status: 200, Bytes: 512, Duration: 3 * time.Millisecond,
		Route: "/orders", Service: "orders", Upstream: "172.20.0.3:8080", Replica: "orders-1", Tries: 1,
	}
}

// BenchmarkAccessLog encodes one access-log line (the record goroutine's
// work per request, off the request path).
func BenchmarkAccessLog(b *testing.B) {
	l := newAccessLogger(io.Discard, 1)
	r := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		l.log(r)
	}
}

// BenchmarkMetricsObserve updates the request metrics for one record.
func BenchmarkMetricsObserve(b *testing.B) {
	m := newMetrics("shop")
	r := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		m.observe(r)
	}
}

// BenchmarkTrafficObserve updates the per-service latency and rate window.
func BenchmarkTrafficObserve(b *testing.B) {
	st := newTrafficStats()
	r := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		st.observe(r.Service, r.Time, r.Status, r.Duration)
	}
}
