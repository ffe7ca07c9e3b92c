package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Engine is the part of the Docker Engine API orchestro uses. The signatures
// are the SDK's own, so the real implementation is the SDK client itself and
// the in-memory fake of package enginetest can stand in for it in tests.
// Keep it narrow: add a method only when a caller needs it. A caller that
// makes only a few of these calls declares its own interface of just those.
type Engine interface {
	// Ping checks that the engine answers and negotiates the API version.
	Ping(ctx context.Context) (types.Ping, error)
	// ServerVersion reports the engine's version, OS and architecture.
	ServerVersion(ctx context.Context) (types.Version, error)
	// Info reports system-wide information about the engine.
	Info(ctx context.Context) (system.Info, error)
	// DaemonHost returns the address the client talks to, for messages.
	DaemonHost() string
	// Events streams engine events until ctx ends.
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
	// Close releases the client's resources.
	Close() error

	// ContainerList lists containers, typically filtered by label.
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	// ContainerInspect returns the full state of one container.
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	// ContainerCreate creates a container without starting it.
	ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, containerName string) (container.CreateResponse, error)
	// ContainerStart starts a created or stopped container.
	ContainerStart(ctx context.Context, containerID string, options container.StartOptions) error
	// ContainerStop stops a container, killing it after the timeout.
	ContainerStop(ctx context.Context, containerID string, options container.StopOptions) error
	// ContainerKill sends a signal to a running container.
	ContainerKill(ctx context.Context, containerID, signal string) error
	// ContainerRemove removes a container.
	ContainerRemove(ctx context.Context, containerID string, options container.RemoveOptions) error
	// ContainerLogs returns a container's log stream, multiplexed unless the
	// container has a TTY.
	ContainerLogs(ctx context.Context, containerID string, options container.LogsOptions) (io.ReadCloser, error)
	// ContainerWait waits for a container to reach the given condition.
	ContainerWait(ctx context.Context, containerID string, condition container.WaitCondition) (<-chan container.WaitResponse, <-chan error)
	// ContainerStats returns resource usage, once or as a stream of JSON
	// documents.
	ContainerStats(ctx context.Context, containerID string, stream bool) (container.StatsResponseReader, error)

	// ContainerExecCreate prepares a command to run inside a container.
	ContainerExecCreate(ctx context.Context, containerID string, options container.ExecOptions) (container.ExecCreateResponse, error)
	// ContainerExecStart starts a prepared command.
	ContainerExecStart(ctx context.Context, execID string, options container.ExecStartOptions) error
	// ContainerExecInspect reports whether a command still runs and its exit
	// code.
	ContainerExecInspect(ctx context.Context, execID string) (container.ExecInspect, error)
	// ContainerExecAttach starts a prepared command attached to a
	// connection: its input, and its output (multiplexed unless it has a
	// TTY).
	ContainerExecAttach(ctx context.Context, execID string, options container.ExecAttachOptions) (types.HijackedResponse, error)
	// ContainerExecResize sets the size of a command's TTY.
	ContainerExecResize(ctx context.Context, execID string, options container.ResizeOptions) error

	// NetworkList lists networks, typically filtered by label.
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	// NetworkCreate creates a network.
	NetworkCreate(ctx context.Context, name string, options network.CreateOptions) (network.CreateResponse, error)
	// NetworkRemove removes a network that has no endpoints left.
	NetworkRemove(ctx context.Context, networkID string) error
	// NetworkInspect returns a network and its endpoints.
	NetworkInspect(ctx context.Context, networkID string, options network.InspectOptions) (network.Inspect, error)
	// NetworkConnect attaches a container to a network.
	NetworkConnect(ctx context.Context, networkID, containerID string, config *network.EndpointSettings) error

	// VolumeList lists volumes, typically filtered by label.
	VolumeList(ctx context.Context, options volume.ListOptions) (volume.ListResponse, error)
	// VolumeCreate creates a named volume, so it carries the project's
	// labels instead of being created unlabelled by ContainerCreate.
	VolumeCreate(ctx context.Context, options volume.CreateOptions) (volume.Volume, error)
	// VolumeRemove removes a volume.
	VolumeRemove(ctx context.Context, volumeID string, force bool) error

	// ImageInspect returns a local image; it fails with a not-found error
	// (errdefs.IsNotFound) when the image is absent.
	ImageInspect(ctx context.Context, imageID string, options ...client.ImageInspectOption) (image.InspectResponse, error)
	// ImageList lists local images.
	ImageList(ctx context.Context, options image.ListOptions) ([]image.Summary, error)
	// ImageBuild sends a build context and returns the JSON message stream.
	ImageBuild(ctx context.Context, buildContext io.Reader, options build.ImageBuildOptions) (build.ImageBuildResponse, error)
	// ImageLoad loads images from an archive in `docker save` form.
	ImageLoad(ctx context.Context, input io.Reader, options ...client.ImageLoadOption) (image.LoadResponse, error)
	// ImagePull pulls an image and returns the JSON message stream.
	ImagePull(ctx context.Context, ref string, options image.PullOptions) (io.ReadCloser, error)
	// ImageRemove untags or removes a local image.
	ImageRemove(ctx context.Context, imageID string, options image.RemoveOptions) ([]image.DeleteResponse, error)
}

