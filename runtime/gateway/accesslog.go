package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/orchestro/orchestro/runtime/flow"
	"github.com/orchestro/orchestro/runtime/proxy"
)

// accessLogger writes one JSON line per request. It is called from the
// proxy's record goroutine, never on a request's path, and encodes by hand
// into a buffer that is written out in batches: when it holds
// flushSize bytes, or flushDelay after its first line. A busy gateway
// thus makes one write per 32 KiB of lines rather than one per request,
// and a quiet one's lines appear within flushDelay.
type accessLogger struct {
	mu sync.Mutex
	// out receives the lines; nil writes no access log at all.
	out     io.Writer
	pending []byte
	// sample is the fraction of successful requests logged, 1 for all;
	// owed accumulates it, and a request is logged each time it reaches 1.
	sample, owed float64
	// flushPending is set while a flush is scheduled.
	flushPending bool
}

// Batching of access-log writes.
const (
	flushSize  = 32 << 10
	flushDelay = 100 * time.Millisecond
)

// newAccessLogger returns a logger writing to w (nil: none), logging the
// given fraction of successful requests (see cellspec.AccessLog.Sample).
func newAccessLogger(w io.Writer, sample float64) *accessLogger {
	if sample <= 0 || sample > 1 {
		sample = 1
	}
	return &accessLogger{out: w, pending: make([]byte, 0, flushSize+4<<10), sample: sample}
}

// log encodes one record, unless sampling leaves it out. Failed requests
// (a 5xx answer, or none) are always logged: they are the lines a busy
// cell's log is read for.
func (l *accessLogger) log(r *proxy.RequestRecord) {
	if l.out == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sample < 1 && r.Status < 500 && r.Error == "" {
		if l.owed += l.sample; l.owed < 1 {
			return
		}
		l.owed--
	}
	b := l.pending
	b = append(b, `{"time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","request_id":`...)
	b = appendJSONString(b, r.RequestID)
	b = append(b, `,"trace_id":`...)
	b = appendJSONString(b, r.TraceID)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, r.Method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, r.Path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, r.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(r.Duration.Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"service":`...)
	b = appendJSONString(b, r.Service)
	b = append(b, `,"replica":`...)
	b = appendJSONString(b, r.Replica)
	b = append(b, `,"upstream":`...)
	b = appendJSONString(b, r.Upstream)
	b = append(b, `,"tries":`...)
	b = strconv.AppendInt(b, int64(r.Tries), 10)
	if r.Flow != "" {
		b = append(b, `,"flow":`...)
		b = appendJSONString(b, r.Flow)
		b = append(b, `,"step":`...)
		b = appendJSONString(b, r.Step)
	}
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, r.Error)
	}
	l.pending = append(b, "}\n"...)
	l.wroteLocked()
}

// wroteLocked writes the buffer out once it is full, and otherwise makes
// sure a flush follows.
func (l *accessLogger) wroteLocked() {
	if len(l.pending) >= flushSize {
		l.flushLocked()
		return
	}
	if !l.flushPending {
		l.flushPending = true
		time.AfterFunc(flushDelay, l.flush)
	}
}

// flowLine is the access-log line of a flow execution, beside the lines
// of its calls (which carry its flow and step).
type flowLine struct {
	Time       string  `json:"time"`
	RequestID  string  `json:"request_id"`
	TraceID    string  `json:"trace_id,omitempty"`
	Method     string  `json:"method,omitempty"`
	Path       string  `json:"path,omitempty"`
	Status     int     `json:"status"`
	DurationMS float64 `json:"duration_ms"`
	Flow       string  `json:"flow"`
	FlowID     string  `json:"flow_id,omitempty"`
	Outcome    string  `json:"outcome"`
	FailedStep string  `json:"failed_step,omitempty"`
	// Recovered marks an execution a restarted gateway finished.
	Recovered bool           `json:"recovered,omitempty"`
	Steps     []flowLineStep `json:"steps,omitempty"`
}

type flowLineStep struct {
	ID          string  `json:"id"`
	State       string  `json:"state"`
	Status      int     `json:"status,omitempty"`
	Tries       int     `json:"tries,omitempty"`
	DurationMS  float64 `json:"duration_ms"`
	Error       string  `json:"error,omitempty"`
	Compensated string  `json:"compensated,omitempty"`
}

// logFlow writes the line of one flow execution; r is nil for an
// execution recovered after a restart. Executions are far rarer than
// requests, so it encodes with encoding/json.
func (l *accessLogger) logFlow(name, id, reqID string, r *http.Request, res *flow.Result) {
	if l.out == nil {
		return
	}
	line := flowLine{
		Time:       res.Started.UTC().Format(time.RFC3339Nano),
		RequestID:  reqID,
		Status:     res.Status,
		DurationMS: ms(res.Duration),
		Flow:       name,
		FlowID:     id,
		Outcome:    string(res.Outcome),
		FailedStep: res.FailedStep,
	}
	if r != nil {
		line.Method, line.Path = r.Method, r.URL.Path
		if tp := r.Header.Get("Traceparent"); len(tp) == 55 {
			line.TraceID = tp[3:35]
		}
	}
	line.Recovered = res.Recovered
	for _, s := range res.Steps {
		line.Steps = append(line.Steps, flowLineStep{ID: s.ID, State: s.State, Status: s.Status, Tries: s.Tries, DurationMS: ms(s.Duration), Error: s.Error, Compensated: s.Compensated})
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(append(l.pending, b...), '\n')
	l.wroteLocked()
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// flush writes out the buffered lines.
func (l *accessLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

func (l *accessLogger) flushLocked() {
	l.flushPending = false
	if len(l.pending) == 0 {
		return
	}
	// A write that fails (a full disk) loses these lines, not the next
	// ones: the buffer is bounded either way.
	_, _ = l.out.Write(l.pending)
	if cap(l.pending) > 4*flushSize {
		// A burst of long lines grew it: let it go.
		l.pending = make([]byte, 0, flushSize+4<<10)
		return
	}
	l.pending = l.pending[:0]
}

// appendJSONString appends s as a JSON string. Paths and request IDs come
// from clients, so control characters are escaped and invalid UTF-8 is
// replaced, as encoding/json does, keeping every line valid JSON.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
