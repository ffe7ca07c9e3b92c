package proxy

import (
	"bytes"
	"iter"
)

// This file parses HTTP/1 message heads for the Server's fast path. The
// parsers take a complete head (up to and including the empty line) and
// fill a struct whose slices point into it, so parsing allocates nothing.
//
// The request parser is deliberately narrow: it accepts only the common
// request shape the fast path forwards byte-exactly, and reports anything
// else (a body, an upgrade, an unusual target or header) as not fast, so
// the connection goes to net/http, which answers every case, including
// malformed requests, as it always has.

// maxFastHeaders is the most header fields a request may have on the fast
// path (more goes to net/http), and how many fields of an answer are
// parsed without allocating.
const maxFastHeaders = 64

// field is one header field; name and value point into the head, the value
// without surrounding whitespace.
type field struct {
	name, value []byte
	kind        fieldKind
}

// fieldKind classifies the header names the fast path treats specially.
type fieldKind uint8

const (
	kOther fieldKind = iota
	kHost
	kUserAgent
	kContentLength
	kTransferEncoding
	kTrailer
	kConnection
	kProxyConnection
	kKeepAlive
	kProxyAuthenticate
	kProxyAuthorization
	kTE
	kUpgrade
	kExpect
	kRequestID
	kTraceparent
	kForwardedFor
	kForwardedProto
	kForwardedHost
	kIdempotencyKey
	kDate
)

// classify returns the kind of a header name, ignoring case. It takes
// the fast path's in-place names and net/http's canonical strings alike,
// so the rules below are written once for both request paths.
func classify[T ~string | ~[]byte](name T) fieldKind {
	switch len(name) {
	case 2:
		if eqFold(name, "te") {
			return kTE
		}
	case 4:
		switch {
		case eqFold(name, "host"):
			return kHost
		case eqFold(name, "date"):
			return kDate
		}
	case 6:
		if eqFold(name, "expect") {
			return kExpect
		}
	case 7:
		switch {
		case eqFold(name, "trailer"):
			return kTrailer
		case eqFold(name, "upgrade"):
			return kUpgrade
		}
	case 10:
		switch {
		case eqFold(name, "connection"):
			return kConnection
		case eqFold(name, "user-agent"):
			return kUserAgent
		case eqFold(name, "keep-alive"):
			return kKeepAlive
		}
	case 11:
		if eqFold(name, "traceparent") {
			return kTraceparent
		}
	case 12:
		if eqFold(name, "x-request-id") {
			return kRequestID
		}
	case 14:
		if eqFold(name, "content-length") {
			return kContentLength
		}
	case 15:
		if eqFold(name, "x-forwarded-for") {
			return kForwardedFor
		}
		if eqFold(name, "idempotency-key") {
			return kIdempotencyKey
		}
	case 16:
		if eqFold(name, "x-forwarded-host") {
			return kForwardedHost
		}
		if eqFold(name, "proxy-connection") {
			return kProxyConnection
		}
	case 17:
		switch {
		case eqFold(name, "transfer-encoding"):
			return kTransferEncoding
		case eqFold(name, "x-forwarded-proto"):
			return kForwardedProto
		}
	case 18:
		if eqFold(name, "proxy-authenticate") {
			return kProxyAuthenticate
		}
	case 19:
		if eqFold(name, "proxy-authorization") {
			return kProxyAuthorization
		}
	}
	return kOther
}

// hopByHop reports whether a field of this kind is hop-by-hop (RFC 9110
// section 7.6.1), which a proxy must not forward in either direction.
func (k fieldKind) hopByHop() bool {
	switch k {
	case kConnection, kProxyConnection, kKeepAlive, kProxyAuthenticate,
		kProxyAuthorization, kTE, kTrailer, kTransferEncoding, kUpgrade:
		return true
	}
	return false
}

// forwardedUpstream reports whether a client's field of this kind goes to
// the replica as the client sent it: not hop-by-hop, not one the proxy
// sets itself (the request ID, trace context and X-Forwarded-* fields),
// and not Expect, which the proxy has answered by the time it sends the
// body. (Host, User-Agent and Content-Length are forwarded, each written
// where the request's shape puts it.)
func (k fieldKind) forwardedUpstream() bool {
	switch k {
	case kRequestID, kTraceparent, kForwardedFor, kForwardedProto, kForwardedHost, kExpect:
		return false
	}
	return !k.hopByHop()
}

// idempotentMethod reports whether a method may be repeated without
// changing its effect (RFC 9110 section 9.2.2; TRACE aside, which the
// gateway never retries). A request with an Idempotency-Key is
// idempotent whatever its method.
func idempotentMethod[T ~string | ~[]byte](m T) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE":
		return true
	}
	return false
}