// The SDK client is the real Engine.
var _ Engine = (*client.Client)(nil)

// ErrUnreachable is returned (wrapped) by NewDockerEngine when no Docker
// engine answers. Commands branch on it to fail at once with a one-line
// explanation.
var ErrUnreachable = errors.New("docker engine unreachable")

// pingTimeout bounds the first contact with the engine, so a command fails
// fast instead of hanging when the engine is down or the address is wrong.
const pingTimeout = 2 * time.Second

// NewDockerEngine connects to the Docker engine named by the environment
// (DOCKER_HOST, DOCKER_API_VERSION, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY;
// else the Docker CLI context DOCKER_CONTEXT or `docker context use` chose;
// the local default socket otherwise) and checks that it answers. When it does
// not, the error wraps ErrUnreachable and reads as one line that names the
// address tried and how to fix it.
func NewDockerEngine(ctx context.Context) (Engine, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	useContext, contextName, err := contextOption(dockerConfigDir(), os.Getenv)
	if err != nil {
		return nil, &unreachableError{cause: err, msg: err.Error() + "; fix or unset DOCKER_CONTEXT (or `docker context use default`)"}
	}
	if useContext != nil {
		opts = append(opts, useContext)
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil && contextName != "" {
		return nil, &unreachableError{cause: err, msg: fmt.Sprintf("cannot use docker context %q: %s", contextName, firstLine(err.Error()))}
	}
	if err != nil {
		host := os.Getenv(client.EnvOverrideHost)
		return nil, &unreachableError{
			host:  host,
			cause: err,
			msg:   fmt.Sprintf("cannot use the Docker engine address %q: %s; fix or unset DOCKER_HOST", host, firstLine(err.Error())),
		}
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := cli.Ping(pctx); err != nil {
		host := cli.DaemonHost()
		_ = cli.Close()
		cause, denied := diagnoseUnreachable(ctx, host, err)
		hint := startHint(denied)
		return nil, &unreachableError{
			host:  host,
			cause: err,
			msg:   fmt.Sprintf("cannot reach the Docker engine at %s: %s; %s", host, cause, hint),
		}
	}
	return &docker{Client: cli}, nil
}

// docker is the SDK client, except that it asks the engine for its version
// once. A command asks for each image it builds (see Platform), and the
// engine answers by running runc and docker-init to read theirs.
type docker struct {
	*client.Client
	mu      sync.Mutex
	version *types.Version
}

// ServerVersion returns the engine's version, read from the engine the
// first time it answers.
func (d *docker) ServerVersion(ctx context.Context) (types.Version, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.version != nil {
		return *d.version, nil
	}
	v, err := d.Client.ServerVersion(ctx)
	if err != nil {
		return v, err
	}
	d.version = &v
	return v, nil
}

// unreachableError is the one-line error of NewDockerEngine. It matches both
// ErrUnreachable and the underlying cause with errors.Is.
type unreachableError struct {
	host  string
	cause error
	msg   string
}

func (e *unreachableError) Error() string   { return e.msg }
func (e *unreachableError) Unwrap() []error { return []error{ErrUnreachable, e.cause} }

// diagnoseUnreachable turns a failed ping into a short cause. The SDK hides
// the socket error behind a generic "cannot connect" message, so when the
// connection itself failed the address is dialled once more, directly, to
// learn why. It reports whether the cause is a permission problem.
func diagnoseUnreachable(ctx context.Context, host string, err error) (cause string, denied bool) {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Sprintf("no answer within %s", pingTimeout), false
	}
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return "interrupted", false
	}
	if u, perr := client.ParseHostURL(host); perr == nil && (u.Scheme == "unix" || u.Scheme == "tcp") {
		// ParseHostURL keeps the socket path of unix:// addresses in Host.
		network, addr := u.Scheme, u.Host
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		conn, derr := d.DialContext(dctx, network, addr)
		if derr == nil {
			_ = conn.Close()
		} else {
			return dialCause(network, addr, derr)
		}
	}
	if os.IsPermission(err) || errors.Is(err, syscall.EACCES) {
		return "permission denied", true
	}
	msg := firstLine(err.Error())
	msg = strings.TrimPrefix(msg, "error during connect: ")
	return msg, false
}

