package flow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orchestro/orchestro/cellspec"
)

// callOutcome is how a call ended, after all its tries.
type callOutcome struct {
	// resp is the last answer, nil when the last try got none.
	resp *Response
	// fault and err describe the last try's failure (faultNone and nil
	// when it got an answer); for faultStopped, err is why the
	// execution stopped.
	fault   fault
	err     error
	tries   int
	reached bool
}

// call makes req, trying again as p allows. accept tells which statuses
// end the call; the others are retried when p's retry_on lists them.
func (e *execution) call(ctx context.Context, req *Request, p policy, accept func(status int) bool) callOutcome {
	var out callOutcome
	var waited int // waits in a row for a replica
	n := attempts(p.retry)
	idempotent := isIdempotent(req.Method, req.Header)
	for try := 1; ; try++ {
		if ctx.Err() != nil {
			out.fault, out.err = faultStopped, context.Cause(ctx)
			return out
		}
		if try > 1 {
			req = withNewSpan(req, e.id.trace)
		}
		out.resp, out.fault, out.err = e.try(ctx, req, e.tryTimeout(p))
		if e.async && out.fault == faultConnect {
			// No replica took the request: an asynchronous execution
			// waits for one, as long as its deadline allows, and the
			// try does not count (the queue while a service is down).
			if err := e.awaitReplica(ctx, &waited); err != nil {
				out.fault, out.err = faultStopped, err
				return out
			}
			try--
			continue
		}
		waited = 0
		out.tries = try
		out.reached = out.reached || mayHaveReached(out.fault, out.err)
		if out.fault == faultStopped {
			out.err = context.Cause(ctx)
			return out
		}
		accepted := out.fault == faultNone && accept(out.resp.Status)
		status := 0
		if out.resp != nil {
			status = out.resp.Status
		}
		if try >= n || !shouldRetry(p.retry, out.fault, status, accepted, idempotent) {
			return out
		}
		if err := e.sleep(ctx, e.wait(p.retry, try)); err != nil {
			out.fault, out.err = faultStopped, err
			return out
		}
	}
}

// Waits of an asynchronous execution for a replica: doubling from the
// first to the longest.
const (
	replicaWaitFirst = 100 * time.Millisecond
	replicaWaitMax   = 5 * time.Second
)

// awaitReplica waits before an asynchronous execution tries again a call
// no replica took: replicaWaitFirst, doubling with each wait in a row up
// to replicaWaitMax. The Runner's waiting hook sees the execution wait.
func (e *execution) awaitReplica(ctx context.Context, waited *int) error {
	d := replicaWaitFirst << min(*waited, 6)
	d = min(d, replicaWaitMax)
	*waited++
	if e.r.onWait != nil {
		e.r.onWait(1)
		defer e.r.onWait(-1)
	}
	return e.sleep(ctx, d)
}

// tryTimeout returns the timer of a try: the policy's timeout, or none
// when the execution's deadline comes first and will end the try itself
// (so the two are told apart).
func (e *execution) tryTimeout(p policy) time.Duration {
	if p.bounded && e.deadline-e.r.clock.Now().Sub(e.started) <= p.timeout {
		return 0
	}
	return p.timeout
}

// try makes one try of req, ended after timeout (when not 0) or when ctx
// ends.
func (e *execution) try(ctx context.Context, req *Request, timeout time.Duration) (*Response, fault, error) {
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if timeout > 0 {
		stop := e.r.clock.AfterFunc(timeout, func() { cancel(errTryTimeout) })
		defer stop()
	}
	resp, err := e.r.caller.Call(tctx, req)
	switch {
	case err == nil && resp != nil:
		return resp, faultNone, nil
	case err == nil:
		return nil, faultSent, errors.New("the caller returned no answer")
	case errors.Is(err, ErrBodyTooLarge):
		return nil, faultTooLarge, fmt.Errorf("%w (%d bytes)", ErrBodyTooLarge, req.MaxBody)
	case ctx.Err() != nil:
		return nil, faultStopped, err
	case errors.Is(context.Cause(tctx), errTryTimeout):
		return nil, faultTimeout, fmt.Errorf("no answer within %s", timeout)
	case errors.Is(err, ErrConnect):
		return nil, faultConnect, err
	}
	return nil, faultSent, err
}

// wait returns the wait after the n-th try.
func (e *execution) wait(r cellspec.Retry, n int) time.Duration {
	d := backoff(r, n)
	if r.Jitter {
		d = jitter(d, e.r.draw)
	}
	return d
}

// sleep waits d on the execution's clock, or until ctx ends.
func (e *execution) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	fired := make(chan struct{})
	stop := e.r.clock.AfterFunc(d, func() { close(fired) })
	select {
	case <-fired:
		return nil
	case <-ctx.Done():
		stop()
		return context.Cause(ctx)
	}
}
