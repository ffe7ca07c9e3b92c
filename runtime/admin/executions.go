package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

// Executions is the journal of a gateway's flow executions, as the admin
// API serves it. Like Cell, it returns a *StatusError when the request is
// at fault; any other error answers 500.
type Executions interface {
	// ListExecutions returns the executions f keeps, the most recently
	// started first.
	ListExecutions(ctx context.Context, f api.ExecutionFilter) ([]api.ExecutionSummary, error)
	// GetExecution returns one execution with its timeline, or a
	// NotFound error when the journal holds no execution id.
	GetExecution(ctx context.Context, id string) (*api.Execution, error)
	// RetryExecution starts a new execution with the input of execution
	// id: a NotFound error when there is no such execution, a Conflict
	// error while it runs.
	RetryExecution(ctx context.Context, id string) (api.RetryResult, error)
}

// errNoFlows answers the execution paths of a gateway whose cell has no
// flows.
func errNoFlows() error {
	return NotFound(errors.New("no executions: the cell of this gateway has no flows"))
}

// executionFilterQuery is the query string of a list of the executions f
// keeps, as parseExecutionFilter reads it back: flow, failed=1, since (RFC
// 3339, in UTC) and limit, each only when set.
func executionFilterQuery(f api.ExecutionFilter) url.Values {
	q := url.Values{}
	if f.Flow != "" {
		q.Set("flow", f.Flow)
	}
	if f.Failed {
		q.Set("failed", "1")
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// parseExecutionFilter reads the query string of a list of executions.
// Each bad value is a BadRequest naming its parameter; unknown parameters
// are ignored, as for every other admin call.
func parseExecutionFilter(q url.Values) (api.ExecutionFilter, error) {
	f := api.ExecutionFilter{Flow: q.Get("flow")}
	var err error
	if f.Failed, err = queryBool(q, "failed"); err != nil {
		return f, err
	}
	if f.Since, err = queryTime(q, "since"); err != nil {
		return f, err
	}
	f.Limit, err = queryCount(q, "limit", 0)
	return f, err
}

// queryBool reads a boolean parameter of a query string; false when
// absent.
func queryBool(q url.Values, key string) (bool, error) {
	v := q.Get(key)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, BadRequest(fmt.Errorf("%s must be a boolean, got %q", key, v))
	}
	return b, nil
}

// queryTime reads an RFC 3339 time parameter of a query string; the zero
// time when absent.
func queryTime(q url.Values, key string) (time.Time, error) {
	v := q.Get(key)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, BadRequest(fmt.Errorf("%s must be an RFC 3339 time such as 2026-11-22T10:00:00Z, got %q", key, v))
	}
	return t, nil
}

// queryCount reads a parameter of a query string that counts something;
// absent gives def.
func queryCount(q url.Values, key string, def int) (int, error) {
	v := q.Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return def, BadRequest(fmt.Errorf("%s must be a non-negative whole number, got %q", key, v))
	}
	return n, nil
}

func (s *Server) handleListExecutions(w http.ResponseWriter, r *http.Request) {
	if s.execs == nil {
		s.fail(w, r, errNoFlows())
		return
	}
	f, err := parseExecutionFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.execs.ListExecutions(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		// An empty journal is [], not null.
		list = []api.ExecutionSummary{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleGetExecution(w http.ResponseWriter, r *http.Request) {
	if s.execs == nil {
		s.fail(w, r, errNoFlows())
		return
	}
	id := r.PathValue("id")
	e, err := s.execs.GetExecution(r.Context(), id)
	switch {
	case err != nil:
		s.fail(w, r, err)
	case e == nil:
		s.fail(w, r, NotFound(fmt.Errorf("no execution %s", id)))
	default:
		writeJSON(w, http.StatusOK, e)
	}
}

// handleRetryExecution answers 202: the new execution has started, and
// Location is where to follow it.
func (s *Server) handleRetryExecution(w http.ResponseWriter, r *http.Request) {
	if s.execs == nil {
		s.fail(w, r, errNoFlows())
		return
	}
	res, err := s.execs.RetryExecution(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if res.ID != "" {
		w.Header().Set("Location", api.PathExecutions+"/"+url.PathEscape(res.ID))
	}
	writeJSON(w, http.StatusAccepted, res)
}
