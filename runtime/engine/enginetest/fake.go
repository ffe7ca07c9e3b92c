package enginetest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/orchestro/orchestro/runtime/engine"
)

// Fake is an in-memory engine.Engine for unit tests of code that drives
// Docker: planners, executors, the gateway's controller and image builds.
// It keeps containers (with names, labels, state, networks and exit codes),
// networks, volumes and images by tag; filters lists by label, name, id,
// status and network as the engine does; generates deterministic IDs; emits
// events; and records every call (see Calls). It is safe for concurrent use.
//
// Deliberate simplifications: no restart policies (an exited container stays
// exited); execs run synchronously inside ContainerExecStart; followed logs
// and streamed stats end after what was set with SetLogs and SetStats;
// failed pulls fail the ImagePull call itself.
type Fake struct {
	mu         sync.Mutex
	seq        int
	now        func() time.Time
	arch       string
	containers map[string]*fakeContainer // by ID
	networks   map[string]*fakeNetwork   // by ID
	volumes    map[string]*volume.Volume // by name
	images     map[string]*fakeImage     // by ID
	execs      map[string]*fakeExec      // by ID
	errs       map[string]error
	calls      []string
	builds     []FakeBuild
	pullable   map[string]bool
	execFunc   func(containerID string, cmd []string) int
	buildHook  func(FakeBuild) (messages []string, ok bool)
	callHook   func(method, target string) error
	subs       map[*fakeSubscriber]struct{}
	listLag    bool
	// nextHostPort counts the host ports published so far.
	nextHostPort int
}

// FakeBuild is one ImageBuild call the fake received: its options (without
// the context reader) and the regular files of the context, by path.
type FakeBuild struct {
	Options build.ImageBuildOptions
	Files   map[string][]byte
	// Entrypoint is a loaded image's (ImageLoad), whose Files are its
	// layer's, by path without the leading slash; a loaded image has
	// Options.Tags and Options.Labels set from its archive.
	Entrypoint []string
}

type fakeContainer struct {
	id, name   string
	seq        int
	config     container.Config
	hostConfig container.HostConfig
	imageID    string
	created    time.Time
	started    time.Time
	finished   time.Time
	state      container.ContainerState
	exitCode   int
	pid        int
	health     string
	endpoints  map[string]*network.EndpointSettings // by network ID
	// published holds the host side of the port bindings of a running
	// container, as the engine publishes them at its start.
	published nat.PortMap
	stdout    string
	stderr    string
	stats     []container.StatsResponse
	waiters   []*fakeWaiter
	// listedRunning is set while a container that exited is still
	// listed running (see SetListLag).
	listedRunning bool
}

type fakeWaiter struct {
	cond container.WaitCondition
	ch   chan container.WaitResponse
}

type fakeNetwork struct {
	id, name string
	builtin  bool
	subnet   int
	nextHost int
	created  time.Time
	opts     network.CreateOptions
}

type fakeImage struct {
	id      string
	tags    []string
	labels  map[string]string
	created time.Time
}

type fakeExec struct {
	inspect container.ExecInspect
	cmd     []string
	started bool
}

type fakeSubscriber struct {
	filters filters.Args
	mu      sync.Mutex
	queue   []events.Message
	signal  chan struct{}
}

// The fake is a complete Engine.
var _ engine.Engine = (*Fake)(nil)

// NewFake returns an empty fake engine for the host's architecture,
// with the predefined networks bridge, host and none.
func NewFake() *Fake {
	f := &Fake{
		now:        time.Now,
		arch:       goruntime.GOARCH,
		containers: map[string]*fakeContainer{},
		networks:   map[string]*fakeNetwork{},
		volumes:    map[string]*volume.Volume{},
		images:     map[string]*fakeImage{},
		execs:      map[string]*fakeExec{},
		errs:       map[string]error{},
		pullable:   map[string]bool{},
		subs:       map[*fakeSubscriber]struct{}{},
	}
	for _, n := range []struct{ name, driver string }{{"bridge", "bridge"}, {"host", "host"}, {"none", "null"}} {
		id := f.newID("network")
		f.networks[id] = &fakeNetwork{id: id, name: n.name, builtin: true, created: f.now(), opts: network.CreateOptions{Driver: n.driver}}
	}
	return f
}

// SetListLag makes ContainerList go on showing a container that exited as
// running until the container is inspected, as the engine does: Docker
// publishes the die event before its listing shows the exit (20.10 lists
// the container running for a while after the event), while an inspection
// waits for the engine's own record of the exit.
func (f *Fake) SetListLag(lag bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listLag = lag
}

// SetClock replaces the clock that stamps creation, start and event times.
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// SetArch sets the architecture (GOARCH spelling) the fake reports.
func (f *Fake) SetArch(goarch string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arch = goarch
}

// SetError makes every later call of the named method (such as
// "ContainerStart") fail with err; a nil err clears it. Calls are still
// recorded.
func (f *Fake) SetError(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.errs, method)
		return
	}
	f.errs[method] = err
}

// SetCallHook makes every later call run hook first, with the method and
// what it acts on as Calls records them, before it does anything else. A
// non-nil error from the hook fails the call with that error, so a test can
// fail one call in a sequence, or look at the world the moment a call is
// made. The hook runs without the fake's lock held, so it may call the
// fake. A nil hook removes it; SetError still applies to calls the hook
// lets through.
func (f *Fake) SetCallHook(hook func(method, target string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.callHook = hook
}

// Calls returns the calls received so far, one line each: the method, then
// the object it acted on (container and network names rather than IDs) or,
// for lists, the filters.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// ResetCalls forgets the recorded calls.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// Builds returns the ImageBuild calls received so far.
func (f *Fake) Builds() []FakeBuild {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.builds)
}

// AddImage adds a local image tagged ref (":latest" when ref has no tag)
// and returns its ID. A tag already on another image moves to this one.
func (f *Fake) AddImage(ref string, labels map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addImage([]string{ref}, labels)
}

// SetPullable makes ImagePull succeed for the given references; pulls of
// anything else fail.
func (f *Fake) SetPullable(refs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range refs {
		f.pullable[normalizeRef(r)] = true
	}
}

// SetExecFunc decides the exit code of exec'd commands (exec health
// checks). Without it every command exits 0.
func (f *Fake) SetExecFunc(fn func(containerID string, cmd []string) int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execFunc = fn
}

// SetBuildHook replaces the default, successful build. The hook returns the
// JSON messages the build streams (one message per string); when ok is
// false no image is created.
func (f *Fake) SetBuildHook(hook func(FakeBuild) (messages []string, ok bool)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buildHook = hook
}

// SetLogs sets what ContainerLogs returns for a container.
func (f *Fake) SetLogs(containerID, stdout, stderr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.container(containerID)
	if err != nil {
		return err
	}
	c.stdout, c.stderr = stdout, stderr
	return nil
}

