package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// countingListener counts the connections a test server accepts.
type countingListener struct {
	net.Listener
	accepts atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepts.Add(1)
	}
	return c, err
}

// countedServer is an httptest server whose accepted connections are
// counted.
type countedServer struct {
	*httptest.Server
	ln *countingListener
}

func (s *countedServer) accepts() int64 { return s.ln.accepts.Load() }

func startCounted(t *testing.T, h http.HandlerFunc) *countedServer {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	ln := &countingListener{Listener: srv.Listener}
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return &countedServer{Server: srv, ln: ln}
}

// rawServer accepts connections on 127.0.0.1 and hands each to serve, for
// replicas that misbehave in ways net/http's server will not.
type rawServer struct {
	ln      net.Listener
	accepts atomic.Int64
	// closed counts the connections serve returned from and the server
	// closed.
	closed atomic.Int64
}

// waitClosed waits until n connections are closed by the server.
func (s *rawServer) waitClosed(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.closed.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("the server closed %d connections, want %d", s.closed.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func startRaw(t *testing.T, serve func(n int64, c net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := s.accepts.Add(1)
			wg.Go(func() {
				defer s.closed.Add(1)
				defer c.Close()
				serve(n, c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return s
}

func (s *rawServer) addr() string { return s.ln.Addr().String() }

func newTestTransport(t *testing.T) *upstreamTransport {
	t.Helper()
	tr := newUpstreamTransport(time.Second)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// send makes a request to addr through tr and returns the response with
// its body read in full.
func send(t *testing.T, tr http.RoundTripper, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read body of %s %s: %v", req.Method, req.URL, err)
	}
	return resp, string(body)
}

func newReq(t *testing.T, method, addr, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func idleCount(tr *upstreamTransport, addr string) int {
	hp := tr.pool(addr)
	hp.mu.Lock()
	defer hp.mu.Unlock()
	return len(hp.idle)
}

func TestTransportReusesOneConnection(t *testing.T) {
	srv := startCounted(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.RequestURI(), len(body))
	})
	addr := srv.Listener.Addr().String()
	tr := newTestTransport(t)
	for i := range 20 {
		var body io.Reader
		method := http.MethodGet
		if i%2 == 1 {
			method, body = http.MethodPost, strings.NewReader("0123456789")
		}
		_, got := send(t, tr, newReq(t, method, addr, fmt.Sprintf("/r/%d?q=%d", i, i), body))
		want := fmt.Sprintf("%s /r/%d?q=%d 0", method, i, i)
		if body != nil {
			want = want[:len(want)-1] + "10"
		}
		if got != want {
			t.Fatalf("request %d: got %q, want %q", i, got, want)
		}
	}
	if got := srv.accepts(); got != 1 {
		t.Errorf("20 sequential requests used %d connections, want 1", got)
	}
	if got := idleCount(tr, addr); got != 1 {
		t.Errorf("%d idle connections, want 1", got)
	}
}

// oneShot answers one request per connection and then closes it without
// saying so, as a replica whose idle timeout has passed does.
func oneShot(n int64, c net.Conn) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	body, _ := io.ReadAll(req.Body)
	msg := fmt.Sprintf("conn %d: %s %q", n, req.Method, body)
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
}

func TestTransportRetriesStaleConnection(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		body    string
		getBody bool // whether the body can be replayed
		want    string
		// whether the stale connection was left in the pool untried
		wantUntried bool
	}{
		{name: "GET", method: "GET", want: `conn 2: GET ""`},
		{name: "POST with replayable body", method: "POST", body: "order", getBody: true, want: `conn 2: POST "order"`},
		{name: "streamed body goes on a fresh connection", method: "PUT", body: "stream", want: `conn 2: PUT "stream"`, wantUntried: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRaw(t, oneShot)
			tr := newTestTransport(t)
			if _, got := send(t, tr, newReq(t, "GET", srv.addr(), "/", nil)); got != `conn 1: GET ""` {
				t.Fatalf("first request: %q", got)
			}
			hp := tr.pool(srv.addr())
			if idleCount(tr, srv.addr()) != 1 {
				t.Fatal("first connection not pooled")
			}
			stale := hp.idle[0]
			var body io.Reader
			if tt.body != "" {
				body = io.MultiReader(strings.NewReader(tt.body)) // no GetBody
			}
			req := newReq(t, tt.method, srv.addr(), "/", body)
			if tt.getBody {
				req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(tt.body)), nil }
				req.ContentLength = int64(len(tt.body))
			}
			if _, got := send(t, tr, req); got != tt.want {
				t.Errorf("second request: %q, want %q", got, tt.want)
			}
			if got := srv.accepts.Load(); got != 2 {
				t.Errorf("%d connections accepted, want 2", got)
			}
			hp.mu.Lock()
			untried := slices.Contains(hp.idle, stale)
			hp.mu.Unlock()
			if untried != tt.wantUntried {
				t.Errorf("stale connection left untried: %v, want %v", untried, tt.wantUntried)
			}
		})
	}
}

