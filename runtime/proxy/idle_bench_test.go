package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	goruntime "runtime"
	"testing"
	"time"
)

// BenchmarkIdleConnections measures what a server holds per idle client
// connection: 2,000 connections, either new ones that have sent nothing
// or keep-alive ones idle after one request, to the proxy's Server (its
// fast path, and with every connection on net/http) and to a plain
// http.Server running the same Proxy, the reference. The figure is the
// heap and stack in use with the connections open, less the same with a
// listener that only holds its accepted connections, divided by the
// connections: so client sockets and kernel buffers do not count.
//
//	go test -run '^$' -bench IdleConnections -benchtime 1x ./runtime/proxy/
func BenchmarkIdleConnections(b *testing.B) {
	const conns = 2000
	backend := svBenchBackend(b)
	for _, state := range []string{"new", "keep-alive"} {
		for _, target := range []string{"server", "server-nethttp", "http.Server"} {
			b.Run(target+"/"+state, func(b *testing.B) {
				for b.Loop() {
					base := idleBaseline(b, conns)
					got := idleCost(b, target, state, backend, conns)
					b.ReportMetric(float64(got-base)/conns, "B/conn")
				}
			})
		}
	}
}

// idleBaseline returns the memory in use with conns connections to a
// listener that keeps what it accepts and does nothing else.
func idleBaseline(b *testing.B, conns int) uint64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, conns)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	clients := idleDial(b, ln.Addr().String(), conns, false)
	for range conns {
		<-held
	}
	inUse := memInUse()
	idleClose(clients)
	return inUse
}

// idleCost returns the memory in use with conns idle connections to the
// target.
func idleCost(b *testing.B, target, state, backend string, conns int) uint64 {
	p, err := New(shopCell(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.CloseIdleConnections()
	p.SetUpstreams("orders", []*Upstream{{ID: "o1", Addr: backend}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var srv interface{ Close() error }
	switch target {
	case "http.Server":
		s := &http.Server{Handler: p, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute}
		go s.Serve(ln)
		srv = s
	default:
		s := NewServer(p, ServerOptions{ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute, DisableFastPath: target == "server-nethttp"})
		go s.Serve(ln)
		srv = s
	}
	defer srv.Close()
	clients := idleDial(b, ln.Addr().String(), conns, state == "keep-alive")
	defer idleClose(clients)
	// Past hotWait, so that idle connections have given their scratch back.
	time.Sleep(hotWait + 500*time.Millisecond)
	return memInUse()
}

// idleDial opens n connections to addr; with request set, each sends a GET
// and reads its answer, and stays open.
func idleDial(b *testing.B, addr string, n int, request bool) []net.Conn {
	out := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, c)
		if !request {
			continue
		}
		if _, err := io.WriteString(c, "GET /orders HTTP/1.1\r\nHost: shop.local\r\n\r\n"); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			b.Fatal(fmt.Sprint(resp.Status, err))
		}
	}
	return out
}

func idleClose(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}

// memInUse returns the heap and stack memory in use after a collection.
func memInUse() uint64 {
	goruntime.GC()
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}
