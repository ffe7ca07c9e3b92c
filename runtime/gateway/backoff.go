package gateway

import "time"

// Crash backoff, as Kubernetes does it. A service whose replicas keep
// failing (exiting unasked, or failing to be created or started) is
// replaced less and less often, so a broken image does not turn the
// controller into a loop of Docker calls, and comes back quickly once it
// stays up.
const (
	// crashWindow is how long after its backoff ended a failure still counts
	// as part of the same streak: a replacement that ran this long without
	// failing resets the backoff.
	crashWindow = 10 * time.Minute
	// firstCrashDelay is the delay after the first failure of a streak;
	// each further one waits twice as long, as the kubelet's backoff.
	firstCrashDelay = time.Second
	// maxCrashDelay caps the delay.
	maxCrashDelay = 5 * time.Minute
	// crashLoopAfter is the number of failures in a streak from which the
	// service is reported as crash-looping.
	crashLoopAfter = 3
	// trustedRun is how long a replica must have run for its exit not to
	// count as a failure: it ends the current streak and is replaced at
	// once, as Docker's restart policy resets its delay after ten seconds
	// of running. A replica that fails this late is not looping, and
	// replicas killed one after the other are each replaced at once.
	trustedRun = 10 * time.Second
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
	// ExitCode is the exit code of the latest failure when it was an
	// exit; Error is the engine's answer when it was a failed start.
	ExitCode int
	Error    string
}

// Current reports whether the streak still counts at now: a failure now
// would extend it rather than start a new one.
func (cs CrashState) Current(now time.Time) bool {
	return cs.Crashes > 0 && now.Sub(cs.NotBefore) <= crashWindow
}

// Looping reports whether the service counts as crash-looping at now: its
// current streak is long enough. Whether the service is also short of
// ready replicas is the caller's to weigh: between two failures the
// replacement runs, and the streak goes on until it has run crashWindow.
func (cs CrashState) Looping(now time.Time) bool {
	return cs.Crashes >= crashLoopAfter && cs.Current(now)
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
// The first failure of a streak waits firstCrashDelay and each further
// one twice as long, up to maxCrashDelay (1s, 2s, 4s, … 5m). A failure more than crashWindow after the
// previous backoff ended starts a new streak: the replacement stayed up
// long enough to be trusted again. The details of the failure (ExitCode,
// Error) are the caller's to fill in.
func crashBackoff(prev CrashState, f failure, now time.Time) (next CrashState, delay time.Duration, looping bool) {
	next = prev
	if now.Sub(prev.NotBefore) > crashWindow {
		next.Crashes = 0
	}
	next.Crashes++
	// Doubling with a cap rather than shifting: a streak that lasts for
	// hours would overflow a shift and wrap to a negative delay.
	delay = firstCrashDelay
	for i := 1; i < next.Crashes && delay < maxCrashDelay; i++ {
		delay *= 2
	}
	delay = min(delay, maxCrashDelay)
	next.NotBefore = now.Add(delay)
	next.StartFailed = f == failureStart
	return next, delay, next.Crashes >= crashLoopAfter
}