func TestTransportStaleNotRetriedTwice(t *testing.T) {
	// Every connection is answered once and then closed: the retry on a
	// fresh connection works, and a fresh connection that breaks is not
	// retried again.
	var hangUp atomic.Bool
	srv := startRaw(t, func(n int64, c net.Conn) {
		if hangUp.Load() {
			http.ReadRequest(bufio.NewReader(c))
			return
		}
		oneShot(n, c)
	})
	tr := newTestTransport(t)
	send(t, tr, newReq(t, "GET", srv.addr(), "/", nil))
	hangUp.Store(true)
	_, err := tr.RoundTrip(newReq(t, "GET", srv.addr(), "/", nil))
	if err == nil || isDialError(err) {
		t.Fatalf("got %v, want a broken connection", err)
	}
	if got := srv.accepts.Load(); got != 2 {
		t.Errorf("%d connections accepted, want 2 (one retry)", got)
	}
}

func TestTransportErrorsClassify(t *testing.T) {
	tr := newTestTransport(t)
	_, err := tr.RoundTrip(newReq(t, "POST", refusedAddr(t), "/", strings.NewReader("x")))
	if !isDialError(err) {
		t.Errorf("refused connection: %v is not a dial error", err)
	}

	srv := startRaw(t, func(_ int64, c net.Conn) { http.ReadRequest(bufio.NewReader(c)) })
	_, err = tr.RoundTrip(newReq(t, "POST", srv.addr(), "/", strings.NewReader("x")))
	if err == nil || isDialError(err) || !errors.Is(err, io.EOF) {
		t.Errorf("hang-up on a fresh connection: got %v, want a broken connection with EOF", err)
	}
	if got := srv.accepts.Load(); got != 1 {
		t.Errorf("a fresh connection that broke was tried %d times, want 1", got)
	}
}

func TestTransportConnectionClose(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		close   bool // the request asks to close
	}{
		{name: "response Connection: close", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		}},
		{name: "request Close", close: true, handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "bye")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startCounted(t, tt.handler)
			addr := srv.Listener.Addr().String()
			tr := newTestTransport(t)
			for range 3 {
				req := newReq(t, "GET", addr, "/", nil)
				req.Close = tt.close
				if _, got := send(t, tr, req); got != "bye" {
					t.Fatalf("got %q", got)
				}
			}
			if got := srv.accepts(); got != 3 {
				t.Errorf("%d connections for 3 requests, want 3", got)
			}
			if got := idleCount(tr, addr); got != 0 {
				t.Errorf("%d idle connections, want 0", got)
			}
		})
	}
}

func TestTransportHTTP10(t *testing.T) {
	srv := startRaw(t, func(n int64, c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		// No length and no keep-alive: the body ends with the connection.
		fmt.Fprintf(c, "HTTP/1.0 200 OK\r\n\r\nconn %d", n)
	})
	tr := newTestTransport(t)
	for i := range 2 {
		if _, got := send(t, tr, newReq(t, "GET", srv.addr(), "/", nil)); got != fmt.Sprintf("conn %d", i+1) {
			t.Errorf("request %d: %q", i, got)
		}
	}
}

