package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchestro/orchestro/cellspec"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/flow"
	"github.com/orchestro/orchestro/runtime/journal"
	"github.com/orchestro/orchestro/runtime/proxy"
)

// flowPlane runs a cell's flows. It sits in front of the proxy's routes
// (proxy.Interceptor): a request whose method and path match a flow's
// route starts an execution, whose calls go back through the proxy
// (proxy.Call), so every step is balanced, health-checked, recorded and
// metered like any request to its service.
type flowPlane struct {
	cell    string
	px      *proxy.Proxy
	clock   flow.Clock
	metrics *metrics
	traffic *trafficStats
	log     *accessLogger
	// emit publishes an event; nil drops them.
	emit func(api.Event)

	// journal makes executions durable; nil runs them in memory only.
	journal *journal.Store

	set atomic.Pointer[flowSet]
	// peers holds the egress proxy of each cell in uses, set before the
	// gateway serves.
	peers atomic.Pointer[map[string]*proxy.Proxy]
	// counts holds each flow's counters by name; kept across spec
	// updates, so a replaced flow's limit counts the executions of the
	// old one still running.
	mu     sync.Mutex
	counts map[string]*flowCounts
	// running holds the asynchronous executions this gateway runs, each
	// with a channel closed when it ends.
	running map[string]chan struct{}
	// async counts them, for a stop that waits.
	async sync.WaitGroup
	// ctx is the gateway's context, set before it serves.
	ctx context.Context
}

// flowCounts are one flow's live counters.
type flowCounts struct {
	inflight    atomic.Int64
	executions  atomic.Uint64
	failed      atomic.Uint64
	compensated atomic.Uint64
}

// flowSet is the compiled flows of one spec.
type flowSet struct {
	routes []*flowRoute
}

// flowRoute is one flow, ready to serve.
type flowRoute struct {
	spec   *cellspec.Flow
	runner *flow.Runner
	counts *flowCounts
}

func newFlowPlane(cell string, px *proxy.Proxy, m *metrics, traffic *trafficStats, log *accessLogger) *flowPlane {
	return &flowPlane{cell: cell, px: px, clock: flow.RealClock{}, metrics: m, traffic: traffic, log: log, counts: map[string]*flowCounts{}, running: map[string]chan struct{}{}}
}

// configure installs the flows of a cell (a new spec); executions under
// way finish on the flow they started with.
func (fp *flowPlane) configure(cell *cellspec.Cell) {
	set := &flowSet{}
	caller := &flowCaller{fp: fp}
	fp.mu.Lock()
	for _, f := range cell.Flows {
		n := fp.counts[f.Name]
		if n == nil {
			n = &flowCounts{}
			fp.counts[f.Name] = n
		}
		set.routes = append(set.routes, &flowRoute{
			spec:   f,
			runner: flow.New(cell.Name, f, caller, fp.clock, fp.runnerOptions()...),
			counts: n,
		})
	}
	fp.mu.Unlock()
	fp.set.Store(set)
	if len(set.routes) == 0 {
		fp.px.SetInterceptor(nil)
		return
	}
	fp.px.SetInterceptor(fp)
}

// runnerOptions are the options of every flow's Runner.
func (fp *flowPlane) runnerOptions() []flow.Option {
	if fp.journal == nil {
		return nil
	}
	return []flow.Option{flow.WithJournal(fp.journal), flow.WithWaiting(fp.metrics.asyncWaiting)}
}

// setPeers sets the egress proxies step calls to other cells go through.
func (fp *flowPlane) setPeers(peers map[string]*proxy.Proxy) { fp.peers.Store(&peers) }

// Intercepts implements proxy.Interceptor. It allocates nothing: it runs
// for every request while the cell has flows.
func (fp *flowPlane) Intercepts(method, path string) bool {
	if strings.HasPrefix(path, executionsPath) {
		return true
	}
	set := fp.set.Load()
	if set == nil {
		return false
	}
	for _, r := range set.routes {
		if r.spec.Route.Matches(method, path) {
			return true
		}
	}
	return false
}

