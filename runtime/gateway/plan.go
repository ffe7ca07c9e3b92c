package gateway

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/health"
)

// DesiredService is what the controller wants of one service.
type DesiredService struct {
	Name     string
	Replicas int
	// Hash is the config hash every replica must carry.
	Hash    string
	Restart string
	// DependsOn names services that need a ready replica first.
	DependsOn []string
	// Restarting holds the container IDs of the replicas a rolling
	// restart replaces: those that existed when it was asked for. A
	// replica is picked by identity, never by its creation time, which
	// the engine keeps in whole seconds: a replacement created in the
	// same second as the request is not out of date.
	Restarting map[string]bool
}

// ContainerState is the state of a replica container as the engine reports
// it. The engine's string is converted once, where a listing comes in;
// states this package does not know keep their spelling and match none of
// the constants.
type ContainerState string

// Container states of the engine.
const (
	ContainerCreated    ContainerState = "created"
	ContainerRunning    ContainerState = "running"
	ContainerPaused     ContainerState = "paused"
	ContainerRestarting ContainerState = "restarting"
	ContainerRemoving   ContainerState = "removing"
	ContainerExited     ContainerState = "exited"
	ContainerDead       ContainerState = "dead"
)

// Stopped reports whether the container's process has ended: it exited,
// or died and could not be removed.
func (s ContainerState) Stopped() bool { return s == ContainerExited || s == ContainerDead }

// ObservedReplica is one replica container as the controller sees it.
type ObservedReplica struct {
	ID       string
	Name     string
	Service  string
	N        int
	Hash     string
	State    ContainerState
	ExitCode int
	// Health is the tracker's verdict. Ejection is passive and does not
	// count here.
	Health  health.State
	Created time.Time
	// Removing is set while a drain-and-remove is under way; such a
	// replica is left alone.
	Removing bool
}

// OpKind is the kind of a planned operation.
type OpKind int

// Operations a plan holds.
const (
	// OpRemove removes a replica that is not in rotation (exited), at once.
	OpRemove OpKind = iota
	// OpCreate creates and starts a replica.
	OpCreate
	// OpDrain takes a replica out of rotation, waits for its in-flight
	// requests, stops it with its grace period and removes it.
	OpDrain
	// OpWait records why a service is not converging yet.
	OpWait
)

// Cause is why the planner chose an operation. The executor reports an
// operation by its kind and cause (see Op.Event), never by the text of its
// reason, which is for people.
type Cause int

// Causes of operations.
const (
	// CauseScale: the desired count differs from the replicas there are.
	CauseScale Cause = iota + 1
	// CauseExited: a replica exited and is removed (and replaced, unless
	// its restart policy keeps it).
	CauseExited
	// CauseNeverStarted: a replica was created but never ran, because
	// its start failed.
	CauseNeverStarted
	// CauseUpdate: a replica runs an older config of its service.
	CauseUpdate
	// CauseRestart: a rolling restart asked for the replica to go.
	CauseRestart
	// CauseUnhealthy: a replica failed its health check and is replaced.
	CauseUnhealthy
	// CauseOrphan: the replica's service is no longer in the spec.
	CauseOrphan
	// CauseDependency: a service waits for a dependency to be ready.
	CauseDependency
	// CauseBackoff: a service waits out its crash backoff.
	CauseBackoff
)

// Op is one step of a plan: a single Docker-level operation on one replica.
type Op struct {
	Kind    OpKind
	Cause   Cause
	Service string
	N       int
	ID      string
	// Reason explains the operation to people, in events and String.
	Reason string
}

// Event is the type of the controller event that reports the operation
// once it is done.
func (op Op) Event() string {
	switch op.Kind {
	case OpCreate:
		return api.EventStarted
	case OpWait:
		return api.EventWaiting
	case OpDrain:
		if op.Cause == CauseUnhealthy {
			return api.EventReplaced
		}
	}
	return api.EventRemoved
}

// Plan is the ordered list of operations that moves observed to desired.
// Executing it is mechanical: the executor decides nothing.
type Plan struct {
	Cell string
	Ops  []Op
}

