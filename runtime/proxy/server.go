package proxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a Server.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
)

// clientReadBuffer bounds a request head on the fast path; a longer head
// goes to net/http, which takes up to http.DefaultMaxHeaderBytes.
// clientWriteBuffer holds a response's head and, for small bodies, the
// body too, so that a typical answer leaves in one write.
const (
	clientReadBuffer  = 8 << 10
	clientWriteBuffer = 8 << 10
)

// ServerOptions tunes a Server. The zero value takes the defaults.
type ServerOptions struct {
	// ReadHeaderTimeout bounds reading a request's head once its first
	// byte arrived; 0 means DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sent no request
	// for this long; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// DisableFastPath hands every connection to net/http, as a Proxy
	// with a custom transport does: the switch that tells the fast path's
	// worth, or rules it out when a difference is suspected.
	DisableFastPath bool
}

// Server serves a Proxy on listeners, as an http.Server with the proxy as
// its handler would, but faster.
//
// Most requests a gateway sees have one shape: HTTP/1.x, an origin-form
// path, no body and no upgrade. The Server reads and forwards those itself
// (the fast path): it parses the head in place, writes the upstream request
// straight from it, parses the answer's head in place and relays it, with
// the proxy's routing, balancing, retries, passive health checks, request
// IDs, trace context and records, and without allocating per request or
// handing the request between goroutines. Everything else, from a request
// with a body to a WebSocket upgrade or a malformed head, goes to an
// http.Server running the Proxy as its handler: the connection is handed
// over, bytes already read included, for the rest of its life. So are
// requests the fast path would answer with an error of the proxy's own (no
// route, no replica available, a service held while it scales up from
// zero), which keeps one implementation of each.
//
// Unlike net/http, the fast path does not watch the client's connection
// until a replica's answer starts: a client that goes away then is noticed
// when its answer is written, and the route's timeout bounds the wait.
// While it relays a body of unknown length, which may pause for as long as
// the replica likes, it watches, and a client that leaves ends the
// replica's request.
//
// A Proxy with a custom Options.Transport has no fast path: every
// connection goes to net/http.
type Server struct {
	p    *Proxy
	t    *upstreamTransport // nil: no fast path
	opts ServerOptions
	std  *http.Server
	q    *connQueue

	scratches sync.Pool // *scratch

	mu     sync.Mutex
	lns    map[net.Listener]struct{}
	conns  map[*clientConn]struct{}
	closed atomic.Bool
	start  sync.Once

	fast, handedOff atomic.Uint64
}

// NewServer returns a Server for p.
func NewServer(p *Proxy, opts ServerOptions) *Server {
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	s := &Server{
		p:     p,
		opts:  opts,
		std:   &http.Server{Handler: p, ReadHeaderTimeout: opts.ReadHeaderTimeout, IdleTimeout: opts.IdleTimeout, ConnContext: connContext},
		q:     newConnQueue(),
		lns:   map[net.Listener]struct{}{},
		conns: map[*clientConn]struct{}{},
	}
	if !opts.DisableFastPath {
		s.t, _ = p.transport.(*upstreamTransport)
	}
	s.scratches.New = func() any {
		return &scratch{br: bufio.NewReaderSize(nil, clientReadBuffer), bw: bufio.NewWriterSize(nil, clientWriteBuffer)}
	}
	return s
}

// FastRequests returns how many requests the fast path has served.
func (s *Server) FastRequests() uint64 { return s.fast.Load() }

// HandedOff returns how many connections went to net/http.
func (s *Server) HandedOff() uint64 { return s.handedOff.Load() }

// Serve accepts connections on ln until Shutdown or Close, then returns
// http.ErrServerClosed. Any other accept error ends it and is returned.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()
	s.start.Do(func() {
		go func() { _ = s.std.Serve(s.q) }()
	})

	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closed.Load() {
				return http.ErrServerClosed
			}
			// As net/http: back off on errors such as running out of
			// file descriptors rather than spinning or giving up.
			if isTemporaryAccept(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if s.t == nil {
			s.handOff(newHandedOffConn(c, nil, time.Time{}))
			continue
		}
		cc := &clientConn{s: s, conn: c, port: localPort(c)}
		if !s.track(cc) {
			_ = c.Close()
			return http.ErrServerClosed
		}
		go cc.serve()
	}
}

// isTemporaryAccept reports accept errors worth retrying, as net/http's
// Serve does through the deprecated Temporary method.
func isTemporaryAccept(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

func (s *Server) track(cc *clientConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return false
	}
	s.conns[cc] = struct{}{}
	return true
}

func (s *Server) untrack(cc *clientConn) {
	s.mu.Lock()
	delete(s.conns, cc)
	s.mu.Unlock()
}

// handOff gives a connection to the net/http server for good.
func (s *Server) handOff(c net.Conn) {
	s.handedOff.Add(1)
	if !s.q.push(c) {
		_ = c.Close()
	}
}

