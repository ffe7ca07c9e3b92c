package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// t0 is when every test execution starts.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a Clock that moves only when told. Its timers fire in the
// order they are due (then in the order they were set), synchronously, in
// the goroutine that advances the clock.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*fakeTimer
}

type fakeTimer struct {
	at  time.Time
	seq int
	f   func()
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{at: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.timers, t)
		if i < 0 {
			return false
		}
		c.timers = slices.Delete(c.timers, i, i+1)
		return true
	}
}

// since returns how long the clock has moved since t0.
func (c *fakeClock) since() time.Duration { return c.Now().Sub(t0) }

// fireNext moves the clock to the earliest pending timer and fires it. It
// reports false when no timer is pending.
func (c *fakeClock) fireNext() bool {
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		return false
	}
	next := 0
	for i, t := range c.timers {
		if t.at.Before(c.timers[next].at) || t.at.Equal(c.timers[next].at) && t.seq < c.timers[next].seq {
			next = i
		}
	}
	t := c.timers[next]
	c.timers = slices.Delete(c.timers, next, next+1)
	if t.at.After(c.now) {
		c.now = t.at
	}
	c.mu.Unlock()
	t.f()
	return true
}

// reply is one scripted answer of the fake caller.
type reply struct {
	status int
	header http.Header
	body   string
	err    error
	// after delays the answer on the fake clock; the call ends earlier
	// if its context does.
	after time.Duration
	// block waits for the call's context to end; then the call fails
	// with err, when set, and the context's cause.
	block bool
	// release, when set, delays the answer until it is closed.
	release chan struct{}
}

// ok answers 200 with a JSON body.
func ok(body string) reply {
	return reply{status: 200, header: http.Header{"Content-Type": {"application/json"}}, body: body}
}

// withStatus answers status with a JSON body (or none).
func withStatus(status int, body string) reply {
	r := reply{status: status}
	if body != "" {
		r.header = http.Header{"Content-Type": {"application/json"}}
		r.body = body
	}
	return r
}

// fakeCaller answers each call with the next reply scripted for its step
// (the last one repeating; 200 with no body when none is), and records
// every request.
type fakeCaller struct {
	clk    *fakeClock
	script map[string][]reply

	mu    sync.Mutex
	tries map[string]int
	calls []recordedCall
}

// recordedCall is one call the fake caller received.
type recordedCall struct {
	key string        // step id, "/compensate" appended for a compensation
	at  time.Duration // when, on the fake clock, since t0
	req *Request
}

func newFakeCaller(clk *fakeClock, script map[string][]reply) *fakeCaller {
	return &fakeCaller{clk: clk, script: script, tries: map[string]int{}}
}

func callKey(req *Request) string {
	if req.Compensation {
		return req.Step + "/compensate"
	}
	return req.Step
}

func (c *fakeCaller) Call(ctx context.Context, req *Request) (*Response, error) {
	key := callKey(req)
	c.mu.Lock()
	n := c.tries[key]
	c.tries[key]++
	c.calls = append(c.calls, recordedCall{key: key, at: c.clk.since(), req: req})
	r := reply{status: 200}
	if rs := c.script[key]; len(rs) > 0 {
		r = rs[min(n, len(rs)-1)]
	}
	c.mu.Unlock()

	var wait <-chan struct{}
	switch {
	case r.block:
	case r.release != nil:
		wait = r.release
	case r.after > 0:
		fired := make(chan struct{})
		defer c.clk.AfterFunc(r.after, func() { close(fired) })()
		wait = fired
	default:
		closed := make(chan struct{})
		close(closed)
		wait = closed
	}
	select {
	case <-wait:
	case <-ctx.Done():
		if r.block && r.err != nil {
			return nil, fmt.Errorf("call %s: %w: %w", key, r.err, context.Cause(ctx))
		}
		return nil, fmt.Errorf("call %s: %w", key, context.Cause(ctx))
	}
	if r.err != nil {
		return nil, fmt.Errorf("call %s: %w", key, r.err)
	}
	return &Response{Status: r.status, Header: r.header, Body: []byte(r.body)}, nil
}

// keys returns the keys of the calls made, in order, except that step
// calls made one after another at the same time are sorted: the members
// of a parallel group start in no particular order.
func (c *fakeCaller) keys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.calls))
	start := 0
	for i, call := range c.calls {
		out[i] = call.key
		first := c.calls[start]
		if call.req.Compensation || first.req.Compensation || call.at != first.at {
			start = i
		}
		slices.Sort(out[start : i+1])
	}
	return out
}

// callsOf returns the calls made with key, in order.
func (c *fakeCaller) callsOf(key string) []recordedCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []recordedCall
	for _, call := range c.calls {
		if call.key == key {
			out = append(out, call)
		}
	}
	return out
}

// drive runs exec and, each time every goroutine of the test's bubble is
// blocked (in the fake caller, or on a timer of the fake clock), fires the
// next timer, until exec returns. It must run inside synctest.Test.
func drive(t *testing.T, clk *fakeClock, exec func() *Result) *Result {
	t.Helper()
	done := make(chan *Result, 1)
	go func() { done <- exec() }()
	for {
		synctest.Wait()
		select {
		case res := <-done:
			return res
		default:
		}
		if !clk.fireNext() {
			t.Fatal("the execution is blocked and no timer is pending")
		}
	}
}

// mustFlow decodes a flow from JSON, as a gateway receives it.
func mustFlow(t testing.TB, src string) *cellspec.Flow {
	t.Helper()
	var f cellspec.Flow
	if err := json.Unmarshal([]byte(src), &f); err != nil {
		t.Fatalf("decode flow: %v\n%s", err, src)
	}
	return &f
}

// fixedJitter draws a fixed fraction of n: 0 draws the shortest wait, 1
// the longest.
func fixedJitter(frac float64) func(int64) int64 {
	return func(n int64) int64 {
		v := int64(float64(n-1) * frac)
		return max(0, min(v, n-1))
	}
}

// testInput is a client request of the tests.
func testInput() *Input {
	return &Input{
		ID:     "f1",
		Method: "POST",
		Path:   "/checkout/o-7",
		Query:  map[string][]string{"coupon": {"SPRING", "OTHER"}},
		Header: http.Header{
			"Content-Type": {"application/json"},
			"X-User":       {"u-42"},
			"Accept":       {"text/html", "application/json"},
		},
		Body:        []byte(`{"items":[{"sku":"A","qty":2}],"total":120}`),
		Captures:    map[string]string{"order": "o-7"},
		RequestID:   "req-1",
		Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}
}

// run executes flow src for testInput with the script, on a fake clock,
// and returns the result and the caller.
func run(t *testing.T, src string, script map[string][]reply, opts ...Option) (*Result, *fakeCaller) {
	t.Helper()
	var res *Result
	var caller *fakeCaller
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		caller = newFakeCaller(clk, script)
		r := New("shop", mustFlow(t, src), caller, clk, opts...)
		res = drive(t, clk, func() *Result { return r.Execute(t.Context(), testInput()) })
	})
	return res, caller
}
