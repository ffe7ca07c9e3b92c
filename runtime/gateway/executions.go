package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"

	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/flow"
	"github.com/orchestro/orchestro/runtime/journal"
)

// The execution log of the admin API (api.PathExecutions): the flow plane
// reads its journal and answers in the api's wire types.

// defaultExecutionLimit bounds a listing that names no limit.
const defaultExecutionLimit = 100

// ListExecutions lists the cell's executions, newest first.
func (fp *flowPlane) ListExecutions(_ context.Context, f api.ExecutionFilter) ([]api.ExecutionSummary, error) {
	if fp.journal == nil {
		return nil, admin.NotFound(fmt.Errorf("the gateway of cell %q keeps no journal of executions", fp.cell))
	}
	if f.Limit <= 0 {
		f.Limit = defaultExecutionLimit
	}
	// What was just recorded, and no one waited for, is listed too.
	_ = fp.journal.Sync()
	list, err := fp.journal.List(journal.Filter{Flow: f.Flow, Failed: f.Failed, Since: f.Since, Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]api.ExecutionSummary, 0, len(list))
	if err := recode(list, &out); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Cell = fp.cell
	}
	return out, nil
}

// GetExecution returns one execution with its timeline.
func (fp *flowPlane) GetExecution(_ context.Context, id string) (*api.Execution, error) {
	x, err := fp.journalGet(id)
	if err != nil {
		return nil, err
	}
	var out api.Execution
	if err := recode(x, &out); err != nil {
		return nil, err
	}
	out.Cell = fp.cell
	return &out, nil
}

// RetryExecution starts a new execution of a finished one's flow with its
// input, asynchronously, and returns its id. An execution still running
// is refused.
func (fp *flowPlane) RetryExecution(_ context.Context, id string) (api.RetryResult, error) {
	x, err := fp.journalGet(id)
	if err != nil {
		return api.RetryResult{}, err
	}
	if x.State == journal.Running || x.State == journal.Compensating {
		return api.RetryResult{}, &admin.StatusError{Code: http.StatusConflict, Err: fmt.Errorf("execution %s is still %s", id, x.State)}
	}
	fr := fp.byName(x.Flow)
	if fr == nil {
		return api.RetryResult{}, admin.NotFound(fmt.Errorf("execution %s is of flow %q, which cell %q no longer has", id, x.Flow, fp.cell))
	}
	if x.Input == nil {
		return api.RetryResult{}, fmt.Errorf("the journal holds no input of execution %s", id)
	}
	in := *x.Input
	in.ID = flow.NewExecutionID()
	in.Header = in.Header.Clone()
	in.Query = maps.Clone(in.Query)
	if n := fr.counts.inflight.Add(1); n > int64(fr.spec.MaxInflight) {
		fr.counts.inflight.Add(-1)
		return api.RetryResult{}, &admin.StatusError{Code: http.StatusServiceUnavailable, Err: fmt.Errorf("flow %q already runs %d executions, its max_inflight", fr.spec.Name, fr.spec.MaxInflight)}
	}
	release := func() { fr.counts.inflight.Add(-1) }
	run, err := fr.runner.Start(&in)
	if err != nil {
		release()
		return api.RetryResult{}, err
	}
	fp.runDetached(fr, &in, run, release)
	return api.RetryResult{ID: in.ID}, nil
}

// journalGet reads one execution, with the admin API's errors.
func (fp *flowPlane) journalGet(id string) (*journal.Execution, error) {
	if fp.journal == nil {
		return nil, admin.NotFound(fmt.Errorf("the gateway of cell %q keeps no journal of executions", fp.cell))
	}
	_ = fp.journal.Sync()
	x, err := fp.journal.Get(id)
	if errors.Is(err, journal.ErrNotFound) {
		return nil, admin.NotFound(fmt.Errorf("cell %q has no execution %q", fp.cell, id))
	}
	return x, err
}

// runDetached runs an execution Start began on the gateway's context, as
// an asynchronous one.
func (fp *flowPlane) runDetached(fr *flowRoute, in *flow.Input, run func(context.Context) *flow.Result, release func()) {
	done := fp.track(in.ID)
	fp.async.Add(1)
	go func() {
		defer fp.async.Done()
		defer release()
		res := run(fp.runCtx())
		fp.untrack(in.ID, done)
		fp.account(fr, res, nil, in.ID, in.RequestID)
	}()
}

// recode converts between the journal's types and the api's through
// their JSON, which is the wire contract they share.
func recode(from, to any) error {
	data, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, to)
}
