package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Limits of the proxy's own transport.
const (
	// maxIdlePerHost bounds the idle connections kept for one replica. A
	// gateway talks to few hosts at high rates, so the bound is generous;
	// the pool only grows to the peak number of requests in flight.
	maxIdlePerHost = 1024
	// idleConnTimeout closes connections that sat unused this long, so
	// the pool shrinks back after a burst and sockets to replicas that
	// went away are not kept open.
	idleConnTimeout = 90 * time.Second
	// connReadBuffer and connWriteBuffer size the buffers of each
	// connection. The reader holds a response's headers (bodies are
	// copied with the proxy's own larger buffers, which bypass it); the
	// writer holds the request's headers and, for small bodies, the body
	// too, so that a typical request leaves in one write.
	connReadBuffer  = 4 << 10
	connWriteBuffer = 8 << 10
	// maxResponseHeader bounds a response's status line and headers, as
	// http.Server's DefaultMaxHeaderBytes bounds a request's: a broken
	// replica must not make the proxy buffer without end.
	maxResponseHeader = 1 << 20
	// max1xx bounds the informational responses skipped before the final
	// one, as http.Transport does.
	max1xx = 5
	// maxSequentialBody is the largest request body written before the
	// response is read, on the calling goroutine. It fits in the kernel's
	// socket buffers, so writing it cannot block on a replica that answers
	// before reading. Larger or streamed bodies are written by a goroutine
	// of their own while the response is read, so an early answer (413, a
	// redirect) arrives and a full-duplex stream keeps flowing.
	maxSequentialBody = 64 << 10
	// writerGrace is how long a finished response waits for the writer of
	// its request body before giving up the connection, as http.Transport
	// waits before reusing one.
	writerGrace = 50 * time.Millisecond
)

var (
	errHeaderTooLarge     = fmt.Errorf("response headers exceed %d bytes", maxResponseHeader)
	errBodyReadAfterClose = errors.New("read on closed response body")
)

// upstreamTransport is the proxy's RoundTripper for ordinary requests:
// HTTP/1.1 over TCP to replicas, with the request written and the response
// read on the calling goroutine, over a LIFO pool of keep-alive
// connections per replica address.
//
// It exists because http.Transport was the gateway's main cost: its
// per-connection read and write goroutines hand every request over twice,
// it allocates heavily per request, and its dialing races open far more
// connections than there are requests in flight. Here a request takes an
// idle connection (or dials one), writes, reads, and gives the connection
// back when the response body reaches EOF, so connections never outnumber
// requests in flight.
//
// Without a goroutine reading each idle connection, the pool looks at a
// connection when it hands it out: one with anything waiting to be read
// is dropped. A byte waiting is an answer nobody asked for (a replica that
// wrote more than the answer to its last request, which would otherwise
// become the next client's answer), and the end of the stream means the
// replica closed it. A request on a reused connection that still fails
// before any byte of an answer arrives (the replica closed it just then)
// is sent again, once, on a new connection, when its body can be sent
// again and either no byte of it was written or it is idempotent; a body
// that cannot be sent again (a streamed one) always goes on a new
// connection.
//
// Upgrade requests (WebSocket) and anything but plain http go to an
// http.Transport, which hands the proxy the switched connection as the
// body of a 101 answer.
type upstreamTransport struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	other       *http.Transport
	maxIdle     int
	idleTimeout time.Duration

	readers sync.Pool // *bufio.Reader
	writers sync.Pool // *bufio.Writer
	// exclude is the set of header fields writeBodyless writes itself.
	exclude map[string]bool

	// hosts maps a replica address to its pool. It is copied on write:
	// the request path reads it with one atomic load, and new addresses
	// are rare (a replica started).
	hosts   atomic.Pointer[map[string]*hostPool]
	hostsMu sync.Mutex
}

// newUpstreamTransport returns the proxy's transport; dialTimeout bounds
// connecting to a replica.
func newUpstreamTransport(dialTimeout time.Duration) *upstreamTransport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	t := &upstreamTransport{
		dial:        d.DialContext,
		other:       newHTTPTransport(d),
		maxIdle:     maxIdlePerHost,
		idleTimeout: idleConnTimeout,
		exclude:     map[string]bool{"Host": true, "User-Agent": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true},
	}
	t.readers.New = func() any { return bufio.NewReaderSize(nil, connReadBuffer) }
	t.writers.New = func() any { return bufio.NewWriterSize(nil, connWriteBuffer) }
	return t
}

