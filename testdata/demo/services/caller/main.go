// Command caller is the demo project's service that depends on another
// service: every request it serves becomes one request to its upstream, so a
// single call at the edge walks through several cells and their gateways.
//
// Behaviour, all driven by the request:
//
//	GET  /healthz        200 "ok", or 500 while the replica is marked failed
//	POST /admin/fail     mark the replica failed (its health check turns 500)
//	POST /admin/recover  mark the replica healthy again
//	any other path       GET UPSTREAM_URL+UPSTREAM_PATH, then answer
//	                     {"service", "hostname", "upstream_status", "upstream"}
//
// The upstream request carries the incoming query string (so ?sleep=250ms
// reaches an echo service at the end of the chain and holds every hop in
// flight) and the X-Request-ID and traceparent headers (so one request can be
// followed through every gateway's access log). "upstream" is the upstream's
// JSON answer, or its body as a string when it is not JSON. When the upstream
// cannot be reached the answer is 502 with the error text; when it answers
// 5xx the answer is 502 with the usual JSON, so the failure stays visible to
// whoever called us.
//
// Configuration comes from the environment only: UPSTREAM_URL (required, for
// example http://users:8082), UPSTREAM_PATH (default "/"), PORT (default 8080)
// and SERVICE_NAME (default "caller"). The program logs one plain-text line
// per request to stdout and shuts down gracefully on SIGTERM or SIGINT.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// upstreamTimeout bounds one upstream call, end to end.
	upstreamTimeout = 5 * time.Second
	// maxUpstreamBody bounds how much of the upstream answer we keep.
	maxUpstreamBody = 1 << 20
	// shutdownGrace bounds how long in-flight requests may finish after SIGTERM.
	shutdownGrace = 10 * time.Second
)

func main() {
	logger := log.New(os.Stdout, "", 0)

	port := envOr("PORT", "8080")
	name := envOr("SERVICE_NAME", "caller")
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "unknown"
	}
	target, err := upstreamTarget(os.Getenv("UPSTREAM_URL"), envOr("UPSTREAM_PATH", "/"))
	if err != nil {
		// A caller without an upstream is a configuration mistake; failing
		// at start makes it show in the logs instead of in every answer.
		logger.Fatalf("caller: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	s := &server{
		name:     name,
		hostname: hostname,
		target:   target,
		client:   &http.Client{Timeout: upstreamTimeout},
	}
	srv := &http.Server{
		Addr:              ":" + port,
		Handler:           logRequests(logger, s.routes()),
		ReadHeaderTimeout: 5 * time.Second,
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Printf("caller: service %s on %s listening on :%s, upstream %s", name, hostname, port, target)

	select {
	case err := <-errc:
		logger.Fatalf("caller: serve: %v", err)
	case <-ctx.Done():
	}

	logger.Printf("caller: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Printf("caller: shutdown: %v", err)
	}
}

// upstreamTarget joins the base URL and path into the URL every request calls.
func upstreamTarget(base, path string) (*url.URL, error) {
	if base == "" {
		return nil, fmt.Errorf("UPSTREAM_URL is not set")
	}
	u, err := url.Parse(strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(path, "/"))
	if err != nil {
		return nil, fmt.Errorf("parse UPSTREAM_URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("UPSTREAM_URL %q: want http://host:port", base)
	}
	return u, nil
}

// server holds the replica's identity, its upstream and its health switch.
type server struct {
	name     string
	hostname string
	target   *url.URL
	client   *http.Client
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
	mux.HandleFunc("/", s.call)
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
	Service        string `json:"service"`
	Hostname       string `json:"hostname"`
	UpstreamStatus int    `json:"upstream_status"`
	// Upstream is the upstream's JSON answer, or its body as a string.
	Upstream any `json:"upstream"`
}

func (s *server) call(w http.ResponseWriter, r *http.Request) {
	u := *s.target
	u.RawQuery = r.URL.RawQuery

	// The request context ends the upstream call early when our own client
	// gives up; the client timeout bounds it otherwise.
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		http.Error(w, fmt.Sprintf("build upstream request: %v", err), http.StatusInternalServerError)
		return
	}
	// These two headers let one request be followed across services.
	for _, h := range []string{"X-Request-ID", "traceparent"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}

	resp, err := s.client.Do(req)
	if err != nil {
		http.Error(w, fmt.Sprintf("call upstream: %v", err), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody))
	if err != nil {
		http.Error(w, fmt.Sprintf("read upstream answer: %v", err), http.StatusBadGateway)
		return
	}

	// Valid JSON is embedded as is, keeping the upstream's field order.
	var upstream any = string(body)
	if json.Valid(body) {
		upstream = json.RawMessage(body)
	}

	status := http.StatusOK
	if resp.StatusCode >= 500 {
		status = http.StatusBadGateway
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(reply{
		Service:        s.name,
		Hostname:       s.hostname,
		UpstreamStatus: resp.StatusCode,
		Upstream:       upstream,
	})
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
