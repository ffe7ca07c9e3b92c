package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/orchestro/orchestro/runtime/engine"
)

// composeProjectLabel is the label docker compose puts on what it creates.
const composeProjectLabel = "com.docker.compose.project"

// How each CLI removes its project. A replica of the bench stops at once
// on SIGTERM; the short timeouts only bound a replica that would not.
var (
	orchestroDown = []string{"down", "--timeout", "1s"}
	composeDown   = []string{"down", "-t", "1"}
)

// cliStep is one timed command, as each CLI spells it.
type cliStep struct {
	name               string
	orchestro, compose []string
}

// cliSteps are timed in this order in each round, for each CLI: the
// first finds images present and no container; the second finds
// everything already up.
var cliSteps = []cliStep{
	{"up -d --wait (cold)", []string{"up", "-d", "--wait"}, []string{"up", "-d", "--wait"}},
	{"up -d --wait (no-op)", []string{"up", "-d", "--wait"}, []string{"up", "-d", "--wait"}},
	{"ps", []string{"ps"}, []string{"ps"}},
	{"down", orchestroDown, composeDown},
}

// Names of the two CLIs in reports.
const (
	cliOrchestro = "orchestro"
	cliCompose   = "compose"
)

// cliOrder is who goes first in a round: orchestro in the first round,
// compose in the second, and so on, so that drift on the machine (and
// whatever the first project's removal leaves the engine doing) does not
// always favour the same one.
func cliOrder(round int) []string {
	if round%2 == 0 {
		return []string{cliOrchestro, cliCompose}
	}
	return []string{cliCompose, cliOrchestro}
}

// cliTool runs one CLI on its bench project.
type cliTool struct {
	name string
	bin  string
	// base comes before every command: the project name and file.
	base []string
	// env is added to the bench's environment.
	env []string
}

// cliWaitDelay is how long a CLI interrupted by Ctrl-C has to stop
// before it is killed.
const cliWaitDelay = 30 * time.Second

// run runs one command of the CLI to its end and returns its wall time,
// from the fork to the exit: what a user or a script waits for. Its output
// is kept for the error when it fails.
func (t *cliTool) run(ctx context.Context, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, t.bin, append(slices.Clone(t.base), args...)...)
	cmd.Env = append(os.Environ(), t.env...)
	// A process group of its own: Ctrl-C reaches only the bench, which
	// passes it on as the interrupt the CLI handles, then cleans up.
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = cliWaitDelay
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return d, ctx.Err()
		}
		return d, fmt.Errorf("%s %s: %w; its output ends:\n%s", t.name, strings.Join(args, " "), err, tailLines(out.String(), 15))
	}
	return d, nil
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// orchestroFilter selects what orchestro created for the bench project,
// narrowed by more label=value pairs.
func orchestroFilter(labels ...string) filters.Args {
	args := filters.NewArgs(filters.Arg("label", engine.LabelProject+"="+productProject))
	for _, l := range labels {
		args.Add("label", l)
	}
	return args
}

// composeFilter selects what compose created for its bench project.
func composeFilter() filters.Args {
	return filters.NewArgs(filters.Arg("label", composeProjectLabel+"="+productComposeProject))
}

