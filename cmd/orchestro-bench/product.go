package main

// The product mode: `orchestro-bench product` measures orchestro as users
// run it, side by side with what they would run instead, in one run on
// this machine's Docker engine:
//
//   - the CLI: `up -d --wait` cold (images present, containers absent),
//     `up -d --wait` again (nothing to do), `ps` and `down`, timed for the
//     orchestro binary and for docker compose on the same seven replicas
//     (testdata/bench: orchestro.yaml and compose.yaml), in rounds that
//     alternate who goes first (product_cli.go), and in each round the
//     engine floor of each project: its objects created and removed
//     straight through the Engine API (product_floor.go);
//   - the data path: wrk through the web cell's gateway container at its
//     published port (through docker-proxy, on an engine with the
//     userland proxy) and at its own address on the cell network, and
//     through nginx on the host, in front of the same three replica
//     containers, in rounds of equal length that rotate who goes first,
//     with the CPU of the gateway, its containerd-shim, its docker-proxy,
//     dockerd and nginx's processes read from /proc (product_proxy.go);
//   - with -parts variants, the engine floor of orchestro's objects with
//     parts of its topology left out (product_variants.go).
//
// Everything it creates carries the project names orchestro-bench and
// orchestro-bench-compose (a floor's objects, the label floorLabel), and
// is removed when it ends, also on Ctrl-C or an error (cleanup in
// runProduct).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"

	"github.com/orchestro/orchestro/runtime/engine"
)

// cmdProduct is the subcommand of the product mode.
const cmdProduct = "product"

// Names the product mode uses. The bench project's cell files name the
// cells, services and ports below; the images orchestro builds for the
// project are <productProject>-<cell>-<service>:<hash>, and compose.yaml
// runs them under the tag productComposeTag.
const (
	productProject        = "orchestro-bench"
	productComposeProject = "orchestro-bench-compose"
	productComposeFile    = "compose.yaml"
	productComposeTag     = "compose"
	// productProxyCellFile is the cell the data-path comparison starts on
	// its own: one service of productProxyReplicas replicas on route /.
	productProxyCellFile = "cells/web.yaml"
	productProxyCell     = "web"
	productProxyReplicas = 3
	// productReplicaPort is the port services/hello listens on in its
	// container.
	productReplicaPort = 8080
	// productReplicas is how many replicas the whole project runs.
	productReplicas = 7
)

// productService is one service of the bench project and the environment
// variable its cell's gateway port comes from.
type productService struct {
	cell, service, portEnv string
}

// productServices are the bench project's services, as its cell files and
// compose.yaml declare them.
var productServices = []productService{
	{"web", "frontend", "BENCH_WEB_PORT"},
	{"shop", "catalog", "BENCH_SHOP_PORT"},
	{"users", "accounts", "BENCH_USERS_PORT"},
}

// composeImage is the tag compose.yaml runs for a service.
func composeImage(s productService) string {
	return productProject + "-" + s.cell + "-" + s.service + ":" + productComposeTag
}

// Parts of a product run, for -parts.
const (
	partCLI      = "cli"
	partProxy    = "proxy"
	partVariants = "variants"
)

// productOptions are the command line of the product mode.
type productOptions struct {
	orchestro string
	compose   string
	dir       string
	rounds    int
	duration  time.Duration
	warmup    time.Duration
	conns     int
	threads   int
	parts     []string
	json      bool
	// accessLog is the web cell's gateway.access_log: the gateway's
	// access log as the product writes it, or the old way, to stdout.
	accessLog string
}

func (o productOptions) has(part string) bool { return slices.Contains(o.parts, part) }

