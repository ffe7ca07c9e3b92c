package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"
)

// clientConn is one client connection on the Server's fast path.
type clientConn struct {
	s    *Server
	conn net.Conn
	// port is the local port the connection arrived on, which selects a
	// listener's route.
	port   int
	state  atomic.Int32
	remote string
	ip     string
	peek   sockPeek
	// headDeadline is when the head being read must be complete: the
	// header timeout counted from the connection's accept for its first
	// request, from the head's first byte for later ones; zero when none
	// was set.
	headDeadline time.Time

	// scratch is held only while a request is served or expected at
	// once; nil while the connection idles.
	*scratch
}

// scratch is what a connection needs only while it serves requests: its
// buffers and the space heads are parsed into. A connection that idles
// gives it back to the Server's pool, so that thousands of idle keep-alive
// connections cost little more than their sockets.
type scratch struct {
	br    *bufio.Reader
	bw    *bufio.Writer
	req   reqHead
	resp  respHead
	out   []byte // the upstream request
	meta  []byte // the record's strings, before they become one
	tried [4]*Upstream
	cands [8]*Upstream
	// num formats numbers; a local array would escape through the
	// bufio.Writer and cost an allocation each time.
	num [20]byte
	// stream is the replica connection of a body of unknown length being
	// relayed, and watch the watch on the client started for it.
	stream *upConn
	watch  *clientWatch
}

// hotWait is how long a connection that just served a request waits for
// the next one with its scratch before giving it back: a busy client's
// next request usually comes at once, and keeping the buffers then saves
// a pool round trip and a look at the socket per request.
const hotWait = time.Second

// Connection states, for Shutdown.
const (
	connActive int32 = iota
	connIdle
)

// serveResult says what becomes of a connection after a request.
type serveResult uint8

const (
	keepConn serveResult = iota
	closeConn
	handOffConn
)

// aLongTimeAgo is a read deadline that fails pending reads at once.
var aLongTimeAgo = time.Unix(1, 0)

// closeIfIdle ends a connection that waits for its next request.
func (cc *clientConn) closeIfIdle() {
	if cc.state.Load() == connIdle {
		_ = cc.conn.SetReadDeadline(aLongTimeAgo)
	}
}

func (cc *clientConn) serve() {
	s := cc.s
	cc.remote = cc.conn.RemoteAddr().String()
	cc.ip = clientIP(cc.remote)
	cc.peek.init(cc.conn)
	// As net/http: the first request's head must be complete within the
	// header timeout of the accept, however slowly it trickles in.
	cc.headDeadline = time.Now().Add(s.opts.ReadHeaderTimeout)
	handedOff := false
	defer func() {
		s.untrack(cc)
		if !handedOff {
			_ = cc.conn.Close()
			cc.dropScratch()
		}
	}()
	for first := true; ; first = false {
		n, ok := cc.readHead(first)
		if !ok {
			return
		}
		res := handOffConn
		if n > 0 {
			head, _ := cc.br.Peek(n)
			if parseRequest(head, &cc.req) {
				res = cc.serveRequest(n)
			}
		}
		switch res {
		case closeConn:
			return
		case handOffConn:
			s.untrack(cc)
			handedOff = true
			br := cc.br
			cc.br = nil // net/http reads through it from now on
			cc.dropScratch()
			s.handOff(newHandedOffConn(cc.conn, br, cc.headDeadline))
			return
		}
	}
}

// takeScratch gives the connection a scratch from the Server's pool.
func (cc *clientConn) takeScratch() {
	if cc.scratch != nil {
		return
	}
	x := cc.s.scratches.Get().(*scratch)
	if x.br == nil {
		x.br = bufio.NewReaderSize(nil, clientReadBuffer)
	}
	x.br.Reset(cc.conn)
	x.bw.Reset(cc.conn)
	cc.scratch = x
}

// dropScratch gives the connection's scratch back, when nothing waits in
// its read buffer; a reader handed to net/http was taken out before.
func (cc *clientConn) dropScratch() {
	x := cc.scratch
	if x == nil {
		return
	}
	cc.scratch = nil
	if x.br != nil {
		x.br.Reset(nil)
	}
	x.bw.Reset(nil)
	x.stream, x.watch = nil, nil
	clear(x.tried[:])
	clear(x.cands[:])
	cc.s.scratches.Put(x)
}