// SetStats sets the documents ContainerStats returns for a container: all
// of them when streaming, the last one otherwise.
func (f *Fake) SetStats(containerID string, stats ...container.StatsResponse) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.container(containerID)
	if err != nil {
		return err
	}
	c.stats = slices.Clone(stats)
	return nil
}

// SetHealth sets the Docker health status ("starting", "healthy",
// "unhealthy") a container reports and emits the health_status event.
func (f *Fake) SetHealth(containerID, status string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.container(containerID)
	if err != nil {
		return err
	}
	c.health = status
	f.containerEvent(c, events.Action("health_status: "+status), nil)
	return nil
}

// Exit simulates the process of a running container ending by itself (a
// crash when code is not 0).
func (f *Fake) Exit(containerID string, code int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.container(containerID)
	if err != nil {
		return err
	}
	if c.state != container.StateRunning {
		return fmt.Errorf("exit container %s: it is not running: %w", c.name, cerrdefs.ErrConflict)
	}
	f.exit(c, code)
	return nil
}

// Ping answers like an API 1.41 engine.
func (f *Fake) Ping(ctx context.Context) (types.Ping, error) {
	if err := f.begin("Ping", ""); err != nil {
		return types.Ping{}, err
	}
	return types.Ping{APIVersion: "1.41", OSType: "linux", BuilderVersion: build.BuilderV1}, nil
}

// ServerVersion reports a linux engine of the fake's architecture.
func (f *Fake) ServerVersion(ctx context.Context) (types.Version, error) {
	if err := f.begin("ServerVersion", ""); err != nil {
		return types.Version{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return types.Version{Version: "fake", APIVersion: "1.41", Os: "linux", Arch: f.arch}, nil
}

// Info reports a linux engine and its container counts.
func (f *Fake) Info(ctx context.Context) (system.Info, error) {
	if err := f.begin("Info", ""); err != nil {
		return system.Info{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	info := system.Info{ID: "fake", Name: "fake", OSType: "linux", Architecture: f.arch, Images: len(f.images), Containers: len(f.containers)}
	for _, c := range f.containers {
		switch c.state {
		case container.StateRunning:
			info.ContainersRunning++
		default:
			info.ContainersStopped++
		}
	}
	return info, nil
}

// DaemonHost names the fake.
func (f *Fake) DaemonHost() string { return "fake://engine" }

// Close does nothing.
func (f *Fake) Close() error { return nil }

// Events streams the events of later changes until ctx ends, filtered by
// type, event (action), container and label like the engine does.
func (f *Fake) Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error) {
	msgs := make(chan events.Message)
	errs := make(chan error, 1)
	if err := f.begin("Events", describeFilters(options.Filters)); err != nil {
		errs <- err
		return msgs, errs
	}
	s := &fakeSubscriber{filters: options.Filters.Clone(), signal: make(chan struct{}, 1)}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	go func() {
		defer func() {
			f.mu.Lock()
			delete(f.subs, s)
			f.mu.Unlock()
		}()
		for {
			s.mu.Lock()
			batch := s.queue
			s.queue = nil
			s.mu.Unlock()
			for _, m := range batch {
				select {
				case msgs <- m:
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				}
			}
			select {
			case <-s.signal:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
		}
	}()
	return msgs, errs
}

// ContainerList lists containers, newest first; stopped ones only with All.
func (f *Fake) ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error) {
	if err := f.begin("ContainerList", describeFilters(options.Filters)); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	args := options.Filters
	var out []*fakeContainer
	for _, c := range f.containers {
		state := c.state
		if c.listedRunning {
			state = container.StateRunning
		}
		if !options.All && state != container.StateRunning && !args.Contains("status") {
			continue
		}
		if !args.MatchKVList("label", c.config.Labels) ||
			!(args.Match("name", c.name) || args.Match("name", "/"+c.name)) ||
			!matchIDPrefix(args, "id", c.id) ||
			!args.ExactMatch("status", state) ||
			!f.matchNetwork(args, c) {
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *fakeContainer) int { return b.seq - a.seq })
	list := make([]container.Summary, 0, len(out))
	for _, c := range out {
		list = append(list, f.summary(c))
	}
	return list, nil
}

// ContainerInspect returns a container by ID, name or ID prefix.
func (f *Fake) ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error) {
	if err := f.begin("ContainerInspect", f.containerLabel(containerID)); err != nil {
		return container.InspectResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.container(containerID)
	if err != nil {
		return container.InspectResponse{}, err
	}
	c.listedRunning = false
	return f.inspect(c), nil
}

// ContainerCreate creates a container from a local image. Like the engine,
// it needs the image and every named network to exist, refuses a name in
// use and creates named volumes it mounts.
func (f *Fake) ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, containerName string) (container.CreateResponse, error) {
	name := strings.TrimPrefix(containerName, "/")
	if err := f.begin("ContainerCreate", name); err != nil {
		return container.CreateResponse{}, err
	}
	if config == nil {
		return container.CreateResponse{}, fmt.Errorf("create container %s: no config: %w", name, cerrdefs.ErrInvalidArgument)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if name != "" {
		if other := f.containerByName(name); other != nil {
			return container.CreateResponse{}, fmt.Errorf("create container: the name %q is already in use by container %s: %w", "/"+name, other.id, cerrdefs.ErrConflict)
		}
	}
	img := f.image(config.Image)
	if img == nil {
		return container.CreateResponse{}, fmt.Errorf("create container %s: no such image: %s: %w", name, config.Image, cerrdefs.ErrNotFound)
	}
	hc := container.HostConfig{}
	if hostConfig != nil {
		hc = *hostConfig
		hc.Binds = slices.Clone(hc.Binds)
		hc.Mounts = slices.Clone(hc.Mounts)
	}
	endpoints := map[string]*network.EndpointSettings{}
	attach := func(ref string, es *network.EndpointSettings) error {
		n := f.network(ref)
		if n == nil {
			return fmt.Errorf("create container %s: network %s not found: %w", name, ref, cerrdefs.ErrNotFound)
		}
		if n.name == "host" || n.name == "none" {
			return nil
		}
		e := &network.EndpointSettings{}
		if es != nil {
			e.Aliases = slices.Clone(es.Aliases)
		}
		e.NetworkID = n.id
		endpoints[n.id] = e
		return nil
	}
	if networkingConfig != nil {
		for ref, es := range networkingConfig.EndpointsConfig {
			if err := attach(ref, es); err != nil {
				return container.CreateResponse{}, err
			}
		}
	}
	mode := string(hc.NetworkMode)
	switch {
	case mode == "" || mode == "default":
		if len(endpoints) == 0 {
			_ = attach("bridge", nil)
		}
	case mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:"):
	default:
		if n := f.network(mode); n == nil || endpoints[n.id] == nil {
			if err := attach(mode, nil); err != nil {
				return container.CreateResponse{}, err
			}
		}
	}
	for _, v := range containerVolumes(hc) {
		if _, ok := f.volumes[v]; !ok {
			f.createVolume(volume.CreateOptions{Name: v})
		}
	}

	id := f.newID("container")
	if name == "" {
		name = "fake_" + id[:8]
	}
	c := &fakeContainer{
		id:         id,
		name:       name,
		seq:        f.seq,
		config:     cloneConfig(*config),
		hostConfig: hc,
		imageID:    img.id,
		created:    f.now(),
		state:      container.StateCreated,
		endpoints:  endpoints,
	}
	f.containers[id] = c
	f.containerEvent(c, events.ActionCreate, nil)
	return container.CreateResponse{ID: id}, nil
}

// ContainerStart starts a container; starting a running one does nothing.
func (f *Fake) ContainerStart(ctx context.Context, containerID string, options container.StartOptions) error {
	if err := f.begin("ContainerStart", f.containerLabel(containerID)); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.container(containerID)
	if err != nil {
		return err
	}
	if c.state == container.StateRunning {
		return nil
	}
	c.state = container.StateRunning
	c.started = f.now()
	c.exitCode = 0
	c.pid = 1000 + f.seq
	f.seq++
	c.published = f.publishPorts(c.hostConfig.PortBindings)
	c.health = ""
	if hc := c.config.Healthcheck; hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE" {
		c.health = container.Starting
	}
	for nid, e := range c.endpoints {
		f.assignAddress(f.networks[nid], c, e)
	}
	f.containerEvent(c, events.ActionStart, nil)
	return nil
}

// ContainerStop stops a running container, which then exits with code 0;
// stopping a stopped one does nothing.
func (f *Fake) ContainerStop(ctx context.Context, containerID string, options container.StopOptions) error {
	if err := f.begin("ContainerStop", f.containerLabel(containerID)); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.container(containerID)
	if err != nil {
		return err
	}
	if c.state != container.StateRunning {
		return nil
	}
	f.containerEvent(c, events.ActionKill, map[string]string{"signal": "15"})
	f.exit(c, 0)
	f.containerEvent(c, events.ActionStop, nil)
	return nil
}

// ContainerKill signals a running container. KILL (the default), TERM,
// INT, HUP and QUIT end it with exit code 128+signal; other signals leave
// it running.
func (f *Fake) ContainerKill(ctx context.Context, containerID, signal string) error {
	if err := f.begin("ContainerKill", f.containerLabel(containerID)); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.container(containerID)
	if err != nil {
		return err
	}
	if c.state != container.StateRunning {
		return fmt.Errorf("kill container %s: it is not running: %w", c.name, cerrdefs.ErrConflict)
	}
	num, ends := signalNumber(signal)
	f.containerEvent(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(num)})
	if ends {
		f.exit(c, 128+num)
	}
	return nil
}

// ContainerRemove removes a container; a running one only with Force.
func (f *Fake) ContainerRemove(ctx context.Context, containerID string, options container.RemoveOptions) error {
	if err := f.begin("ContainerRemove", f.containerLabel(containerID)); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.container(containerID)
	if err != nil {
		return err
	}
	if c.state == container.StateRunning {
		if !options.Force {
			return fmt.Errorf("remove container %s: it is running; stop it or use force: %w", c.name, cerrdefs.ErrConflict)
		}
		f.containerEvent(c, events.ActionKill, map[string]string{"signal": "9"})
		f.exit(c, 137)
	}
	delete(f.containers, c.id)
	for _, w := range c.waiters {
		w.ch <- container.WaitResponse{StatusCode: int64(c.exitCode)}
	}
	c.waiters = nil
	f.containerEvent(c, events.ActionDestroy, nil)
	return nil
}

// ContainerLogs returns what SetLogs set: multiplexed stdout and stderr
// frames, or the raw text for a container with a TTY.
func (f *Fake) ContainerLogs(ctx context.Context, containerID string, options container.LogsOptions) (io.ReadCloser, error) {
	if err := f.begin("ContainerLogs", f.containerLabel(containerID)); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.container(containerID)
	if err != nil {
		return nil, err
	}
	if !options.ShowStdout && !options.ShowStderr {
		return nil, fmt.Errorf("logs of container %s: choose at least one of stdout and stderr: %w", c.name, cerrdefs.ErrInvalidArgument)
	}
	var buf bytes.Buffer
	write := func(stream byte, s string) {
		if s == "" {
			return
		}
		if c.config.Tty {
			buf.WriteString(s)
			return
		}
		var hdr [8]byte
		hdr[0] = stream
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(s)))
		buf.Write(hdr[:])
		buf.WriteString(s)
	}
	if options.ShowStdout {
		write(1, c.stdout)
	}
	if options.ShowStderr {
		write(2, c.stderr)
	}
	return io.NopCloser(&buf), nil
}