func TestTransportBodilessResponses(t *testing.T) {
	srv := startCounted(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "1234")
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/empty":
			w.Header().Set("Content-Length", "0")
		}
	})
	addr := srv.Listener.Addr().String()
	tr := newTestTransport(t)
	tests := []struct {
		method, path string
		want         int
		wantLength   int64
	}{
		{"HEAD", "/head", 200, 1234},
		{"GET", "/204", 204, 0},
		{"GET", "/304", 304, 0},
		{"GET", "/empty", 200, 0},
		{"HEAD", "/head", 200, 1234},
	}
	for _, tt := range tests {
		resp, err := tr.RoundTrip(newReq(t, tt.method, addr, tt.path, nil))
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		if resp.StatusCode != tt.want || resp.ContentLength != tt.wantLength || resp.Body != http.NoBody {
			t.Errorf("%s %s: status %d length %d body %T; want %d, %d, no body", tt.method, tt.path, resp.StatusCode, resp.ContentLength, resp.Body, tt.want, tt.wantLength)
		}
		// Not closed on purpose: a bodiless answer frees its connection
		// at once.
	}
	if got := srv.accepts(); got != 1 {
		t.Errorf("%d connections, want 1: a bodiless answer must not hold its connection", got)
	}
}

func TestTransportChunkedBodiesAndTrailers(t *testing.T) {
	srv := startCounted(t, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("Trailer", "X-Digest")
		w.Header().Set("X-Request-Encoding", strings.Join(r.TransferEncoding, ","))
		for i := 0; i < len(body); i += 1000 {
			w.Write(body[i:min(i+1000, len(body))])
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Digest", digest(string(body)))
	})
	addr := srv.Listener.Addr().String()
	tr := newTestTransport(t)
	for _, size := range []int{10, 5000, 200 << 10, 3 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			payload := bytes.Repeat([]byte("abcdefghij"), size/10)
			// A reader of unknown length: the request is sent chunked.
			req := newReq(t, "PUT", addr, "/", io.MultiReader(bytes.NewReader(payload)))
			resp, got := send(t, tr, req)
			if got != string(payload) {
				t.Errorf("echo of %d bytes came back as %d bytes", len(payload), len(got))
			}
			if diff := cmp.Diff([]string{"chunked"}, resp.TransferEncoding); diff != "" {
				t.Errorf("response transfer encoding (-want +got):\n%s", diff)
			}
			if enc := resp.Header.Get("X-Request-Encoding"); enc != "chunked" {
				t.Errorf("request went %q, want chunked", enc)
			}
			if d := resp.Trailer.Get("X-Digest"); d != digest(string(payload)) {
				t.Errorf("trailer X-Digest %q, want %q", d, digest(string(payload)))
			}
		})
	}
}

func TestTransportStreamsResponse(t *testing.T) {
	next := make(chan struct{})
	srv := startCounted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})
	tr := newTestTransport(t)
	resp, err := tr.RoundTrip(newReq(t, "GET", srv.Listener.Addr().String(), "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		// The server sends event i+1 only once event i was read.
		if line := readLine(t, br); line != fmt.Sprintf("data: %d", i) {
			t.Fatalf("event %d: %q", i, line)
		}
		readLine(t, br)
		next <- struct{}{}
	}
}

func TestTransportEarlyCloseDropsConnection(t *testing.T) {
	rest := make(chan struct{})
	srv := startCounted(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			// The first part arrives alone, so the client's buffer is
			// empty when it closes the body; the rest comes after.
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "0123")
			w.(http.Flusher).Flush()
			<-rest
			io.WriteString(w, "456789")
			return
		}
		io.WriteString(w, "small")
	})
	addr := srv.Listener.Addr().String()
	tr := newTestTransport(t)
	resp, err := tr.RoundTrip(newReq(t, "GET", addr, "/big", nil))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	close(rest)
	if n, err := resp.Body.Read(buf); n != 0 || err == nil {
		t.Errorf("read after Close: %d, %v; want an error", n, err)
	}
	if got := idleCount(tr, addr); got != 0 {
		t.Fatalf("%d idle connections after an early Close, want 0", got)
	}
	// The next request gets a clean connection, not the rest of /big.
	if _, got := send(t, tr, newReq(t, "GET", addr, "/small", nil)); got != "small" {
		t.Errorf("next request got %q", got)
	}
	if got := srv.accepts(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
}