// Shutdown stops the Server gracefully, as http.Server.Shutdown does: it
// closes the listeners and the idle connections, then waits for the
// requests in progress to finish and their connections to close, or for
// ctx to end, whose error it then returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed.Store(true)
	for ln := range s.lns {
		_ = ln.Close()
	}
	s.mu.Unlock()
	std := make(chan error, 1)
	go func() { std <- s.std.Shutdown(ctx) }()
	s.q.close()

	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		for cc := range s.conns {
			cc.closeIfIdle()
		}
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return <-std
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close stops the Server at once: listeners and connections are closed,
// requests in progress fail.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed.Store(true)
	for ln := range s.lns {
		_ = ln.Close()
	}
	for cc := range s.conns {
		_ = cc.conn.Close()
	}
	s.mu.Unlock()
	s.q.close()
	return s.std.Close()
}

// connQueue is the net.Listener the net/http server accepts handed-off
// connections from.
type connQueue struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnQueue() *connQueue {
	return &connQueue{ch: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to the accepting server; false when the queue is closed.
func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) close() { q.once.Do(func() { close(q.done) }) }

func (q *connQueue) Close() error { q.close(); return nil }

func (q *connQueue) Addr() net.Addr { return queueAddr{} }

type queueAddr struct{}

func (queueAddr) Network() string { return "handoff" }
func (queueAddr) String() string  { return "handoff" }

// bufferedConn is a handed-off connection: reads drain the bytes the fast
// path already took from the socket first. Every byte net/http reads goes
// through a framingWatch, so the handler can tell a request after which
// the connection must close (see mustCloseAfter).
type bufferedConn struct {
	net.Conn
	r     *bufio.Reader
	watch framingWatch
	// served counts the requests the handler has seen on the connection.
	served atomic.Int64
	// headDeadline bounds the head net/http reads first: it gets only the
	// time left of the header timeout that was running when the fast path
	// gave the head up, not a new one. Zero once applied.
	mu           sync.Mutex
	headDeadline time.Time
}

// newHandedOffConn wraps a connection for net/http; r (nil for none)
// holds what the fast path read of it, and headDeadline (zero for none)
// bounds its first head.
func newHandedOffConn(c net.Conn, r *bufio.Reader, headDeadline time.Time) *bufferedConn {
	return &bufferedConn{Conn: c, r: r, headDeadline: headDeadline}
}

// Read drains the fast path's buffer, then reads the socket directly; the
// buffer is let go once empty. net/http serializes its reads.
func (c *bufferedConn) Read(p []byte) (n int, err error) {
	if c.r != nil && c.r.Buffered() > 0 {
		n, err = c.r.Read(p)
	} else {
		c.r = nil
		n, err = c.Conn.Read(p)
	}
	c.watch.feed(p[:n])
	return n, err
}

// SetReadDeadline applies net/http's deadlines, the first one (its header
// timeout, set when it starts on the connection) no later than the
// fast path's.
func (c *bufferedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	if hd := c.headDeadline; !hd.IsZero() {
		if t.IsZero() || t.After(hd) {
			t = hd
		}
		c.headDeadline = time.Time{}
	}
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// connKey is the context key of a request's handed-off connection.
type connKey struct{}

// connContext gives each request of a handed-off connection its
// connection, for mustCloseAfter and stopWatch.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if port := localPort(c); port > 0 {
		ctx = context.WithValue(ctx, portKey{}, port)
	}
	if bc, ok := c.(*bufferedConn); ok {
		return context.WithValue(ctx, connKey{}, bc)
	}
	return ctx
}

// portKey holds, in a handed-off connection's context, the local port it
// arrived on, which selects a listener's route.
type portKey struct{}

// localPort is the local TCP port of c, 0 when it has none.
func localPort(c net.Conn) int {
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// mustCloseAfter counts a request of a handed-off connection and reports
// whether the connection must close after its answer: RFC 9112 section
// 6.1 asks that of a request with both Transfer-Encoding and
// Content-Length, and of an HTTP/1.0 request with Transfer-Encoding.
// net/http hides both from the handler and keeps the connection open, so
// the connection's framingWatch tells. net/http reads ahead, so the watch
// may already know of a later pipelined request: the close waits for that
// request's own answer.
func mustCloseAfter(r *http.Request) bool {
	bc, _ := r.Context().Value(connKey{}).(*bufferedConn)
	if bc == nil {
		return false
	}
	n := bc.served.Add(1)
	at := bc.watch.closeHead()
	return at != 0 && int64(at) <= n
}

// stopWatch ends the framing watch of a request's connection, whose
// bytes stop being HTTP requests (the protocol was switched).
func stopWatch(r *http.Request) {
	if bc, _ := r.Context().Value(connKey{}).(*bufferedConn); bc != nil {
		bc.watch.stop()
	}
}
