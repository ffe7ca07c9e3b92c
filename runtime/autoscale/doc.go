// Package autoscale decides how many replicas a service should run, from
// the traffic its gateway sees and the CPU its containers use.
//
// The package has three parts, so that the decision stays a pure function
// of its inputs and a clock:
//
//   - Decide is the decision. It follows the Kubernetes Horizontal Pod
//     Autoscaler: per metric the desired count is ceil(replicas × value /
//     target), the largest demand wins, a 10% tolerance band absorbs noise,
//     scale-up is immediate but bounded per step, and scale-down waits for
//     a stabilization window (the policy's scale_down_after). It adds
//     scale to zero for services whose minimum is 0. It does no I/O, keeps
//     no state and reads no clock: the caller passes the time and carries
//     the recommendation history from one call to the next.
//   - Window turns per-second readings of the gateway's request counter
//     and in-flight gauge into a request rate and an average in-flight over
//     a sliding window. It is pure as well: readings carry their times.
//   - CPUSampler follows the engine's streaming container stats, one
//     stream per container, and keeps each container's latest CPU percent
//     (of one core) and memory use. Its goroutines are owned by Run and end
//     with its context or with Remove.
//
// A controller ties them together once a second: read the counters into
// each service's Window, build Metrics from the Windows and the sampler,
// call Decide, and act on a Decision whose Replicas differ from the
// current count.
//
// It may import package cellspec, package api, the Docker SDK's types and
// the standard library. The sampler reads stats through StatsSource, an
// interface of the one engine call it makes, so the package does not
// depend on the engine package.
package autoscale
