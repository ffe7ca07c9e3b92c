package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

// Body size limits. A cell spec is a few kilobytes; 4 MiB leaves room for
// large inline environments without letting a caller exhaust memory.
const (
	maxSpecBody    = 4 << 20
	maxRequestBody = 64 << 10
)

// Cell is what the admin API serves: the gateway's controller. Methods
// that change the cell return a *StatusError (see BadRequest and
// NotFound) when the request is at fault; any other error answers 500.
type Cell interface {
	// Status returns a snapshot of the cell.
	Status() api.CellStatus
	// Scale sets the replica count of service.
	Scale(ctx context.Context, service string, replicas int) error
	// Restart rolls every replica of service, or of every service when
	// service is empty.
	Restart(ctx context.Context, service string) error
	// UpdateSpec replaces the cell spec with spec, raw JSON the
	// controller decodes and validates.
	UpdateSpec(ctx context.Context, spec []byte) error
	// Stop stops the cell: it creates no replica any more and drains
	// every one, returning once all are drained; the replicas are then
	// removed in the background.
	Stop(ctx context.Context) error
}

// ServerConfig is what a Server is built from.
type ServerConfig struct {
	// Cell answers status and carries out changes. Required.
	Cell Cell
	// CellName is the cell's name: a request whose api.CellHeader names
	// another is refused with 421. Empty accepts any.
	CellName string
	// Events is the controller's event bus. Required.
	Events *EventBus
	// Token is the project token that calls changing the cell must
	// present. Required: an admin API without one would let any local
	// process scale or stop the cell.
	Token string
	// Executions, when set, serves the journal of the cell's flow
	// executions at api.PathExecutions. It is nil when the cell has no
	// flows: those paths then answer 404, saying so.
	Executions Executions
	// AccessLog, when set, serves the access log the gateway keeps in
	// files at api.PathAccessLog; nil answers 404 (ErrNoAccessLogFile).
	AccessLog AccessLog
	// Metrics, when set, is served at api.PathMetrics.
	Metrics http.Handler
	// Logger receives the errors answered with a 5xx status; nil
	// discards them.
	Logger *slog.Logger
}

// Server is the admin API of one cell gateway, an http.Handler for the
// gateway's admin port.
//
// A follow stream of events lasts until its client goes away or the
// EventBus is closed, so the gateway's http.Server should not rely on
// WriteTimeout for it (the stream clears its own write deadline), and
// should close the bus before calling Shutdown.
type Server struct {
	cell     Cell
	cellName string
	events   *EventBus
	execs    Executions // nil: the cell has no flows
	// accessLog is nil when the log goes to stdout, or nowhere.
	accessLog AccessLog
	// tokenSum is the SHA-256 of the token: comparing fixed-size sums
	// keeps the comparison constant-time in the token's length too.
	tokenSum [sha256.Size]byte
	log      *slog.Logger
	mux      *http.ServeMux
}

// NewServer returns the admin API for cfg.
func NewServer(cfg ServerConfig) (*Server, error) {
	switch {
	case cfg.Cell == nil:
		return nil, errors.New("new admin server: no cell")
	case cfg.Events == nil:
		return nil, errors.New("new admin server: no event bus")
	case cfg.Token == "":
		return nil, errors.New("new admin server: no project token")
	}
	s := &Server{
		cell:      cfg.Cell,
		cellName:  cfg.CellName,
		events:    cfg.Events,
		execs:     cfg.Executions,
		accessLog: cfg.AccessLog,
		tokenSum:  sha256.Sum256([]byte(cfg.Token)),
		log:       cfg.Logger,
		mux:       http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mux.HandleFunc("GET "+api.PathHealth, s.handleHealth)
	s.mux.HandleFunc("GET "+api.PathStatus, s.handleStatus)
	s.mux.HandleFunc("GET "+api.PathEvents, s.handleEvents)
	s.mux.Handle("POST "+api.PathScale, s.authorized(s.handleScale))
	s.mux.Handle("POST "+api.PathRestart, s.authorized(s.handleRestart))
	s.mux.Handle("PUT "+api.PathSpec, s.authorized(s.handleSpec))
	s.mux.Handle("POST "+api.PathStop, s.authorized(s.handleStop))
	// The access log names what clients asked for: like the engine's
	// logs it is for whoever holds the project's token.
	s.mux.Handle("GET "+api.PathAccessLog, s.authorized(s.handleAccessLog))
	// Registered whether or not the cell has flows, so that a cell
	// without them answers why rather than "no such admin endpoint".
	s.mux.HandleFunc("GET "+api.PathExecutions, s.handleListExecutions)
	s.mux.HandleFunc("GET "+api.PathExecutions+"/{id}", s.handleGetExecution)
	s.mux.Handle("POST "+api.PathExecutions+"/{id}/retry", s.authorized(s.handleRetryExecution))
	if cfg.Metrics != nil {
		s.mux.Handle("GET "+api.PathMetrics, cfg.Metrics)
	}
	return s, nil
}

// ServeHTTP serves the admin API. Unknown paths answer 404 and known
// paths with the wrong method 405 (with Allow), both as api.Error JSON
// like every other failure, instead of ServeMux's plain text.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if want := r.Header.Get(api.CellHeader); want != "" && s.cellName != "" && want != s.cellName {
		writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("this is the gateway of cell %s, not of cell %s", s.cellName, want))
		return
	}
	if h, pattern := s.mux.Handler(r); pattern == "" {
		// ServeMux reports a miss through a handler that writes plain
		// text: run it against a recorder to learn which miss it is.
		rec := &missRecorder{header: make(http.Header)}
		h.ServeHTTP(rec, r)
		if rec.code == http.StatusMethodNotAllowed {
			allow := rec.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeError(w, rec.code, fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such admin endpoint: %s", r.URL.Path))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// missRecorder captures the status and headers of ServeMux's 404 and 405
// handlers and discards their bodies.
type missRecorder struct {
	header http.Header
	code   int
}

func (m *missRecorder) Header() http.Header { return m.header }

func (m *missRecorder) Write(b []byte) (int, error) {
	if m.code == 0 {
		m.code = http.StatusOK
	}
	return len(b), nil
}

func (m *missRecorder) WriteHeader(code int) {
	if m.code == 0 {
		m.code = code
	}
}

// authorized lets a request through to h only with the project token.
func (s *Server) authorized(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r.Header.Get(api.TokenHeader))
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, http.StatusUnauthorized, "missing bearer token: this call needs the project token")
			return
		}
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, http.StatusUnauthorized, "invalid token")
			return
		}
		h(w, r)
	})
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// value. The scheme is case-insensitive (RFC 7235).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.cell.Status())
}