// newHTTPTransport keeps many idle connections per replica, because a
// gateway talks to few hosts at high rates, and leaves bodies as they are:
// the client negotiates compression with the replica.
func newHTTPTransport(d *net.Dialer) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialUpstream(ctx, d.DialContext, network, addr)
		},
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       idleConnTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		// Bodies are copied with the proxy's own pooled buffers; the
		// connection buffers only hold headers and small reads.
		ReadBufferSize:  8 << 10,
		WriteBufferSize: 8 << 10,
	}
}

// CloseIdleConnections closes the pooled connections of every replica.
// Connections in use are closed or pooled when their request ends.
func (t *upstreamTransport) CloseIdleConnections() {
	if m := t.hosts.Load(); m != nil {
		for _, hp := range *m {
			hp.closeIdle()
		}
	}
	t.other.CloseIdleConnections()
}

// RoundTrip implements http.RoundTripper. Errors keep the shape the proxy
// classifies: a failed dial is a *net.OpError with Op "dial"; anything
// else means the connection broke.
func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Host == "" {
		return nil, errors.New("request to a replica without a host")
	}
	if req.Method == http.MethodConnect {
		return nil, errors.New("CONNECT is not forwarded to replicas")
	}
	if req.URL.Scheme != "http" || isUpgradeRequest(req.Header) {
		return t.other.RoundTrip(req)
	}
	ctx := req.Context()
	addr := req.URL.Host
	if !hasPort(addr) {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "80")
	}
	hp := t.pool(addr)
	hasBody := req.Body != nil && req.Body != http.NoBody
	replayable := !hasBody || req.GetBody != nil
	idempotent := isIdempotent(req)
	// A body that cannot be sent twice must not meet a stale connection.
	fresh := !replayable
	for retried := false; ; retried = true {
		pc, err := t.conn(ctx, hp, fresh)
		if err != nil {
			if hasBody {
				_ = req.Body.Close()
			}
			return nil, err
		}
		resp, stale, err := pc.roundTrip(ctx, req)
		if err == nil {
			return resp, nil
		}
		sent := pc.sent.Load()
		if retried || !replayable || ctx.Err() != nil || !mayResend(pc.reused, sent, stale, idempotent) {
			if !sent {
				return nil, &notSentError{err}
			}
			return nil, err
		}
		// The replica closed the connection as it was reused: send the
		// request again, on a connection of its own, with a rewound body.
		if hasBody {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			r2 := *req
			r2.Body = body
			req = &r2
		}
		fresh = true
	}
}

// notSentError is the failure of a try that wrote no byte of its request:
// the replica cannot have acted on it, so it may go to another replica
// whatever its method.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// isNotSent reports whether err is a notSentError.
func isNotSent(err error) bool {
	var ns *notSentError
	return errors.As(err, &ns)
}

// isUpgradeRequest reports whether a request asks to switch protocols.
func isUpgradeRequest(h http.Header) bool {
	return len(h[hdrUpgrade]) > 0 && hasToken(h[hdrConnection], "upgrade")
}

// hasPort reports whether a URL host has a port.
func hasPort(host string) bool {
	i := strings.LastIndexByte(host, ':')
	return i >= 0 && i > strings.LastIndexByte(host, ']')
}