// route returns the flow of a request.
func (fp *flowPlane) route(method, path string) *flowRoute {
	if set := fp.set.Load(); set != nil {
		for _, r := range set.routes {
			if r.spec.Route.Matches(method, path) {
				return r
			}
		}
	}
	return nil
}

// ServeHTTP runs one execution of the request's flow and answers with its
// result.
func (fp *flowPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := r.Header.Get("X-Request-Id")
	if reqID == "" {
		reqID = fp.px.NewRequestID()
	}
	w.Header().Set("X-Request-Id", reqID)
	if id, ok := strings.CutPrefix(r.URL.Path, executionsPath); ok {
		fp.serveExecution(w, r, id)
		return
	}
	fr := fp.route(r.Method, r.URL.Path)
	if fr == nil {
		// The spec changed between Intercepts and now.
		writeProblem(w, http.StatusNotFound, "urn:orchestro:problem:no-route", "No route", fmt.Sprintf("no flow for %s %s in cell %q", r.Method, r.URL.Path, fp.cell), "")
		return
	}
	f := fr.spec
	async := f.Mode == cellspec.FlowAsync || prefersAsync(r.Header)
	if async && fp.journal == nil {
		if f.Mode == cellspec.FlowAsync {
			writeProblem(w, http.StatusServiceUnavailable, "urn:orchestro:problem:no-journal", "No journal",
				fmt.Sprintf("flow %q runs asynchronously, which needs the journal of cell %q, and this gateway has none", f.Name, fp.cell), f.Name)
			return
		}
		async = false // a preference: answered synchronously
	}
	if n := fr.counts.inflight.Add(1); n > int64(f.MaxInflight) {
		fr.counts.inflight.Add(-1)
		w.Header().Set("Retry-After", "1")
		writeProblem(w, http.StatusServiceUnavailable, "urn:orchestro:problem:flow-busy", "Too many executions",
			fmt.Sprintf("flow %q already runs %d executions, its max_inflight", f.Name, f.MaxInflight), f.Name)
		fp.account(fr, &flow.Result{Outcome: outcomeRejected, Status: http.StatusServiceUnavailable, Started: start, Duration: time.Since(start)}, r, "", reqID)
		return
	}
	release := func() { fr.counts.inflight.Add(-1) }

	body, err := readBody(w, r, f.MaxBody)
	if err != nil {
		status := http.StatusBadRequest
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		writeProblem(w, status, "urn:orchestro:problem:bad-request", http.StatusText(status), err.Error(), f.Name)
		release()
		return
	}
	captures, _ := f.Route.Match(r.Method, r.URL.Path)
	in := &flow.Input{
		ID:          flow.NewExecutionID(),
		Method:      r.Method,
		Path:        r.URL.Path,
		Query:       r.URL.Query(),
		Header:      r.Header,
		Body:        body,
		Captures:    captures,
		RequestID:   reqID,
		Traceparent: r.Header.Get("Traceparent"),
	}
	if async {
		fp.startAsync(w, r, fr, in, release)
		return
	}
	defer release()
	res := fr.runner.Execute(r.Context(), in)
	h := w.Header()
	for k, v := range res.Header {
		h[k] = v
	}
	h.Set("Content-Length", strconv.Itoa(len(res.Body)))
	w.WriteHeader(res.Status)
	_, _ = w.Write(res.Body)
	fp.account(fr, res, r, in.ID, reqID)
}

// prefersAsync reports whether a request asks to be answered at once
// (RFC 7240: Prefer: respond-async).
func prefersAsync(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for _, pref := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(pref), ";")
			name, _, _ = strings.Cut(name, "=")
			if strings.EqualFold(strings.TrimSpace(name), "respond-async") {
				return true
			}
		}
	}
	return false
}

