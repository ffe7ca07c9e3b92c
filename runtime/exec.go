package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/engine"
)

// Exec runs a command in a running replica of a service, or in a cell's
// gateway, attached to opts' streams, and returns its exit code. A
// command the container cannot start (no such file, not executable)
// exits 126 with the engine's message in its output, as with docker exec.
func (c *Client) Exec(ctx context.Context, project string, opts api.ExecOptions) (int, error) {
	target, err := c.execTarget(ctx, project, opts)
	if err != nil {
		return 0, err
	}
	eo := container.ExecOptions{
		Cmd: opts.Cmd, Env: opts.Env, User: opts.User, WorkingDir: opts.WorkDir, Tty: opts.TTY,
		AttachStdin: opts.Stdin != nil, AttachStdout: true, AttachStderr: true,
	}
	if opts.TTY && opts.Height > 0 && opts.Width > 0 {
		eo.ConsoleSize = &[2]uint{opts.Height, opts.Width}
	}
	created, err := c.eng.ContainerExecCreate(ctx, target.ID, eo)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", engine.ContainerName(target.Names), err)
	}
	hj, err := c.eng.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{Tty: opts.TTY, ConsoleSize: eo.ConsoleSize})
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", engine.ContainerName(target.Names), err)
	}
	defer hj.Close()

	stdout, stderr := opts.Stdout, opts.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	out := make(chan error, 1)
	go func() {
		var err error
		if opts.TTY {
			_, err = io.Copy(stdout, hj.Reader)
		} else {
			_, err = stdcopy.StdCopy(stdout, stderr, hj.Reader)
		}
		out <- err
	}()
	if opts.Stdin != nil {
		go func() {
			_, _ = io.Copy(hj.Conn, opts.Stdin)
			_ = hj.CloseWrite()
		}()
	}
	if opts.Resize != nil {
		go func() {
			for size := range opts.Resize {
				_ = c.eng.ContainerExecResize(ctx, created.ID, container.ResizeOptions{Height: size[0], Width: size[1]})
			}
		}()
	}
	select {
	case err := <-out:
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("exec in %s: %w", engine.ContainerName(target.Names), err)
		}
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// The output ends as the command does; its exit code may take a moment
	// longer to be recorded.
	for i := 0; ; i++ {
		ins, err := c.eng.ContainerExecInspect(ctx, created.ID)
		if err != nil {
			return 0, fmt.Errorf("exec in %s: %w", engine.ContainerName(target.Names), err)
		}
		if !ins.Running || i == 50 {
			return ins.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// execTarget finds the container Exec runs in.
func (c *Client) execTarget(ctx context.Context, project string, opts api.ExecOptions) (container.Summary, error) {
	if snap := c.onSwarm(ctx, project); snap != nil {
		return c.swarmExecTarget(ctx, snap, opts)
	}
	f := filters.NewArgs(
		filters.Arg("label", engine.LabelProject+"="+project),
		filters.Arg("label", engine.LabelCell+"="+opts.Cell),
	)
	what := opts.Cell + "/" + opts.Service
	if opts.Service == engine.RoleGateway {
		f.Add("label", engine.LabelRole+"="+engine.RoleGateway)
	} else {
		f.Add("label", engine.LabelService+"="+opts.Service)
		if opts.Replica > 0 {
			f.Add("label", engine.LabelReplica+"="+strconv.Itoa(opts.Replica))
			what += "-" + strconv.Itoa(opts.Replica)
		}
	}
	list, err := c.eng.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return container.Summary{}, fmt.Errorf("list containers of project %s: %w", project, err)
	}
	running := slices.DeleteFunc(slices.Clone(list), func(s container.Summary) bool { return s.State != container.StateRunning })
	if len(running) == 0 {
		switch {
		case len(list) > 0:
			return container.Summary{}, fmt.Errorf("%s of project %s is not running (%s)", what, project, list[0].State)
		case opts.Replica > 0:
			return container.Summary{}, fmt.Errorf("project %s has no replica %s", project, what)
		default:
			return container.Summary{}, fmt.Errorf("%s of project %s has no running replica", what, project)
		}
	}
	slices.SortFunc(running, func(a, b container.Summary) int {
		na, _ := strconv.Atoi(a.Labels[engine.LabelReplica])
		nb, _ := strconv.Atoi(b.Labels[engine.LabelReplica])
		return na - nb
	})
	return running[0], nil
}
