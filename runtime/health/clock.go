package health

import "time"

// Clock is the Prober's source of time. The system clock is the default;
// tests inject their own or run the Prober inside a testing/synctest
// bubble, where the system clock is already fake. Check timeouts are
// context deadlines and so always follow package time, which a synctest
// bubble fakes too.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker that fires every d, which is positive.
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers ticks like a time.Ticker.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// SystemClock returns the Clock backed by package time.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

type systemTicker struct{ t *time.Ticker }

func (s systemTicker) C() <-chan time.Time { return s.t.C }

func (s systemTicker) Stop() { s.t.Stop() }