// ContainerWait reports when the container reaches the condition: stopped
// (not-running, the default), its next exit, or its removal.
func (f *Fake) ContainerWait(ctx context.Context, containerID string, condition container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
	results := make(chan container.WaitResponse, 1)
	errs := make(chan error, 1)
	if err := f.begin("ContainerWait", f.containerLabel(containerID)); err != nil {
		errs <- err
		return results, errs
	}
	if condition == "" {
		condition = container.WaitConditionNotRunning
	}
	f.mu.Lock()
	c, err := f.container(containerID)
	if err != nil {
		f.mu.Unlock()
		errs <- err
		return results, errs
	}
	if condition == container.WaitConditionNotRunning && c.state != container.StateRunning {
		f.mu.Unlock()
		results <- container.WaitResponse{StatusCode: int64(c.exitCode)}
		return results, errs
	}
	w := &fakeWaiter{cond: condition, ch: make(chan container.WaitResponse, 1)}
	c.waiters = append(c.waiters, w)
	f.mu.Unlock()
	go func() {
		select {
		case r := <-w.ch:
			results <- r
		case <-ctx.Done():
			f.mu.Lock()
			c.waiters = slices.DeleteFunc(c.waiters, func(x *fakeWaiter) bool { return x == w })
			f.mu.Unlock()
			errs <- ctx.Err()
		}
	}()
	return results, errs
}