// pool returns the pool of a replica address, creating it.
func (t *upstreamTransport) pool(addr string) *hostPool {
	if m := t.hosts.Load(); m != nil {
		if hp := (*m)[addr]; hp != nil {
			return hp
		}
	}
	t.hostsMu.Lock()
	defer t.hostsMu.Unlock()
	old := t.hosts.Load()
	if old != nil {
		if hp := (*old)[addr]; hp != nil {
			return hp
		}
	}
	next := make(map[string]*hostPool, 1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	hp := &hostPool{t: t, addr: addr}
	next[addr] = hp
	t.hosts.Store(&next)
	return hp
}

// conn returns an idle connection of the pool, or dials one.
func (t *upstreamTransport) conn(ctx context.Context, hp *hostPool, fresh bool) (*upConn, error) {
	if !fresh {
		if pc := hp.get(); pc != nil {
			return pc, nil
		}
	}
	c, err := dialUpstream(ctx, t.dial, "tcp", hp.addr)
	if err != nil {
		return nil, err
	}
	pc := &upConn{t: t, pool: hp, conn: c, headerLeft: math.MaxInt64}
	pc.abort = func() { _ = c.Close() }
	pc.peek.init(c)
	pc.br = t.readers.Get().(*bufio.Reader)
	pc.br.Reset(pc)
	pc.bw = t.writers.Get().(*bufio.Writer)
	pc.bw.Reset(pc)
	return pc, nil
}

// hostPool holds the idle connections to one replica, oldest first.
// Requests take the newest, so under steady load the same few connections
// stay warm and the rest age out.
type hostPool struct {
	t    *upstreamTransport
	addr string
	mu   sync.Mutex
	idle []*upConn
	// reaper closes expired connections of a pool nobody takes from; it
	// is armed while idle is not empty.
	reaper *time.Timer
	armed  bool
}

// get takes the newest idle connection that is still quiet (see
// upstreamTransport), closing the others it meets. When the newest
// expired, so did every older one: the pool is emptied and get returns
// nil.
func (hp *hostPool) get() *upConn {
	for {
		pc, expired := hp.take()
		if expired != nil {
			for _, pc := range expired {
				pc.close(true)
			}
			return nil
		}
		if pc == nil || pc.quiet() {
			return pc
		}
		pc.close(true)
	}
}

// take pops the newest idle connection, or empties the pool and returns
// its connections as expired when the newest has expired.
func (hp *hostPool) take() (pc *upConn, expired []*upConn) {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	n := len(hp.idle)
	if n == 0 {
		return nil, nil
	}
	pc = hp.idle[n-1]
	if time.Since(pc.idleAt) < hp.t.idleTimeout {
		hp.idle[n-1] = nil
		hp.idle = hp.idle[:n-1]
		return pc, nil
	}
	expired = hp.idle
	hp.idle = nil
	return nil, expired
}

// put makes a connection idle, or closes it when the pool is full.
func (hp *hostPool) put(pc *upConn) {
	pc.idleAt = time.Now()
	pc.reused = true
	hp.mu.Lock()
	if len(hp.idle) >= hp.t.maxIdle {
		hp.mu.Unlock()
		pc.close(true)
		return
	}
	hp.idle = append(hp.idle, pc)
	if !hp.armed {
		hp.armed = true
		if hp.reaper == nil {
			hp.reaper = time.AfterFunc(hp.t.idleTimeout, hp.reap)
		} else {
			hp.reaper.Reset(hp.t.idleTimeout)
		}
	}
	hp.mu.Unlock()
}

// reap closes the connections idle for longer than the timeout and
// re-arms itself for the oldest one left.
func (hp *hostPool) reap() {
	now := time.Now()
	hp.mu.Lock()
	k := 0
	for k < len(hp.idle) && now.Sub(hp.idle[k].idleAt) >= hp.t.idleTimeout {
		k++
	}
	expired := make([]*upConn, k)
	copy(expired, hp.idle[:k])
	n := copy(hp.idle, hp.idle[k:])
	clear(hp.idle[n:])
	hp.idle = hp.idle[:n]
	if n > 0 {
		hp.reaper.Reset(hp.idle[0].idleAt.Add(hp.t.idleTimeout).Sub(now))
	} else {
		hp.armed = false
	}
	hp.mu.Unlock()
	for _, pc := range expired {
		pc.close(true)
	}
}

// closeIdle closes every idle connection of the pool.
func (hp *hostPool) closeIdle() {
	hp.mu.Lock()
	idle := hp.idle
	hp.idle = nil
	if hp.armed {
		hp.reaper.Stop()
		hp.armed = false
	}
	hp.mu.Unlock()
	for _, pc := range idle {
		pc.close(true)
	}
}

// upConn is one connection to a replica. It belongs to one request at a
// time, from the moment it leaves the pool until its response body ends;
// only its abort function runs on another goroutine.
type upConn struct {
	t      *upstreamTransport
	pool   *hostPool
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	reused bool
	// abort closes the connection when the request's context ends, which
	// unblocks any read or write in progress. It is built once per
	// connection so registering it costs no closure per request.
	abort func()
	// headerLeft is what the reader may still take before the response
	// headers are parsed; unlimited otherwise.
	headerLeft int64
	// wrote, when the body is written by a goroutine of its own, receives
	// that write's outcome.
	wrote chan error
	// sent is set once any byte of the current request reached the
	// connection; from then on the replica may have acted on it.
	sent atomic.Bool
	// peek looks at the socket without reading it (see quiet).
	peek sockPeek
}

// Read feeds the connection's bufio.Reader, enforcing maxResponseHeader
// while the headers are read.
func (pc *upConn) Read(p []byte) (int, error) {
	if pc.headerLeft <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > pc.headerLeft {
		p = p[:pc.headerLeft]
	}
	n, err := pc.conn.Read(p)
	pc.headerLeft -= int64(n)
	return n, err
}

// Write feeds the connection from its bufio.Writer. It hides the
// connection's ReadFrom, which for a body that is not a file or socket
// would copy through a fresh 32 KiB buffer: the bufio.Writer's own buffer
// does as well.
func (pc *upConn) Write(p []byte) (int, error) {
	n, err := pc.conn.Write(p)
	if n > 0 {
		pc.sent.Store(true)
	}
	return n, err
}

// quiet reports whether nothing waits to be read on an idle connection,
// neither a byte nor the end of the stream, so that it can carry a
// request.
func (pc *upConn) quiet() bool {
	return pc.br.Buffered() == 0 && pc.peek.quiet()
}

// bufferedWriter hides the *bufio.Writer type from Request.Write while
// keeping it buffered: Request.Write flushes the headers on their own
// before a body it does not know to be in memory, and for a small body
// that would cost a second write.
type bufferedWriter struct{ *bufio.Writer }

// roundTrip sends a request on the connection and reads the answer's
// headers. On failure the connection is closed, and stale reports whether
// the replica may have closed it while idle: the write failed, or the
// read ended before any byte of an answer.
func (pc *upConn) roundTrip(ctx context.Context, req *http.Request) (resp *http.Response, stale bool, err error) {
	stop := noStop
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, pc.abort)
	}
	pc.sent.Store(false)
	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody && (req.GetBody == nil || req.ContentLength < 0 || req.ContentLength > maxSequentialBody) {
		pc.wrote = make(chan error, 1)
		go pc.writeAsync(req, pc.bw, pc.wrote)
	} else {
		var err error
		if hasBody {
			err = req.Write(bufferedWriter{pc.bw})
		} else {
			err = writeBodyless(pc.bw, req, pc.t.exclude)
		}
		if err == nil {
			err = pc.bw.Flush()
		}
		if err != nil {
			pc.release(stop, false)
			return nil, true, pc.ioError(ctx, "write request to", err)
		}
	}

	pc.headerLeft = maxResponseHeader
	if _, err := pc.br.Peek(1); err != nil {
		pc.release(stop, false)
		return nil, isClosedByPeer(err), pc.ioError(ctx, "read response from", err)
	}
	for n := 0; ; n++ {
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			pc.release(stop, false)
			return nil, false, pc.ioError(ctx, "read response from", err)
		}
		code := resp.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			break
		}
		if n == max1xx {
			pc.release(stop, false)
			return nil, false, fmt.Errorf("read response from %s: more than %d informational responses", pc.pool.addr, max1xx)
		}
	}
	pc.headerLeft = math.MaxInt64

	// The connection can carry another request when neither side asked to
	// close it (resp.Close also covers HTTP/1.0 without keep-alive) and
	// the protocol was not switched under it.
	reuse := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
	if resp.Body == http.NoBody {
		pc.release(stop, reuse)
		return resp, false, nil
	}
	resp.Body = &upBody{pc: pc, body: resp.Body, stop: stop, reuse: reuse}
	return resp, false, nil
}

