package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// Logs writes the log lines of the project's replicas (and, for service
// "gateway", the gateways' access logs) to sink. Without opts.Follow the
// lines of every container are merged in time order; with it, lines are
// written as they come, and replicas that start later are picked up.
func (c *Client) Logs(ctx context.Context, project string, opts api.LogOptions, sink func(api.LogLine)) error {
	if snap := c.onSwarm(ctx, project); snap != nil {
		return c.swarmLogs(ctx, snap, opts, sink)
	}
	f := filters.NewArgs(filters.Arg("label", engine.LabelProject+"="+project))
	if opts.Cell != "" {
		f.Add("label", engine.LabelCell+"="+opts.Cell)
	}
	switch opts.Service {
	case "":
		// Replicas and gateways; the keeper only speaks of restarts.
		f.Add("label", engine.LabelCell)
	case engine.RoleGateway:
		f.Add("label", engine.LabelRole+"="+engine.RoleGateway)
	default:
		f.Add("label", engine.LabelService+"="+opts.Service)
		if opts.Replica > 0 {
			f.Add("label", engine.LabelReplica+"="+strconv.Itoa(opts.Replica))
		}
	}
	list, err := c.eng.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers of project %s: %w", project, err)
	}
	if len(list) == 0 && c.hasGateways(ctx, project) == 0 {
		// Nothing to print and nothing to wait for: say so rather than
		// print nothing.
		return fmt.Errorf("%w (project %s has no containers)", api.ErrNotRunning, project)
	}
	lo := container.LogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: opts.Follow, Tail: "all"}
	if opts.Tail >= 0 {
		lo.Tail = strconv.Itoa(opts.Tail)
	}
	if !opts.Since.IsZero() {
		lo.Since = strconv.FormatInt(opts.Since.Unix(), 10)
	}
	// A gateway's access log is in files it serves through its admin API
	// (unless the cell sends it to stdout, where the engine has it).
	accessLogs := c.accessLogGateways(ctx, project, opts, list)
	aq := api.AccessLogQuery{Tail: opts.Tail, Since: opts.Since}
	if !opts.Follow {
		var lines []api.LogLine
		read := map[string]bool{}
		for _, s := range list {
			meta := logMeta(s)
			var own []api.LogLine
			err := c.containerLogs(ctx, s.ID, lo, func(t time.Time, stderr bool, text string) {
				l := meta
				l.Time, l.Stderr, l.Text = t, stderr, text
				own = append(own, l)
			})
			if errdefs.IsNotFound(err) {
				// Removed since the listing (a crashing replica its
				// gateway replaced): its gateway kept its output, which
				// comes below with the others it removed.
				continue
			}
			if err != nil {
				return err
			}
			read[s.ID] = true
			if g, ok := accessLogs[s.ID]; ok {
				if err := c.accessLog(ctx, g, aq, func(l api.LogLine) { own = append(own, l) }); err != nil {
					return err
				}
				// The gateway's diagnostics and its access log are one
				// source: --tail counts their lines together.
				sortLines(own)
				if opts.Tail >= 0 && len(own) > opts.Tail {
					own = own[len(own)-opts.Tail:]
				}
			}
			lines = append(lines, own...)
		}
		// The output the gateways kept of replicas they removed after
		// they exited, whose containers and engine logs are gone: every
		// one but those whose logs were read above.
		lines = append(lines, c.exitedLines(ctx, project, opts, func(id string) bool { return !read[id] })...)
		sortLines(lines)
		for _, l := range lines {
			sink(l)
		}
		return nil
	}

	// The streams end with the project, or with ctx.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	emit := func(l api.LogLine) {
		mu.Lock()
		defer mu.Unlock()
		sink(l)
	}
	// The output the gateways kept of replicas they removed; those still
	// listed are followed instead.
	listed := map[string]bool{}
	for _, s := range list {
		listed[s.ID] = true
	}
	for _, l := range c.exitedLines(ctx, project, opts, func(id string) bool { return !listed[id] }) {
		emit(l)
	}
	var wg sync.WaitGroup
	following := map[string]bool{}
	follow := func(s container.Summary, o container.LogsOptions) {
		following[s.ID] = true
		meta := logMeta(s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.containerLogs(ctx, s.ID, o, func(t time.Time, stderr bool, text string) {
				l := meta
				l.Time, l.Stderr, l.Text = t, stderr, text
				emit(l)
			})
			if errdefs.IsNotFound(err) {
				// Removed before its log could be read: what its
				// gateway kept of it instead.
				for _, l := range c.exitedLines(ctx, project, opts, func(id string) bool { return id == s.ID }) {
					emit(l)
				}
			}
		}()
	}
	followAccess := func(g gateway, q api.AccessLogQuery) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.Follow = true
			_ = c.accessLog(ctx, g, q, emit)
		}()
	}
	for _, s := range list {
		follow(s, lo)
		if g, ok := accessLogs[s.ID]; ok {
			followAccess(g, aq)
		}
	}
	// Replicas come and go (scaling, healing): look for new ones. A
	// project whose gateways all went (a down from elsewhere) has nothing
	// more to say: following ends, rather than waiting for replicas that
	// will never come.
	t := time.NewTicker(time.Second)
	defer t.Stop()
	hadGateways := c.hasGateways(ctx, project) == 1
	gone := 0
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
		}
		switch c.hasGateways(ctx, project) {
		case 1:
			hadGateways, gone = true, 0
		case 0:
			if gone++; hadGateways && gone >= 2 {
				cancel()
				wg.Wait()
				return api.ErrProjectGone
			}
		}
		list, err := c.eng.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			continue
		}
		var fresh []container.Summary
		for _, s := range list {
			if !following[s.ID] {
				o := lo
				o.Tail = "all"
				follow(s, o)
				fresh = append(fresh, s)
			}
		}
		// A gateway that came since (a recreated one) goes on with the
		// files of the one before it: only its own requests are new.
		for id, g := range c.accessLogGateways(ctx, project, opts, fresh) {
			for _, s := range fresh {
				if s.ID == id {
					followAccess(g, api.AccessLogQuery{Tail: -1, Since: time.Unix(s.Created, 0)})
				}
			}
		}
	}
}