// readHead waits for a whole request head in the read buffer and returns
// its length; 0 when it does not fit, for net/http to read. ok is false
// when the connection should close: the client went away, sent nothing
// for IdleTimeout (the header timeout for a new connection), took longer
// than ReadHeaderTimeout over its head, or the server is shutting down.
func (cc *clientConn) readHead(first bool) (n int, ok bool) {
	s := cc.s
	if !first {
		cc.headDeadline = time.Time{} // set below if the head takes more than one read
	}
	if cc.scratch == nil || cc.br.Buffered() == 0 {
		if !cc.awaitRequest(first) {
			return 0, false
		}
	}
	buf, _ := cc.br.Peek(cc.br.Buffered())
	if n := headEnd(buf); n > 0 {
		return n, true
	}
	if cc.headDeadline.IsZero() {
		cc.headDeadline = time.Now().Add(s.opts.ReadHeaderTimeout)
		_ = cc.conn.SetReadDeadline(cc.headDeadline)
	}
	n, err := peekHead(cc.br)
	return n, err == nil
}

// awaitRequest waits for the first byte of the next request and leaves
// it in the read buffer, with the connection's scratch taken. A
// connection that just served a request waits hotWait with its scratch,
// then without: the socket is watched without reading it.
func (cc *clientConn) awaitRequest(first bool) bool {
	s := cc.s
	deadline := cc.headDeadline
	now := time.Time{}
	if !first {
		now = time.Now()
		deadline = now.Add(s.opts.IdleTimeout)
	}
	// Deadline, then state, then the check: Shutdown sets closed before
	// it fails the reads of idle connections, so either this sees closed
	// or Shutdown's deadline comes after this one.
	if cc.scratch != nil && !first && s.opts.IdleTimeout > hotWait {
		_ = cc.conn.SetReadDeadline(now.Add(hotWait))
		cc.state.Store(connIdle)
		if s.closed.Load() {
			return false
		}
		_, err := cc.br.Peek(1)
		if err == nil {
			cc.state.Store(connActive)
			return true
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return false
		}
	}
	cc.dropScratch()
	_ = cc.conn.SetReadDeadline(deadline)
	cc.state.Store(connIdle)
	if s.closed.Load() {
		return false
	}
	waited, err := cc.peek.wait()
	if err != nil {
		return false
	}
	cc.takeScratch()
	if !waited {
		if _, err := cc.br.Peek(1); err != nil {
			return false
		}
	}
	cc.state.Store(connActive)
	return true
}

// peekHead reads into rd's buffer until it holds a whole message head and
// returns the head's length, or 0 when the buffer filled up first.
func peekHead(rd *bufio.Reader) (int, error) {
	for {
		buf, _ := rd.Peek(rd.Buffered())
		if n := headEnd(buf); n > 0 {
			return n, nil
		}
		if rd.Buffered() == rd.Size() {
			return 0, nil
		}
		if _, err := rd.Peek(rd.Buffered() + 1); err != nil {
			return 0, err
		}
	}
}