// handleEvents writes the backlog as NDJSON and, with ?follow=1, every
// later event as it is published, until the client goes away or the bus
// is closed.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	follow, err := queryBool(r.URL.Query(), "follow")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	if !follow {
		for _, e := range s.events.Backlog() {
			if err := enc.Encode(e); err != nil {
				return
			}
		}
		return
	}

	ctx, cancel := context.WithCancel(r.Context())
	backlog, ch := s.events.Subscribe(ctx)
	// Wait for the bus to close ch, so the subscription is gone by the
	// time the handler returns.
	defer func() {
		cancel()
		for range ch {
		}
	}()
	rc := http.NewResponseController(w)
	// A stream lasts as long as the client wants; the server's write
	// timeout is meant for ordinary answers.
	_ = rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	for _, e := range backlog {
		if err := enc.Encode(e); err != nil {
			return
		}
	}
	if !flush(rc) {
		return
	}
	for e := range ch {
		if err := enc.Encode(e); err != nil || !flush(rc) {
			return
		}
	}
}

// flush sends what has been written so far and reports whether the
// stream should go on. A writer that cannot flush still gets every event,
// only later.
func flush(rc *http.ResponseController) bool {
	err := rc.Flush()
	return err == nil || errors.Is(err, http.ErrNotSupported)
}

func (s *Server) handleScale(w http.ResponseWriter, r *http.Request) {
	var req api.ScaleRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	switch {
	case req.Service == "":
		writeError(w, http.StatusBadRequest, "service is required")
		return
	case req.Replicas < 0:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("replicas must not be negative, got %d", req.Replicas))
		return
	}
	if err := s.cell.Scale(r.Context(), req.Service, req.Replicas); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleRestart accepts an empty body as a restart of every service, so
// that a bare POST does what `orchestro restart CELL` does.
func (s *Server) handleRestart(w http.ResponseWriter, r *http.Request) {
	var req api.RestartRequest
	if err := decodeJSON(w, r, &req, true); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.cell.Restart(r.Context(), req.Service); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleSpec(w http.ResponseWriter, r *http.Request) {
	spec, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSpecBody))
	if err != nil {
		s.fail(w, r, bodyError(err))
		return
	}
	switch {
	case len(spec) == 0:
		writeError(w, http.StatusBadRequest, "request body is empty: expected the cell spec as JSON")
		return
	case !json.Valid(spec):
		writeError(w, http.StatusBadRequest, "request body is not valid JSON: expected the cell spec as JSON")
		return
	}
	if err := s.cell.UpdateSpec(r.Context(), spec); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	if err := s.cell.Stop(r.Context()); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fail answers err with the status it maps to and logs server faults.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code >= 500 {
		s.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	writeError(w, code, err.Error())
}

// decodeJSON decodes exactly one JSON value from r's body into v,
// refusing unknown fields and bodies over maxRequestBody. An empty body
// leaves v untouched when allowEmpty is set.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			if allowEmpty {
				return nil
			}
			return BadRequest(errors.New("request body is empty"))
		}
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return bodyError(err)
		}
		return BadRequest(errors.New("decode request body: more than one JSON value"))
	}
	return nil
}

// bodyError maps a failure to read or decode a request body to 413 or
// 400.
func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &StatusError{
			Code: http.StatusRequestEntityTooLarge,
			Err:  fmt.Errorf("request body is larger than %d bytes", tooLarge.Limit),
		}
	}
	return BadRequest(fmt.Errorf("decode request body: %w", err))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	// The status line is out: an encoding error can only be a client that
	// went away.
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.Error{Error: msg})
}
