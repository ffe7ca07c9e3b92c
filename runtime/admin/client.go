package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/orchestro/orchestro/runtime/api"
)

// ErrUnreachable means nothing answered at the gateway's admin address:
// the gateway is not running, or not yet listening. `orchestro ps`
// branches on it to show a cell as down.
var ErrUnreachable = errors.New("gateway is not reachable")

// Response size limits: a status of a large cell is well under a
// megabyte, and an error body is one line.
const (
	maxStatusResponse = 16 << 20
	maxErrorResponse  = 64 << 10
	maxEventLine      = 1 << 20
)

// Client calls one gateway's admin API. It is safe for concurrent use.
//
// Every error names the operation and its object ("scale shop/orders:
// …"). An answer other than 2xx is wrapped as "<op>: <code>: <message>"
// around a *StatusError holding the code and the server's message; a
// gateway that cannot be reached gives an error that matches
// ErrUnreachable.
type Client struct {
	// Cell, when set, names the cell in error messages ("scale
	// shop/orders" rather than "scale orders"), and in every request,
	// so that a gateway of another cell found at the address refuses it
	// (see api.CellHeader). Set it before first use.
	Cell string

	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client of the admin API at baseURL (for example
// http://127.0.0.1:9081) that presents token on every call. A nil hc
// means a plain http.Client; it should have no Timeout, which would cut
// event streams short: bound each call with its context instead.
func NewClient(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: hc}
}

// Status returns the cell's status.
func (c *Client) Status(ctx context.Context) (api.CellStatus, error) {
	op := c.op("get status of", "")
	resp, err := c.do(ctx, op, http.MethodGet, api.PathStatus, nil)
	if err != nil {
		return api.CellStatus{}, err
	}
	defer resp.Body.Close()
	var st api.CellStatus
	// Not strict: the shapes only ever gain fields, and an older CLI must
	// read a newer gateway.
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxStatusResponse)).Decode(&st); err != nil {
		return api.CellStatus{}, fmt.Errorf("%s: decode answer: %w", op, err)
	}
	return st, nil
}

// Scale sets the replica count of service.
func (c *Client) Scale(ctx context.Context, service string, replicas int) error {
	op := c.op("scale", service)
	return c.call(ctx, op, http.MethodPost, api.PathScale, api.ScaleRequest{Service: service, Replicas: replicas})
}

// Restart asks for a rolling restart of service, or of every service of
// the cell when service is empty.
func (c *Client) Restart(ctx context.Context, service string) error {
	op := c.op("restart", service)
	return c.call(ctx, op, http.MethodPost, api.PathRestart, api.RestartRequest{Service: service})
}

// UpdateSpec sends a new cell spec, as JSON, for the gateway to converge
// to.
func (c *Client) UpdateSpec(ctx context.Context, spec []byte) error {
	op := c.op("update spec of", "")
	resp, err := c.do(ctx, op, http.MethodPut, api.PathSpec, bytes.NewReader(spec))
	if err != nil {
		return err
	}
	return drain(resp)
}

// Stop asks the gateway to drain and remove every replica of the cell.
func (c *Client) Stop(ctx context.Context) error {
	op := c.op("stop", "")
	resp, err := c.do(ctx, op, http.MethodPost, api.PathStop, nil)
	if err != nil {
		return err
	}
	return drain(resp)
}

// ListExecutions returns the flow executions f keeps, the most recently
// started first. A cell without flows answers 404.
func (c *Client) ListExecutions(ctx context.Context, f api.ExecutionFilter) ([]api.ExecutionSummary, error) {
	op := c.op("list executions of", "")
	path := api.PathExecutions
	if q := executionFilterQuery(f); len(q) > 0 {
		path += "?" + q.Encode()
	}
	var list []api.ExecutionSummary
	if err := c.getJSON(ctx, op, path, &list); err != nil {
		return nil, err
	}
	return list, nil
}

