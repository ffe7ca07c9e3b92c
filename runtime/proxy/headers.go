package proxy

import (
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
)

// Header names, in canonical form so map lookups need no conversion.
const (
	hdrRequestID      = "X-Request-Id"
	hdrTraceparent    = "Traceparent"
	hdrForwardedFor   = "X-Forwarded-For"
	hdrForwardedProto = "X-Forwarded-Proto"
	hdrForwardedHost  = "X-Forwarded-Host"
	hdrIdempotencyKey = "Idempotency-Key"
	hdrConnection     = "Connection"
	hdrUpgrade        = "Upgrade"
	hdrTe             = "Te"
)

// isHopByHop reports whether a header name is a hop-by-hop field, which a
// proxy must not forward.
func isHopByHop(k string) bool { return classify(k).hopByHop() }

// skipRequestHeader reports whether a client header is left out of the
// upstream request (see fieldKind.forwardedUpstream).
func skipRequestHeader(k string) bool { return !classify(k).forwardedUpstream() }

// extraHeaders is the number of fields the proxy may add to a request;
// commonHeaders the number it always adds. The map is sized for the common
// case: a hint above 8 makes a small map allocate a full table.
const (
	extraHeaders  = 8
	commonHeaders = 5
)

// headerBuilder adds single-value fields to a header, taking the value
// slices from one preallocated backing array.
type headerBuilder struct {
	h     http.Header
	spare []string
}

func (b *headerBuilder) set(k, v string) {
	if len(b.spare) == 0 {
		b.h[k] = []string{v}
		return
	}
	b.spare[0] = v
	b.h[k] = b.spare[:1:1]
	b.spare = b.spare[1:]
}

// outboundHeader builds the header of the upstream request from the
// client's. It costs a map and one slice for all values, which is cheaper
// than http.Header.Clone followed by deletions.
func outboundHeader(r *http.Request, requestID, traceparent, upgrade string) http.Header {
	in := r.Header
	nv := 0
	for _, vv := range in {
		nv += len(vv)
	}
	vals := make([]string, nv+extraHeaders)
	h := make(http.Header, len(in)+commonHeaders)
	for k, vv := range in {
		if skipRequestHeader(k) {
			continue
		}
		n := copy(vals, vv)
		h[k] = vals[:n:n]
		vals = vals[n:]
	}
	if conn := in[hdrConnection]; len(conn) > 0 {
		removeConnectionTokens(h, conn)
	}
	b := headerBuilder{h: h, spare: vals}
	b.set(hdrRequestID, requestID)
	b.set(hdrTraceparent, traceparent)

	ip := clientIP(r.RemoteAddr)
	if prior := in[hdrForwardedFor]; len(prior) > 0 {
		b.set(hdrForwardedFor, strings.Join(prior, ", ")+", "+ip)
	} else if ip != "" {
		b.set(hdrForwardedFor, ip)
	}
	if r.TLS != nil {
		b.set(hdrForwardedProto, "https")
	} else {
		b.set(hdrForwardedProto, "http")
	}
	if r.Host != "" {
		b.set(hdrForwardedHost, r.Host)
	}
	if hasToken(in[hdrTe], "trailers") {
		b.set(hdrTe, "trailers")
	}
	if upgrade != "" {
		b.set(hdrConnection, "Upgrade")
		b.set(hdrUpgrade, upgrade)
	}
	return h
}

// removeConnectionTokens deletes the fields a Connection header names, which
// are hop-by-hop for this connection only.
func removeConnectionTokens(h http.Header, conn []string) {
	for _, v := range conn {
		for tok := range strings.SplitSeq(v, ",") {
			tok = textproto.TrimString(tok)
			switch {
			case tok == "", strings.EqualFold(tok, "close"), strings.EqualFold(tok, "keep-alive"), strings.EqualFold(tok, "upgrade"):
				continue
			}
			delete(h, textproto.CanonicalMIMEHeaderKey(tok))
		}
	}
}

