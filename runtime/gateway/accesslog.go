package gateway

import (
	"bufio"
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
// into a reused buffer so logging costs no allocation per line.
type accessLogger struct {
	mu  sync.Mutex
	w   *bufio.Writer
	buf []byte
	// flushPending is set while a flush of flow lines is scheduled.
	flushPending bool
}

func newAccessLogger(w io.Writer) *accessLogger {
	if w == nil {
		w = io.Discard
	}
	return &accessLogger{w: bufio.NewWriterSize(w, 64<<10), buf: make([]byte, 0, 512)}
}

// log encodes one record into the buffer; flush writes the buffer out.
// The proxy calls flush whenever its record queue runs empty, so a quiet
// gateway's lines appear at once and a busy one writes in batches.
func (l *accessLogger) log(r *proxy.RequestRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf[:0]
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
	b = append(b, "}\n"...)
	l.buf = b
	_, _ = l.w.Write(b)
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
	_, _ = l.w.Write(append(b, '\n'))
	// The proxy flushes when its record queue runs empty, which may
	// happen before this line is written: a flush follows shortly, one
	// per flowFlushDelay at most, rather than a write per execution.
	if !l.flushPending {
		l.flushPending = true
		time.AfterFunc(flowFlushDelay, l.flush)
	}
}

// flowFlushDelay bounds how long a flow execution's line may wait in the
// buffer.
const flowFlushDelay = 100 * time.Millisecond

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// flush writes out the buffered lines.
func (l *accessLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushPending = false
	_ = l.w.Flush()
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