// GetExecution returns execution id with its timeline. An id the gateway
// does not know answers 404.
func (c *Client) GetExecution(ctx context.Context, id string) (*api.Execution, error) {
	op := c.op("get execution "+id+" of", "")
	var e api.Execution
	if err := c.getJSON(ctx, op, api.PathExecutions+"/"+url.PathEscape(id), &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// RetryExecution starts a new execution with the input of execution id
// and names it. The gateway refuses with 409 while execution id runs.
func (c *Client) RetryExecution(ctx context.Context, id string) (api.RetryResult, error) {
	op := c.op("retry execution "+id+" of", "")
	resp, err := c.do(ctx, op, http.MethodPost, api.PathExecutions+"/"+url.PathEscape(id)+"/retry", nil)
	if err != nil {
		return api.RetryResult{}, err
	}
	defer resp.Body.Close()
	var res api.RetryResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorResponse)).Decode(&res); err != nil {
		return api.RetryResult{}, fmt.Errorf("%s: decode answer: %w", op, err)
	}
	return res, nil
}

// Events calls fn with each event the gateway holds, oldest first, and,
// when follow is set, with each later event as it happens. fn runs on the
// caller's goroutine, one event at a time.
//
// Events returns nil when the gateway ends the stream (without follow,
// once the backlog is read; with follow, when the gateway shuts down),
// and an error wrapping ctx.Err() when ctx ends first.
func (c *Client) Events(ctx context.Context, follow bool, fn func(api.Event)) error {
	op := c.op("read events of", "")
	path := api.PathEvents
	if follow {
		path += "?follow=1"
	}
	err := c.streamLines(ctx, op, path, maxEventLine, func(line []byte) error {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			return nil
		}
		var e api.Event
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("%s: decode event: %w", op, err)
		}
		fn(e)
		return nil
	})
	if err == nil && ctx.Err() != nil {
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	return err
}

// streamLines GETs path and calls fn with each line of the answer that is
// not empty, lines being at most maxLine bytes long, until the stream
// ends, fn fails (its error is returned) or ctx ends (nil is returned:
// the caller says what an ended context means).
func (c *Client) streamLines(ctx context.Context, op, path string, maxLine int, fn func(line []byte) error) error {
	resp, err := c.do(ctx, op, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		if line := sc.Bytes(); len(line) > 0 {
			if err := fn(line); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: read stream: %w", op, err)
	}
	return nil
}

// getJSON decodes the answer of a GET of path into v, leniently: the
// shapes only ever gain fields, and an older CLI must read a newer
// gateway.
func (c *Client) getJSON(ctx context.Context, op, path string, v any) error {
	resp, err := c.do(ctx, op, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxStatusResponse)).Decode(v); err != nil {
		return fmt.Errorf("%s: decode answer: %w", op, err)
	}
	return nil
}

// op names an operation and its object for error messages.
func (c *Client) op(verb, service string) string {
	obj := c.Cell
	switch {
	case obj != "" && service != "":
		obj += "/" + service
	case service != "":
		obj = service
	}
	if obj == "" {
		return strings.TrimSuffix(verb, " of")
	}
	return verb + " " + obj
}

// call sends body as JSON and expects an answer without content.
func (c *Client) call(ctx context.Context, op, method, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", op, err)
	}
	resp, err := c.do(ctx, op, method, path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	return drain(resp)
}

// do sends one request and returns the answer when it is a 2xx; the
// caller closes its body.
func (c *Client) do(ctx context.Context, op, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set(api.TokenHeader, "Bearer "+c.token)
	}
	if c.Cell != "" {
		req.Header.Set(api.CellHeader, c.Cell)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, fmt.Errorf("%s: %d: %w", op, resp.StatusCode, answerError(resp))
	}
	return resp, nil
}

// transportError explains why no answer came back.
func (c *Client) transportError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		// The dial error repeats the address; its cause is what the
		// user needs next to ours.
		return fmt.Errorf("%s: %w at %s: %w", op, ErrUnreachable, c.base, opErr.Err)
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		// The URL it names is ours; say which gateway instead.
		err = urlErr.Err
	}
	return fmt.Errorf("%s: gateway at %s: %w", op, c.base, err)
}

// answerError turns a non-2xx answer into a *StatusError with the
// server's message: the api.Error body, else the body's text, else the
// status text.
func answerError(resp *http.Response) *StatusError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorResponse))
	var e api.Error
	msg := ""
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	} else if text := strings.TrimSpace(string(body)); text != "" && !strings.ContainsRune(text, '\n') {
		msg = text
	} else {
		msg = strings.ToLower(http.StatusText(resp.StatusCode))
	}
	return &StatusError{Code: resp.StatusCode, Err: errors.New(msg)}
}

// drain reads what is left of a 2xx answer so the connection can be
// reused, and closes it.
func drain(resp *http.Response) error {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorResponse))
	return resp.Body.Close()
}
