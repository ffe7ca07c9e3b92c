// Command echo is the demo project's stand-in for a real service: it answers
// every request with a JSON description of that request and of the replica
// that served it, so load balancing, header forwarding and routing can be
// observed from the outside.
//
// Behaviour, all driven by the request:
//
//	GET  /healthz        200 "ok", or 500 while the replica is marked failed
//	POST /admin/fail     mark the replica failed (its health check turns 500)
//	POST /admin/recover  mark the replica healthy again
//	any other path       200 with {"service", "hostname", "method", "path",
//	                     "host", "query", "headers"}
//
// Query parameters on any other path:
//
//	sleep=250ms  wait that long before answering (at most 30s), to hold
//	             requests in flight for autoscaling tests
//	burn=50ms    spin the CPU that long (at most 30s), for CPU autoscaling tests
//	status=503   answer with that status code instead of 200
//	crash=1      exit the process at once with status 3, answering nothing:
//	             a replica that crashes on one request
//
// Configuration comes from the environment only: PORT (default 8080) and
// SERVICE_NAME (default "echo"). The program logs one plain-text line per
// request to stdout and shuts down gracefully on SIGTERM or SIGINT.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// maxDelay bounds sleep and burn so a typo cannot pin a replica forever.
	maxDelay = 30 * time.Second
	// shutdownGrace bounds how long in-flight requests may finish after SIGTERM.
	shutdownGrace = 10 * time.Second
)

func main() {
	logger := log.New(os.Stdout, "", 0)

	port := envOr("PORT", "8080")
	name := envOr("SERVICE_NAME", "echo")
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "unknown"
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	s := &server{name: name, hostname: hostname}
	srv := &http.Server{
		Addr:              ":" + port,
		Handler:           logRequests(logger, s.routes()),
		ReadHeaderTimeout: 5 * time.Second,
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Printf("echo: service %s on %s listening on :%s", name, hostname, port)

	select {
	case err := <-errc:
		logger.Fatalf("echo: serve: %v", err)
	case <-ctx.Done():
	}

	logger.Printf("echo: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Printf("echo: shutdown: %v", err)
	}
}

// server holds the replica's identity and its health switch.
type server struct {
	name     string
	hostname string
	// failed is flipped by /admin/fail and /admin/recover; it is atomic
	// because health checks and admin calls arrive on different goroutines.
	failed atomic.Bool
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("POST /admin/fail", func(w http.ResponseWriter, r *http.Request) {
		s.failed.Store(true)
		fmt.Fprintln(w, "failed")
	})
	mux.HandleFunc("POST /admin/recover", func(w http.ResponseWriter, r *http.Request) {
		s.failed.Store(false)
		fmt.Fprintln(w, "recovered")
	})
	mux.HandleFunc("/", s.echo)
	return mux
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.failed.Load() {
		http.Error(w, "failed", http.StatusInternalServerError)
		return
	}
	fmt.Fprint(w, "ok")
}

// reply is the JSON answer to every non-admin request.
type reply struct {
	Service  string            `json:"service"`
	Hostname string            `json:"hostname"`
	Method   string            `json:"method"`
	Path     string            `json:"path"`
	Host     string            `json:"host"`
	Query    string            `json:"query"`
	Headers  map[string]string `json:"headers"`
}

func (s *server) echo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("crash") == "1" {
		log.Printf("echo: crashing on %s %s, as asked", r.Method, r.URL.Path)
		os.Exit(3)
	}

	status := http.StatusOK
	if v := q.Get("status"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 200 || n > 599 {
			http.Error(w, fmt.Sprintf("status %q: want a number from 200 to 599", v), http.StatusBadRequest)
			return
		}
		status = n
	}
	sleep, err := delayParam(q.Get("sleep"))
	if err != nil {
		http.Error(w, "sleep: "+err.Error(), http.StatusBadRequest)
		return
	}
	burn, err := delayParam(q.Get("burn"))
	if err != nil {
		http.Error(w, "burn: "+err.Error(), http.StatusBadRequest)
		return
	}

	if burn > 0 {
		burnCPU(r.Context(), burn)
	}
	if sleep > 0 {
		t := time.NewTimer(sleep)
		select {
		case <-t.C:
		case <-r.Context().Done():
			// The client is gone; nobody is left to answer.
			t.Stop()
			return
		}
	}

	// Headers are flattened to one string per name so callers can look
	// them up directly; Go has already canonicalized the names
	// ("X-Request-Id", "Traceparent").
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		headers[k] = strings.Join(v, ", ")
	}

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(reply{
		Service:  s.name,
		Hostname: s.hostname,
		Method:   r.Method,
		Path:     r.URL.Path,
		Host:     r.Host,
		Query:    r.URL.RawQuery,
		Headers:  headers,
	})
}

// delayParam parses a sleep or burn value; empty means none.
func delayParam(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return min(d, maxDelay), nil
}

// burnCPU keeps one core busy for d, or until ctx ends. Reading the clock in
// a tight loop is the work: the point is to show up in container CPU stats.
func burnCPU(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
	}
}

// statusRecorder remembers the status code a handler wrote, for the log line.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// logRequests writes "METHOD PATH STATUS DURATION" for every request but
// the gateway's health checks, which would drown everything else.
func logRequests(logger *log.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if r.URL.Path == "/healthz" && rec.status == http.StatusOK {
			return
		}
		logger.Printf("%s %s %d %s", r.Method, r.URL.Path, rec.status, time.Since(start).Round(time.Microsecond))
	})
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
