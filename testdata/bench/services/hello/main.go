// Command hello is the service of the benchmark project that
// `orchestro-bench product` starts with orchestro and with docker compose:
// a tiny static HTTP server that answers every request with the same
// 64-byte body, "hello from backend <hostname>" padded with dots, so
// orchestro-bench's target check accepts it and the proxies in front of it
// carry as little payload as the bench's own backends do.
//
// It listens on PORT (default 8080), logs nothing per request (a log line
// per request would make dockerd's log copier part of every measurement)
// and exits at once on SIGTERM or SIGINT, so `down` never waits for a
// kill.
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bodySize matches orchestro-bench's own backends.
const bodySize = 64

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	s := "hello from backend " + host
	if pad := bodySize - len(s) - 1; pad > 0 {
		s += strings.Repeat(".", pad)
	}
	body := []byte(s + "\n")
	length := []string{strconv.Itoa(len(body))}
	ctype := []string{"text/plain; charset=utf-8"}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv := &http.Server{
		Addr:              ":" + port,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Type"] = ctype
			h["Content-Length"] = length
			_, _ = w.Write(body)
		}),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("hello: %s listening on :%s", host, port)
	select {
	case err := <-errc:
		log.Fatalf("hello: %v", err)
	case <-ctx.Done():
	}
	// Close, not Shutdown: the bench's down measures how fast a project
	// goes away, and a benchmark replica has nothing worth draining.
	if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("hello: close: %v", err)
	}
}