// bstr views b as a string without copying; the string is only valid
// while b's bytes do not change.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// serveRequest forwards the request whose head (headLen bytes) was parsed
// into cc.req. It hands the connection to net/http, before touching
// anything, when the proxy would answer with an error of its own.
func (cc *clientConn) serveRequest(headLen int) serveResult {
	s, p, h := cc.s, cc.s.p, &cc.req
	if p.intercepted(bstr(h.method), bstr(h.path)) {
		return handOffConn
	}
	route, sp, upPath := p.route(cc.port, bstr(h.path))
	if route == nil {
		return handOffConn
	}
	ups := sp.load()
	up, tried := p.pick(sp, ups, cc.tried[:0], cc.cands[:0], nil)
	if up == nil {
		return handOffConn
	}
	s.fast.Add(1)

	var rec RequestRecord
	var recording bool
	rec.Time, recording = p.recordTime()
	var tp [traceparentLen]byte
	prior := ""
	if h.tpCount == 1 {
		prior = bstr(h.traceparent)
	}
	putTraceparent(&tp, prior)
	reqID := cc.buildRequest(upPath, &tp)
	if recording {
		cc.fillRecord(&rec, reqID, &tp)
	}
	rec.Route, rec.Service = route.Name, route.Service

	// What the answer needs from the head; then the head goes.
	isHead := string(h.method) == http.MethodHead
	idempotent := h.idempotent()
	minor := h.minor
	keep := !h.closeConn
	_, _ = cc.br.Discard(headLen)

	var (
		pc    *upConn
		rd    *bufio.Reader
		hn    int
		fail  failKind
		err   error
		tries int
	)
	for {
		pc, rd, hn, fail, err = cc.try(sp, up, route.Timeout, idempotent)
		tries++
		var next *Upstream
		next, tried = p.nextTry(sp, ups, tried, cc.cands[:0], route, tries, fail, cc.resp.status, idempotent, true, nil)
		if next == nil && fail.unsent() && tries <= route.Retries && p.opts.Wake != nil && p.opts.Wake(route.Service) {
			// As on the other path: a refused connection with no
			// other replica waits for the replacement.
			next, ups, tried = p.hold(context.Background(), nil, sp, tried, cc.cands[:0])
		}
		if next == nil {
			break
		}
		if pc != nil {
			pc.close(true) // the answer is dropped unread
		}
		up.release()
		up = next
	}
	rec.Tries = tries
	rec.Upstream, rec.Replica = up.Addr, up.String()
	keep = keep && !s.closed.Load()
	if fail == failNone {
		keep = cc.relay(pc, rd, hn, sp, up, reqID, &rec, isHead, minor, keep)
	} else {
		status, msg := failureAnswer(fail, up, route.Service, err)
		keep = cc.reply(status, msg, reqID, &rec, isHead, minor, keep)
	}
	up.release()
	p.emit(&rec)
	if !keep {
		return closeConn
	}
	return keepConn
}