func TestTransportContextAbortsHungReplica(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := startCounted(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "half")
			w.(http.Flusher).Flush()
		}
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	addr := srv.Listener.Addr().String()
	tr := newTestTransport(t)

	t.Run("deadline before headers", func(t *testing.T) {
		// The deadline passes once the replica holds the request: a
		// fixed one could pass before the dial on a busy machine, and
		// the request would never arrive.
		ctx := passesOnArrival(t.Context(), arrived)
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
		_, err := tr.RoundTrip(req)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("cancel during the body", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/body", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		<-arrived
		buf := make([]byte, 4)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := resp.Body.Read(buf); err == nil {
			t.Error("read of a cancelled body succeeded")
		}
		resp.Body.Close()
	})
	if got := idleCount(tr, addr); got != 0 {
		t.Errorf("%d idle connections after aborted requests, want 0", got)
	}
}

// deadlineOnSignal is a context whose deadline passes when its signal
// comes, whenever that is.
type deadlineOnSignal struct {
	context.Context
	done chan struct{}
}

// passesOnArrival returns a context whose deadline passes once a value
// comes on arrived.
func passesOnArrival(parent context.Context, arrived <-chan struct{}) context.Context {
	c := deadlineOnSignal{Context: parent, done: make(chan struct{})}
	go func() {
		<-arrived
		close(c.done)
	}()
	return c
}

func (c deadlineOnSignal) Done() <-chan struct{} { return c.done }

func (c deadlineOnSignal) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func TestTransportAbandonedBodyClosedByContext(t *testing.T) {
	// The proxy stops reading a body when its client fails and cancels
	// the try's context without closing the body; the connection must not
	// leak.
	closed := make(chan struct{})
	srv := startCounted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "half")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the server noticed the connection close
		close(closed)
	})
	tr := newTestTransport(t)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+srv.Listener.Addr().String()+"/", nil)
	if _, err := tr.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("connection of an abandoned body still open after its context ended")
	}
}

func TestTransportConnectionsBoundedByInflight(t *testing.T) {
	const workers, each = 8, 25
	srv := startCounted(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	addr := srv.Listener.Addr().String()
	tr := newTestTransport(t)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				resp, err := tr.RoundTrip(newReq(t, "GET", addr, "/", nil))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if got := srv.accepts(); got > workers {
		t.Errorf("%d connections for %d requests in flight at most", got, workers)
	}
	if got := idleCount(tr, addr); int64(got) != srv.accepts() {
		t.Errorf("%d idle connections after the load, want all %d", got, srv.accepts())
	}
}

func TestTransportCloseIdleConnections(t *testing.T) {
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	closed := make(chan struct{}, 10)
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open[c] = true
		case http.StateClosed:
			delete(open, c)
			closed <- struct{}{}
		}
	}
	srv.Start()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	tr := newTestTransport(t)
	// Two connections: the second request starts before the first ends.
	first, err := tr.RoundTrip(newReq(t, "GET", addr, "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	send(t, tr, newReq(t, "GET", addr, "/", nil))
	io.Copy(io.Discard, first.Body)
	first.Body.Close()
	if got := idleCount(tr, addr); got != 2 {
		t.Fatalf("%d idle connections, want 2", got)
	}
	tr.CloseIdleConnections()
	for range 2 {
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("server did not see the idle connections close")
		}
	}
	if got := idleCount(tr, addr); got != 0 {
		t.Errorf("%d idle connections after CloseIdleConnections", got)
	}
	if _, got := send(t, tr, newReq(t, "GET", addr, "/", nil)); got != "ok" {
		t.Errorf("request after CloseIdleConnections: %q", got)
	}
}

// pipeReplica is an in-memory replica for tests in a synctest bubble: each
// dial makes a net.Pipe whose far end answers requests with "ok" until it
// is closed.
type pipeReplica struct {
	dials  atomic.Int64
	closes atomic.Int64
}

func (p *pipeReplica) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	p.dials.Add(1)
	c, s := net.Pipe()
	go func() {
		defer p.closes.Add(1)
		defer s.Close()
		br := bufio.NewReader(s)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			if _, err := io.WriteString(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	}()
	return c, nil
}

func TestTransportIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rep := &pipeReplica{}
		tr := newUpstreamTransport(time.Second)
		tr.dial = rep.dial
		defer tr.CloseIdleConnections()
		get := func() {
			t.Helper()
			if _, got := send(t, tr, newReq(t, "GET", "replica:80", "/", nil)); got != "ok" {
				t.Fatalf("got %q", got)
			}
		}

		get()
		time.Sleep(idleConnTimeout - time.Second)
		get() // reuses the connection, which is idle again from now
		synctest.Wait()
		if rep.dials.Load() != 1 || rep.closes.Load() != 0 {
			t.Fatalf("dials %d closes %d, want 1 and 0", rep.dials.Load(), rep.closes.Load())
		}
		// Nobody uses the pool: the reaper closes the connection.
		time.Sleep(idleConnTimeout + time.Second)
		synctest.Wait()
		if rep.closes.Load() != 1 || idleCount(tr, "replica:80") != 0 {
			t.Fatalf("after the idle timeout: closes %d idle %d, want 1 and 0", rep.closes.Load(), idleCount(tr, "replica:80"))
		}

		// A connection found expired when taken is closed and replaced,
		// even if the reaper has not run yet.
		get()
		hp := tr.pool("replica:80")
		hp.mu.Lock()
		hp.idle[0].idleAt = hp.idle[0].idleAt.Add(-2 * idleConnTimeout)
		hp.mu.Unlock()
		get()
		synctest.Wait()
		if rep.dials.Load() != 3 || rep.closes.Load() != 2 {
			t.Errorf("dials %d closes %d, want 3 and 2", rep.dials.Load(), rep.closes.Load())
		}
	})
}

func TestTransportPoolBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rep := &pipeReplica{}
		tr := newUpstreamTransport(time.Second)
		tr.dial = rep.dial
		tr.maxIdle = 2
		defer tr.CloseIdleConnections()
		var resps []*http.Response
		for range 3 {
			resp, err := tr.RoundTrip(newReq(t, "GET", "replica:80", "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resps = append(resps, resp)
		}
		for _, resp := range resps {
			io.Copy(io.Discard, resp.Body)
		}
		synctest.Wait()
		if idleCount(tr, "replica:80") != 2 || rep.closes.Load() != 1 {
			t.Errorf("idle %d closed %d, want 2 and 1", idleCount(tr, "replica:80"), rep.closes.Load())
		}
	})
}

func TestTransportSkipsInformational(t *testing.T) {
	srv := startRaw(t, func(_ int64, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"+
				"HTTP/1.1 100 Continue\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine")
		}
	})
	tr := newTestTransport(t)
	for range 2 {
		resp, got := send(t, tr, newReq(t, "GET", srv.addr(), "/", nil))
		if resp.StatusCode != 200 || got != "fine" {
			t.Errorf("got %d %q, want 200 \"fine\"", resp.StatusCode, got)
		}
	}
	if srv.accepts.Load() != 1 {
		t.Errorf("%d connections, want 1", srv.accepts.Load())
	}
}

func TestTransportLimitsResponseHeaders(t *testing.T) {
	srv := startRaw(t, func(_ int64, c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Big: " + strings.Repeat("y", 1000) + "\r\n"
		for range 2 * maxResponseHeader / len(line) {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
	tr := newTestTransport(t)
	_, err := tr.RoundTrip(newReq(t, "GET", srv.addr(), "/", nil))
	if !errors.Is(err, errHeaderTooLarge) {
		t.Errorf("got %v, want errHeaderTooLarge", err)
	}
}

func TestTransportEarlyAnswerToStreamedUpload(t *testing.T) {
	// The replica refuses a large upload without reading it. The answer
	// must arrive although the body cannot all be written.
	srv := startCounted(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	})
	tr := newTestTransport(t)
	body := io.MultiReader(bytes.NewReader(make([]byte, 8<<20)))
	req := newReq(t, "PUT", srv.Listener.Addr().String(), "/", body)
	req.ContentLength = 8 << 20
	resp, got := send(t, tr, req)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || got != "too large\n" {
		t.Errorf("got %d %q, want 413", resp.StatusCode, got)
	}
}

// failingReader returns some bytes, then an error.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, r.err
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestTransportBrokenRequestBodyEndsTheTry(t *testing.T) {
	// A streamed body that fails leaves the replica waiting for the rest;
	// the transport must give up at once rather than wait for an answer.
	srv := startCounted(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	})
	tr := newTestTransport(t)
	errBroken := errors.New("client went away")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "PUT", "http://"+srv.Listener.Addr().String()+"/", &failingReader{n: 3 << 20, err: errBroken})
	req.ContentLength = 4 << 20
	_, err := tr.RoundTrip(req)
	if err == nil || ctx.Err() != nil {
		t.Errorf("got %v with context error %v; want an error before the deadline", err, ctx.Err())
	}
}