// startAsync starts an asynchronous execution and answers 202 Accepted
// with where to read it, once the journal holds its start. The execution
// runs on the gateway's context, not the request's.
func (fp *flowPlane) startAsync(w http.ResponseWriter, r *http.Request, fr *flowRoute, in *flow.Input, release func()) {
	// The request's maps are the server's to reuse once it is answered.
	in.Header, in.Query = r.Header.Clone(), maps.Clone(in.Query)
	run, err := fr.runner.Start(in)
	if err != nil {
		release()
		writeProblem(w, http.StatusServiceUnavailable, flow.ProblemJournal, "Execution not accepted", err.Error(), fr.spec.Name)
		return
	}
	fp.runDetached(fr, in, run, release)
	loc := executionsPath + in.ID
	h := w.Header()
	h.Set("Location", loc)
	h.Set(flow.HeaderFlowID, in.ID)
	if prefersAsync(r.Header) {
		h.Set("Preference-Applied", "respond-async")
	}
	body, _ := json.Marshal(map[string]string{"id": in.ID, "flow": fr.spec.Name, "state": "running", "location": loc})
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(body)
}

// track registers an asynchronous execution running in this gateway, for
// readers that wait for its end.
func (fp *flowPlane) track(id string) chan struct{} {
	done := make(chan struct{})
	fp.mu.Lock()
	fp.running[id] = done
	fp.mu.Unlock()
	return done
}

func (fp *flowPlane) untrack(id string, done chan struct{}) {
	fp.mu.Lock()
	delete(fp.running, id)
	fp.mu.Unlock()
	close(done)
}

// asyncRunning reports how many asynchronous executions this gateway runs.
func (fp *flowPlane) asyncRunning() int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return len(fp.running)
}

// runCtx is the context asynchronous executions run on: the gateway's,
// less its cancellation. A gateway that stops leaves them to the journal:
// the next one resumes them, rather than this one compensating them.
func (fp *flowPlane) runCtx() context.Context {
	if fp.ctx == nil {
		return context.Background()
	}
	return context.WithoutCancel(fp.ctx)
}

// maxExecutionWait bounds ?wait= on an execution.
const maxExecutionWait = time.Minute

// executionsPath is where a gateway serves its executions on its data
// port: GET executionsPath + id.
const executionsPath = "/_orchestro/executions/"

// serveExecution answers GET /_orchestro/executions/<id> with the
// execution's record in the journal: its state, its step timeline and,
// once it ended, the flow's answer.
func (fp *flowPlane) serveExecution(w http.ResponseWriter, r *http.Request, id string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeProblem(w, http.StatusMethodNotAllowed, "urn:orchestro:problem:method-not-allowed", "Method not allowed", r.Method+" is not served on "+executionsPath, "")
		return
	}
	if fp.journal == nil {
		writeProblem(w, http.StatusNotFound, "urn:orchestro:problem:no-journal", "No journal",
			fmt.Sprintf("the gateway of cell %q keeps no journal of executions", fp.cell), "")
		return
	}
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			writeProblem(w, http.StatusBadRequest, "urn:orchestro:problem:bad-request", "Bad request",
				fmt.Sprintf("wait=%q is not a duration such as 30s", v), "")
			return
		}
		fp.waitFor(r.Context(), id, min(d, maxExecutionWait))
	}
	// The journal commits records no one waits for within a few
	// milliseconds; an execution that just ended is read with its end.
	_ = fp.journal.Sync()
	x, err := fp.journal.Get(id)
	switch {
	case errors.Is(err, journal.ErrNotFound):
		writeProblem(w, http.StatusNotFound, "urn:orchestro:problem:no-execution", "No such execution",
			fmt.Sprintf("the journal of cell %q holds no execution %q", fp.cell, id), "")
		return
	case err != nil:
		writeProblem(w, http.StatusInternalServerError, "urn:orchestro:problem:journal", "Journal unreadable", err.Error(), "")
		return
	}
	body, err := json.Marshal(x)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "urn:orchestro:problem:journal", "Journal unreadable", err.Error(), "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// waitFor waits until the asynchronous execution id, when it runs in this
