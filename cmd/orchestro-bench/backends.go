package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Backend defaults: three replicas answering a small fixed body.
const (
	numBackends = 3
	bodySize    = 64
)

// backendBody is replica n's answer: "hello from backend n", padded to
// size bytes and ending in a newline.
func backendBody(n, size int) []byte {
	s := fmt.Sprintf("hello from backend %d", n)
	if pad := size - len(s) - 1; pad > 0 {
		s += strings.Repeat(".", pad)
	}
	return []byte(s + "\n")
}

// backendsMain is the hidden backends subcommand: it serves n replicas on
// ephemeral 127.0.0.1 ports, prints "ready ADDR..." on stdout and serves
// until ctx ends.
func backendsMain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(cmdBackends, flag.ContinueOnError)
	n := fs.Int("n", numBackends, "number of replicas")
	size := fs.Int("body", bodySize, "response body size in bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var (
		wg    sync.WaitGroup
		addrs []string
		srvs  []*http.Server
		errc  = make(chan error, *n)
	)
	for i := 1; i <= *n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen for backend %d: %w", i, err)
		}
		addrs = append(addrs, ln.Addr().String())
		body := backendBody(i, *size)
		length := []string{strconv.Itoa(len(body))}
		ctype := []string{"text/plain; charset=utf-8"}
		srv := &http.Server{
			ReadHeaderTimeout: 10 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				h := w.Header()
				h["Content-Type"] = ctype
				h["Content-Length"] = length
				_, _ = w.Write(body)
			}),
		}
		srvs = append(srvs, srv)
		wg.Go(func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("backend %d: %w", i, err)
			}
		})
	}
	fmt.Fprintf(stdout, "ready %s\n", strings.Join(addrs, " "))
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, srv := range srvs {
		_ = srv.Close()
	}
	wg.Wait()
	return err
}

// startBackends starts the backends child and returns it with the
// replicas' addresses.
func startBackends(self, dir string) (*child, []string, error) {
	c, err := startChild(dir, "backends", true, self, cmdBackends, "-n", strconv.Itoa(numBackends), "-body", strconv.Itoa(bodySize))
	if err != nil {
		return nil, nil, err
	}
	addrs, err := c.readyLine(10 * time.Second)
	if err == nil && len(addrs) != numBackends {
		err = fmt.Errorf("start backends: want %d addresses, got %q", numBackends, addrs)
	}
	if err != nil {
		c.stop()
		return nil, nil, err
	}
	return c, addrs, nil
}