// String renders one line per operation, so planner tests compare text.
func (p Plan) String() string {
	var b strings.Builder
	for _, op := range p.Ops {
		name := fmt.Sprintf("%s/%s-%d", p.Cell, op.Service, op.N)
		switch op.Kind {
		case OpRemove:
			fmt.Fprintf(&b, "remove %s: %s\n", name, op.Reason)
		case OpCreate:
			fmt.Fprintf(&b, "create %s: %s\n", name, op.Reason)
		case OpDrain:
			fmt.Fprintf(&b, "drain %s: %s\n", name, op.Reason)
		case OpWait:
			fmt.Fprintf(&b, "wait %s/%s: %s\n", p.Cell, op.Service, op.Reason)
		}
	}
	return b.String()
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool {
	for _, op := range p.Ops {
		if op.Kind != OpWait {
			return false
		}
	}
	return true
}

// replica classes within one service.
type classes struct {
	good      []ObservedReplica // current, running, healthy (or no check)
	pending   []ObservedReplica // current, running, health starting
	stale     []ObservedReplica // out of date, running and not unhealthy
	unhealthy []ObservedReplica // running, failed its health check
	dead      []ObservedReplica // exited and to be replaced
	kept      []ObservedReplica // exited and kept by its restart policy
	used      map[int]bool      // replica numbers whose names are taken
}

func classify(d DesiredService, reps []ObservedReplica) classes {
	c := classes{used: map[int]bool{}}
	for _, r := range reps {
		if r.Removing {
			c.used[r.N] = true
			continue
		}
		if r.State.Stopped() || r.State == ContainerCreated {
			// A replica that never started did not exit: its restart
			// policy has no say, and it is tried again.
			if r.State != ContainerCreated && keepExited(d.Restart, r.ExitCode) {
				c.kept = append(c.kept, r)
				c.used[r.N] = true
			} else {
				// The name is freed by the removal that runs first.
				c.dead = append(c.dead, r)
			}
			continue
		}
		c.used[r.N] = true
		outdated := r.Hash != d.Hash || d.Restarting[r.ID]
		switch {
		case r.Health == health.StateUnhealthy:
			c.unhealthy = append(c.unhealthy, r)
		case outdated:
			c.stale = append(c.stale, r)
		case r.Health == health.StateStarting:
			c.pending = append(c.pending, r)
		default:
			c.good = append(c.good, r)
		}
	}
	return c
}

func keepExited(policy string, exitCode int) bool {
	switch policy {
	case cellspec.RestartNever:
		return true
	case cellspec.RestartOnFailure:
		return exitCode == 0
	}
	return false
}

// plan computes the operations that move the observed replicas of a cell
// towards the desired services. It is a pure function of its inputs.
//
// The rules, per service:
//   - an exited replica is removed, and replaced unless its restart policy
//     keeps it; a crash-looping service waits for its backoff;
//   - missing replicas are created with the lowest free numbers, once every
//     dependency has a ready replica;
//   - an out-of-date replica is replaced one at a time: the new one is
//     created while the old one still serves, and the old one is drained only
//     once enough current replicas are ready;
//   - an unhealthy replica is out of rotation already; it is replaced, and
//     drained once its replacement is ready;
//   - surplus replicas are drained highest number first.
func plan(cell string, desired []DesiredService, observed []ObservedReplica, crash map[string]CrashState, now time.Time) Plan {
	p := Plan{Cell: cell}
	bySvc := map[string][]ObservedReplica{}
	for _, r := range observed {
		bySvc[r.Service] = append(bySvc[r.Service], r)
	}
	want := map[string]DesiredService{}
	cls := map[string]classes{}
	for _, d := range desired {
		want[d.Name] = d
		cls[d.Name] = classify(d, bySvc[d.Name])
	}
	ready := func(svc string) bool {
		d, ok := want[svc]
		if !ok || d.Replicas == 0 {
			return true
		}
		c := cls[svc]
		return len(c.good) > 0 || len(c.stale) > 0 && anyHealthy(c.stale)
	}

	sorted := append([]DesiredService(nil), desired...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var removes, creates, drains, waits []Op
	for _, d := range sorted {
		c := cls[d.Name]
		for _, r := range byNumber(c.dead) {
			cause, reason := CauseExited, fmt.Sprintf("exited with code %d", r.ExitCode)
			if r.State == ContainerCreated {
				cause, reason = CauseNeverStarted, "never started"
			}
			removes = append(removes, Op{Kind: OpRemove, Cause: cause, Service: d.Name, N: r.N, ID: r.ID, Reason: reason})
		}

		have := len(c.good) + len(c.pending) + len(c.kept)
		need := d.Replicas - have
		if need > 0 {
			covered := min(need, len(c.stale))
			n := need - covered
			if covered > 0 && len(c.pending) == 0 {
				n++ // roll one at a time
			}
			var blocked []string
			for _, dep := range d.DependsOn {
				if !ready(dep) {
					blocked = append(blocked, dep)
				}
			}
			cs := crash[d.Name]
			switch {
			case n == 0:
			case len(blocked) > 0:
				waits = append(waits, Op{Kind: OpWait, Cause: CauseDependency, Service: d.Name, Reason: "waiting for " + strings.Join(blocked, ", ") + " to be ready"})
			case cs.NotBefore.After(now):
				waits = append(waits, Op{Kind: OpWait, Cause: CauseBackoff, Service: d.Name, Reason: backoffReason(cs, now)})
			default:
				cause, reason := createCause(d, c, have)
				for _, num := range freeNumbers(c.used, n) {
					c.used[num] = true
					creates = append(creates, Op{Kind: OpCreate, Cause: cause, Service: d.Name, N: num, Reason: reason})
				}
			}
		}
		if need < 0 {
			surplus := -need
			for _, r := range byNumber(c.kept) {
				if surplus == 0 {
					break
				}
				removes = append(removes, Op{Kind: OpRemove, Cause: CauseScale, Service: d.Name, N: r.N, ID: r.ID, Reason: fmt.Sprintf("surplus %d > %d", have, d.Replicas)})
				surplus--
			}
			serving := append(append([]ObservedReplica(nil), c.good...), c.pending...)
			sort.Slice(serving, func(i, j int) bool { return serving[i].N > serving[j].N })
			for _, r := range serving[:min(surplus, len(serving))] {
				drains = append(drains, Op{Kind: OpDrain, Cause: CauseScale, Service: d.Name, N: r.N, ID: r.ID, Reason: fmt.Sprintf("surplus %d > %d", have, d.Replicas)})
			}
		}

		// Out-of-date replicas go once the ones that replace them serve.
		removed := 0
		stale := byNumber(c.stale)
		sort.Slice(stale, func(i, j int) bool { return stale[i].N > stale[j].N })
		for _, r := range stale {
			if len(c.good)+len(c.stale)-removed-1 < d.Replicas {
				break
			}
			removed++
			cause, reason := CauseUpdate, "out of date"
			if r.Hash == d.Hash {
				cause, reason = CauseRestart, "restart"
			}
			drains = append(drains, Op{Kind: OpDrain, Cause: cause, Service: d.Name, N: r.N, ID: r.ID, Reason: reason})
		}
		for _, r := range byNumber(c.unhealthy) {
			if len(c.good)+len(c.stale)-removed >= d.Replicas {
				drains = append(drains, Op{Kind: OpDrain, Cause: CauseUnhealthy, Service: d.Name, N: r.N, ID: r.ID, Reason: "unhealthy, replaced"})
			}
		}
	}
	// Replicas of services no longer in the spec.
	var orphans []string
	for svc := range bySvc {
		if _, ok := want[svc]; !ok {
			orphans = append(orphans, svc)
		}
	}
	sort.Strings(orphans)
	for _, svc := range orphans {
		for _, r := range byNumber(bySvc[svc]) {
			if r.Removing {
				continue
			}
			op := Op{Kind: OpRemove, Cause: CauseOrphan, Service: svc, N: r.N, ID: r.ID, Reason: "service removed from the spec"}
			if r.State == ContainerRunning || r.State == ContainerPaused || r.State == ContainerRestarting {
				op.Kind = OpDrain
				drains = append(drains, op)
			} else {
				removes = append(removes, op)
			}
		}
	}
	p.Ops = append(append(append(append(p.Ops, removes...), creates...), drains...), waits...)
	return p
}

func anyHealthy(rs []ObservedReplica) bool {
	for _, r := range rs {
		if r.Health.Ready() {
			return true
		}
	}
	return false
}

func createCause(d DesiredService, c classes, have int) (Cause, string) {
	switch {
	case len(c.stale) > 0:
		if !slices.ContainsFunc(c.stale, func(r ObservedReplica) bool { return r.Hash != d.Hash }) {
			return CauseRestart, "rolling restart"
		}
		return CauseUpdate, "rolling update"
	case len(c.unhealthy) > 0:
		return CauseUnhealthy, "replace unhealthy replica"
	case slices.ContainsFunc(c.dead, func(r ObservedReplica) bool { return r.State != ContainerCreated }):
		return CauseExited, "replace exited replica"
	case len(c.dead) > 0:
		return CauseNeverStarted, "replace replica that never started"
	}
	return CauseScale, fmt.Sprintf("scale %d → %d", have, d.Replicas)
}

func backoffReason(cs CrashState, now time.Time) string {
	left := cs.NotBefore.Sub(now).Round(time.Second)
	what, one, many := "crashloop", "crash", "crashes"
	switch {
	case cs.StartFailed:
		what, one, many = "start failed", "failure", "failures"
	case cs.Crashes < crashLoopAfter:
		what = "backing off"
	}
	noun := many
	if cs.Crashes == 1 {
		noun = one
	}
	return fmt.Sprintf("%s (%d recent %s), next try in %s", what, cs.Crashes, noun, left)
}

// freeNumbers returns the n lowest replica numbers not in used.
func freeNumbers(used map[int]bool, n int) []int {
	var out []int
	for i := 1; len(out) < n; i++ {
		if !used[i] {
			out = append(out, i)
		}
	}
	return out
}

func byNumber(rs []ObservedReplica) []ObservedReplica {
	out := append([]ObservedReplica(nil), rs...)
	sort.Slice(out, func(i, j int) bool { return out[i].N < out[j].N })
	return out
}