// ContainerStats returns the documents set with SetStats as a JSON stream.
func (f *Fake) ContainerStats(ctx context.Context, containerID string, stream bool) (container.StatsResponseReader, error) {
	if err := f.begin("ContainerStats", f.containerLabel(containerID)); err != nil {
		return container.StatsResponseReader{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.container(containerID)
	if err != nil {
		return container.StatsResponseReader{}, err
	}
	docs := c.stats
	if len(docs) == 0 {
		docs = []container.StatsResponse{{ID: c.id, Name: "/" + c.name, Read: f.now()}}
	}
	if !stream {
		docs = docs[len(docs)-1:]
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return container.StatsResponseReader{}, fmt.Errorf("encode stats of container %s: %w", c.name, err)
		}
	}
	return container.StatsResponseReader{Body: io.NopCloser(&buf), OSType: "linux"}, nil
}

// ContainerExecCreate prepares a command in a running container.
func (f *Fake) ContainerExecCreate(ctx context.Context, containerID string, options container.ExecOptions) (container.ExecCreateResponse, error) {
	if err := f.begin("ContainerExecCreate", f.containerLabel(containerID)+" "+strings.Join(options.Cmd, " ")); err != nil {
		return container.ExecCreateResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.container(containerID)
	if err != nil {
		return container.ExecCreateResponse{}, err
	}
	if c.state != container.StateRunning {
		return container.ExecCreateResponse{}, fmt.Errorf("exec in container %s: it is not running: %w", c.name, cerrdefs.ErrConflict)
	}
	if len(options.Cmd) == 0 {
		return container.ExecCreateResponse{}, fmt.Errorf("exec in container %s: no command: %w", c.name, cerrdefs.ErrInvalidArgument)
	}
	id := f.newID("exec")
	f.execs[id] = &fakeExec{inspect: container.ExecInspect{ExecID: id, ContainerID: c.id}, cmd: slices.Clone(options.Cmd)}
	return container.ExecCreateResponse{ID: id}, nil
}

// ContainerExecStart runs a prepared command to completion; its exit code
// comes from SetExecFunc.
func (f *Fake) ContainerExecStart(ctx context.Context, execID string, options container.ExecStartOptions) error {
	if err := f.begin("ContainerExecStart", ""); err != nil {
		return err
	}
	f.mu.Lock()
	e, ok := f.execs[execID]
	if !ok {
		f.mu.Unlock()
		return fmt.Errorf("start exec %s: no such exec instance: %w", execID, cerrdefs.ErrNotFound)
	}
	if e.started {
		f.mu.Unlock()
		return fmt.Errorf("start exec %s: it has already run: %w", execID, cerrdefs.ErrConflict)
	}
	e.started = true
	fn, cid, cmd := f.execFunc, e.inspect.ContainerID, slices.Clone(e.cmd)
	f.mu.Unlock()

	code := 0
	if fn != nil {
		code = fn(cid, cmd) // outside the lock: the func may call the fake
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e.inspect.ExitCode = code
	return nil
}

// ContainerExecInspect reports an exec's exit code.
func (f *Fake) ContainerExecInspect(ctx context.Context, execID string) (container.ExecInspect, error) {
	if err := f.begin("ContainerExecInspect", ""); err != nil {
		return container.ExecInspect{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.execs[execID]
	if !ok {
		return container.ExecInspect{}, fmt.Errorf("inspect exec %s: no such exec instance: %w", execID, cerrdefs.ErrNotFound)
	}
	return e.inspect, nil
}

// ContainerExecAttach is not faked: an attached command needs a
// connection, which the end-to-end tests get from the real engine.
func (f *Fake) ContainerExecAttach(ctx context.Context, execID string, options container.ExecAttachOptions) (types.HijackedResponse, error) {
	if err := f.begin("ContainerExecAttach", ""); err != nil {
		return types.HijackedResponse{}, err
	}
	return types.HijackedResponse{}, fmt.Errorf("attach to exec %s: not supported by the fake engine: %w", execID, cerrdefs.ErrNotImplemented)
}

// ContainerExecResize is not faked either; see ContainerExecAttach.
func (f *Fake) ContainerExecResize(ctx context.Context, execID string, options container.ResizeOptions) error {
	if err := f.begin("ContainerExecResize", ""); err != nil {
		return err
	}
	return fmt.Errorf("resize exec %s: not supported by the fake engine: %w", execID, cerrdefs.ErrNotImplemented)
}

// NetworkList lists networks by name, filtered by label, name, id and
// driver.
func (f *Fake) NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error) {
	if err := f.begin("NetworkList", describeFilters(options.Filters)); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	args := options.Filters
	var list []network.Summary
	for _, n := range f.networks {
		if !args.MatchKVList("label", n.opts.Labels) || !args.Match("name", n.name) ||
			!matchIDPrefix(args, "id", n.id) || !args.ExactMatch("driver", n.opts.Driver) {
			continue
		}
		list = append(list, f.networkInspect(n))
	}
	slices.SortFunc(list, func(a, b network.Summary) int { return strings.Compare(a.Name, b.Name) })
	return list, nil
}

// NetworkCreate creates a network; the name must be new.
func (f *Fake) NetworkCreate(ctx context.Context, name string, options network.CreateOptions) (network.CreateResponse, error) {
	if err := f.begin("NetworkCreate", name); err != nil {
		return network.CreateResponse{}, err
	}
	if name == "" {
		return network.CreateResponse{}, fmt.Errorf("create network: no name: %w", cerrdefs.ErrInvalidArgument)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.networks {
		if n.name == name {
			return network.CreateResponse{}, fmt.Errorf("create network: network with name %s already exists: %w", name, cerrdefs.ErrConflict)
		}
	}
	opts := options
	opts.Labels = maps.Clone(options.Labels)
	opts.Options = maps.Clone(options.Options)
	if opts.Driver == "" {
		opts.Driver = "bridge"
	}
	subnet := 0
	for _, n := range f.networks {
		subnet = max(subnet, n.subnet)
	}
	id := f.newID("network")
	n := &fakeNetwork{id: id, name: name, subnet: subnet + 1, created: f.now(), opts: opts}
	f.networks[id] = n
	f.publish(events.NetworkEventType, events.ActionCreate, id, map[string]string{"name": name, "type": opts.Driver})
	return network.CreateResponse{ID: id}, nil
}

// NetworkRemove removes a network with no endpoints; the predefined ones
// cannot be removed.
func (f *Fake) NetworkRemove(ctx context.Context, networkID string) error {
	if err := f.begin("NetworkRemove", f.networkLabel(networkID)); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.network(networkID)
	if n == nil {
		return fmt.Errorf("remove network %s: no such network: %w", networkID, cerrdefs.ErrNotFound)
	}
	if n.builtin {
		return fmt.Errorf("remove network %s: it is a pre-defined network: %w", n.name, cerrdefs.ErrPermissionDenied)
	}
	for _, c := range f.containers {
		if c.endpoints[n.id] != nil {
			return fmt.Errorf("remove network %s: it has active endpoints: %w", n.name, cerrdefs.ErrPermissionDenied)
		}
	}
	delete(f.networks, n.id)
	f.publish(events.NetworkEventType, events.ActionDestroy, n.id, map[string]string{"name": n.name, "type": n.opts.Driver})
	return nil
}

// NetworkInspect returns a network by ID, name or ID prefix, with its
// endpoints.
func (f *Fake) NetworkInspect(ctx context.Context, networkID string, options network.InspectOptions) (network.Inspect, error) {
	if err := f.begin("NetworkInspect", f.networkLabel(networkID)); err != nil {
		return network.Inspect{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.network(networkID)
	if n == nil {
		return network.Inspect{}, fmt.Errorf("inspect network %s: no such network: %w", networkID, cerrdefs.ErrNotFound)
	}
	return f.networkInspect(n), nil
}

// NetworkConnect attaches a container to a network, with the aliases of
// config.
func (f *Fake) NetworkConnect(ctx context.Context, networkID, containerID string, config *network.EndpointSettings) error {
	if err := f.begin("NetworkConnect", f.networkLabel(networkID)+" "+f.containerLabel(containerID)); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.network(networkID)
	if n == nil {
		return fmt.Errorf("connect to network %s: no such network: %w", networkID, cerrdefs.ErrNotFound)
	}
	c, err := f.container(containerID)
	if err != nil {
		return err
	}
	if c.endpoints[n.id] != nil {
		return fmt.Errorf("connect container %s to network %s: endpoint already exists: %w", c.name, n.name, cerrdefs.ErrPermissionDenied)
	}
	e := &network.EndpointSettings{NetworkID: n.id}
	if config != nil {
		e.Aliases = slices.Clone(config.Aliases)
	}
	c.endpoints[n.id] = e
	if c.state == container.StateRunning {
		f.assignAddress(n, c, e)
	}
	f.publish(events.NetworkEventType, events.ActionConnect, n.id, map[string]string{"name": n.name, "container": c.id, "type": n.opts.Driver})
	return nil
}

// VolumeList lists volumes by name, filtered by label, name and dangling.
func (f *Fake) VolumeList(ctx context.Context, options volume.ListOptions) (volume.ListResponse, error) {
	if err := f.begin("VolumeList", describeFilters(options.Filters)); err != nil {
		return volume.ListResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	args := options.Filters
	var resp volume.ListResponse
	for _, name := range slices.Sorted(maps.Keys(f.volumes)) {
		v := f.volumes[name]
		if !args.MatchKVList("label", v.Labels) || !args.Match("name", v.Name) {
			continue
		}
		if args.Contains("dangling") {
			dangling, err := args.GetBoolOrDefault("dangling", false)
			if err != nil {
				return volume.ListResponse{}, fmt.Errorf("list volumes: %w", err)
			}
			if dangling == f.volumeInUse(name) {
				continue
			}
		}
		cp := *v
		cp.Labels = maps.Clone(v.Labels)
		resp.Volumes = append(resp.Volumes, &cp)
	}
	return resp, nil
}

// VolumeCreate creates a named volume, or returns the existing one.
func (f *Fake) VolumeCreate(ctx context.Context, options volume.CreateOptions) (volume.Volume, error) {
	if err := f.begin("VolumeCreate", options.Name); err != nil {
		return volume.Volume{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.createVolume(options)
	cp := *v
	cp.Labels = maps.Clone(v.Labels)
	return cp, nil
}

// VolumeRemove removes a volume that no container uses.
func (f *Fake) VolumeRemove(ctx context.Context, volumeID string, force bool) error {
	if err := f.begin("VolumeRemove", volumeID); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.volumes[volumeID]; !ok {
		if force {
			return nil
		}
		return fmt.Errorf("remove volume %s: no such volume: %w", volumeID, cerrdefs.ErrNotFound)
	}
	if f.volumeInUse(volumeID) {
		return fmt.Errorf("remove volume %s: volume is in use: %w", volumeID, cerrdefs.ErrConflict)
	}
	delete(f.volumes, volumeID)
	f.publish(events.VolumeEventType, events.ActionDestroy, volumeID, map[string]string{"driver": "local"})
	return nil
}

// ImageInspect returns a local image by tag, ID or ID prefix.
func (f *Fake) ImageInspect(ctx context.Context, imageID string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	if err := f.begin("ImageInspect", imageID); err != nil {
		return image.InspectResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	img := f.image(imageID)
	if img == nil {
		return image.InspectResponse{}, fmt.Errorf("inspect image: no such image: %s: %w", imageID, cerrdefs.ErrNotFound)
	}
	return image.InspectResponse{
		ID:           img.id,
		RepoTags:     slices.Clone(img.tags),
		Created:      img.created.UTC().Format(time.RFC3339Nano),
		Config:       &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Labels: maps.Clone(img.labels)}},
		Architecture: f.arch,
		Os:           "linux",
	}, nil
}

// ImageList lists local images, filtered by label and reference (a glob
// on repository:tag).
func (f *Fake) ImageList(ctx context.Context, options image.ListOptions) ([]image.Summary, error) {
	if err := f.begin("ImageList", describeFilters(options.Filters)); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	args := options.Filters
	var list []image.Summary
	for _, img := range f.images {
		if !args.MatchKVList("label", img.labels) || !matchReference(args, img.tags) {
			continue
		}
		list = append(list, image.Summary{
			ID:         img.id,
			RepoTags:   slices.Clone(img.tags),
			Labels:     maps.Clone(img.labels),
			Created:    img.created.Unix(),
			Containers: -1,
			SharedSize: -1,
		})
	}
	slices.SortFunc(list, func(a, b image.Summary) int { return strings.Compare(a.ID, b.ID) })
	return list, nil
}

// ImageBuild reads the tar context, records it (see Builds) and, unless a
// build hook says otherwise, creates an image with the options' tags and
// labels.
func (f *Fake) ImageBuild(ctx context.Context, buildContext io.Reader, options build.ImageBuildOptions) (build.ImageBuildResponse, error) {
	if err := f.begin("ImageBuild", strings.Join(options.Tags, ",")); err != nil {
		return build.ImageBuildResponse{}, err
	}
	files := map[string][]byte{}
	tr := tar.NewReader(buildContext)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return build.ImageBuildResponse{}, fmt.Errorf("build image: read context: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return build.ImageBuildResponse{}, fmt.Errorf("build image: read context file %s: %w", hdr.Name, err)
		}
		files[hdr.Name] = data
	}
	opts := options
	opts.Context = nil
	opts.Tags = slices.Clone(options.Tags)
	opts.Labels = maps.Clone(options.Labels)
	b := FakeBuild{Options: opts, Files: files}

	f.mu.Lock()
	f.builds = append(f.builds, b)
	hook := f.buildHook
	f.mu.Unlock()

	var messages []string
	ok := true
	if hook != nil {
		messages, ok = hook(b)
	}
	if ok {
		f.mu.Lock()
		id := f.addImage(opts.Tags, opts.Labels)
		f.mu.Unlock()
		if hook == nil {
			messages = []string{
				jsonLine(map[string]string{"stream": "Step 1/1 : FAKE BUILD\n"}),
				jsonLine(map[string]any{"aux": map[string]string{"ID": id}}),
				jsonLine(map[string]string{"stream": "Successfully built " + strings.TrimPrefix(id, "sha256:")[:12] + "\n"}),
			}
			for _, t := range opts.Tags {
				messages = append(messages, jsonLine(map[string]string{"stream": "Successfully tagged " + normalizeRef(t) + "\n"}))
			}
		}
	}
	body := strings.Join(messages, "\n")
	return build.ImageBuildResponse{Body: io.NopCloser(strings.NewReader(body)), OSType: "linux"}, nil
}

// ImagePull succeeds for references made pullable with SetPullable and
// fails for all others.
func (f *Fake) ImagePull(ctx context.Context, ref string, options image.PullOptions) (io.ReadCloser, error) {
	if err := f.begin("ImagePull", ref); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	norm := normalizeRef(ref)
	if !f.pullable[norm] {
		return nil, fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %w", ref, cerrdefs.ErrNotFound)
	}
	f.addImage([]string{norm}, nil)
	body := strings.Join([]string{
		jsonLine(map[string]string{"status": "Pulling from " + norm}),
		jsonLine(map[string]string{"status": "Status: Downloaded newer image for " + norm}),
	}, "\n")
	return io.NopCloser(strings.NewReader(body)), nil
}

// ImageRemove untags an image by tag, and removes it when no tag is left
// or when removed by ID. An image a container uses needs Force.
func (f *Fake) ImageRemove(ctx context.Context, imageID string, options image.RemoveOptions) ([]image.DeleteResponse, error) {
	if err := f.begin("ImageRemove", imageID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	img := f.image(imageID)
	if img == nil {
		return nil, fmt.Errorf("remove image: no such image: %s: %w", imageID, cerrdefs.ErrNotFound)
	}
	norm := normalizeRef(imageID)
	if slices.Contains(img.tags, norm) && len(img.tags) > 1 {
		img.tags = slices.DeleteFunc(img.tags, func(t string) bool { return t == norm })
		f.publish(events.ImageEventType, events.ActionUnTag, img.id, map[string]string{"name": norm})
		return []image.DeleteResponse{{Untagged: norm}}, nil
	}
	if !options.Force {
		for _, c := range f.containers {
			if c.imageID == img.id {
				return nil, fmt.Errorf("remove image %s: it is used by container %s: %w", imageID, c.name, cerrdefs.ErrConflict)
			}
		}
	}
	var resp []image.DeleteResponse
	for _, t := range img.tags {
		resp = append(resp, image.DeleteResponse{Untagged: t})
	}
	resp = append(resp, image.DeleteResponse{Deleted: img.id})
	delete(f.images, img.id)
	f.publish(events.ImageEventType, events.ActionDelete, img.id, nil)
	return resp, nil
}

// begin records a call, runs the call hook and returns the error the hook
// or SetError set for it.
func (f *Fake) begin(method, target string) error {
	f.mu.Lock()
	call := method
	if target != "" {
		call += " " + target
	}
	f.calls = append(f.calls, call)
	hook, err := f.callHook, f.errs[method]
	f.mu.Unlock()
	if hook != nil {
		if herr := hook(method, target); herr != nil {
			return herr
		}
	}
	return err
}

// newID returns a deterministic 64-hex ID. Call with f.mu held.
func (f *Fake) newID(kind string) string {
	f.seq++
	sum := sha256.Sum256([]byte(kind + "/" + strconv.Itoa(f.seq)))
	return hex.EncodeToString(sum[:])
}

// container resolves an ID, name or ID prefix. Call with f.mu held.
func (f *Fake) container(ref string) (*fakeContainer, error) {
	if c, ok := f.containers[ref]; ok {
		return c, nil
	}
	if c := f.containerByName(strings.TrimPrefix(ref, "/")); c != nil {
		return c, nil
	}
	var found *fakeContainer
	for id, c := range f.containers {
		if ref != "" && strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, fmt.Errorf("container reference %s is ambiguous: %w", ref, cerrdefs.ErrInvalidArgument)
			}
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no such container: %s: %w", ref, cerrdefs.ErrNotFound)
	}
	return found, nil
}

func (f *Fake) containerByName(name string) *fakeContainer {
	for _, c := range f.containers {
		if c.name == name {
			return c
		}
	}
	return nil
}

// containerLabel names a container in the call log by its name.
func (f *Fake) containerLabel(ref string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, err := f.container(ref); err == nil {
		return c.name
	}
	return ref
}

// network resolves an ID, name or ID prefix. Call with f.mu held.
func (f *Fake) network(ref string) *fakeNetwork {
	if n, ok := f.networks[ref]; ok {
		return n
	}
	for _, n := range f.networks {
		if n.name == ref {
			return n
		}
	}
	for id, n := range f.networks {
		if ref != "" && strings.HasPrefix(id, ref) {
			return n
		}
	}
	return nil
}

// networkLabel names a network in the call log by its name.
func (f *Fake) networkLabel(ref string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.network(ref); n != nil {
		return n.name
	}
	return ref
}

// image resolves a tag, an ID (with or without "sha256:") or an ID prefix.
// Call with f.mu held.
func (f *Fake) image(ref string) *fakeImage {
	if ref == "" {
		return nil
	}
	norm := normalizeRef(ref)
	for _, img := range f.images {
		if img.id == ref || slices.Contains(img.tags, norm) {
			return img
		}
	}
	hexRef := strings.TrimPrefix(ref, "sha256:")
	for _, img := range f.images {
		if strings.HasPrefix(strings.TrimPrefix(img.id, "sha256:"), hexRef) && len(hexRef) >= 4 {
			return img
		}
	}
	return nil
}

// addImage creates an image with the given tags. Call with f.mu held.
// ImageLoad loads the images of an archive in `docker save` form: their
// tags and labels, and each one is recorded as a build (see FakeBuild).
func (f *Fake) ImageLoad(ctx context.Context, input io.Reader, options ...client.ImageLoadOption) (image.LoadResponse, error) {
	if err := f.begin("ImageLoad", ""); err != nil {
		return image.LoadResponse{}, err
	}
	entries := map[string][]byte{}
	tr := tar.NewReader(input)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return image.LoadResponse{}, fmt.Errorf("load images: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return image.LoadResponse{}, fmt.Errorf("load images: %w", err)
		}
		entries[hdr.Name] = data
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(entries["manifest.json"], &manifest); err != nil {
		return image.LoadResponse{}, fmt.Errorf("load images: manifest.json: %w", err)
	}
	for _, m := range manifest {
		var cfg struct {
			Config struct {
				Entrypoint []string
				Labels     map[string]string
			} `json:"config"`
		}
		if err := json.Unmarshal(entries[m.Config], &cfg); err != nil {
			return image.LoadResponse{}, fmt.Errorf("load images: %s: %w", m.Config, err)
		}
		files := map[string][]byte{}
		for _, l := range m.Layers {
			lr := tar.NewReader(bytes.NewReader(entries[l]))
			for {
				hdr, err := lr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return image.LoadResponse{}, fmt.Errorf("load images: layer %s: %w", l, err)
				}
				if hdr.Typeflag == tar.TypeReg {
					data, _ := io.ReadAll(lr)
					files[strings.TrimPrefix(hdr.Name, "/")] = data
				}
			}
		}
		b := FakeBuild{Options: build.ImageBuildOptions{Tags: slices.Clone(m.RepoTags), Labels: maps.Clone(cfg.Config.Labels)},
			Files: files, Entrypoint: cfg.Config.Entrypoint}
		f.mu.Lock()
		f.builds = append(f.builds, b)
		f.addImage(m.RepoTags, cfg.Config.Labels)
		f.mu.Unlock()
	}
	return image.LoadResponse{Body: io.NopCloser(strings.NewReader("")), JSON: true}, nil
}

func (f *Fake) addImage(tags []string, labels map[string]string) string {
	id := "sha256:" + f.newID("image")
	img := &fakeImage{id: id, labels: maps.Clone(labels), created: f.now()}
	for _, t := range tags {
		t = normalizeRef(t)
		for _, other := range f.images {
			other.tags = slices.DeleteFunc(other.tags, func(x string) bool { return x == t })
		}
		img.tags = append(img.tags, t)
	}
	f.images[id] = img
	for _, t := range img.tags {
		f.publish(events.ImageEventType, events.ActionTag, id, map[string]string{"name": t})
	}
	return id
}

// createVolume creates a volume or returns the existing one. Call with
// f.mu held.
func (f *Fake) createVolume(opts volume.CreateOptions) *volume.Volume {
	name := opts.Name
	if name == "" {
		name = f.newID("volume")
	}
	if v, ok := f.volumes[name]; ok {
		return v
	}
	driver := opts.Driver
	if driver == "" {
		driver = "local"
	}
	v := &volume.Volume{
		Name:       name,
		Driver:     driver,
		Labels:     maps.Clone(opts.Labels),
		Options:    maps.Clone(opts.DriverOpts),
		Mountpoint: "/var/lib/docker/volumes/" + name + "/_data",
		Scope:      "local",
		CreatedAt:  f.now().UTC().Format(time.RFC3339),
	}
	f.volumes[name] = v
	f.publish(events.VolumeEventType, events.ActionCreate, name, map[string]string{"driver": driver})
	return v
}

// volumeInUse reports whether a container mounts the volume. Call with
// f.mu held.
func (f *Fake) volumeInUse(name string) bool {
	for _, c := range f.containers {
		if slices.Contains(containerVolumes(c.hostConfig), name) {
			return true
		}
	}
	return false
}

// containerVolumes lists the named volumes a host config mounts.
func containerVolumes(hc container.HostConfig) []string {
	var names []string
	for _, m := range hc.Mounts {
		if m.Type == mount.TypeVolume && m.Source != "" {
			names = append(names, m.Source)
		}
	}
	for _, b := range hc.Binds {
		src, _, ok := strings.Cut(b, ":")
		if ok && src != "" && !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, ".") {
			names = append(names, src)
		}
	}
	return names
}

// assignAddress gives an endpoint an address on its network. Call with
// f.mu held.
func (f *Fake) assignAddress(n *fakeNetwork, c *fakeContainer, e *network.EndpointSettings) {
	if n == nil || e.IPAddress != "" {
		return
	}
	n.nextHost++
	host := n.nextHost + 1
	e.IPAddress = fmt.Sprintf("172.%d.%d.%d", 17+n.subnet, host/250, host%250+2)
	e.IPPrefixLen = 16
	e.Gateway = fmt.Sprintf("172.%d.0.1", 17+n.subnet)
	e.EndpointID = f.newID("endpoint")
	e.MacAddress = fmt.Sprintf("02:42:ac:%02x:%02x:%02x", 17+n.subnet, host/250, host%250+2)
	e.DNSNames = append([]string{c.name, c.id[:12]}, e.Aliases...)
}

// exit ends a running container. Call with f.mu held.
func (f *Fake) exit(c *fakeContainer, code int) {
	c.state = container.StateExited
	c.exitCode = code
	c.finished = f.now()
	c.listedRunning = f.listLag
	c.pid = 0
	c.published = nil
	for _, e := range c.endpoints {
		e.IPAddress, e.IPPrefixLen, e.Gateway, e.EndpointID, e.MacAddress, e.DNSNames = "", 0, "", "", "", nil
	}
	f.containerEvent(c, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(code)})
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.cond == container.WaitConditionRemoved {
			kept = append(kept, w)
			continue
		}
		w.ch <- container.WaitResponse{StatusCode: int64(code)}
	}
	c.waiters = kept
}

// containerEvent publishes a container event whose attributes are the
// container's labels, name and image, like the engine's.
func (f *Fake) containerEvent(c *fakeContainer, action events.Action, extra map[string]string) {
	attrs := maps.Clone(c.config.Labels)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["name"] = c.name
	attrs["image"] = c.config.Image
	maps.Copy(attrs, extra)
	f.publish(events.ContainerEventType, action, c.id, attrs)
}

// publish queues an event for every subscriber whose filters match. It
// never blocks. Call with f.mu held.
func (f *Fake) publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := f.now()
	m := events.Message{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs}, Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()}
	for s := range f.subs {
		args := s.filters
		if !args.ExactMatch("type", string(typ)) || !args.ExactMatch("event", string(action)) ||
			!args.MatchKVList("label", attrs) {
			continue
		}
		if args.Contains("container") && (typ != events.ContainerEventType ||
			!(args.ExactMatch("container", id) || args.ExactMatch("container", attrs["name"]))) {
			continue
		}
		s.mu.Lock()
		s.queue = append(s.queue, m)
		s.mu.Unlock()
		select {
		case s.signal <- struct{}{}:
		default:
		}
	}
}

// summary renders a container as ContainerList does. Call with f.mu held.
func (f *Fake) summary(c *fakeContainer) container.Summary {
	s := container.Summary{
		ID:      c.id,
		Names:   []string{"/" + c.name},
		Image:   c.config.Image,
		ImageID: c.imageID,
		Command: strings.Join(append(slices.Clone(c.config.Entrypoint), c.config.Cmd...), " "),
		Created: c.created.Unix(),
		Labels:  maps.Clone(c.config.Labels),
		State:   c.state,
		Status:  f.status(c),
		NetworkSettings: &container.NetworkSettingsSummary{
			Networks: f.endpointsByName(c),
		},
	}
	if c.listedRunning {
		s.State, s.Status = container.StateRunning, "Up"
	}
	s.HostConfig.NetworkMode = string(c.hostConfig.NetworkMode)
	for port, bindings := range c.published {
		for _, b := range bindings {
			public, _ := strconv.ParseUint(b.HostPort, 10, 16)
			s.Ports = append(s.Ports, container.Port{IP: b.HostIP, PrivatePort: uint16(port.Int()), PublicPort: uint16(public), Type: port.Proto()})
		}
	}
	return s
}

// publishPorts binds ports as the engine does at a container's start: a
// binding without a host port gets a free one, from 32768 up. Call with
// f.mu held.
func (f *Fake) publishPorts(bindings nat.PortMap) nat.PortMap {
	if len(bindings) == 0 {
		return nil
	}
	out := nat.PortMap{}
	for port, bs := range bindings {
		for _, b := range bs {
			if b.HostPort == "" {
				f.nextHostPort++
				b.HostPort = strconv.Itoa(32767 + f.nextHostPort)
			}
			out[port] = append(out[port], b)
		}
	}
	return out
}

// status renders the human status column ("Up (healthy)", "Exited (137)").
func (f *Fake) status(c *fakeContainer) string {
	switch c.state {
	case container.StateRunning:
		if c.health != "" {
			return "Up (" + c.health + ")"
		}
		return "Up"
	case container.StateExited:
		return fmt.Sprintf("Exited (%d)", c.exitCode)
	}
	return "Created"
}

// inspect renders a container as ContainerInspect does. Call with f.mu held.
func (f *Fake) inspect(c *fakeContainer) container.InspectResponse {
	hc := c.hostConfig
	state := &container.State{
		Status:   c.state,
		Running:  c.state == container.StateRunning,
		Pid:      c.pid,
		ExitCode: c.exitCode,
	}
	if !c.started.IsZero() {
		state.StartedAt = c.started.UTC().Format(time.RFC3339Nano)
	}
	if !c.finished.IsZero() {
		state.FinishedAt = c.finished.UTC().Format(time.RFC3339Nano)
	}
	if c.health != "" {
		state.Health = &container.Health{Status: c.health}
	}
	cfg := cloneConfig(c.config)
	var mounts []container.MountPoint
	for _, v := range containerVolumes(c.hostConfig) {
		mounts = append(mounts, container.MountPoint{Type: mount.TypeVolume, Name: v, Driver: "local"})
	}
	ns := &container.NetworkSettings{Networks: f.endpointsByName(c)}
	ns.Ports = maps.Clone(c.published)
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID:         c.id,
			Created:    c.created.UTC().Format(time.RFC3339Nano),
			Path:       firstOf(cfg.Entrypoint, cfg.Cmd),
			State:      state,
			Image:      c.imageID,
			Name:       "/" + c.name,
			Driver:     "overlay2",
			Platform:   "linux",
			HostConfig: &hc,
		},
		Mounts:          mounts,
		Config:          &cfg,
		NetworkSettings: ns,
	}
}