// buildRequest writes the upstream request into cc.out, as the net/http
// path would send it: the same fields, in the client's order and
// spelling. It returns the request ID, which points into cc.out.
func (cc *clientConn) buildRequest(path string, tp *[traceparentLen]byte) []byte {
	h := &cc.req
	b := cc.out[:0]
	b = append(b, h.method...)
	b = append(b, ' ')
	b = append(b, path...)
	if h.hasQuery {
		b = append(b, '?')
		b = append(b, h.query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, h.host...)
	b = append(b, "\r\n"...)
	switch {
	case !h.hasUA:
		b = append(b, "User-Agent: "+defaultUserAgent+"\r\n"...)
	case len(h.userAgent) > 0:
		b = appendField(b, "User-Agent", h.userAgent)
	}
	switch string(h.method) {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		b = append(b, "Content-Length: 0\r\n"...)
	}
	for i := range h.fields {
		f := &h.fields[i]
		switch f.kind {
		case kHost, kUserAgent, kContentLength:
			// Written above.
		default:
			if f.kind.forwardedUpstream() {
				b = appendField(b, bstr(f.name), f.value)
			}
		}
	}
	b = append(b, "X-Request-Id: "...)
	idStart := len(b)
	if len(h.requestID) > 0 {
		b = append(b, h.requestID...)
	} else {
		b = cc.s.p.appendRequestID(b)
	}
	idEnd := len(b)
	b = append(b, "\r\n"...)
	b = appendField(b, "Traceparent", tp[:])
	switch {
	case h.forwardedFor > 0:
		b = append(b, "X-Forwarded-For: "...)
		for i := range h.fields {
			if f := &h.fields[i]; f.kind == kForwardedFor {
				b = append(b, f.value...)
				b = append(b, ", "...)
			}
		}
		b = append(b, cc.ip...)
		b = append(b, "\r\n"...)
	case cc.ip != "":
		b = append(b, "X-Forwarded-For: "...)
		b = append(b, cc.ip...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "X-Forwarded-Proto: http\r\n"...)
	b = appendField(b, "X-Forwarded-Host", h.host)
	if h.teTrailers {
		b = append(b, "Te: trailers\r\n"...)
	}
	b = append(b, "\r\n"...)
	cc.out = b
	return b[idStart:idEnd]
}

func appendField(b []byte, name string, value []byte) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// fillRecord sets the record's strings, copied out of the buffers into
// one allocation.
func (cc *clientConn) fillRecord(rec *RequestRecord, reqID []byte, tp *[traceparentLen]byte) {
	h := &cc.req
	m := append(cc.meta[:0], h.method...)
	m = append(m, h.host...)
	m = append(m, h.path...)
	m = append(m, reqID...)
	m = append(m, tp[3:52]...)
	cc.meta = m
	all := string(m)
	i := 0
	next := func(n int) string {
		v := all[i : i+n]
		i += n
		return v
	}
	rec.Method = next(len(h.method))
	rec.Host = next(len(h.host))
	rec.Path = next(len(h.path))
	rec.RequestID = next(len(reqID))
	rec.TraceID = next(32)
	i++ // the dash
	rec.SpanID = next(16)
	rec.Remote = cc.remote
}

// try sends cc.out to up and reads the answer's head into cc.resp. On
// success it returns the connection, the reader holding the answer and the
// head's length in it. The timeout covers the try up to the answer's
// head. A connection from the pool that turns out closed by the replica is
// replaced once, as the transport does: whatever the request when no byte
// of it was written, and only an idempotent one otherwise.
func (cc *clientConn) try(sp *servicePool, up *Upstream, timeout time.Duration, idempotent bool) (pc *upConn, rd *bufio.Reader, hn int, fail failKind, err error) {
	cc.resp.status = 0
	pc, rd, hn, err = cc.exchange(up, timeout, idempotent)
	if err != nil {
		fail = failKindOf(err)
	}
	cc.s.p.observe(sp, up, fail, cc.resp.status)
	return pc, rd, hn, fail, err
}

// exchange does try's work. Its errors carry their class (see failKindOf).
func (cc *clientConn) exchange(up *Upstream, timeout time.Duration, idempotent bool) (pc *upConn, rd *bufio.Reader, hn int, err error) {
	addr := up.Addr
	if !hasPort(addr) {
		addr = net.JoinHostPort(addr, "80")
	}
	hp := cc.s.t.pool(addr)
	deadline := time.Now().Add(timeout)
	fresh := false
	for retried := false; ; retried = true {
		pc, err = cc.upstreamConn(up, hp, fresh, deadline)
		if err != nil {
			if !isDialError(err) {
				err = &notSentError{err}
			}
			return nil, nil, 0, err
		}
		_ = pc.conn.SetReadDeadline(deadline)
		if n, werr := pc.conn.Write(cc.out); werr != nil {
			pc.close(true)
			sent := n > 0
			if !retried && mayResend(pc.reused, sent, true, idempotent) {
				fresh = true
				continue
			}
			err = fmt.Errorf("write request to %s: %w", addr, werr)
			if !sent {
				err = &notSentError{err}
			}
			return nil, nil, 0, err
		}
		var stale bool
		rd, hn, stale, err = cc.readResponseHead(pc)
		if err == nil {
			// The timeout covers the head only; the body, and the
			// connection's next request, are not bound by it.
			_ = pc.conn.SetReadDeadline(time.Time{})
			return pc, rd, hn, nil
		}
		pc.close(true)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, nil, 0, &tryTimeoutError{timeout}
		case !retried && mayResend(pc.reused, true, stale, idempotent):
			fresh = true
			continue
		}
		return nil, nil, 0, fmt.Errorf("read response from %s: %w", addr, err)
	}
}

// upstreamConn takes an idle connection to a replica from its pool, or
// dials one, within the try's deadline; the dial ends when up is lost.
func (cc *clientConn) upstreamConn(up *Upstream, hp *hostPool, fresh bool, deadline time.Time) (*upConn, error) {
	if !fresh {
		if pc := hp.get(); pc != nil {
			return pc, nil
		}
	}
	ctx, cancel := context.WithDeadline(withUpstream(context.Background(), up), deadline)
	defer cancel()
	return cc.s.t.conn(ctx, hp, true)
}

var (
	errMalformedResponse = errors.New("malformed response head")
	errUnexpected101     = errors.New("101 Switching Protocols to a request that asked for no upgrade")
	errTooMany1xx        = fmt.Errorf("more than %d informational responses", max1xx)
)

// readResponseHead reads the final answer's head into cc.resp, skipping
// informational answers. It returns the reader the head and body are in:
// the connection's own, or, for a head longer than its buffer, a larger
// one over it (the connection is then not reused). stale reports that
// the connection ended before any byte arrived.
func (cc *clientConn) readResponseHead(pc *upConn) (rd *bufio.Reader, n int, stale bool, err error) {
	rd = pc.br
	pc.headerLeft = math.MaxInt64
	for n1xx := 0; ; n1xx++ {
		if _, err := rd.Peek(1); err != nil {
			return nil, 0, n1xx == 0 && isClosedByPeer(err), err
		}
		for {
			if n, err = peekHead(rd); err != nil {
				return nil, 0, false, err
			}
			if n > 0 {
				break
			}
			if rd != pc.br {
				return nil, 0, false, errHeaderTooLarge
			}
			// A head longer than the connection's buffer: carry on in one
			// of maxResponseHeader bytes.
			saved, _ := rd.Peek(rd.Buffered())
			saved = bytes.Clone(saved)
			_, _ = rd.Discard(len(saved))
			rd = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(saved), pc.br), maxResponseHeader)
		}
		head, _ := rd.Peek(n)
		if !parseResponse(head, &cc.resp) {
			return nil, 0, false, errMalformedResponse
		}
		switch s := cc.resp.status; {
		case s == http.StatusSwitchingProtocols:
			return nil, 0, false, errUnexpected101
		case s < 200:
			if n1xx == max1xx {
				return nil, 0, false, errTooMany1xx
			}
			_, _ = rd.Discard(n)
			continue
		}
		return rd, n, false, nil
	}
}

