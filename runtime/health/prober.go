package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// ErrStopped is returned by Add once the Prober's Run has returned, and by
// a second call to Run.
var ErrStopped = errors.New("health prober stopped")

// Target is one replica to check.
type Target struct {
	// ID names the target in every Result, for example the container ID.
	ID string
	// Health supplies the interval, timeout, retries and start period.
	Health *cellspec.Health
	// Checker performs the check, usually built with NewChecker.
	Checker Checker
	// Started is when the replica started; the start period runs from
	// here. Zero means the moment the target is added.
	Started time.Time
}

// Result is the outcome of one check, reported for every check run.
type Result struct {
	// ID is the Target's ID.
	ID string
	// At is when the check started.
	At time.Time
	OK bool
	// Err is the failure message; empty when OK.
	Err      string
	Duration time.Duration
	// State is the target's state after this result.
	State State
	// Transition is the change this result caused, or nil.
	Transition *Transition
}

// Option configures a Prober.
type Option func(*Prober)

// WithClock makes the Prober read time and make tickers through c.
func WithClock(c Clock) Option { return func(p *Prober) { p.clock = c } }

// Prober checks targets actively, one goroutine per target, and reports
// every result through a callback.
//
// Run owns the goroutines: targets added before Run start when it starts,
// targets added while it runs start at once, and Run returns only after
// every goroutine has ended. Add, Remove and Targets are safe for
// concurrent use, including from the report callback.
type Prober struct {
	report func(Result)
	clock  Clock
	// wake tells Run that Add registered a target to start.
	wake chan struct{}

	mu      sync.Mutex
	probes  map[string]*probe
	running bool
	stopped bool
}

type probe struct {
	target   Target
	tracker  *Tracker
	interval time.Duration
	timeout  time.Duration
	// cancel is nil until Run has started the probe's goroutine.
	cancel context.CancelFunc
	// done is closed when the goroutine has ended.
	done chan struct{}
}

// stop ends the probe's goroutine, or marks a probe that never started as
// done. p.mu must be held, and the probe must be leaving p.probes.
func (pr *probe) stop() {
	if pr.cancel != nil {
		pr.cancel()
		return
	}
	close(pr.done)
}

// NewProber returns a Prober that reports every result to report.
//
// report is called from the probe goroutines, possibly concurrently, so it
// must be safe for concurrent use. A target's next check waits for report
// to return, so it should hand the result off rather than do slow work.
func NewProber(report func(Result), opts ...Option) *Prober {
	p := &Prober{
		report: report,
		clock:  SystemClock(),
		wake:   make(chan struct{}, 1),
		probes: make(map[string]*probe),
	}
	for _, o := range opts {
		o(p)
	}
	if p.report == nil {
		p.report = func(Result) {}
	}
	return p
}

// Add starts checking t; its first check runs at once. A target already
// registered under t.ID is stopped as by Remove and replaced, its state
// forgotten.
func (p *Prober) Add(t Target) error {
	if t.ID == "" {
		return errors.New("add health target: empty ID")
	}
	if t.Health == nil || t.Checker == nil {
		return fmt.Errorf("add health target %s: no health check", t.ID)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return fmt.Errorf("add health target %s: %w", t.ID, ErrStopped)
	}
	if t.Started.IsZero() {
		t.Started = p.clock.Now()
	}
	if old := p.probes[t.ID]; old != nil {
		old.stop()
	}
	p.probes[t.ID] = &probe{
		target:   t,
		tracker:  NewTracker(t.Health, t.Started),
		interval: intervalOf(t.Health),
		timeout:  timeoutOf(t.Health),
		done:     make(chan struct{}),
	}
	if p.running {
		select {
		case p.wake <- struct{}{}:
		default: // Run is already due to look.
		}
	}
	return nil
}

// Remove stops checking the target with the given ID and reports whether
// it was registered. The check in progress is cancelled and its result
// dropped, but Remove does not wait for the goroutine to end: a result
// that was already being reported may still arrive once, so consumers
// should ignore results for IDs they no longer track. Not waiting keeps
// Remove safe to call from the report callback or from a loop the callback
// feeds.
func (p *Prober) Remove(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, ok := p.probes[id]
	if !ok {
		return false
	}
	delete(p.probes, id)
	pr.stop()
	return true
}

// Targets returns the IDs of the registered targets, in no particular
// order.
func (p *Prober) Targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, 0, len(p.probes))
	for id := range p.probes {
		ids = append(ids, id)
	}
	return ids
}

// Run checks the registered targets until ctx is done, then stops every
// probe, waits for their goroutines to end and returns nil. A Prober runs
// once: a second call returns ErrStopped at once.
func (p *Prober) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	p.mu.Lock()
	if p.running || p.stopped {
		p.mu.Unlock()
		return ErrStopped
	}
	p.running = true
	p.startPending(ctx, &wg)
	p.mu.Unlock()

	for {
		select {
		case <-p.wake:
			p.mu.Lock()
			p.startPending(ctx, &wg)
			p.mu.Unlock()
		case <-ctx.Done():
			p.mu.Lock()
			p.stopped = true
			for _, pr := range p.probes {
				if pr.cancel != nil {
					pr.cancel()
				}
			}
			p.mu.Unlock()
			wg.Wait()
			return nil
		}
	}
}

// startPending starts a goroutine for every registered probe that has
// none. p.mu must be held.
func (p *Prober) startPending(ctx context.Context, wg *sync.WaitGroup) {
	if ctx.Err() != nil {
		return // Run is about to stop; a late Add starts nothing.
	}
	for _, pr := range p.probes {
		if pr.cancel != nil {
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		pr.cancel = cancel
		wg.Go(func() {
			defer close(pr.done)
			defer cancel()
			p.loop(pctx, pr)
		})
	}
}

// loop checks at once and then on every tick until ctx is done. A check
// that outlasts the interval makes the ticker drop ticks, so checks never
// pile up.
func (p *Prober) loop(ctx context.Context, pr *probe) {
	ticker := p.clock.NewTicker(pr.interval)
	defer ticker.Stop()
	for {
		p.checkOnce(ctx, pr)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

func (p *Prober) checkOnce(ctx context.Context, pr *probe) {
	if ctx.Err() != nil {
		return
	}
	start := p.clock.Now()
	cctx, cancel := context.WithTimeout(ctx, pr.timeout)
	err := pr.target.Checker.Check(cctx)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && errors.Is(cctx.Err(), context.DeadlineExceeded) {
		// A checker that just hands back its context's error says
		// nothing useful to whoever reads the event.
		err = errors.New("health check " + timedOut(pr.timeout))
	}
	cancel()
	dur := p.clock.Now().Sub(start)
	if ctx.Err() != nil {
		// Removed or stopped while checking: the error is ours, not
		// the target's.
		return
	}
	res := Result{ID: pr.target.ID, At: start, OK: err == nil, Duration: dur}
	if tr, changed := pr.tracker.Record(start, err); changed {
		res.Transition = &tr
	}
	res.State = pr.tracker.State()
	if err != nil {
		res.Err = pr.tracker.LastError()
	}
	p.report(res)
}
