package autoscale

import "time"

// DefaultWindowSpan is the span of a Window made with a non-positive one.
// Ten seconds of per-second readings smooth bursts out while still showing
// a load step within seconds.
const DefaultWindowSpan = 10 * time.Second

// Window turns periodic readings of a cumulative request counter and an
// in-flight gauge into the request rate and the average in-flight over a
// sliding window. It reads no clock: every reading and every query carries
// its time, so it is tested with fabricated times. It is not safe for
// concurrent use; its owner, typically the controller's once-a-second
// loop, is the only one to touch it.
//
// Only readings inside the window ending at the query time count, so a
// source that stops reporting turns into a missing metric instead of
// freezing its last value.
type Window struct {
	span     time.Duration
	readings []reading
}

type reading struct {
	at       time.Time
	requests uint64
	inflight float64
}

// NewWindow returns an empty window of the given span; a span of zero or
// less means DefaultWindowSpan.
func NewWindow(span time.Duration) *Window {
	if span <= 0 {
		span = DefaultWindowSpan
	}
	return &Window{span: span}
}

// Span returns the window's length.
func (w *Window) Span() time.Duration { return w.span }

// Add records a reading taken at the given time: requests is the
// cumulative count of requests seen so far, inflight the number in flight
// at that moment. A reading older than the latest is ignored, and one at
// the same time replaces it. Readings that have left the window are
// dropped, so the window holds at most one span of them.
//
// A counter that goes down (a replica's counter replaced by a new one, or a
// service total after a replica left) adds nothing for that interval
// rather than being taken as a restart from zero, which would show a burst
// that never happened.
func (w *Window) Add(at time.Time, requests uint64, inflight float64) {
	r := reading{at: at, requests: requests, inflight: inflight}
	if n := len(w.readings); n > 0 {
		last := w.readings[n-1].at
		switch {
		case at.Before(last):
			return
		case at.Equal(last):
			w.readings[n-1] = r
			return
		}
	}
	w.readings = append(w.readings, r)
	cutoff := at.Add(-w.span)
	drop := 0
	for drop < len(w.readings) && w.readings[drop].at.Before(cutoff) {
		drop++
	}
	if drop > 0 {
		w.readings = append(w.readings[:0], w.readings[drop:]...)
	}
}

// Rate returns the requests per second over the readings inside the window
// ending at now (from now − span to now, both included). It reports false
// when fewer than two readings, or readings at a single instant, are there.
func (w *Window) Rate(now time.Time) (float64, bool) {
	in := w.inside(now)
	if len(in) < 2 {
		return 0, false
	}
	elapsed := in[len(in)-1].at.Sub(in[0].at).Seconds()
	if elapsed <= 0 {
		return 0, false
	}
	var total uint64
	for i := 1; i < len(in); i++ {
		if prev, cur := in[i-1].requests, in[i].requests; cur > prev {
			total += cur - prev
		}
	}
	return float64(total) / elapsed, true
}

// Inflight returns the mean of the in-flight readings inside the window
// ending at now. It reports false when there is none.
func (w *Window) Inflight(now time.Time) (float64, bool) {
	in := w.inside(now)
	if len(in) == 0 {
		return 0, false
	}
	var sum float64
	for _, r := range in {
		sum += r.inflight
	}
	return sum / float64(len(in)), true
}

// inside returns the readings from now − span to now.
func (w *Window) inside(now time.Time) []reading {
	from := now.Add(-w.span)
	lo := 0
	for lo < len(w.readings) && w.readings[lo].at.Before(from) {
		lo++
	}
	hi := lo
	for hi < len(w.readings) && !w.readings[hi].at.After(now) {
		hi++
	}
	return w.readings[lo:hi]
}