// relay sends the replica's answer to the client and reports whether the
// client's connection can carry another request. Bodies of unknown length
// go chunked to HTTP/1.1 clients and close-delimited to HTTP/1.0 ones.
// Whatever the replica sends is written as soon as reading more would
// block, so streams (server-sent events and the like) flow at once.
func (cc *clientConn) relay(pc *upConn, rd *bufio.Reader, hn int, sp *servicePool, up *Upstream, reqID []byte, rec *RequestRecord, isHead bool, minor byte, keep bool) bool {
	r := &cc.resp
	bw := cc.bw
	bodyless := r.bodyless(isHead)
	chunkOut := false
	if !bodyless && r.length < 0 {
		if minor == 1 {
			chunkOut = true
		} else {
			keep = false
		}
	}
	// The replica's connection outlives this answer only when its body
	// has an end other than the connection's.
	upReuse := !r.closeConn && rd == pc.br && (bodyless || r.chunked || r.length >= 0)

	writeStatusLine(bw, minor, r.status, r.reason)
	for i := range r.fields {
		f := &r.fields[i]
		if (f.kind.hopByHop() && !(f.kind == kTrailer && chunkOut)) || f.kind == kContentLength {
			continue
		}
		bw.Write(f.name)
		bw.WriteString(": ")
		bw.Write(f.value)
		bw.WriteString("\r\n")
	}
	if !r.hasReqID {
		bw.WriteString("X-Request-Id: ")
		bw.Write(reqID)
		bw.WriteString("\r\n")
	}
	if !r.hasDate {
		bw.WriteString("Date: ")
		bw.Write(httpDate())
		bw.WriteString("\r\n")
	}
	if r.length >= 0 {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(cc.num[:0], r.length, 10))
		bw.WriteString("\r\n")
	}
	if chunkOut {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	writeConnection(bw, minor, keep)
	bw.WriteString("\r\n")
	_, _ = rd.Discard(hn)
	rec.Status = r.status

	var rerr, werr error
	switch {
	case bodyless:
	case r.chunked:
		cc.stream = pc
		rec.Bytes, rerr, werr = cc.relayChunked(rd, chunkOut)
	default:
		if r.length < 0 {
			cc.stream = pc
		}
		rec.Bytes, rerr, werr = cc.pump(rd, r.length, chunkOut)
		if rerr == nil && werr == nil && chunkOut {
			_, werr = bw.WriteString("0\r\n\r\n")
		}
	}
	cc.stream = nil
	if cc.watch != nil && cc.watch.stop(cc.conn) {
		cc.watch = nil
		rec.Error = "client went away"
		pc.close(true)
		return false
	}
	cc.watch = nil
	if werr == nil {
		werr = bw.Flush()
	}
	switch {
	case werr != nil:
		rec.Error = fmt.Sprintf("write to client: %v", werr)
		pc.close(true)
		return false
	case rerr != nil:
		// The replica broke off mid-body. Closing the client's connection
		// without the body's end tells it the answer is truncated.
		rec.Error = fmt.Sprintf("read from replica %s: %v", up, rerr)
		cc.s.p.observeFailure(sp, up, failureGateway)
		pc.close(true)
		return false
	}
	if upReuse {
		pc.release(noStop, true)
	} else {
		pc.close(true)
	}
	return keep
}