func TestTransportUpgradeUsesHTTPTransport(t *testing.T) {
	srv := startCounted(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw)
	})
	tr := newTestTransport(t)
	req := newReq(t, "GET", srv.Listener.Addr().String(), "/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != http.StatusSwitchingProtocols || !ok {
		t.Fatalf("got %d with body %T, want 101 with an io.ReadWriteCloser", resp.StatusCode, resp.Body)
	}
	defer rwc.Close()
	io.WriteString(rwc, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(rwc, buf); err != nil || string(buf) != "ping" {
		t.Errorf("echo %q, %v", buf, err)
	}
}

func TestWriteBodylessMatchesRequestWrite(t *testing.T) {
	tests := []struct {
		name  string
		build func(r *http.Request)
	}{
		{"GET", func(r *http.Request) {}},
		{"HEAD", func(r *http.Request) { r.Method = "HEAD" }},
		{"DELETE sends a zero length", func(r *http.Request) { r.Method = "DELETE" }},
		{"POST sends a zero length", func(r *http.Request) { r.Method = "POST" }},
		{"empty method", func(r *http.Request) { r.Method = "" }},
		{"query", func(r *http.Request) { r.URL.RawQuery = "a=1&b=%20x" }},
		{"forced empty query", func(r *http.Request) { r.URL.ForceQuery = true }},
		{"empty path", func(r *http.Request) { r.URL.Path = "" }},
		{"path to escape", func(r *http.Request) { r.URL.Path = "/a b/ü" }},
		{"raw path kept", func(r *http.Request) { r.URL.Path, r.URL.RawPath = "/a/b c", "/a%2Fb%20c" }},
		{"raw path not matching", func(r *http.Request) { r.URL.Path, r.URL.RawPath = "/a/b", "/x%2Fy" }},
		{"client Host", func(r *http.Request) { r.Host = "shop.example:8080" }},
		{"IPv6 host", func(r *http.Request) { r.Host = "[::1]:80" }},
		{"host with zone", func(r *http.Request) { r.Host = "[fe80::1%25eth0]:80" }},
		{"host to clean", func(r *http.Request) { r.Host = "bad host\r\nX: y" }},
		{"user agent", func(r *http.Request) { r.Header.Set("User-Agent", "  curl/8 ") }},
		{"blank user agent", func(r *http.Request) { r.Header["User-Agent"] = []string{" "} }},
		{"empty user agent", func(r *http.Request) { r.Header["User-Agent"] = []string{""} }},
		{"no user agent values", func(r *http.Request) { r.Header["User-Agent"] = nil }},
		{"user agent with newline", func(r *http.Request) { r.Header.Set("User-Agent", "a\nb") }},
		{"close", func(r *http.Request) { r.Close = true }},
		{"headers", func(r *http.Request) {
			r.Header["X-Multi"] = []string{"1", " 2 ", "a\r\nb"}
			r.Header["Content-Length"] = []string{"99"}
			r.Header["Bad Name"] = []string{"x"}
			r.Header["Accept"] = []string{"*/*"}
		}},
		{"control byte in query", func(r *http.Request) { r.URL.RawQuery = "a=\x01" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			build := func() *http.Request {
				r := &http.Request{
					Method: "GET",
					URL:    &url.URL{Scheme: "http", Host: "10.0.0.1:8080", Path: "/orders/42"},
					Header: http.Header{"X-Request-Id": {"r1"}},
				}
				tt.build(r)
				return r
			}
			var want, got bytes.Buffer
			werr := build().Write(&want)
			bw := bufio.NewWriter(&got)
			gerr := writeBodyless(bw, build(), newUpstreamTransport(time.Second).exclude)
			bw.Flush()
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("Request.Write error %v, writeBodyless error %v", werr, gerr)
			}
			if diff := cmp.Diff(want.String(), got.String()); diff != "" {
				t.Errorf("bytes differ from Request.Write (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProxyUsesOwnTransport(t *testing.T) {
	p, err := New(shopCell(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.transport.(*upstreamTransport); !ok {
		t.Errorf("default transport is %T, want *upstreamTransport", p.transport)
	}
}