// endpointsByName copies a container's endpoints keyed by network name.
// Call with f.mu held.
func (f *Fake) endpointsByName(c *fakeContainer) map[string]*network.EndpointSettings {
	out := map[string]*network.EndpointSettings{}
	for nid, e := range c.endpoints {
		n := f.networks[nid]
		if n == nil {
			continue
		}
		cp := *e
		cp.Aliases = slices.Clone(e.Aliases)
		cp.DNSNames = slices.Clone(e.DNSNames)
		out[n.name] = &cp
	}
	return out
}

// networkInspect renders a network with its endpoints. Call with f.mu held.
func (f *Fake) networkInspect(n *fakeNetwork) network.Inspect {
	ni := network.Inspect{
		Name:       n.name,
		ID:         n.id,
		Created:    n.created,
		Scope:      "local",
		Driver:     n.opts.Driver,
		EnableIPv4: true,
		Internal:   n.opts.Internal,
		Attachable: n.opts.Attachable,
		Labels:     maps.Clone(n.opts.Labels),
		Options:    maps.Clone(n.opts.Options),
		Containers: map[string]network.EndpointResource{},
	}
	if n.opts.Driver == "bridge" {
		ni.IPAM = network.IPAM{Driver: "default", Config: []network.IPAMConfig{{
			Subnet:  fmt.Sprintf("172.%d.0.0/16", 17+n.subnet),
			Gateway: fmt.Sprintf("172.%d.0.1", 17+n.subnet),
		}}}
	}
	for _, c := range f.containers {
		e := c.endpoints[n.id]
		if e == nil || e.IPAddress == "" {
			continue
		}
		ni.Containers[c.id] = network.EndpointResource{
			Name:        c.name,
			EndpointID:  e.EndpointID,
			MacAddress:  e.MacAddress,
			IPv4Address: e.IPAddress + "/16",
		}
	}
	return ni
}