func writeStatusLine(bw *bufio.Writer, minor byte, status int, reason []byte) {
	if minor == 0 {
		bw.WriteString("HTTP/1.0 ")
	} else {
		bw.WriteString("HTTP/1.1 ")
	}
	bw.WriteByte(byte('0' + status/100))
	bw.WriteByte(byte('0' + status/10%10))
	bw.WriteByte(byte('0' + status%10))
	bw.WriteByte(' ')
	if text := http.StatusText(status); text != "" {
		bw.WriteString(text)
	} else {
		bw.Write(reason)
	}
	bw.WriteString("\r\n")
}

// writeConnection writes the Connection field net/http would: close when
// the connection ends after this answer, keep-alive for an HTTP/1.0 client
// whose connection stays.
func writeConnection(bw *bufio.Writer, minor byte, keep bool) {
	switch {
	case !keep:
		bw.WriteString("Connection: close\r\n")
	case minor == 0:
		bw.WriteString("Connection: keep-alive\r\n")
	}
}

// beforeBlock runs before relaying waits on the replica: what the client
// has not been sent yet goes now, and a body of unknown length (a stream,
// which may pause for long) gets a watch on the client, so that a client
// that leaves ends the relay, as net/http's background read does.
func (cc *clientConn) beforeBlock() error {
	if cc.bw.Buffered() > 0 {
		if err := cc.bw.Flush(); err != nil {
			return err
		}
	}
	if cc.stream != nil && cc.watch == nil {
		cc.watch = watchClient(cc.conn, cc.br, cc.stream)
	}
	return nil
}

// clientWatch waits for the client's connection to end while a stream is
// relayed to it. The relaying goroutine does not read from the client
// meanwhile, so the watch owns the connection's reader.
type clientWatch struct {
	done chan struct{}
	gone bool // set before done is closed
}

// watchClient starts a watch on conn, read through br; when the client
// closes, the replica's connection pc is closed, which ends the relay.
func watchClient(conn net.Conn, br *bufio.Reader, pc *upConn) *clientWatch {
	w := &clientWatch{done: make(chan struct{})}
	// No deadline: a stream may stay quiet for as long as it likes.
	// stop sets one to end the watch.
	_ = conn.SetReadDeadline(time.Time{})
	go func() {
		defer close(w.done)
		// A byte (a pipelined request) ends the watch too, and stays
		// buffered for the next request.
		if _, err := br.Peek(1); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			w.gone = true
			pc.abort()
		}
	}()
	return w
}

// stop ends the watch and reports whether the client went away.
func (w *clientWatch) stop(conn net.Conn) bool {
	_ = conn.SetReadDeadline(aLongTimeAgo)
	<-w.done
	return w.gone
}

// pumpDirect is the body size from which pump reads into a buffer of the
// proxy's own rather than through the connection's smaller one.
const pumpDirect = 32 << 10

// pump copies n bytes of body (n < 0: up to the end of the stream) from rd
// to the client, as chunks when chunk is set. It flushes what it has
// before each read that may block. It returns the body bytes written and
// the read and write errors; a stream that ends before n bytes is a read
// error.
func (cc *clientConn) pump(rd *bufio.Reader, n int64, chunk bool) (written int64, rerr, werr error) {
	bw := cc.bw
	var bufp *[]byte
	defer func() {
		if bufp != nil {
			cc.s.p.copyBuffers().Put(bufp)
		}
	}()
	for n != 0 {
		var b []byte
		fromRd := true
		if rd.Buffered() == 0 {
			if werr = cc.beforeBlock(); werr != nil {
				return written, nil, werr
			}
			if n < 0 || n >= pumpDirect {
				// A large read goes straight into a buffer of our own.
				if bufp == nil {
					bufp = cc.s.p.copyBuffers().Get()
				}
				buf := *bufp
				if n > 0 && int64(len(buf)) > n {
					buf = buf[:n]
				}
				m, err := rd.Read(buf)
				if m == 0 {
					return written, endOfBody(err, n), nil
				}
				b, fromRd = buf[:m], false
			} else if _, err := rd.Peek(1); err != nil {
				return written, endOfBody(err, n), nil
			}
		}
		if fromRd {
			b, _ = rd.Peek(rd.Buffered())
			if n > 0 && int64(len(b)) > n {
				b = b[:n]
			}
		}
		if chunk {
			cc.writeChunkSize(len(b))
		}
		m, err := bw.Write(b)
		if chunk && err == nil {
			_, err = bw.WriteString("\r\n")
		}
		if fromRd {
			_, _ = rd.Discard(len(b))
		}
		written += int64(m)
		if n > 0 {
			n -= int64(len(b))
		}
		if err != nil {
			return written, nil, err
		}
	}
	return written, nil, nil
}

