package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// CallRequest is a request the gateway makes itself, to a service of its
// cell, rather than one it forwards: a step of a flow.
type CallRequest struct {
	// Service is the service to call; a forward proxy ignores it and calls
	// its only one.
	Service string
	Method  string
	// Path is the path and, when there is one, "?query", encoded.
	Path   string
	Header http.Header
	Body   []byte
	// MaxBody bounds the answer's body; 0 means no bound.
	MaxBody int64
	// Route labels the call in its record and metrics ("flow:checkout").
	Route string
	// Flow and Step name the flow step that makes the call, for its
	// record.
	Flow, Step string
}

// CallResponse is a call's answer, its body read whole.
type CallResponse struct {
	Status int
	Header http.Header
	Body   []byte
	// Replica names the replica that answered.
	Replica string
}

// Errors of Call.
var (
	// ErrNotSent means the request reached no replica: none was available,
	// or none could be connected to.
	ErrNotSent = errors.New("request not sent")
	// ErrBodyTooLarge means the answer's body is over CallRequest.MaxBody.
	ErrBodyTooLarge = errors.New("answer body too large")
)

// Call sends one request to a service of the cell through the gateway's
// request path: the balance policy picks the replica, passive health sees
// the outcome, the request is recorded like any other (its Route set to
// req.Route), and a service with no replica available is woken and waited
// for as a client's request would be. It makes one try in the sense of a
// flow's retry policy: when a replica cannot be connected to, or the
// connection broke before any byte of the request was written, the request
// goes to another replica, as the proxy does for every request; any other
// failure is returned, for the caller to decide whether to retry.
//
// The error wraps ErrNotSent when no replica received the request,
// ErrBodyTooLarge when the answer is over req.MaxBody, and ctx's error when
// ctx ended first.
func (p *Proxy) Call(ctx context.Context, req *CallRequest) (*CallResponse, error) {
	var rec RequestRecord
	if p.records != nil {
		rec = RequestRecord{Time: p.now(), Method: req.Method, Path: pathOnly(req.Path), Route: req.Route, Flow: req.Flow, Step: req.Step}
		rec.RequestID = firstValue(req.Header, hdrRequestID)
		if tp := firstValue(req.Header, hdrTraceparent); tp != "" {
			rec.TraceID, rec.SpanID = traceID(tp), spanID(tp)
		}
	}
	resp, err := p.call(ctx, req, &rec)
	if err != nil && rec.Error == "" {
		rec.Error = err.Error()
	}
	if rec.Status == 0 && err != nil {
		rec.Status = callFailureStatus(err)
	}
	p.emit(&rec)
	return resp, err
}

// callFailureStatus is the status a failed call is recorded with: what the
// proxy would have answered a client.
func callFailureStatus(err error) int {
	switch {
	case errors.Is(err, context.Canceled):
		return StatusClientClosed
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrNotSent):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

func (p *Proxy) call(ctx context.Context, req *CallRequest, rec *RequestRecord) (*CallResponse, error) {
	tb := p.tbl.Load()
	service := req.Service
	if p.forward {
		service = p.cell
	}
	rec.Service = service
	sp := tb.byService[service]
	if sp == nil {
		return nil, fmt.Errorf("%w: no service %q in cell %q", ErrNotSent, service, p.cell)
	}
	u, err := url.ParseRequestURI(req.Path)
	if err != nil {
		return nil, fmt.Errorf("call %s %s: %w", req.Method, req.Path, err)
	}
	out := &http.Request{
		Method:     req.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     req.Header,
	}
	if out.Header == nil {
		out.Header = http.Header{}
	}
	if len(req.Body) > 0 || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
		out.ContentLength = int64(len(req.Body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(req.Body)), nil }
	}
	out = out.WithContext(ctx)

	ups := sp.load()
	var triedBuf [4]*Upstream
	cands := make([]*Upstream, 0, 8)
	up, tried := p.pick(sp, ups, triedBuf[:0], cands, out)
	if up == nil && p.opts.Wake != nil && p.opts.Wake(service) {
		up, ups, tried = p.hold(out.Context(), out, sp, tried[:0], cands)
	}
	for {
		if up == nil {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %s", ErrNotSent, p.noReplicaMessage(service))
		}
		rec.Upstream, rec.Replica = up.Addr, up.String()
		rec.Tries++
		resp, fail, err := p.callOnce(ctx, out, sp, up, req.MaxBody)
		up.release()
		if fail == failNone {
			rec.Status, rec.Bytes = resp.Status, int64(len(resp.Body))
			return resp, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.Path, ctx.Err())
		}
		if !fail.unsent() {
			return nil, err
		}
		up, tried = p.pick(sp, ups, tried, cands, out)
		if up == nil {
			return nil, fmt.Errorf("%w: %v", ErrNotSent, err)
		}
	}
}

// callOnce sends the request to one replica and reads the answer whole.
func (p *Proxy) callOnce(ctx context.Context, r *http.Request, sp *servicePool, up *Upstream, maxBody int64) (*CallResponse, failKind, error) {
	// A shallow copy: the transport only reads the header, so every try
	// can share the caller's.
	out := r.WithContext(ctx)
	u := *r.URL
	u.Scheme, u.Host = "http", up.Addr
	out.URL, out.Host = &u, ""
	if r.GetBody != nil {
		out.Body, _ = r.GetBody()
	}
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		fail := failKindOf(err)
		if ctx.Err() != nil {
			fail = failClient
		}
		p.observe(sp, up, fail, 0)
		if fail.unsent() {
			err = fmt.Errorf("%w: replica %s: %v", ErrNotSent, up, err)
		}
		return nil, fail, err
	}
	defer resp.Body.Close()
	var rd io.Reader = resp.Body
	if maxBody > 0 {
		rd = io.LimitReader(resp.Body, maxBody+1)
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		fail := failBroken
		if ctx.Err() != nil {
			fail = failClient
		}
		p.observe(sp, up, fail, 0)
		return nil, fail, fmt.Errorf("read the answer of replica %s: %w", up, err)
	}
	p.observe(sp, up, failNone, resp.StatusCode)
	if maxBody > 0 && int64(len(body)) > maxBody {
		return &CallResponse{Status: resp.StatusCode, Header: resp.Header, Replica: up.String()}, failNone,
			fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, maxBody)
	}
	return &CallResponse{Status: resp.StatusCode, Header: resp.Header, Body: body, Replica: up.String()}, failNone, nil
}

// pathOnly returns the path of a path with a query.
func pathOnly(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i]
	}
	return s
}
