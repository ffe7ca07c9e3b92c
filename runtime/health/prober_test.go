package health

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/cellspec"
)

// recorder collects reported results.
type recorder struct {
	mu      sync.Mutex
	results []Result
}

func (r *recorder) report(res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, res)
}

func (r *recorder) byID(id string) []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Result
	for _, res := range r.results {
		if res.ID == id {
			out = append(out, res)
		}
	}
	return out
}

// line is a Result reduced to what a test states, with times relative to
// the start of the bubble.
type line struct {
	At         time.Duration
	OK         bool
	Err        string
	Duration   time.Duration
	State      State
	Transition string
}

func lines(start time.Time, rs []Result) []line {
	out := make([]line, len(rs))
	for i, r := range rs {
		out[i] = line{At: r.At.Sub(start), OK: r.OK, Err: r.Err, Duration: r.Duration, State: r.State}
		if r.Transition != nil {
			out[i].Transition = string(r.Transition.From) + "→" + string(r.Transition.To) + ": " + r.Transition.Reason
		}
	}
	return out
}

func tcpHealth(interval, timeout time.Duration, retries int, startPeriod time.Duration) *cellspec.Health {
	return &cellspec.Health{
		TCP:         true,
		Interval:    cellspec.Duration(interval),
		Timeout:     cellspec.Duration(timeout),
		Retries:     retries,
		StartPeriod: cellspec.Duration(startPeriod),
	}
}

// runProber runs p until the test ends and checks that Run then returns
// nil.
func runProber(t *testing.T, p *Prober) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestProberTurnsUnhealthyAfterRetriesTimesInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 2 * time.Second
		start := time.Now()
		var failing atomic.Bool
		check := CheckerFunc(func(ctx context.Context) error {
			time.Sleep(100 * time.Millisecond) // a check takes time
			if failing.Load() {
				return errors.New("connection refused")
			}
			return nil
		})
		rec := &recorder{}
		p := NewProber(rec.report)
		if err := p.Add(Target{ID: "orders-1", Health: tcpHealth(interval, time.Second, 3, 0), Checker: check}); err != nil {
			t.Fatal(err)
		}
		runProber(t, p)

		time.Sleep(5 * time.Second) // checks at 0s, 2s, 4s pass
		failing.Store(true)
		time.Sleep(6 * time.Second) // checks at 6s, 8s, 10s fail
		synctest.Wait()

		ms := 100 * time.Millisecond
		want := []line{
			{At: 0, OK: true, Duration: ms, State: StateHealthy, Transition: "starting→healthy: health check passed"},
			{At: 2 * time.Second, OK: true, Duration: ms, State: StateHealthy},
			{At: 4 * time.Second, OK: true, Duration: ms, State: StateHealthy},
			{At: 6 * time.Second, Err: "connection refused", Duration: ms, State: StateHealthy},
			{At: 8 * time.Second, Err: "connection refused", Duration: ms, State: StateHealthy},
			{At: 10 * time.Second, Err: "connection refused", Duration: ms, State: StateUnhealthy,
				Transition: "healthy→unhealthy: 3 failed health checks in a row, last: connection refused"},
		}
		got := rec.byID("orders-1")
		if diff := cmp.Diff(want, lines(start, got)); diff != "" {
			t.Fatalf("results mismatch (-want +got):\n%s", diff)
		}
		lastOK, turned := got[2].At, got[5].Transition.At
		if d := turned.Sub(lastOK); d != 3*interval {
			t.Errorf("unhealthy %s after the last pass, want retries×interval = %s", d, 3*interval)
		}
	})
}

func TestProberTimeoutBoundsCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		// A checker that honours only its context.
		hang := CheckerFunc(func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		rec := &recorder{}
		p := NewProber(rec.report)
		if err := p.Add(Target{ID: "a", Health: tcpHealth(5*time.Second, 1500*time.Millisecond, 1, 0), Checker: hang}); err != nil {
			t.Fatal(err)
		}
		runProber(t, p)
		time.Sleep(time.Second)
		synctest.Wait()
		if got := rec.byID("a"); len(got) != 0 {
			t.Fatalf("reported %v before the timeout", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		want := []line{{
			At: 0, Err: "health check timed out after 1.5s", Duration: 1500 * time.Millisecond, State: StateUnhealthy,
			Transition: "starting→unhealthy: 1 failed health check: health check timed out after 1.5s",
		}}
		if diff := cmp.Diff(want, lines(start, rec.byID("a"))); diff != "" {
			t.Errorf("results mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestProberRemoveStopsGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls sync.Map // id → *atomic.Int32
		counting := func(id string) Checker {
			n := &atomic.Int32{}
			calls.Store(id, n)
			return CheckerFunc(func(ctx context.Context) error { n.Add(1); return nil })
		}
		count := func(id string) int32 {
			n, _ := calls.Load(id)
			return n.(*atomic.Int32).Load()
		}
		// hung blocks until its context ends: Remove must cut it short.
		hung := CheckerFunc(func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		h := tcpHealth(time.Second, 30*time.Second, 3, 0)

		rec := &recorder{}
		p := NewProber(rec.report)
		for _, tg := range []Target{
			{ID: "a", Health: h, Checker: counting("a")},
			{ID: "b", Health: h, Checker: counting("b")},
			{ID: "hung", Health: h, Checker: hung},
		} {
			if err := p.Add(tg); err != nil {
				t.Fatal(err)
			}
		}
		runProber(t, p)
		time.Sleep(2500 * time.Millisecond) // checks at 0s, 1s, 2s
		synctest.Wait()
		if a, b := count("a"), count("b"); a != 3 || b != 3 {
			t.Fatalf("after 2.5s: %d and %d checks, want 3 each", a, b)
		}

		done := map[string]<-chan struct{}{}
		p.mu.Lock()
		for id, pr := range p.probes {
			done[id] = pr.done
		}
		p.mu.Unlock()

		for _, id := range []string{"a", "hung"} {
			if !p.Remove(id) {
				t.Errorf("Remove(%q) = false, want true", id)
			}
		}
		synctest.Wait()
		for _, id := range []string{"a", "hung"} {
			select {
			case <-done[id]:
			default:
				t.Errorf("goroutine of %q still running after Remove", id)
			}
		}
		if p.Remove("a") {
			t.Error("second Remove(a) = true, want false")
		}

		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := count("a"); got != 3 {
			t.Errorf("removed target checked %d times, want 3", got)
		}
		if got := count("b"); got != 8 {
			t.Errorf("remaining target checked %d times, want 8", got)
		}
		if got := rec.byID("hung"); len(got) != 0 {
			t.Errorf("cancelled check of a removed target was reported: %v", got)
		}
		if diff := cmp.Diff([]string{"b"}, p.Targets()); diff != "" {
			t.Errorf("Targets() mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestProberAddWhileRunningAndReplace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		rec := &recorder{}
		p := NewProber(rec.report)
		runProber(t, p)
		time.Sleep(10 * time.Second)

		fail := CheckerFunc(func(context.Context) error { return errors.New("boom") })
		pass := CheckerFunc(func(context.Context) error { return nil })
		// The replica started 5s before it was added: its start period
		// of 6s ends 1s after the first check.
		tg := Target{ID: "x", Health: tcpHealth(time.Second, time.Second, 2, 6*time.Second), Checker: fail, Started: start.Add(5 * time.Second)}
		if err := p.Add(tg); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // first check at once
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()

		// Re-adding under the same ID replaces the target and its state.
		tg.Checker, tg.Started = pass, time.Time{}
		if err := p.Add(tg); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()

		want := []line{
			{At: 10 * time.Second, Err: "boom", State: StateStarting},
			{At: 11 * time.Second, Err: "boom", State: StateStarting},
			{At: 11500 * time.Millisecond, OK: true, State: StateHealthy, Transition: "starting→healthy: health check passed"},
		}
		if diff := cmp.Diff(want, lines(start, rec.byID("x"))); diff != "" {
			t.Errorf("results mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"x"}, p.Targets()); diff != "" {
			t.Errorf("Targets() mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestProberRunOwnsGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewProber(nil) // a nil report is allowed
		h := tcpHealth(time.Second, time.Second, 3, 0)
		for _, id := range []string{"a", "b", "c"} {
			if err := p.Add(Target{ID: id, Health: h, Checker: CheckerFunc(func(context.Context) error { return nil })}); err != nil {
				t.Fatal(err)
			}
		}
		stop := runProber(t, p)
		time.Sleep(3 * time.Second)
		stop() // waits for Run, which waits for every probe goroutine

		if err := p.Add(Target{ID: "late", Health: h, Checker: CheckerFunc(func(context.Context) error { return nil })}); !errors.Is(err, ErrStopped) {
			t.Errorf("Add after Run = %v, want ErrStopped", err)
		}
		if err := p.Run(t.Context()); !errors.Is(err, ErrStopped) {
			t.Errorf("second Run = %v, want ErrStopped", err)
		}
		// synctest.Test fails if any goroutine of the bubble is left.
	})
}

func TestProberAddRejectsIncompleteTargets(t *testing.T) {
	p := NewProber(nil)
	ok := CheckerFunc(func(context.Context) error { return nil })
	h := tcpHealth(time.Second, time.Second, 3, 0)
	for name, tg := range map[string]Target{
		"no ID":      {Health: h, Checker: ok},
		"no health":  {ID: "a", Checker: ok},
		"no checker": {ID: "a", Health: h},
	} {
		if err := p.Add(tg); err == nil {
			t.Errorf("Add(%s) = nil, want an error", name)
		}
	}
	if got := p.Targets(); len(got) != 0 {
		t.Errorf("Targets() = %v, want none", got)
	}
}

// fakeClock is a hand-driven Clock: time moves only when the test says and
// tickers fire only when the test sends.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
}

type fakeTicker struct {
	d       time.Duration
	c       chan time.Time
	stopped atomic.Bool
}

func (f *fakeTicker) C() <-chan time.Time { return f.c }
func (f *fakeTicker) Stop()               { f.stopped.Store(true) }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTicker(d time.Duration) Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	tk := &fakeTicker{d: d, c: make(chan time.Time)}
	c.tickers = append(c.tickers, tk)
	return tk
}

// tick moves the clock by d and fires the only ticker.
func (c *fakeClock) tick(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now, tk := c.now, c.tickers[0]
	c.mu.Unlock()
	tk.c <- now
}

func TestProberWithInjectedClock(t *testing.T) {
	// synctest only provides Wait here; all times come from the fake.
	synctest.Test(t, func(t *testing.T) {
		clock := &fakeClock{now: t0}
		rec := &recorder{}
		p := NewProber(rec.report, WithClock(clock))
		fail := CheckerFunc(func(context.Context) error { return errors.New("refused") })
		// Started is zero: the start period runs from Add, on the fake clock.
		if err := p.Add(Target{ID: "x", Health: tcpHealth(5*time.Second, time.Second, 2, 10*time.Second), Checker: fail}); err != nil {
			t.Fatal(err)
		}
		stop := runProber(t, p)
		synctest.Wait()
		for range 3 {
			clock.tick(5 * time.Second)
			synctest.Wait()
		}

		want := []line{
			{At: 0, Err: "refused", State: StateStarting},
			{At: 5 * time.Second, Err: "refused", State: StateStarting},
			{At: 10 * time.Second, Err: "refused", State: StateStarting},
			{At: 15 * time.Second, Err: "refused", State: StateUnhealthy,
				Transition: "starting→unhealthy: 2 failed health checks in a row, last: refused"},
		}
		if diff := cmp.Diff(want, lines(t0, rec.byID("x"))); diff != "" {
			t.Errorf("results mismatch (-want +got):\n%s", diff)
		}
		if len(clock.tickers) != 1 || clock.tickers[0].d != 5*time.Second {
			t.Fatalf("tickers = %v, want one of 5s", clock.tickers)
		}
		stop()
		if !clock.tickers[0].stopped.Load() {
			t.Error("ticker not stopped when Run ended")
		}
	})
}
