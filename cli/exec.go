package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
)

// ExecOptions are the inputs of `exec`.
type ExecOptions struct {
	IO      *IOStreams
	Target  replicaRef
	Cmd     []string
	NoTTY   bool
	Env     []string
	User    string
	WorkDir string
	global  *globalOptions
	f       *Factory
}

func newExecCmd(f *Factory, g *globalOptions, runF func(context.Context, *ExecOptions) error) *cobra.Command {
	opts := &ExecOptions{IO: f.IO, global: g, f: f}
	cmd := &cobra.Command{
		Use:   "exec CELL/SERVICE[-N] [--] COMMAND [ARG...]",
		Short: "Run a command in a running replica",
		Long: `Run a command in a running replica of a service: replica N with
SERVICE-N, else the lowest-numbered running one; CELL/gateway runs it in
the cell's gateway. Input is passed to the command, and it gets a terminal
when orchestro's input and output are one (-T: never). orchestro exits with
the command's exit status.`,
		Example: `  orchestro exec shop/catalog -- /echo --version
  orchestro exec shop/catalog-2 env
  orchestro exec -T shop/db -- psql -c 'select 1' < /dev/null`,
		Args: func(cmd *cobra.Command, args []string) error {
			// Flags stop at the replica, so a -- after it is still here.
			if len(args) > 1 && args[1] == "--" {
				args = append(args[:1:1], args[2:]...)
			}
			if len(args) < 2 {
				return usagef("exec needs CELL/SERVICE[-N] and a command, got %d arguments", len(args))
			}
			ref, err := parseReplicaRef(args[0])
			if err != nil {
				return usagef("exec %q: %v: write CELL/SERVICE or CELL/SERVICE-N", args[0], err)
			}
			opts.Target, opts.Cmd = ref, args[1:]
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runExec(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	// Flags after the replica belong to the command.
	fl.SetInterspersed(false)
	fl.BoolVarP(&opts.NoTTY, "no-tty", "T", false, "never give the command a terminal")
	fl.StringArrayVarP(&opts.Env, "env", "e", nil, "set an environment variable NAME=value (repeatable)")
	fl.StringVarP(&opts.User, "user", "u", "", "run as this user (name or uid[:gid])")
	fl.StringVarP(&opts.WorkDir, "workdir", "w", "", "run in this directory")
	return cmd
}

// replicaRef is a CELL/SERVICE or CELL/SERVICE-N argument. Replica N of
// a service and a service whose name ends in -N read alike: resolve
// settles it against the spec.
type replicaRef struct {
	serviceRef
	// Replica is N; 0 for none.
	Replica int
}

func (r replicaRef) String() string {
	if r.Replica > 0 {
		return r.serviceRef.String() + "-" + strconv.Itoa(r.Replica)
	}
	return r.serviceRef.String()
}

// parseReplicaRef reads CELL/SERVICE[-N], taking a trailing -N as a
// replica number.
func parseReplicaRef(s string) (replicaRef, error) {
	ref, err := parseServiceRef(s)
	if err != nil {
		return replicaRef{}, err
	}
	if ref.Service == "" {
		return replicaRef{}, fmt.Errorf("no service")
	}
	r := replicaRef{serviceRef: ref}
	if i := strings.LastIndexByte(ref.Service, '-'); i > 0 {
		if n, err := strconv.Atoi(ref.Service[i+1:]); err == nil && n > 0 && isDigits(ref.Service[i+1:]) {
			r.Service, r.Replica = ref.Service[:i], n
		}
	}
	return r, nil
}

// resolve settles SERVICE-N against the spec, when there is one: a
// service whose whole name matches wins over replica N of a shorter one.
// It then checks the cell and the service, as usage errors.
func (r replicaRef) resolve(spec *cellspec.Project) (replicaRef, error) {
	if r.Replica > 0 && spec != nil {
		if c := spec.Cell(r.Cell); c != nil && c.Services[r.Service+"-"+strconv.Itoa(r.Replica)] != nil {
			r.Service, r.Replica = r.Service+"-"+strconv.Itoa(r.Replica), 0
		}
	}
	if r.Service == gatewayService && r.Replica > 0 {
		return r, usagef("%s: a cell has one gateway; write %s/%s", r, r.Cell, gatewayService)
	}
	return r, r.serviceRef.check(spec, true)
}

func runExec(ctx context.Context, opts *ExecOptions) error {
	ref, err := resolveProject(opts.f, opts.global)
	if err != nil {
		return err
	}
	target, err := opts.Target.resolve(ref.Spec)
	if err != nil {
		return err
	}
	be, err := opts.f.Backend(ctx)
	if err != nil {
		return err
	}
	eo := api.ExecOptions{
		Cell: target.Cell, Service: target.Service, Replica: target.Replica, Cmd: opts.Cmd,
		Env: opts.Env, User: opts.User, WorkDir: opts.WorkDir,
		Stdin: opts.IO.In, Stdout: opts.IO.Out, Stderr: opts.IO.ErrOut,
	}
	in, inOK := opts.IO.In.(*os.File)
	out, outOK := opts.IO.Out.(*os.File)
	if !opts.NoTTY && inOK && outOK && term.IsTerminal(int(in.Fd())) && term.IsTerminal(int(out.Fd())) {
		eo.TTY = true
		if w, h, err := term.GetSize(int(out.Fd())); err == nil {
			eo.Width, eo.Height = uint(w), uint(h)
		}
		state, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return fmt.Errorf("exec: put the terminal in raw mode: %w", err)
		}
		defer func() { _ = term.Restore(int(in.Fd()), state) }()
		resize := make(chan [2]uint, 1)
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			defer close(resize)
			for {
				select {
				case <-ctx.Done():
					return
				case <-winch:
					if w, h, err := term.GetSize(int(out.Fd())); err == nil {
						select {
						case resize <- [2]uint{uint(h), uint(w)}:
						default:
						}
					}
				}
			}
		}()
		eo.Resize = resize
	}
	code, err := be.Exec(ctx, ref.Name, eo)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitStatus{code}
	}
	return nil
}
