// Package health actively checks the replicas of a cell for its gateway's
// controller.
//
// It has three layers, so that every decision stays a pure function of its
// inputs and a clock:
//
//   - Tracker is the state machine of one replica (starting, healthy,
//     unhealthy, or none for a service without a check). It takes check
//     results with their times and returns the transitions they cause. It
//     runs no goroutine and does no I/O.
//   - Checker performs one check: an HTTP GET, a TCP dial or a command run
//     inside the container through an Execer. NewChecker builds the right
//     one from a service's cellspec.Health.
//   - Prober owns one goroutine per target. Each ticks at the check's
//     interval, runs its Checker bounded by the timeout, feeds its Tracker
//     and reports every Result, with the transition if there was one,
//     through a callback. Every goroutine ends with Remove or with the
//     context given to Run, and Run returns only once they all have.
//
// The Prober reads time through a Clock, so its loop is tested with
// testing/synctest or a hand-driven ticker rather than by sleeping.
package health
