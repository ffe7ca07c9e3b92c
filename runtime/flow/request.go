package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/orchestro/orchestro/cellspec"
)

// Header fields every call carries.
const (
	headerRequestID   = "X-Request-Id"
	headerTraceparent = "Traceparent"
	headerContentType = "Content-Type"
)

// Content types of the bodies the engine encodes.
const (
	contentTypeText = "text/plain; charset=utf-8"
	contentTypeJSON = "application/json"
)

// namedTemplate is a header field or query parameter and its value.
type namedTemplate struct {
	name string
	t    *cellspec.Template
}

// sortedTemplates returns m's entries sorted by name, header names in
// their canonical form when canonical is set, so that requests are built
// (and their errors reported) in the same order every time.
func sortedTemplates(m map[string]*cellspec.Template, canonical bool) []namedTemplate {
	out := make([]namedTemplate, 0, len(m))
	for k, t := range m {
		if canonical {
			k = http.CanonicalHeaderKey(k)
		}
		out = append(out, namedTemplate{name: k, t: t})
	}
	slices.SortFunc(out, func(a, b namedTemplate) int { return strings.Compare(a.name, b.name) })
	return out
}

// callPlan is what New prepares of a call, a step's or a compensation's.
type callPlan struct {
	call    *cellspec.Call
	headers []namedTemplate
	query   []namedTemplate
	body    *cellspec.Template
	// literal holds the body, encoded, when it has no expression.
	literal *encodedBody
	// ownKey reports that the headers set Idempotency-Key, whatever its
	// case, so the default one is left out.
	ownKey bool
	// keySuffix follows "<flow id>-<step id>" in the default
	// Idempotency-Key.
	keySuffix string
}

func newCallPlan(call *cellspec.Call, headers, query map[string]*cellspec.Template, body *cellspec.Template, keySuffix string) callPlan {
	p := callPlan{
		call:      call,
		headers:   sortedTemplates(headers, true),
		query:     sortedTemplates(query, false),
		body:      body,
		keySuffix: keySuffix,
	}
	for _, h := range p.headers {
		if h.name == headerIdempotencyKey {
			p.ownKey = true
		}
	}
	if body != nil && body.IsLiteral() {
		if b, err := encodeBody(body.Raw()); err == nil {
			p.literal = &b
		}
	}
	return p
}

// encodedBody is a request or answer body and its content type.
type encodedBody struct {
	data        []byte
	contentType string
}

// encodeBody encodes the value of a body template: nothing for null or an
// empty string, a string's bytes as text, anything else as JSON.
func encodeBody(v any) (encodedBody, error) {
	switch x := v.(type) {
	case nil:
		return encodedBody{}, nil
	case string:
		if x == "" {
			return encodedBody{}, nil
		}
		return encodedBody{data: []byte(x), contentType: contentTypeText}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return encodedBody{}, err
	}
	return encodedBody{data: b, contentType: contentTypeJSON}, nil
}

// renderBody renders and encodes a body template.
func renderBody(env map[string]any, t *cellspec.Template, literal *encodedBody) (encodedBody, error) {
	if literal != nil {
		return *literal, nil
	}
	if t == nil {
		return encodedBody{}, nil
	}
	v, err := t.Eval(env)
	if err != nil {
		return encodedBody{}, err
	}
	return encodeBody(v)
}

// callIdentity is what every call of an execution carries whatever its
// spec says.
type callIdentity struct {
	flowName  string
	flowID    string
	requestID string
	trace     traceContext
	maxBody   int64
}