// dialCause names why a direct dial of the engine address failed.
func dialCause(network, addr string, err error) (string, bool) {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return fmt.Sprintf("socket %s does not exist", addr), false
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", false
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Sprintf("permission denied on %s", addr), true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Sprintf("cannot resolve %s", dnsErr.Name), false
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return "no answer", false
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var syserr *os.SyscallError
	if errors.As(err, &syserr) {
		return syserr.Err.Error(), false
	}
	return firstLine(err.Error()), false
}

// startHint tells the user what to do about an unreachable engine.
func startHint(denied bool) string {
	if denied {
		return "add your user to the docker group (or use sudo) or set DOCKER_HOST"
	}
	switch goruntime.GOOS {
	case "linux":
		return "start Docker (systemctl start docker) or set DOCKER_HOST"
	default:
		return "start Docker Desktop or set DOCKER_HOST"
	}
}

// firstLine keeps error messages on one line.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

// Platform returns the OS and architecture (GOOS/GOARCH spelling) of
// the engine's containers, which is what images built for it must target.
func Platform(ctx context.Context, eng Engine) (goos, goarch string, err error) {
	v, err := eng.ServerVersion(ctx)
	if err != nil {
		return "", "", fmt.Errorf("read engine version: %w", err)
	}
	goos, goarch = v.Os, normalizeArch(v.Arch)
	if goos == "" || goarch == "" {
		info, err := eng.Info(ctx)
		if err != nil {
			return "", "", fmt.Errorf("read engine info: %w", err)
		}
		if goos == "" {
			goos = info.OSType
		}
		if goarch == "" {
			goarch = normalizeArch(info.Architecture)
		}
	}
	if goos == "" || goarch == "" {
		return "", "", fmt.Errorf("read engine platform: the engine at %s reports no OS or architecture", eng.DaemonHost())
	}
	return goos, goarch, nil
}

// normalizeArch maps uname-style machine names, as Info reports them, to
// GOARCH names.
func normalizeArch(a string) string {
	switch a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64", "armv8", "arm64/v8":
		return "arm64"
	case "i386", "i686":
		return "386"
	case "armv7l", "armv6l", "armhf":
		return "arm"
	}
	return a
}