// gateway, ends, or d passes, or ctx ends.
func (fp *flowPlane) waitFor(ctx context.Context, id string, d time.Duration) {
	fp.mu.Lock()
	done := fp.running[id]
	fp.mu.Unlock()
	if done == nil || d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// recover finishes what the journal holds unfinished, after a restart: a
// synchronous execution (its client is gone) is compensated, an
// asynchronous one resumed. Each recovery is an event. It waits first,
// up to ready's bound, for the cell's services to have replicas, so that
// the recovery's calls find someone to answer them.
func (fp *flowPlane) recover(ctx context.Context, ready func(context.Context)) {
	if fp.journal == nil {
		return
	}
	pending, err := fp.journal.Unfinished()
	if err != nil {
		fp.event(api.Event{Type: api.EventError, Message: "journal: list unfinished executions: " + err.Error()})
		return
	}
	if len(pending) == 0 {
		return
	}
	ready(ctx)
	var wg sync.WaitGroup
	for _, j := range pending {
		fr := fp.byName(j.Begin.Flow)
		if fr == nil {
			fp.event(api.Event{Type: api.EventError, Flow: j.Begin.Flow,
				Message: fmt.Sprintf("execution %s cannot be recovered: the cell no longer has flow %q", j.Begin.ID, j.Begin.Flow)})
			continue
		}
		wg.Go(func() {
			runCtx := ctx
			if j.Begin.Async {
				// Resumed on the gateway's context less its
				// cancellation, as a new one would run.
				runCtx = fp.runCtx()
				done := fp.track(j.Begin.ID)
				defer fp.untrack(j.Begin.ID, done)
			}
			res := fr.runner.Recover(runCtx, j, j.Begin.Async)
			fp.metrics.recovered(fr.spec.Name)
			fp.account(fr, res, nil, j.Begin.ID, j.Begin.Input.RequestID)
			fp.event(api.Event{Type: api.EventRecovered, Flow: fr.spec.Name, Message: recoveryMessage(j, res)})
		})
	}
	wg.Wait()
}

// byName returns the flow of that name in the spec in force.
func (fp *flowPlane) byName(name string) *flowRoute {
	if set := fp.set.Load(); set != nil {
		for _, r := range set.routes {
			if r.spec.Name == name {
				return r
			}
		}
	}
	return nil
}

// recoveryMessage describes a recovered execution in one line.
func recoveryMessage(j *flow.Journaled, res *flow.Result) string {
	what := "compensated"
	if j.Begin.Async {
		what = "resumed"
	}
	msg := fmt.Sprintf("execution %s, started %s, %s after a restart: %s, answer %d", j.Begin.ID,
		j.Begin.Started.UTC().Format(time.RFC3339), what, res.Outcome, res.Status)
	if len(res.Compensations) > 0 {
		parts := make([]string, len(res.Compensations))
		for i, c := range res.Compensations {
			parts[i] = c.Step + " " + c.Outcome
		}
		msg += "; compensations: " + strings.Join(parts, ", ")
	}
	return msg
}

// event publishes an event of the cell.
func (fp *flowPlane) event(e api.Event) {
	if fp.emit == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Cell = fp.cell
	fp.emit(e)
}

// outcomeRejected labels executions refused for max_inflight.
const outcomeRejected flow.Outcome = "rejected"

// readBody reads a request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("read the request body: %w", err)
	}
	return body, nil
}

// writeProblem writes an RFC 9457 problem answer of the gateway's own.
func writeProblem(w http.ResponseWriter, status int, typ, title, detail, flowName string) {
	body, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Flow   string `json:"flow,omitempty"`
	}{typ, title, status, detail, flowName})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// account records a finished execution: its access-log line, metrics,
// traffic figures and, when it failed, an event.
func (fp *flowPlane) account(fr *flowRoute, res *flow.Result, r *http.Request, id, reqID string) {
	name := fr.spec.Name
	fr.counts.executions.Add(1)
	if res.Outcome != flow.Succeeded {
		fr.counts.failed.Add(1)
	}
	if len(res.Compensations) > 0 {
		fr.counts.compensated.Add(1)
	}
	fp.metrics.observeFlow(name, res)
	fp.traffic.add(flowKey(name), res.Started, res.Outcome != flow.Succeeded, res.Duration)
	fp.log.logFlow(name, id, reqID, r, res)
	if fp.emit == nil || res.Outcome == flow.Succeeded || res.Outcome == outcomeRejected || res.Recovered {
		return
	}
	e := api.Event{Time: time.Now(), Cell: fp.cell, Flow: name, Type: api.EventFlowFailed}
	switch res.Outcome {
	case flow.Compensated, flow.Partial:
		e.Type = api.EventCompensated
	}
	e.Message = flowEventMessage(id, res)
	fp.emit(e)
}