// endOfBody turns the error of a read that returned nothing into pump's
// read error: nil at the end of a body that runs to the end of the
// stream (n < 0), io.ErrUnexpectedEOF for one cut short.
func endOfBody(err error, n int64) error {
	switch {
	case err == io.EOF && n < 0:
		return nil
	case err == nil || err == io.EOF:
		return io.ErrUnexpectedEOF
	}
	return err
}

func (cc *clientConn) writeChunkSize(n int) {
	cc.bw.Write(strconv.AppendInt(cc.num[:0], int64(n), 16))
	cc.bw.WriteString("\r\n")
}

var errBadChunk = errors.New("malformed chunked encoding")

// relayChunked copies a chunked body from rd to the client: re-chunked
// (with its trailer fields) when chunk is set, as plain bytes otherwise.
func (cc *clientConn) relayChunked(rd *bufio.Reader, chunk bool) (written int64, rerr, werr error) {
	bw := cc.bw
	for {
		line, err := cc.readLine(rd)
		if err != nil {
			return written, err, nil
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, ok := parseHex(trimOWS(line))
		if !ok {
			return written, errBadChunk, nil
		}
		if size == 0 {
			if chunk {
				bw.WriteString("0\r\n")
			}
			for {
				line, err := cc.readLine(rd)
				if err != nil {
					return written, err, nil
				}
				if chunk {
					bw.Write(line)
					if _, werr = bw.WriteString("\r\n"); werr != nil {
						return written, nil, werr
					}
				}
				if len(line) == 0 {
					return written, nil, nil
				}
			}
		}
		if chunk {
			cc.writeChunkSize(int(size))
		}
		n, rerr, werr := cc.pump(rd, size, false)
		written += n
		if rerr != nil || werr != nil {
			return written, rerr, werr
		}
		if line, err := cc.readLine(rd); err != nil || len(line) != 0 {
			return written, errBadChunk, nil
		}
		if chunk {
			if _, werr = bw.WriteString("\r\n"); werr != nil {
				return written, nil, werr
			}
		}
	}
}

// readLine reads a CRLF-terminated line of a chunked body, flushing what
// the client has not been sent yet when the line is not all there.
func (cc *clientConn) readLine(rd *bufio.Reader) ([]byte, error) {
	buf, _ := rd.Peek(rd.Buffered())
	if bytes.IndexByte(buf, '\n') < 0 {
		if err := cc.beforeBlock(); err != nil {
			return nil, err
		}
	}
	line, err := rd.ReadSlice('\n')
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err == bufio.ErrBufferFull {
			err = errBadChunk
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errBadChunk
	}
	return line[:len(line)-2], nil
}

// reply answers with a plain-text error of the proxy's own, as
// Proxy.reply does.
func (cc *clientConn) reply(status int, msg string, reqID []byte, rec *RequestRecord, isHead bool, minor byte, keep bool) bool {
	bw := cc.bw
	writeStatusLine(bw, minor, status, nil)
	bw.WriteString("Content-Type: " + replyContentType + "\r\nX-Content-Type-Options: nosniff\r\nX-Request-Id: ")
	bw.Write(reqID)
	bw.WriteString("\r\nDate: ")
	bw.Write(httpDate())
	bw.WriteString("\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(msg) + 1))
	bw.WriteString("\r\n")
	writeConnection(bw, minor, keep)
	bw.WriteString("\r\n")
	rec.Status, rec.Error = status, msg
	if !isHead {
		bw.WriteString(msg)
		bw.WriteByte('\n')
		rec.Bytes = int64(len(msg) + 1)
	}
	if err := bw.Flush(); err != nil {
		return false
	}
	return keep
}

// httpDate returns the current time in the Date field's format, formatted
// at most once a second.
func httpDate() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.text
	}
	d := &cachedDate{sec: sec, text: now.UTC().AppendFormat(make([]byte, 0, len(http.TimeFormat)), http.TimeFormat)}
	dateCache.Store(d)
	return d.text
}

type cachedDate struct {
	sec  int64
	text []byte
}

var dateCache atomic.Pointer[cachedDate]
