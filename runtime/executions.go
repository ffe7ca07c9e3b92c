package runtime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
)

// executionsTimeout bounds each gateway's answer about executions: a
// journal read is quick, and a gateway that hangs must not hold up the
// others' answers.
const executionsTimeout = 5 * time.Second

// Executions lists the flow executions f keeps, of every running gateway
// of the project or, when cell is set, of that cell's alone, with the
// cell of each filled in, the most recently started first and at most
// f.Limit of them (when set).
//
// Across the project, a gateway that is not running, not yet listening
// or whose cell has no flows is passed over: it has nothing to list. A
// cell asked for by name must have a running gateway with flows.
func (c *Client) Executions(ctx context.Context, project, cell string, f api.ExecutionFilter) ([]api.ExecutionSummary, error) {
	gws, err := c.executionGateways(ctx, project, cell)
	if err != nil {
		return nil, err
	}
	lists := make([][]api.ExecutionSummary, len(gws))
	errs := make([]error, len(gws))
	var wg sync.WaitGroup
	for i, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lctx, cancel := context.WithTimeout(ctx, executionsTimeout)
			defer cancel()
			lists[i], errs[i] = c.cellAdmin(g).ListExecutions(lctx, f)
		}()
	}
	wg.Wait()
	out := []api.ExecutionSummary{}
	for i, g := range gws {
		if err := errs[i]; err != nil {
			if cell == "" && nothingToAsk(err) {
				continue
			}
			return nil, err
		}
		for _, s := range lists[i] {
			s.Cell = g.cell
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, newestFirst)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// newestFirst orders executions by start time, the latest first, then by
// cell and id so that the order is stable.
func newestFirst(a, b api.ExecutionSummary) int {
	return cmp.Or(b.Started.Compare(a.Started), cmp.Compare(a.Cell, b.Cell), cmp.Compare(a.ID, b.ID))
}

// Execution returns execution id, with its timeline and its cell filled
// in, from the gateway of cell or, when cell is empty, from the first
// running gateway of the project that has it. It returns nil and no error
// when no gateway has it.
func (c *Client) Execution(ctx context.Context, project, cell, id string) (*api.Execution, error) {
	e, _, err := c.findExecution(ctx, project, cell, id)
	return e, err
}

// RetryExecution starts a new execution with the input of execution id,
// on the gateway of cell or, when cell is empty, on the running gateway
// of the project that has it. The gateway refuses (409) while the
// execution runs.
func (c *Client) RetryExecution(ctx context.Context, project, cell, id string) (api.RetryResult, error) {
	if cell != "" {
		g, err := c.findGateway(ctx, project, cell)
		if err != nil {
			return api.RetryResult{}, err
		}
		return c.cellAdmin(g).RetryExecution(ctx, id)
	}
	e, g, err := c.findExecution(ctx, project, "", id)
	switch {
	case err != nil:
		return api.RetryResult{}, err
	case e == nil:
		return api.RetryResult{}, fmt.Errorf("retry execution %s: no gateway of project %s has it", id, project)
	}
	return c.cellAdmin(g).RetryExecution(ctx, e.ID)
}

// findExecution asks the gateways executionGateways names, in turn, for
// execution id, and returns it with the gateway that has it. An answer
// other than "no such execution" from one gateway ends the search with
// that error, since the execution may well be there.
func (c *Client) findExecution(ctx context.Context, project, cell, id string) (*api.Execution, gateway, error) {
	gws, err := c.executionGateways(ctx, project, cell)
	if err != nil {
		return nil, gateway{}, err
	}
	var missed []error
	for _, g := range gws {
		gctx, cancel := context.WithTimeout(ctx, executionsTimeout)
		e, err := c.cellAdmin(g).GetExecution(gctx, id)
		cancel()
		switch {
		case err == nil:
			e.Cell = g.cell
			return e, g, nil
		case isNotFound(err):
			// No such execution, or no flows at all in the cell.
		case cell == "" && errors.Is(err, admin.ErrUnreachable):
			missed = append(missed, err)
		default:
			return nil, gateway{}, err
		}
	}
	if len(missed) > 0 {
		return nil, gateway{}, fmt.Errorf("find execution %s: %w", id, errors.Join(missed...))
	}
	return nil, gateway{}, nil
}

// executionGateways returns the gateways to ask about executions: that of
// cell, which must be running, or every running one of the project.
func (c *Client) executionGateways(ctx context.Context, project, cell string) ([]gateway, error) {
	if cell != "" {
		g, err := c.findGateway(ctx, project, cell)
		if err != nil {
			return nil, err
		}
		return []gateway{g}, nil
	}
	gws, err := c.listGateways(ctx, project)
	if err != nil {
		return nil, err
	}
	var out []gateway
	for _, g := range gws {
		if g.state == "running" && g.adminURL != "" {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no gateway of project %s is running", api.ErrNotRunning, project)
	}
	return out, nil
}

// cellAdmin is a client of g's admin API whose errors name its cell.
func (c *Client) cellAdmin(g gateway) *admin.Client {
	a := c.admin(g)
	a.Cell = g.cell
	return a
}

// nothingToAsk reports an error that means a gateway has no executions to
// list: it is not listening yet, or its cell has no flows (a 404, which a
// gateway older than the executions API answers too).
func nothingToAsk(err error) bool {
	return errors.Is(err, admin.ErrUnreachable) || isNotFound(err)
}

func isNotFound(err error) bool {
	var se *admin.StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}