// matchNetwork applies the "network" filter (name or ID). Call with f.mu
// held.
func (f *Fake) matchNetwork(args filters.Args, c *fakeContainer) bool {
	if !args.Contains("network") {
		return true
	}
	for nid := range c.endpoints {
		if n := f.networks[nid]; n != nil && (args.ExactMatch("network", n.name) || args.ExactMatch("network", n.id)) {
			return true
		}
	}
	return false
}

// matchIDPrefix applies an ID filter, which matches ID prefixes.
func matchIDPrefix(args filters.Args, key, id string) bool {
	values := args.Get(key)
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		if strings.HasPrefix(id, v) {
			return true
		}
	}
	return false
}

// matchReference applies the "reference" filter: a glob on repository:tag
// or on the repository alone.
func matchReference(args filters.Args, tags []string) bool {
	patterns := args.Get("reference")
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		for _, t := range tags {
			repo := t
			if i := strings.LastIndexByte(t, ':'); i > strings.LastIndexByte(t, '/') {
				repo = t[:i]
			}
			if ok, _ := path.Match(p, t); ok {
				return true
			}
			if ok, _ := path.Match(p, repo); ok {
				return true
			}
		}
	}
	return false
}

// normalizeRef adds the implicit ":latest" tag to a reference without tag
// or digest.
func normalizeRef(ref string) string {
	if strings.HasPrefix(ref, "sha256:") || strings.Contains(ref, "@") {
		return ref
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref
	}
	return ref + ":latest"
}