// buildRequest renders a call with env. Every header field and query
// parameter that renders empty is left out, so that an expression passing
// on an optional input needs no condition; this is also how a step removes
// the default Idempotency-Key. X-Request-ID and traceparent are the
// engine's: the step's own are replaced.
func buildRequest(env map[string]any, p *callPlan, id *callIdentity, step string, compensation bool) (*Request, error) {
	if p.call == nil {
		return nil, errors.New("no call to make")
	}
	path, err := p.call.Path.EvalText(env, pathSegment)
	if err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	if len(p.query) > 0 {
		q, err := renderQuery(env, p.query)
		if err != nil {
			return nil, err
		}
		path = appendQuery(path, q)
	}
	h := newHeader(len(p.headers) + 4)
	if err := h.render(env, p.headers); err != nil {
		return nil, err
	}
	if !p.ownKey {
		h.set(headerIdempotencyKey, id.flowID+"-"+step+p.keySuffix)
	}
	body, err := renderBody(env, p.body, p.literal)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	if body.data != nil {
		h.setDefault(headerContentType, body.contentType)
	}
	if id.requestID != "" {
		h.set(headerRequestID, id.requestID)
	}
	h.set(headerTraceparent, id.trace.child())
	return &Request{
		Flow:         id.flowName,
		Step:         step,
		Compensation: compensation,
		Method:       p.call.Method,
		Target:       p.call.Target,
		Path:         path,
		Header:       h.h,
		Body:         body.data,
		MaxBody:      id.maxBody,
	}, nil
}

// headerBuilder builds a header whose fields hold one value each, all
// in one array rather than one allocation a field.
type headerBuilder struct {
	h    http.Header
	vals []string
}

// newHeader returns a builder of up to n fields.
func newHeader(n int) headerBuilder {
	return headerBuilder{h: make(http.Header, n), vals: make([]string, 0, n)}
}

// set sets a field, its name in canonical form, to one value.
func (b *headerBuilder) set(name, v string) {
	if len(b.vals) == cap(b.vals) {
		b.h[name] = []string{v}
		return
	}
	b.vals = append(b.vals, v)
	n := len(b.vals)
	b.h[name] = b.vals[n-1 : n : n]
}

// setDefault sets a field unless it is set.
func (b *headerBuilder) setDefault(name, v string) {
	if len(b.h[name]) == 0 {
		b.set(name, v)
	}
}

// render renders header fields, leaving out those that render empty, and
// refusing a value that could end its field or add another.
func (b *headerBuilder) render(env map[string]any, fields []namedTemplate) error {
	for _, f := range fields {
		v, err := f.t.EvalString(env)
		if err != nil {
			return fmt.Errorf("header %s: %w", f.name, err)
		}
		if v == "" {
			continue
		}
		if !validHeaderValue(v) {
			return fmt.Errorf("header %s: value %q holds a control character", f.name, v)
		}
		b.set(f.name, v)
	}
	return nil
}

// withNewSpan returns a copy of req for another try: each try is a span of
// its own.
func withNewSpan(req *Request, trace traceContext) *Request {
	next := *req
	next.Header = req.Header.Clone()
	next.Header[headerTraceparent] = []string{trace.child()}
	return &next
}

// pathSegment escapes the value of an expression in a call's path, so it
// stays within the segment it is written in: a value cannot add segments,
// a query or a fragment. A value that is empty, "." or ".." is an error:
// it would change which resource the path names (DELETE /reservations/
// instead of one reservation).
func pathSegment(s string) (string, error) {
	switch s {
	case "":
		return "", errors.New("is empty in the call's path")
	case ".", "..":
		return "", fmt.Errorf("is %q in the call's path", s)
	}
	return url.PathEscape(s), nil
}

// renderQuery renders query parameters, encoded. A list value sends the
// parameter once per element.
func renderQuery(env map[string]any, params []namedTemplate) (string, error) {
	var b strings.Builder
	add := func(name string, v any) {
		s := cellspec.Text(v)
		if s == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(s))
	}
	for _, nt := range params {
		v, err := nt.t.Eval(env)
		if err != nil {
			return "", fmt.Errorf("query %s: %w", nt.name, err)
		}
		if list, ok := v.([]any); ok {
			for _, e := range list {
				add(nt.name, e)
			}
			continue
		}
		add(nt.name, v)
	}
	return b.String(), nil
}

// appendQuery adds an encoded query to a path that may hold one already.
func appendQuery(path, query string) string {
	switch i := strings.IndexByte(path, '?'); {
	case query == "":
		return path
	case i < 0:
		return path + "?" + query
	case i == len(path)-1:
		return path + query
	default:
		return path + "&" + query
	}
}

// validHeaderValue reports whether v may be sent as a header field value
// (RFC 9110 §5.5): no control character other than a tab, so that a value
// taken from the input cannot end the field or add another.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