// eqFold reports whether b equals the lower-case ASCII string s, ignoring
// the case of b.
func eqFold[T ~string | ~[]byte](b T, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// headEnd returns the length of the message head at the start of buf, the
// empty line included, or -1 when buf does not hold a whole head yet. It
// accepts bare LF line ends, so that the caller does not wait for a CRLF
// that never comes; the parsers then reject them.
func headEnd(buf []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(buf) && buf[i] == '\n':
			return i + 1
		case i+1 < len(buf) && buf[i] == '\r' && buf[i+1] == '\n':
			return i + 2
		case i+1 >= len(buf):
			return -1
		}
	}
}

// reqHead is a parsed request head. Its slices point into the buffer it
// was parsed from.
type reqHead struct {
	method []byte
	// path is the target's path, query what follows its '?' (hasQuery
	// tells an empty query from none).
	path, query []byte
	hasQuery    bool
	minor       byte // the x of HTTP/1.x
	fields      []field
	// Values the fast path needs, taken from fields.
	host        []byte
	userAgent   []byte
	hasUA       bool
	requestID   []byte
	traceparent []byte
	tpCount     int
	// forwardedFor counts the X-Forwarded-For fields.
	forwardedFor int
	teTrailers   bool
	idemKey      bool
	closeConn    bool // Connection: close, or HTTP/1.0 without keep-alive
	keepAlive10  bool // HTTP/1.0 with Connection: keep-alive

	store [maxFastHeaders]field
}

// parseRequest parses a request head for the fast path. It reports false
// for anything the fast path does not forward itself, leaving the request
// to net/http: a body, an upgrade, Expect, a target that is not a plain
// origin-form path (an escape, a fragment, bytes net/url would escape),
// obsolete line folding, a Connection header naming other fields, a
// missing or unusual Host, and every malformed head.
func parseRequest(head []byte, h *reqHead) bool {
	*h = reqHead{fields: h.store[:0]}
	line, rest, ok := cutLine(head)
	if !ok {
		return false
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) {
		return false
	}
	h.method = line[:sp]
	if string(h.method) == "CONNECT" {
		return false
	}
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 || line[0] != '/' {
		return false
	}
	target, proto := line[:sp], line[sp+1:]
	switch string(proto) {
	case "HTTP/1.1":
		h.minor = 1
	case "HTTP/1.0":
		h.minor = 0
	default:
		return false
	}
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		h.path, h.query, h.hasQuery = target[:q], target[q+1:], true
		if !plainQuery(h.query) {
			return false
		}
	} else {
		h.path = target
	}
	if !plainPath(h.path) {
		return false
	}

	hosts := 0
	var conn []byte
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return false
		}
		if len(line) == 0 {
			break
		}
		f, ok := parseField(line)
		if !ok || len(h.fields) == maxFastHeaders {
			return false
		}
		switch f.kind {
		case kContentLength:
			if string(f.value) != "0" {
				return false
			}
		case kTransferEncoding, kUpgrade, kExpect, kTrailer:
			return false
		case kHost:
			hosts++
			h.host = f.value
		case kUserAgent:
			if !h.hasUA {
				h.userAgent, h.hasUA = f.value, true
			}
		case kRequestID:
			if h.requestID == nil {
				h.requestID = f.value
			}
		case kTraceparent:
			h.traceparent = f.value
			h.tpCount++
		case kForwardedFor:
			h.forwardedFor++
		case kTE:
			if hasTokenBytes(f.value, "trailers") {
				h.teTrailers = true
			}
		case kIdempotencyKey:
			h.idemKey = true
		case kConnection:
			if conn != nil {
				return false
			}
			conn = f.value
		}
		h.fields = append(h.fields, f)
	}
	if hosts != 1 || len(h.host) == 0 || !plainHost(bstr(h.host)) {
		return false
	}
	return h.connection(conn)
}

// connection applies a request's Connection header. Only close and
// keep-alive are handled here; any other token names fields to drop, a
// rare case left to net/http.
func (h *reqHead) connection(v []byte) bool {
	closeTok, keep := false, false
	for tok := range tokens(v) {
		switch {
		case eqFold(tok, "close"):
			closeTok = true
		case eqFold(tok, "keep-alive"):
			keep = true
		default:
			return false
		}
	}
	if h.minor == 0 {
		h.keepAlive10 = keep && !closeTok
		h.closeConn = !h.keepAlive10
	} else {
		h.closeConn = closeTok
	}
	return true
}

// idempotent reports whether the request may be repeated.
func (h *reqHead) idempotent() bool { return idempotentMethod(h.method) || h.idemKey }

// respHead is a parsed response head. Its slices point into the buffer it
// was parsed from.
type respHead struct {
	status int
	reason []byte
	minor  byte
	fields []field
	// length is the Content-Length, -1 when absent.
	length    int64
	chunked   bool
	closeConn bool
	hasDate   bool
	hasReqID  bool
	eventStrm bool
	trailer   bool

	store [maxFastHeaders]field
}