// describeFilters renders filters for the call log: sorted key=value pairs.
func describeFilters(args filters.Args) string {
	var parts []string
	for _, k := range args.Keys() {
		for _, v := range args.Get(k) {
			parts = append(parts, k+"="+v)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// signalNumber parses a signal name or number; ends reports whether the
// fake's processes die of it.
func signalNumber(sig string) (num int, ends bool) {
	s := strings.TrimPrefix(strings.ToUpper(sig), "SIG")
	if n, err := strconv.Atoi(s); err == nil {
		return n, n == 1 || n == 2 || n == 3 || n == 9 || n == 15
	}
	switch s {
	case "", "KILL":
		return 9, true
	case "TERM":
		return 15, true
	case "INT":
		return 2, true
	case "HUP":
		return 1, true
	case "QUIT":
		return 3, true
	case "USR1":
		return 10, false
	case "USR2":
		return 12, false
	}
	return 0, false
}

// cloneConfig copies the mutable parts of a container config.
func cloneConfig(c container.Config) container.Config {
	c.Labels = maps.Clone(c.Labels)
	c.Env = slices.Clone(c.Env)
	c.Cmd = slices.Clone(c.Cmd)
	c.Entrypoint = slices.Clone(c.Entrypoint)
	c.ExposedPorts = maps.Clone(c.ExposedPorts)
	c.Volumes = maps.Clone(c.Volumes)
	if c.Healthcheck != nil {
		hc := *c.Healthcheck
		hc.Test = slices.Clone(hc.Test)
		c.Healthcheck = &hc
	}
	return c
}

// firstOf returns the first element of the first non-empty list.
func firstOf(lists ...[]string) string {
	for _, l := range lists {
		if len(l) > 0 {
			return l[0]
		}
	}
	return ""
}

// jsonLine encodes one message of a fake JSON stream.
func jsonLine(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only static maps of strings are encoded
	}
	return string(b)
}
