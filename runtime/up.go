package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// Up builds the images, creates the networks, volumes and gateways, and
// hands every gateway its cell spec. With opts.Wait it returns once every
// service has its desired replicas ready.
//
// It reconciles as docker compose does: observeUp takes a snapshot of what
// the project has in the engine, planUp turns it and the wanted state into
// a plan of single operations, and executeUp carries the plan out.
func (c *Client) Up(ctx context.Context, p *cellspec.Project, opts api.UpOptions) error {
	progress := opts.Progress
	if progress == nil {
		progress = api.Discard{}
	}
	target, err := c.upTarget(ctx, p, opts)
	if err != nil {
		return err
	}
	if target == api.TargetSwarm {
		return c.upSwarm(ctx, p, opts, progress)
	}
	start := c.now()
	before, err := c.observeUp(ctx, p)
	if err != nil {
		return err
	}
	if err := checkPorts(p, before); err != nil {
		return err
	}
	var cells []string
	for _, cell := range p.Cells {
		cells = append(cells, cell.Name)
	}
	nets, err := planNetworks(p.Name, cells, len(meshCells(p)) > 0, before)
	if err != nil {
		return err
	}
	// The networks are created while the images build: they need none,
	// and the engine creates them one at a time.
	netsDone := make(chan error, 1)
	go func() {
		netsDone <- c.executeUp(ctx, upPlan{Project: p.Name, Ops: nets}, progress)
	}()
	gwImage, images, err := c.buildImages(ctx, p, opts, progress)
	if netErr := <-netsDone; err != nil || netErr != nil {
		if err != nil && ctx.Err() == nil {
			// Up failed before any container: it leaves no network it
			// made behind.
			for _, op := range nets {
				_ = c.eng.NetworkRemove(context.WithoutCancel(ctx), op.Name)
			}
		}
		return errors.Join(err, netErr)
	}
	keeper, err := c.startRoll(ctx, p, opts, gwImage, images, progress)
	if err != nil {
		return err
	}
	progress.Note(fmt.Sprintf("project %s started in %s", p.Name, c.now().Sub(start).Round(time.Millisecond)))
	var waitErr error
	if opts.Wait {
		waitErr = c.wait(ctx, p, opts.WaitTimeout, progress)
	}
	return errors.Join(keeper(), waitErr)
}

// rollImages is the second half of Up, with the images built: it
// observes the project again (a build takes a while), plans, and hands
// every gateway its cell's spec, so the services whose image changed
// roll. Watch calls it for each rebuild.
func (c *Client) rollImages(ctx context.Context, p *cellspec.Project, opts api.UpOptions, gwImage string, images map[string]map[string]api.ServiceImage, progress api.Progress) error {
	keeper, err := c.startRoll(ctx, p, opts, gwImage, images, progress)
	if err != nil {
		return err
	}
	return keeper()
}