// writeAsync writes a request whose body is large or streamed, on a
// goroutine of its own, and reports the outcome on done. It ends when the
// body is written or the connection is closed. When the body itself fails
// (the client's stream broke, or a size limit cut it), no answer can come:
// the replica waits for the rest. Closing the connection then ends the
// read at once, as http.Transport's write error does.
func (pc *upConn) writeAsync(req *http.Request, bw *bufio.Writer, done chan<- error) {
	body := &trackedBody{ReadCloser: req.Body}
	out := *req
	out.Body = body
	err := out.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if body.err != nil {
		pc.abort()
	}
	done <- err
}

// trackedBody remembers the first error of a request body other than EOF,
// telling a failure of the body from one of the connection.
type trackedBody struct {
	io.ReadCloser
	err error
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// ioError describes a failed read or write, naming the context's error
// when the context ended (its callback closed the connection).
func (pc *upConn) ioError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return fmt.Errorf("%s %s: %w", op, pc.pool.addr, err)
}

// isClosedByPeer reports whether a read error means the other side closed
// the connection.
func isClosedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED)
}

func noStop() bool { return true }

// release ends the connection's request: it goes back to the pool when
// reuse allows, the context did not end, the body writer (if any) has
// finished cleanly and no unread byte waits; otherwise it is closed.
func (pc *upConn) release(stop func() bool, reuse bool) {
	if !stop() {
		reuse = false // the context's callback closes the connection
	}
	writerDone := true
	if pc.wrote != nil {
		done, err := pc.writeResult(reuse)
		writerDone, reuse = done, reuse && done && err == nil
		pc.wrote = nil
	}
	if reuse && pc.br.Buffered() == 0 {
		pc.pool.put(pc)
		return
	}
	pc.close(writerDone)
}