// accessLogGateways returns, by container ID, the running gateways among
// list whose access log opts selects.
func (c *Client) accessLogGateways(ctx context.Context, project string, opts api.LogOptions, list []container.Summary) map[string]gateway {
	if opts.Service != "" && opts.Service != engine.RoleGateway {
		return nil
	}
	want := false
	for _, s := range list {
		want = want || s.Labels[engine.LabelRole] == engine.RoleGateway && s.State == "running"
	}
	if !want {
		return nil
	}
	gws, err := c.gateways(ctx, project)
	if err != nil {
		return nil
	}
	out := map[string]gateway{}
	for _, g := range gws {
		if g.state != "running" || g.adminURL == "" || g.token == "" {
			continue
		}
		for _, s := range list {
			if s.ID == g.id {
				out[g.id] = g
			}
		}
	}
	return out
}

// accessLog hands sink the access log lines of gateway g that q selects.
// A gateway that keeps no file (its log goes to stdout, or nowhere) has
// none to give, and one that stopped answering has no more.
func (c *Client) accessLog(ctx context.Context, g gateway, q api.AccessLogQuery, sink func(api.LogLine)) error {
	meta := api.LogLine{Cell: g.cell, Service: engine.RoleGateway}
	err := c.admin(g).AccessLog(ctx, q, func(line []byte) {
		l := meta
		l.Time, _ = api.AccessLineTime(line)
		l.Text = string(line)
		sink(l)
	})
	if err == nil || admin.IsNoAccessLogFile(err) || errors.Is(err, admin.ErrUnreachable) || ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("access log of cell %s: %w", g.cell, err)
}

func sortLines(lines []api.LogLine) {
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
}

// hasGateways reports whether the project has a gateway container: 1,
// 0, or -1 when the engine did not answer.
func (c *Client) hasGateways(ctx context.Context, project string) int {
	gws, err := c.listGateways(ctx, project)
	switch {
	case err != nil:
		return -1
	case len(gws) > 0:
		return 1
	}
	return 0
}