func parseProductFlags(args []string, stderr io.Writer) (productOptions, error) {
	var o productOptions
	fs := flag.NewFlagSet("orchestro-bench "+cmdProduct, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: orchestro-bench product [flags]

Measures orchestro as users run it, on this machine's Docker engine, side by
side with docker compose and nginx:

  cli       up -d --wait (cold, then with nothing to do), ps and down, timed
            for orchestro and for docker compose on the same seven replicas
            (testdata/bench), rounds alternating who goes first; and the
            engine floor: the objects each project has once up, created and
            removed straight through the Engine API, all at once
  proxy     wrk through the gateway container (at its published port,
            through docker-proxy, and at its address on the cell network)
            and through nginx on the host, in front of the same three
            replica containers, rounds rotating who goes first, with the CPU
            of the gateway, its containerd-shim and docker-proxy, dockerd
            and nginx
  variants  (not by default) the engine floor of orchestro's objects with
            parts of its topology left out (the keeper, the published admin
            ports, a network per cell), beside compose's objects

Run it from the repository root. It needs a static orchestro binary
(CGO_ENABLED=0 go build -o /tmp/orchestro ./cmd/orchestro), docker compose
v2 or later, wrk and nginx (%s). It removes everything it
creates (projects %s and %s), also on Ctrl-C.

Flags:
`, installHint, productProject, productComposeProject)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.orchestro, "orchestro", "bin/orchestro", "the orchestro binary to measure (static: CGO_ENABLED=0)")
	fs.StringVar(&o.compose, "compose", "docker-compose", "the docker compose binary to compare with (v2 or later: it needs up --wait)")
	fs.StringVar(&o.dir, "dir", filepath.Join("testdata", "bench"), "the bench project: orchestro.yaml, "+productComposeFile+" and the cells")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of each part")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each wrk measurement, in whole seconds")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "untimed wrk load on each proxy before the first round (0 skips it)")
	fs.IntVar(&o.conns, "conns", 64, "wrk connections")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads")
	parts := fs.String("parts", partCLI+","+partProxy, "what to measure, comma-separated: "+partCLI+", "+partProxy+", "+partVariants)
	fs.BoolVar(&o.json, "json", false, "print the report as JSON instead of tables")
	fs.StringVar(&o.accessLog, "access-log", "file", "gateway.access_log of the cell the proxy part loads: file (the default), stdout (through the engine's log pipe) or off")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.rounds < 1 {
		return o, fmt.Errorf("-rounds %d: want at least 1", o.rounds)
	}
	if o.duration < time.Second || o.duration%time.Second != 0 {
		return o, fmt.Errorf("-duration %s: want whole seconds, at least 1s (wrk's unit)", o.duration)
	}
	if o.warmup < 0 || o.warmup%time.Second != 0 {
		return o, fmt.Errorf("-warmup %s: want whole seconds", o.warmup)
	}
	if o.conns < 1 || o.threads < 1 {
		return o, fmt.Errorf("-conns %d -threads %d: want at least 1 of each", o.conns, o.threads)
	}
	if !slices.Contains([]string{"file", "stdout", "off"}, o.accessLog) {
		return o, fmt.Errorf("-access-log %q: want file, stdout or off", o.accessLog)
	}
	for _, p := range strings.Split(*parts, ",") {
		p = strings.TrimSpace(p)
		if p != partCLI && p != partProxy && p != partVariants {
			return o, fmt.Errorf("-parts: unknown part %q (known: %s, %s, %s)", p, partCLI, partProxy, partVariants)
		}
		if !o.has(p) {
			o.parts = append(o.parts, p)
		}
	}
	for _, p := range []*string{&o.orchestro, &o.compose} {
		bin, err := exec.LookPath(*p)
		if err != nil {
			return o, fmt.Errorf("%s: %w", *p, err)
		}
		if *p, err = filepath.Abs(bin); err != nil {
			return o, err
		}
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return o, err
	}
	o.dir = dir
	for _, f := range []string{"orchestro.yaml", productComposeFile, productProxyCellFile} {
		if _, err := os.Stat(filepath.Join(o.dir, f)); err != nil {
			return o, fmt.Errorf("-dir %s: %w (run from the repository root, or point -dir at testdata/bench)", o.dir, err)
		}
	}
	return o, nil
}

// productMain runs the product mode and returns the exit code, as main
// does for the gateway bench.
func productMain(args []string) int {
	o, err := parseProductFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "orchestro-bench product: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = runProduct(ctx, o, os.Stdout, os.Stderr)
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "orchestro-bench product: interrupted; what it created was removed")
		return 130
	case err != nil:
		fmt.Fprintf(os.Stderr, "orchestro-bench product: %v\n", err)
		return 1
	}
	return 0
}

// productEngine is the part of the Docker API the product mode uses: the
// SDK client behind engine.NewDockerEngine, so it talks to the engine
// orchestro talks to (DOCKER_HOST, the Docker context).
type productEngine interface {
	ServerVersion(ctx context.Context) (types.Version, error)
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	ImageTag(ctx context.Context, source, target string) error
	Close() error
	floorEngine
}

// productEnv is a run's machinery: the engine, the two CLIs, the tools.
type productEnv struct {
	o         productOptions
	eng       productEngine
	orchestro *cliTool
	compose   *cliTool
	tools     tools
	progress  func(format string, args ...any)
}

// cleanupTimeout bounds the removal of what a run created, which runs on
// a context of its own so that Ctrl-C does not cut it short.
const cleanupTimeout = 3 * time.Minute

func runProduct(ctx context.Context, o productOptions, stdout, stderr io.Writer) (err error) {
	tl, err := findTools([]string{targetNginx})
	if err != nil {
		return err
	}
	eng, err := engine.NewDockerEngine(ctx)
	if err != nil {
		return err
	}
	pe, ok := eng.(productEngine)
	if !ok {
		_ = eng.Close()
		return fmt.Errorf("the Docker engine client cannot tag images")
	}
	defer pe.Close()

	env := &productEnv{
		o:        o,
		eng:      pe,
		tools:    tl,
		progress: func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) },
	}
	ports, err := freePorts(len(productServices))
	if err != nil {
		return err
	}
	var portEnv []string
	for i, s := range productServices {
		portEnv = append(portEnv, fmt.Sprintf("%s=%d", s.portEnv, ports[i]))
	}
	env.orchestro = &cliTool{
		name: "orchestro", bin: o.orchestro,
		base: []string{"-p", productProject, "-f", o.dir},
		env:  append(portEnv, "NO_COLOR=1", "BENCH_ACCESS_LOG="+o.accessLog),
	}
	env.compose = &cliTool{
		name: "compose", bin: o.compose,
		base: []string{"-p", productComposeProject, "-f", filepath.Join(o.dir, productComposeFile)},
		env:  []string{"NO_COLOR=1"},
	}

	rep := productReport{Machine: collectProductInfo(ctx, env)}
	if err := checkComposeVersion(rep.Machine.Compose); err != nil {
		return fmt.Errorf("%s: %w", o.compose, err)
	}

	// Whatever happens from here on, remove what the run created: the
	// compose project, then the orchestro project with the images built
	// for it (their compose tags go with them).
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		env.progress("cleaning up: %s down, %s down --rmi", productComposeProject, productProject)
		if cerr := env.cleanup(cctx, true); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
	}()
	// A run killed outright leaves its projects behind: remove them first.
	if err := env.cleanup(ctx, false); err != nil {
		return fmt.Errorf("remove what an earlier run left: %w", err)
	}
	if err := env.prepare(ctx); err != nil {
		return err
	}

	if o.has(partCLI) {
		cr, err := env.runCLI(ctx)
		if err != nil {
			return err
		}
		rep.CLI = cr
	}
	if o.has(partProxy) {
		pr, err := env.runProxy(ctx, ports[0])
		if err != nil {
			return err
		}
		rep.Proxy = pr
	}
	if o.has(partVariants) {
		vr, err := env.runVariants(ctx)
		if err != nil {
			return err
		}
		rep.Variants = vr
	}
	rep.Machine.LoadEnd = loadAverage()
	rep.summarize()
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.write(stdout)
	return nil
}

// prepare builds the images (an untimed orchestro up), tags them for
// compose, and runs each project up and down once, so no timed round pays
// for a first start (images loaded from disk, the go build cache, the
// networks' first creation).
func (e *productEnv) prepare(ctx context.Context) error {
	e.progress("preparing: %s up -d --wait builds the images, untimed", productProject)
	if _, err := e.orchestro.run(ctx, "up", "-d", "--wait"); err != nil {
		return err
	}
	if err := e.tagForCompose(ctx); err != nil {
		return err
	}
	if _, err := e.orchestro.run(ctx, orchestroDown...); err != nil {
		return err
	}
	e.progress("preparing: %s up -d --wait and down once, untimed", productComposeProject)
	if _, err := e.compose.run(ctx, "up", "-d", "--wait"); err != nil {
		return err
	}
	_, err := e.compose.run(ctx, composeDown...)
	return err
}

// tagForCompose tags the image each running replica of the project runs
// with the name compose.yaml gives it.
func (e *productEnv) tagForCompose(ctx context.Context) error {
	for _, s := range productServices {
		cs, err := e.eng.ContainerList(ctx, container.ListOptions{Filters: orchestroFilter(
			engine.LabelRole+"="+engine.RoleReplica, engine.LabelCell+"="+s.cell, engine.LabelService+"="+s.service)})
		if err != nil {
			return fmt.Errorf("list replicas of %s/%s: %w", s.cell, s.service, err)
		}
		if len(cs) == 0 {
			return fmt.Errorf("tag images for compose: no replica of %s/%s is running", s.cell, s.service)
		}
		if err := e.eng.ImageTag(ctx, cs[0].ImageID, composeImage(s)); err != nil {
			return fmt.Errorf("tag image %s as %s: %w", cs[0].Image, composeImage(s), err)
		}
	}
	return nil
}

// cleanup removes both projects and what a floor left. With images, it
// also removes the images orchestro built for its project (down --rmi,
// which removes them by ID, so the compose tags go too); the gateway
// image stays, as other projects on the machine run it.
func (e *productEnv) cleanup(ctx context.Context, images bool) error {
	var errs []error
	if _, err := e.compose.run(ctx, composeDown...); err != nil {
		errs = append(errs, err)
	}
	args := slices.Clone(orchestroDown)
	if images {
		args = append(args, "--rmi")
	}
	if _, err := e.orchestro.run(ctx, args...); err != nil {
		errs = append(errs, err)
	}
	if err := removeFloors(ctx, e.eng); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// freePorts returns n distinct ports of 127.0.0.1 that nothing listens on
// right now, for the cells' gateways.
func freePorts(n int) ([]int, error) {
	var ports []int
	for len(ports) < n {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("find a free port: %q: %w", addr, err)
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// collectProductInfo names the machine and the versions of everything
// measured.
func collectProductInfo(ctx context.Context, e *productEnv) productMachine {
	m := productMachine{
		CPUs:      goruntime.NumCPU(),
		Go:        goruntime.Version(),
		Kernel:    kernelRelease(),
		LoadStart: loadAverage(),
		Orchestro: toolVersion(ctx, e.o.orchestro, "version"),
		Compose:   toolVersion(ctx, e.o.compose, "version"),
		Nginx:     toolVersion(ctx, e.tools.nginx, "-v"),
		Wrk:       toolVersion(ctx, e.tools.wrk, "-v"),
	}
	if v, err := e.eng.ServerVersion(ctx); err == nil {
		m.Docker = v.Version
	}
	return m
}

// checkComposeVersion refuses docker-compose 1.x, which has no up --wait.
func checkComposeVersion(version string) error {
	i := strings.Index(version, "version ")
	if i < 0 {
		return fmt.Errorf("cannot tell its version from %q", version)
	}
	v := strings.TrimPrefix(version[i+len("version "):], "v")
	if strings.HasPrefix(v, "1.") {
		return fmt.Errorf("%s: want docker compose v2 or later, which has up --wait", version)
	}
	return nil
}