// writeResult returns the outcome of the body writer, if it has finished.
// When the connection could be reused, it waits a little: the replica
// may have read the whole body and answered before the writer got to
// report. A writer still busy after that is writing a body the replica
// did not want, and closing the connection ends it.
func (pc *upConn) writeResult(wait bool) (done bool, err error) {
	select {
	case err := <-pc.wrote:
		return true, err
	default:
	}
	if !wait {
		return false, nil
	}
	timer := time.NewTimer(writerGrace)
	defer timer.Stop()
	select {
	case err := <-pc.wrote:
		return true, err
	case <-timer.C:
		return false, nil
	}
}

// close closes the connection and gives its buffers back; the write buffer
// only when no writer goroutine may still use it.
func (pc *upConn) close(writerDone bool) {
	_ = pc.conn.Close()
	pc.br.Reset(nil)
	pc.t.readers.Put(pc.br)
	if writerDone {
		pc.bw.Reset(nil)
		pc.t.writers.Put(pc.bw)
	}
	pc.br, pc.bw = nil, nil
}

// upBody is a response body that releases its connection at EOF: to the
// pool when the exchange allows reuse. Closing it before EOF closes the
// connection rather than reading what is left, which could be endless. Read
// and Close must not be called concurrently; cancelling the request's
// context aborts a Read.
type upBody struct {
	pc    *upConn
	body  io.ReadCloser
	stop  func() bool
	reuse bool
	err   error // returned by reads once the connection is released
}

func (b *upBody) Read(p []byte) (int, error) {
	if b.pc == nil {
		return 0, b.err
	}
	n, err := b.body.Read(p)
	switch {
	case err == nil:
	case err == io.EOF:
		b.finish(b.reuse, io.EOF)
	default:
		b.finish(false, err)
	}
	return n, err
}

// Close implements io.Closer.
func (b *upBody) Close() error {
	if b.pc != nil {
		b.finish(false, errBodyReadAfterClose)
	}
	return nil
}

func (b *upBody) finish(reuse bool, err error) {
	pc := b.pc
	b.pc, b.err = nil, err
	pc.release(b.stop, reuse)
}

// defaultUserAgent is what Request.Write sends when a request has no
// User-Agent field.
const defaultUserAgent = "Go-http-client/1.1"

// writeBodyless writes a request without a body, the common case, as
// Request.Write would write it, byte for byte, but without its formatted
// prints and per-request allocations. Requests of an unusual shape (a
// Connection: close, trailers or transfer codings, an opaque URL, a host
// or User-Agent needing cleaning) are left to Request.Write.
func writeBodyless(bw *bufio.Writer, req *http.Request, exclude map[string]bool) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	query := req.URL.ForceQuery || req.URL.RawQuery != ""
	ua, hasUA := req.Header["User-Agent"]
	if req.Close || req.TransferEncoding != nil || req.Trailer != nil || req.URL.Opaque != "" ||
		!plainHost(host) || hasCTL(path) || hasCTL(req.URL.RawQuery) ||
		(hasUA && len(ua) > 0 && strings.ContainsAny(ua[0], "\r\n")) {
		return req.Write(bw)
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(path)
	if query {
		bw.WriteByte('?')
		bw.WriteString(req.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	switch {
	case !hasUA:
		bw.WriteString("User-Agent: " + defaultUserAgent + "\r\n")
	case len(ua) > 0 && ua[0] != "":
		bw.WriteString("User-Agent: ")
		bw.WriteString(textproto.TrimString(ua[0]))
		bw.WriteString("\r\n")
	}
	// As Request.Write: many servers expect a length on these methods.
	if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		bw.WriteString("Content-Length: 0\r\n")
	}
	if err := req.Header.WriteSubset(bw, exclude); err != nil {
		return err
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// plainHost reports whether a Host value is made only of bytes that need
// no cleaning or checking (letters, digits and . - _ : [ ]).
func plainHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// hasCTL reports whether s holds an ASCII control byte, which
// Request.Write refuses in a URL.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}