// exitedLines returns, as log lines selected as opts selects, the output
// the gateways kept of replicas that exited (or never started) and were
// removed, of the containers keep keeps (not those whose own logs are
// read). A gateway that does not answer contributes nothing: its cell's
// logs are still the engine's.
func (c *Client) exitedLines(ctx context.Context, project string, opts api.LogOptions, keep func(containerID string) bool) []api.LogLine {
	if opts.Service == engine.RoleGateway {
		return nil
	}
	gws, err := c.listGateways(ctx, project)
	if err != nil {
		return nil
	}
	var out []api.LogLine
	for _, g := range gws {
		if opts.Cell != "" && g.cell != opts.Cell || g.state != "running" || g.adminURL == "" {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		cs, err := c.admin(g).Status(sctx)
		cancel()
		if err != nil {
			continue
		}
		for _, s := range cs.Services {
			if opts.Service != "" && s.Service != opts.Service {
				continue
			}
			for _, ex := range s.Exited {
				if !keep(ex.ContainerID) || opts.Replica > 0 && ex.Replica != opts.Replica {
					continue
				}
				out = append(out, exitedLogLines(cs.Cell, s.Service, ex, opts)...)
			}
		}
	}
	return out
}

// exitedLogLines turns the kept output of one exited replica into log
// lines marked with how it ended, honouring --since and --tail. A replica
// with no output to show gets one line saying how it ended, so its end is
// never silent.
func exitedLogLines(cell, service string, ex api.ExitedReplica, opts api.LogOptions) []api.LogLine {
	meta := api.LogLine{Cell: cell, Service: service, Replica: ex.Replica, Exited: fmt.Sprintf("exited %d", ex.ExitCode)}
	if ex.Error != "" {
		meta.Exited = "never started"
	}
	var out []api.LogLine
	for _, l := range ex.Lines {
		t := l.Time
		if t.IsZero() {
			t = ex.Removed
		}
		if !opts.Since.IsZero() && t.Before(opts.Since) {
			continue
		}
		line := meta
		line.Time, line.Stderr, line.Text = t, l.Stderr, l.Text
		out = append(out, line)
	}
	if opts.Tail >= 0 && len(out) > opts.Tail {
		out = out[len(out)-opts.Tail:]
	}
	if len(ex.Lines) == 0 && opts.Tail != 0 && (opts.Since.IsZero() || !ex.Removed.Before(opts.Since)) {
		line := meta
		line.Time, line.Stderr, line.Text = ex.Removed, true, "(no output)"
		if ex.Error != "" && ex.Error != "never started" {
			line.Text = ex.Error
		}
		out = append(out, line)
	}
	return out
}

func logMeta(s container.Summary) api.LogLine {
	n, _ := strconv.Atoi(s.Labels[engine.LabelReplica])
	svc := s.Labels[engine.LabelService]
	if s.Labels[engine.LabelRole] == engine.RoleGateway {
		svc = engine.RoleGateway
	}
	return api.LogLine{Cell: s.Labels[engine.LabelCell], Service: svc, Replica: n}
}

// containerLogs streams one container's log lines to fn until the stream
// ends. Lines carry the engine's timestamps.
func (c *Client) containerLogs(ctx context.Context, id string, o container.LogsOptions, fn func(t time.Time, stderr bool, text string)) error {
	o.Timestamps = true
	rc, err := c.eng.ContainerLogs(ctx, id, o)
	if err != nil {
		return fmt.Errorf("logs of container %s: %w", shortID(id), err)
	}
	defer rc.Close()
	out := &lineWriter{fn: func(l string) { t, text := splitTimestamp(l); fn(t, false, text) }}
	errw := &lineWriter{fn: func(l string) { t, text := splitTimestamp(l); fn(t, true, text) }}
	_, err = stdcopy.StdCopy(out, errw, rc)
	out.flush()
	errw.flush()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of container %s: %w", shortID(id), err)
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// splitTimestamp separates the RFC 3339 timestamp the engine puts before
// each line.
func splitTimestamp(l string) (time.Time, string) {
	ts, text, ok := strings.Cut(l, " ")
	if !ok {
		return time.Time{}, l
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, l
	}
	return t, text
}

// lineWriter calls fn with each complete line written to it.
type lineWriter struct {
	buf bytes.Buffer
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := strings.TrimSuffix(string(w.buf.Next(i + 1)[:i]), "\r")
		w.fn(line)
	}
}

func (w *lineWriter) flush() {
	if w.buf.Len() > 0 {
		w.fn(w.buf.String())
		w.buf.Reset()
	}
}
