package proxy

import (
	"context"
	"time"
)

// RequestRecord describes one client request for the access log.
type RequestRecord struct {
	// Time is when the proxy received the request.
	Time time.Time
	// RequestID is the X-Request-ID sent upstream (the client's, or one the
	// proxy generated).
	RequestID string
	// TraceID is the W3C trace ID sent upstream; SpanID is the parent ID
	// the proxy put in the traceparent for this hop.
	TraceID string
	SpanID  string
	Method  string
	Host    string
	// Path is the request path as the client sent it.
	Path string
	// Remote is the client's address.
	Remote string
	// Status is the status sent to the client; 499 when the client went
	// away before an answer.
	Status int
	// Bytes counts the response body bytes sent to the client (for an
	// upgraded connection, the bytes from the upstream to the client).
	Bytes    int64
	Duration time.Duration
	// Route is the matched route prefix; Service the service it leads to.
	Route   string
	Service string
	// Upstream is the address of the last replica tried; Replica its name.
	Upstream string
	Replica  string
	// Flow and Step name the flow step that made the request, for calls
	// the gateway makes itself (Proxy.Call).
	Flow string
	Step string
	// Tries counts the tries made; more than one means retries.
	Tries int
	// Error describes why the proxy answered with an error, if it did.
	Error string
}

// Status the proxy records when the client went away first (nginx's
// convention); it is never sent.
const StatusClientClosed = 499

// DefaultRecordBuffer is how many records may wait for OnRequest before
// new ones are dropped.
const DefaultRecordBuffer = 4096

// emit queues a record for Run without ever blocking the request; a full
// queue drops the record and counts it.
func (p *Proxy) emit(rec *RequestRecord) {
	if p.records == nil {
		return
	}
	rec.Duration = p.now().Sub(rec.Time)
	select {
	case p.records <- *rec:
	default:
		p.dropped.Add(1)
	}
}

// Run hands request records to Options.OnRequest until ctx ends, then hands
// over those still queued and returns nil. Records are passed by pointer to
// a value owned by Run: OnRequest must not keep the pointer. Without an
// OnRequest hook Run just waits for ctx. Run is meant to be called once.
func (p *Proxy) Run(ctx context.Context) error {
	if p.records == nil {
		<-ctx.Done()
		return nil
	}
	// One record variable for the whole loop: taking the address of a
	// per-iteration variable would move every record to the heap.
	var rec RequestRecord
	for {
		select {
		case rec = <-p.records:
			p.opts.OnRequest(&rec)
		case <-ctx.Done():
			for {
				select {
				case rec = <-p.records:
					p.opts.OnRequest(&rec)
				default:
					return nil
				}
			}
		}
	}
}

// DroppedRecords returns how many records were dropped because OnRequest
// could not keep up (or Run was not running).
func (p *Proxy) DroppedRecords() uint64 { return p.dropped.Load() }
