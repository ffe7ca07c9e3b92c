package flow

import (
	"errors"
	"net/http"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// fault is how one try ended, as the retry decision sees it.
type fault uint8

const (
	// faultNone: the try got an answer (whatever its status).
	faultNone fault = iota
	// faultConnect: the request never reached a replica (ErrConnect).
	faultConnect
	// faultSent: the try failed after the request may have reached a
	// replica (a broken connection, a malformed answer).
	faultSent
	// faultTimeout: no answer within the step's timeout. The request may
	// have reached a replica.
	faultTimeout
	// faultTooLarge: the answer's body is over the flow's max_body.
	faultTooLarge
	// faultStopped: the execution stopped (a sibling failed, the deadline
	// passed, the client went away) while the try was running.
	faultStopped
)

// mayHaveReached reports whether a try that ended with f and err may have
// had an effect on a replica: anything but a request that never left,
// including one stopped while it was still connecting.
func mayHaveReached(f fault, err error) bool {
	switch f {
	case faultConnect:
		return false
	case faultStopped:
		return !errors.Is(err, ErrConnect)
	}
	return true
}

// shouldRetry decides whether a try that ended with f (and, for faultNone,
// an answer with status, accepted or not) is tried again, attempts left
// aside. It is the one home of the retry rule:
//
//   - a failed connection is retried when retry_on lists connect;
//   - a failure after the request may have reached a replica is retried
//     like a failed connection, and a timeout when retry_on lists timeout,
//     but both only when the request is idempotent (see isIdempotent): a
//     second try of a request that took effect must not take effect twice;
//   - an answer is retried when it is not accepted and retry_on lists its
//     status: the replica chose to answer it, so it is the spec's call;
//   - an answer body over max_body, or a stopped execution, never is.
func shouldRetry(r cellspec.Retry, f fault, status int, accepted, idempotent bool) bool {
	switch f {
	case faultNone:
		return !accepted && r.RetriesOn("", status)
	case faultConnect:
		return r.RetriesOn(cellspec.RetryOnConnect, 0)
	case faultSent:
		return idempotent && r.RetriesOn(cellspec.RetryOnConnect, 0)
	case faultTimeout:
		return idempotent && r.RetriesOn(cellspec.RetryOnTimeout, 0)
	}
	return false
}

// headerIdempotencyKey is the field that makes any request safe to retry.
const headerIdempotencyKey = "Idempotency-Key"

// isIdempotent reports whether a request may be sent again after it may
// have reached a replica: its method is idempotent (RFC 9110 §9.2.2: GET,
// HEAD, OPTIONS, TRACE, PUT, DELETE), or it carries a non-empty
// Idempotency-Key, which step and compensation calls do unless their
// headers remove it.
func isIdempotent(method string, h http.Header) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return h.Get(headerIdempotencyKey) != ""
}

// isSafe reports whether a method is a plain read (RFC 9110 §9.2.1: GET,
// HEAD, OPTIONS, TRACE), which changes nothing on its target.
func isSafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// attempts returns the tries a retry allows, at least one.
func attempts(r cellspec.Retry) int { return max(r.Attempts, 1) }

// backoff returns the wait after the n-th try (n from 1), before jitter:
// the retry's backoff, doubled after each try, capped at its max_backoff
// (when set).
func backoff(r cellspec.Retry, n int) time.Duration {
	d, limit := r.Backoff.D(), r.MaxBackoff.D()
	if d <= 0 {
		return 0
	}
	if limit <= 0 {
		limit = time.Duration(1<<63 - 1)
	}
	for i := 1; i < n && d < limit; i++ {
		if d > limit/2 {
			d = limit
			break
		}
		d *= 2
	}
	return min(d, limit)
}

// jitter returns a wait drawn in [d/2, d]. draw returns a value in [0, n).
func jitter(d time.Duration, draw func(n int64) int64) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + time.Duration(draw(int64(d-half)+1))
}