// startRoll is rollImages up to the keeper, whose phase it leaves running
// and returns the wait for: the keeper is no part of the cells, so Up
// waits for the cells' replicas meanwhile. The wait must be called.
func (c *Client) startRoll(ctx context.Context, p *cellspec.Project, opts api.UpOptions, gwImage string, images map[string]map[string]api.ServiceImage, progress api.Progress) (keeper func() error, err error) {
	observed, err := c.observeUp(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := checkPorts(p, observed); err != nil {
		return nil, err
	}
	// Gateways that stay keep the token they were created with; new ones
	// get the same, so the project keeps one token.
	token := observed.token()
	if token == "" {
		token = newToken()
	}
	plan, err := planUp(desiredUp(p, gwImage, images, token, opts.RemoveOrphans), observed)
	if err != nil {
		return nil, err
	}
	cells, last := plan.split(upPhaseKeeper)
	if err := c.executeUp(ctx, cells, progress); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- c.executeUp(ctx, last, progress) }()
	return func() error { return <-done }, nil
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// wait polls the gateways until every service has its desired replicas
// ready, or the timeout passes, or a service fails in a way waiting will
// not mend (see failing).
func (c *Client) wait(ctx context.Context, p *cellspec.Project, timeout time.Duration, progress api.Progress) error {
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	return c.waitUntil(ctx, p.Name, func(cell, _ string) bool { return p.Cell(cell) != nil }, timeout, progress)
}

// Wait waits until the services of project that only keeps (all when
// only is empty) have their desired replicas ready and routable, with no
// rolling update or restart under way, or the timeout passes (an error
// wrapping api.ErrWaitTimeout), or one of them fails in a way waiting
// will not mend (api.ErrUnhealthy). scale --wait and restart --wait use
// it.
func (c *Client) Wait(ctx context.Context, project string, only []api.ServiceRef, timeout time.Duration, progress api.Progress) error {
	if progress == nil {
		progress = api.Discard{}
	}
	keep := func(cell, service string) bool {
		if len(only) == 0 {
			return true
		}
		for _, r := range only {
			if r.Cell == cell && (r.Service == "" || service == "" || r.Service == service) {
				return true
			}
		}
		return false
	}
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	return c.waitUntil(ctx, project, keep, timeout, progress)
}

// waitUntil polls the gateways of project until every service keep
// keeps is ready (see waitVerdict).
func (c *Client) waitUntil(ctx context.Context, project string, keep func(cell, service string) bool, timeout time.Duration, progress api.Progress) error {
	deadline := c.now().Add(timeout)
	for {
		st, err := c.Status(ctx, project)
		if err != nil {
			return err
		}
		if len(st.Cells) == 0 {
			// Every gateway is gone: a down from elsewhere. No cell
			// pending is not a healthy project.
			err := fmt.Errorf("%w: project %s has no gateways left", api.ErrProjectGone, project)
			progress.Done("wait", "wait for the project to be healthy", err)
			return err
		}
		pending, failed := waitVerdict(keep, st, c.now())
		if failed != nil {
			progress.Done("wait", "wait for the project to be healthy", failed)
			return failed
		}
		if len(pending) == 0 {
			progress.Done("wait", fmt.Sprintf("project %s is healthy", project), nil)
			return nil
		}
		progress.Start("wait", "wait for "+strings.Join(pending, ", "))
		if c.now().After(deadline) {
			err := fmt.Errorf("%w after %s: %s", api.ErrWaitTimeout, timeout, strings.Join(pending, ", "))
			progress.Done("wait", "wait for the project to be healthy", err)
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(waitPoll):
		}
	}
}

// waitPoll is how often wait asks the gateways: each answers from
// memory, and the engine is asked for the gateways' containers once.
const waitPoll = 100 * time.Millisecond

// settle is how long a replica without a health check must have run
// before wait counts it ready, unless its gateway has connected to its
// port: one that exits at once is running for a moment, and is not ready.
const settle = time.Second

// waitVerdict reads a status for wait: what is still pending, or, when
// some service is failing (failing), an error wrapping api.ErrUnhealthy
// that says which, why, and the last lines it printed. A cell whose
// gateway a down has stopped is being removed, which no wait mends: the
// error then wraps api.ErrProjectGone, as when the gateways are gone.
func waitVerdict(keep func(cell, service string) bool, st *api.ProjectStatus, now time.Time) (pending []string, failed error) {
	var failures, removed []string
	for _, cs := range st.Cells {
		if !keep(cs.Cell, "") {
			continue
		}
		if cs.Gateway == api.GatewayStopping {
			removed = append(removed, cs.Cell)
			continue
		}
		if cs.Gateway != "running" || cs.SpecHash == "" {
			pending = append(pending, cs.Cell+" (gateway "+cs.Gateway+")")
			continue
		}
		for _, s := range cs.Services {
			if !keep(cs.Cell, s.Service) {
				continue
			}
			if why := failing(s); why != "" {
				failures = append(failures, cs.Cell+"/"+s.Service+" "+why)
				continue
			}
			if s.Ready < s.Desired || s.Health == "starting" || s.Health == "unhealthy" || s.Health == "crashloop" || !allCurrent(s) {
				pending = append(pending, fmt.Sprintf("%s/%s (%d/%d ready, %s)", cs.Cell, s.Service, s.Ready, s.Desired, s.Health))
			} else if s.Restarting > 0 {
				pending = append(pending, fmt.Sprintf("%s/%s (restarting, %d to replace)", cs.Cell, s.Service, s.Restarting))
			} else if !settled(s, now) {
				pending = append(pending, fmt.Sprintf("%s/%s (%d/%d ready, running for less than %s)", cs.Cell, s.Service, s.Ready, s.Desired, settle))
			}
		}
	}
	switch {
	case len(removed) > 0:
		return pending, fmt.Errorf("%w: a down stopped the gateway of %s (after a down that did not finish, up starts it again)",
			api.ErrProjectGone, cellList(removed))
	case len(failures) > 0:
		return pending, fmt.Errorf("%w: %s", api.ErrUnhealthy, strings.Join(failures, "\n"))
	}
	return pending, nil
}

// cellList names cells in prose: "cell shop", "cells shop and users".
func cellList(cells []string) string {
	if len(cells) == 1 {
		return "cell " + cells[0]
	}
	return "cells " + strings.Join(cells[:len(cells)-1], ", ") + " and " + cells[len(cells)-1]
}

// settled reports whether every replica of s without a health check has
// started: its gateway connected to its port (a program that exits at
// once never listens), or, for one that does not listen, it has run for
// settle.
func settled(s api.ServiceStatus, now time.Time) bool {
	for _, r := range s.Replicas {
		if r.Health == "none" && r.Listening.IsZero() && (r.Started.IsZero() || now.Sub(r.Started) < settle) {
			return false
		}
	}
	return true
}

// lastLines is how many lines of a failing replica's output wait shows.
const lastLines = 10

// failing says why a service will not become ready by waiting, or "":
// its replicas cannot be created or started (an engine error such as a
// missing entrypoint, which no retry mends), or it is crash-looping with
// none ready. The reason ends with the last lines the latest replica
// that exited printed.
func failing(s api.ServiceStatus) string {
	var why string
	switch {
	case s.Ready > 0 && s.Ready >= s.Desired:
		return ""
	case s.LastError != "":
		why = "cannot start: " + s.LastError
	case s.Health == "crashloop":
		why = fmt.Sprintf("is crash-looping: %d failures", s.Failures)
		if s.LastExitCode != nil {
			why += fmt.Sprintf(", the last exited %d", *s.LastExitCode)
		}
	default:
		return ""
	}
	if n := len(s.Exited); n > 0 {
		x := s.Exited[n-1]
		lines := x.Lines[max(0, len(x.Lines)-lastLines):]
		if len(lines) > 0 {
			why += fmt.Sprintf("; the last lines of %s:", x.Name)
			for _, l := range lines {
				why += "\n    " + l.Text
			}
		}
	}
	return why
}

// allCurrent reports whether a service has no replica left over from a
// previous config (a rolling update still under way).
func allCurrent(s api.ServiceStatus) bool {
	if len(s.Replicas) == 0 {
		return true
	}
	hash := ""
	for _, r := range s.Replicas {
		if r.Health == "draining" {
			return false
		}
		if hash == "" {
			hash = r.ConfigHash
		} else if r.ConfigHash != hash {
			return false
		}
	}
	return len(s.Replicas) == s.Desired
}