// status reports every flow of the spec in force.
func (fp *flowPlane) status(now time.Time) []api.FlowStatus {
	set := fp.set.Load()
	if set == nil {
		return nil
	}
	out := make([]api.FlowStatus, 0, len(set.routes))
	for _, r := range set.routes {
		tr := fp.traffic.read(flowKey(r.spec.Name), now)
		st := api.FlowStatus{
			Flow:        r.spec.Name,
			Route:       r.spec.Route.String(),
			InFlight:    r.counts.inflight.Load(),
			Executions:  r.counts.executions.Load(),
			Failed:      r.counts.failed.Load(),
			Compensated: r.counts.compensated.Load(),
			Rate:        tr.RPS,
			P50Ms:       float64(tr.P50) / float64(time.Millisecond),
			P99Ms:       float64(tr.P99) / float64(time.Millisecond),
		}
		if tr.Requests > 0 {
			st.SuccessRate = 1 - tr.ErrorRate
		}
		out = append(out, st)
	}
	return out
}

// flowKey is a flow's key in the traffic figures, apart from services.
func flowKey(name string) string { return "flow:" + name }

// flowEventMessage describes a failed execution in one line: which step
// failed and how, and what became of each compensation.
func flowEventMessage(id string, res *flow.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "execution %s answered %d", id, res.Status)
	switch {
	case res.TimedOut:
		b.WriteString(": deadline passed")
		if res.FailedStep != "" {
			fmt.Fprintf(&b, " in step %s", res.FailedStep)
		}
	case res.FailedStep != "":
		fmt.Fprintf(&b, ": step %s failed", res.FailedStep)
		for _, s := range res.Steps {
			if s.ID == res.FailedStep {
				switch {
				case s.Error != "":
					fmt.Fprintf(&b, " (%s)", s.Error)
				case s.Status != 0:
					fmt.Fprintf(&b, " (status %d)", s.Status)
				}
			}
		}
	}
	if len(res.Compensations) > 0 {
		parts := make([]string, len(res.Compensations))
		for i, c := range res.Compensations {
			parts[i] = c.Step + " " + c.Outcome
		}
		fmt.Fprintf(&b, "; compensations: %s", strings.Join(parts, ", "))
	}
	return b.String()
}

// flowCaller sends a flow's calls through the gateway's proxies: to a
// service of the cell through the ingress proxy, to another cell through
// its egress proxy.
type flowCaller struct{ fp *flowPlane }

func (c *flowCaller) Call(ctx context.Context, req *flow.Request) (*flow.Response, error) {
	px, service := c.fp.px, req.Target
	if peer, ok := strings.CutPrefix(req.Target, cellspec.PeerPrefix); ok {
		var fwd *proxy.Proxy
		if m := c.fp.peers.Load(); m != nil {
			fwd = (*m)[peer]
		}
		if fwd == nil {
			return nil, fmt.Errorf("%w: cell %q has no gateway this one can reach", flow.ErrConnect, peer)
		}
		px, service = fwd, peer
	}
	step := req.Step
	if req.Compensation {
		step += "/compensate"
	}
	resp, err := px.Call(ctx, &proxy.CallRequest{
		Service: service,
		Method:  req.Method,
		Path:    req.Path,
		Header:  req.Header,
		Body:    req.Body,
		MaxBody: req.MaxBody,
		Route:   flowKey(req.Flow),
		Flow:    req.Flow,
		Step:    step,
	})
	switch {
	case errors.Is(err, proxy.ErrNotSent):
		return nil, fmt.Errorf("%w: %v", flow.ErrConnect, err)
	case errors.Is(err, proxy.ErrBodyTooLarge):
		return nil, fmt.Errorf("%w: %v", flow.ErrBodyTooLarge, err)
	case err != nil:
		return nil, err
	}
	return &flow.Response{Status: resp.Status, Header: resp.Header, Body: resp.Body}, nil
}