// runCLI times each step of cliSteps for both CLIs, in rounds.
func (e *productEnv) runCLI(ctx context.Context) (*cliReport, error) {
	r := &cliReport{Rounds: e.o.rounds}
	for _, s := range cliSteps {
		r.Steps = append(r.Steps, cliStepReport{
			Step:      s.name,
			Orchestro: "orchestro " + strings.Join(s.orchestro, " "),
			Compose:   "docker compose " + strings.Join(s.compose, " "),
		})
	}
	// The floor of each project's objects, read once it is up.
	floors := map[string]floorSpec{}
	for round := range e.o.rounds {
		for _, name := range cliOrder(round) {
			tool, filter, fp := e.orchestro, orchestroFilter(), &r.OrchestroFootprint
			if name == cliCompose {
				tool, filter, fp = e.compose, composeFilter(), &r.ComposeFootprint
			}
			for i, s := range cliSteps {
				args := s.orchestro
				if name == cliCompose {
					args = s.compose
				}
				busy0, cpuErr := machineBusy()
				d, err := tool.run(ctx, args...)
				if err != nil {
					return nil, fmt.Errorf("round %d: %w", round+1, err)
				}
				busy1, err := machineBusy()
				// cpu is the machine's busy time over the command, when
				// both readings were had.
				var cpu []float64
				if cpuErr == nil && err == nil {
					r.CPUs = goruntime.NumCPU()
					cpu = []float64{(busy1 - busy0).Seconds()}
				}
				st := &r.Steps[i]
				if name == cliCompose {
					st.ComposeSeconds = append(st.ComposeSeconds, d.Seconds())
					st.ComposeCPUSeconds = append(st.ComposeCPUSeconds, cpu...)
				} else {
					st.OrchestroSeconds = append(st.OrchestroSeconds, d.Seconds())
					st.OrchestroCPUSeconds = append(st.OrchestroCPUSeconds, cpu...)
				}
				e.progress("round %d/%d  %-9s %-22s %s", round+1, e.o.rounds, name, s.name, fmtSeconds(d.Seconds()))
				// Untimed checks that each command did what it is timed for.
				switch i {
				case 0:
					got, err := e.footprint(ctx, filter)
					if err != nil {
						return nil, err
					}
					if got.Replicas != productReplicas {
						return nil, fmt.Errorf("round %d: after %s up: %d replicas running, want %d", round+1, name, got.Replicas, productReplicas)
					}
					*fp = got
					if round == 0 {
						if floors[name], err = e.floorOf(ctx, name, filter); err != nil {
							return nil, err
						}
					}
				case len(cliSteps) - 1:
					got, err := e.footprint(ctx, filter)
					if err != nil {
						return nil, err
					}
					if got.Containers+got.Networks > 0 {
						return nil, fmt.Errorf("round %d: after %s down: %d containers and %d networks left", round+1, name, got.Containers, got.Networks)
					}
				}
			}
		}
		if round == 0 {
			r.Floor = newFloorReport(floors[cliOrchestro], floors[cliCompose])
		}
		for _, name := range cliOrder(round) {
			if err := r.Floor.runFloor(ctx, e.eng, floors[name], name); err != nil {
				return nil, fmt.Errorf("round %d: %w", round+1, err)
			}
			e.progress("round %d/%d  floor of %s's objects: up and down", round+1, e.o.rounds, name)
		}
	}
	return r, nil
}

// floorOf reads the floor of the project of CLI name, which is up: its
// containers and networks (those filter selects), on the image its
// replicas run.
func (e *productEnv) floorOf(ctx context.Context, name string, filter filters.Args) (floorSpec, error) {
	list, err := e.eng.ContainerList(ctx, container.ListOptions{All: true, Filters: filter})
	if err != nil {
		return floorSpec{}, fmt.Errorf("floor of %s: list containers: %w", name, err)
	}
	var cs []container.InspectResponse
	image := ""
	for _, c := range list {
		ci, err := e.eng.ContainerInspect(ctx, c.ID)
		if err != nil {
			return floorSpec{}, fmt.Errorf("floor of %s: %w", name, err)
		}
		cs = append(cs, ci)
		if role, ok := c.Labels[engine.LabelRole]; image == "" && (!ok || role == engine.RoleReplica) {
			image = ci.Image
		}
	}
	if image == "" {
		return floorSpec{}, fmt.Errorf("floor of %s: no replica runs", name)
	}
	nets, err := e.eng.NetworkList(ctx, network.ListOptions{Filters: filter})
	if err != nil {
		return floorSpec{}, fmt.Errorf("floor of %s: list networks: %w", name, err)
	}
	return floorFromInspect(name, image, cs, nets), nil
}

// footprint counts the containers (every state) and networks a project
// has, and its running replicas: every container compose runs for it,
// the containers orchestro labels as replicas.
func (e *productEnv) footprint(ctx context.Context, f filters.Args) (cliFootprint, error) {
	var fp cliFootprint
	cs, err := e.eng.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fp, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs {
		fp.Containers++
		if c.State != container.StateRunning {
			continue
		}
		role, orchestro := c.Labels[engine.LabelRole]
		if !orchestro || role == engine.RoleReplica {
			fp.Replicas++
		}
	}
	ns, err := e.eng.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return fp, fmt.Errorf("list networks: %w", err)
	}
	fp.Networks = len(ns)
	return fp, nil
}
