package gateway

import "time"

// Crash backoff. A service whose replicas keep failing is replaced less and
// less often, so a broken image does not turn the controller into a loop of
// Docker calls, and comes back quickly once it stays up.
const (
	// crashWindow is how long after its backoff ended a failure still counts
	// as part of the same streak.
	crashWindow = time.Minute
	// firstCrashDelay is the delay after the second failure of a streak;
	// the first is replaced at once, each further one waits twice as long.
	firstCrashDelay = time.Second
	// maxCrashDelay caps the delay.
	maxCrashDelay = 5 * time.Minute
	// crashLoopAfter is the number of failures in a streak from which the
	// service is reported as crash-looping.
	crashLoopAfter = 3
)

// CrashState throttles re-creation of a crash-looping service.
type CrashState struct {
	// Crashes counts the failures of the current streak: unexpected exits
	// and failed starts.
	Crashes int
	// NotBefore is the earliest time a replacement may be created.
	NotBefore time.Time
	// StartFailed is set when the latest failure was a failed creation or
	// start rather than an exit, so messages say what happened.
	StartFailed bool
}

// Looping reports whether the service counts as crash-looping at now: its
// streak is long enough and its backoff has not ended.
func (cs CrashState) Looping(now time.Time) bool {
	return cs.Crashes >= crashLoopAfter && cs.NotBefore.After(now)
}

// failure is what went wrong with a replica, as the crash backoff counts it.
type failure int

const (
	// failureCrash is a replica that exited without being asked to.
	failureCrash failure = iota
	// failureStart is a replica whose creation or start failed.
	failureStart
)

// crashBackoff returns the crash state of a service after one more failure
// of kind f at now, the delay before a replacement may be created, and
// whether the service is now crash-looping. It is a pure function of its
// inputs.
//
// The first failure of a streak is replaced at once; the second waits
// firstCrashDelay and each further one twice as long, up to maxCrashDelay.
// A failure more than crashWindow after the previous backoff ended starts a
// new streak: the replacement stayed up long enough to be trusted again.
func crashBackoff(prev CrashState, f failure, now time.Time) (next CrashState, delay time.Duration, looping bool) {
	next = prev
	if now.Sub(prev.NotBefore) > crashWindow {
		next.Crashes = 0
	}
	next.Crashes++
	if next.Crashes > 1 {
		// Doubling with a cap rather than shifting: a streak that lasts
		// for hours would overflow a shift and wrap to a negative delay.
		delay = firstCrashDelay
		for i := 2; i < next.Crashes && delay < maxCrashDelay; i++ {
			delay *= 2
		}
		delay = min(delay, maxCrashDelay)
	}
	next.NotBefore = now.Add(delay)
	next.StartFailed = f == failureStart
	return next, delay, next.Crashes >= crashLoopAfter
}