// hasToken reports whether a comma-separated header contains token,
// ignoring case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(tok), token) {
				return true
			}
		}
	}
	return false
}

// upgradeType returns the protocol a client asks to switch to, or "".
func upgradeType(h http.Header) string {
	up := h[hdrUpgrade]
	if len(up) == 0 || !hasToken(h[hdrConnection], "upgrade") {
		return ""
	}
	return up[0]
}

// clientIP returns the host part of a "host:port" remote address without
// allocating.
func clientIP(remote string) string {
	i := strings.LastIndexByte(remote, ':')
	if i < 0 {
		return remote
	}
	host := remote[:i]
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host
}

// firstValue returns the first value of a canonical header name.
func firstValue(h http.Header, k string) string {
	if vv := h[k]; len(vv) > 0 {
		return vv[0]
	}
	return ""
}

// idGen makes request IDs: a random prefix chosen once per proxy and a
// counter. Unique enough to correlate logs, and far cheaper than a random
// UUID per request.
type idGen struct {
	prefix string
	n      atomic.Uint64
}

func newIDGen() *idGen {
	var b [6]byte
	_, _ = crand.Read(b[:]) // never fails on supported platforms
	return &idGen{prefix: hex.EncodeToString(b[:])}
}

func (g *idGen) next() string {
	var buf [40]byte
	return string(g.appendNext(buf[:0]))
}

// appendNext appends a new request ID to dst.
func (g *idGen) appendNext(dst []byte) []byte {
	dst = append(dst, g.prefix...)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, g.n.Add(1), 36)
}

// traceparentLen is the length of a version 00 W3C traceparent.
const traceparentLen = 55

// nextTraceparent returns the traceparent to send upstream. A valid incoming
// one keeps its trace ID and flags and gets a fresh parent ID (this hop's
// span, as a tracing proxy does); an absent or invalid one starts a new,
// sampled trace. The result is always version 00.
func nextTraceparent(in []string) string {
	var buf [traceparentLen]byte
	prior := ""
	if len(in) == 1 {
		prior = in[0]
	}
	putTraceparent(&buf, prior)
	return string(buf[:])
}

// putTraceparent writes into buf the traceparent that follows prior, the
// client's single traceparent ("" when it sent none or several).
func putTraceparent(buf *[traceparentLen]byte, prior string) {
	buf[0], buf[1], buf[2] = '0', '0', '-'
	buf[35], buf[52] = '-', '-'
	if validTraceparent(prior) {
		copy(buf[3:35], prior[3:35])
		copy(buf[53:55], prior[53:55])
	} else {
		putHex(buf[3:19], nonZero())
		putHex(buf[19:35], rand.Uint64())
		buf[53], buf[54] = '0', '1'
	}
	putHex(buf[36:52], nonZero())
}

// traceID and spanID return the parts of a traceparent built by
// nextTraceparent.
func traceID(tp string) string { return tp[3:35] }
func spanID(tp string) string  { return tp[36:52] }

func nonZero() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}

const hexDigits = "0123456789abcdef"

func putHex(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// validTraceparent checks a traceparent against the W3C Trace Context rules:
// lower-case hex fields, version not ff, exact length for version 00, and
// non-zero trace and parent IDs. Later versions may append fields after a
// dash.
func validTraceparent(s string) bool {
	if len(s) < traceparentLen || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	if !isLowerHex(s[0:2]) || s[0:2] == "ff" || !isLowerHex(s[3:35]) || !isLowerHex(s[36:52]) || !isLowerHex(s[53:55]) {
		return false
	}
	if s[0:2] == "00" && len(s) != traceparentLen {
		return false
	}
	if len(s) > traceparentLen && s[traceparentLen] != '-' {
		return false
	}
	return !allZero(s[3:35]) && !allZero(s[36:52])
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// allowedMethods is the Allow field of the proxy's 405 answer to CONNECT:
// the methods a gateway forwards as requests (any other token is forwarded
// too, but these are the ones worth naming).
const allowedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