// parseResponse parses a response head. It reports false for a head it
// cannot forward: malformed, conflicting or invalid lengths, or a transfer
// coding other than chunked. Up to maxFastHeaders fields cost no
// allocation.
func parseResponse(head []byte, h *respHead) bool {
	*h = respHead{fields: h.store[:0], length: -1}
	line, rest, ok := cutLine(head)
	if !ok || len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' {
		return false
	}
	switch line[7] {
	case '0', '1':
		h.minor = line[7] - '0'
	default:
		return false
	}
	code := line[9:12]
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	h.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if h.status < 100 {
		return false
	}
	if len(line) > 12 {
		if line[12] != ' ' {
			return false
		}
		h.reason = line[13:]
	}
	keep := false
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return false
		}
		if len(line) == 0 {
			break
		}
		f, ok := parseField(line)
		if !ok {
			return false
		}
		switch f.kind {
		case kContentLength:
			n, ok := parseDecimal(f.value)
			if !ok || (h.length >= 0 && n != h.length) {
				return false
			}
			h.length = n
		case kTransferEncoding:
			if !eqFold(f.value, "chunked") || h.chunked {
				return false
			}
			h.chunked = true
		case kDate:
			h.hasDate = true
		case kRequestID:
			h.hasReqID = true
		case kTrailer:
			h.trailer = true
		}
		if f.kind == kOther && len(f.name) == 12 && eqFold(f.name, "content-type") {
			h.eventStrm = len(f.value) >= 17 && eqFold(f.value[:17], "text/event-stream")
		}
		h.fields = append(h.fields, f)
	}
	if h.chunked && h.minor == 0 {
		// HTTP/1.0 has no chunked coding: RFC 9112 section 6.1 calls
		// such framing faulty and has the connection closed after the
		// message. As net/http does, the field is ignored (the body is
		// Content-Length's, or runs to the end of the connection), and
		// the connection is not used again.
		h.chunked = false
		h.closeConn = true
	}
	if h.chunked {
		h.length = -1 // RFC 9112 section 6.3: chunked wins
	}
	// Every Connection field counts; the fields they name are dropped
	// after the scan, since a name may come before its Connection field.
	n := len(h.fields)
	for i := 0; i < n; i++ {
		f := &h.fields[i]
		if f.kind != kConnection || !eqFold(f.name, "connection") {
			continue
		}
		for tok := range tokens(f.value) {
			switch {
			case eqFold(tok, "close"):
				h.closeConn = true
			case eqFold(tok, "keep-alive"):
				keep = true
			default:
				h.dropConnectionToken(tok)
			}
		}
	}
	if h.minor == 0 && !keep {
		h.closeConn = true
	}
	return true
}

// dropConnectionToken marks the fields a Connection token names as hop by
// hop, so they are not forwarded.
func (h *respHead) dropConnectionToken(tok []byte) {
	for i := range h.fields {
		if bytes.EqualFold(h.fields[i].name, tok) {
			h.fields[i].kind = kConnection
		}
	}
}

// bodyless reports whether a response to a request with this method has
// no body whatever its headers say.
func (h *respHead) bodyless(head bool) bool {
	return head || h.status == 204 || h.status == 304 || h.status < 200
}

// parseDecimal parses a Content-Length: digits only, as net/http insists.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseHex parses a chunk size: hex digits only.
func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// cutLine splits the first CRLF-terminated line off b. A bare LF or a CR
// inside the line is malformed.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

// parseField parses "name: value". Obsolete line folding, a space before
// the colon, a name that is not a token and control bytes in the value are
// malformed.
func parseField(line []byte) (field, bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return field{}, false
	}
	value := trimOWS(line[colon+1:])
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return field{}, false
		}
	}
	name := line[:colon]
	return field{name: name, value: value, kind: classify(name)}, true
}

// trimOWS trims spaces and tabs from both ends.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// hasTokenBytes reports whether a comma-separated value holds token,
// ignoring case; token is lower case.
func hasTokenBytes(v []byte, token string) bool {
	for tok := range tokens(v) {
		if eqFold(tok, token) {
			return true
		}
	}
	return false
}

// tokens yields the non-empty elements of a comma-separated value,
// without surrounding whitespace.
func tokens(v []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			var tok []byte
			tok, v, _ = bytes.Cut(v, []byte{','})
			if tok = trimOWS(tok); len(tok) > 0 && !yield(tok) {
				return
			}
		}
	}
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChar[c] {
			return false
		}
	}
	return true
}

// plainPath reports whether a path holds only bytes net/url leaves as
// they are (unreserved, sub-delims, ':', '@' and '/'), so forwarding it
// unchanged is what the net/http path sends too. Escapes go to net/http,
// which decodes them for routing.
func plainPath(b []byte) bool {
	for _, c := range b {
		if !pathChar[c] {
			return false
		}
	}
	return true
}

// plainQuery reports whether a query holds only visible ASCII other than
// '#', which net/http forwards unchanged.
func plainQuery(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

var tokenChar, pathChar = func() (tok, path [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		tok[c], path[c] = true, true
		tok[c-'a'+'A'], path[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		tok[c], path[c] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		tok[c] = true
	}
	for _, c := range "-._~!$&'()*+,;=:@/" {
		path[c] = true
	}
	return tok, path
}()
