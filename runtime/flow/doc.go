// Package flow executes the flows of a cell (DESIGN §6): the steps of one
// client request, their retries and timeouts, and the compensation of
// completed steps when the execution fails (a saga). It is the pure engine:
// it makes no connection and keeps no time of its own. Calls go through a
// Caller, which the gateway implements with its balancing, health and
// records; time comes from a Clock. Tests drive both with fakes, so every
// scenario (a deadline passing mid-step, a backoff of 400ms, a sibling
// cancelled in flight) runs without a network or a sleep.
//
// New prepares a Runner once per flow: the calls' templates sorted, literal
// bodies encoded, and which names the flow's expressions use (the
// environment builds only those, and parses only the answer bodies some
// expression or the default response reads). A Runner is immutable;
// Execute keeps all of an execution's state in that call, so a Runner
// serves concurrent executions.
//
// # Execution
//
// Steps run in the order written; the members of a parallel group start
// together and the group ends when all have. A step's when is evaluated
// first: false or null skips it, any other value that is not a boolean is
// an error. Then its request is rendered and tried up to its retry's
// attempts. Each try has the step's timeout, unless the flow's deadline
// is sooner, in which case the deadline ends it (so the two are told
// apart). The wait after the n-th try is backoff·2ⁿ⁻¹, capped at
// max_backoff, drawn in [d/2, d] with jitter (see WithJitter). The retry
// rule is shouldRetry:
//
//   - a failed connection (ErrConnect) is retried when retry_on lists
//     connect;
//   - a failure after which the request may have reached a replica is
//     retried like a failed connection, and a try that timed out when
//     retry_on lists timeout, but both only when the request is
//     idempotent: its method is (GET, HEAD, OPTIONS, TRACE, PUT, DELETE)
//     or it carries a non-empty Idempotency-Key, which every call does
//     unless its headers set the field to "" (a step opts out that way of
//     retries that could repeat an effect);
//   - an answer whose status the step does not expect is retried when
//     retry_on lists the status, idempotent or not: the replica chose to
//     answer it;
//   - an answer body over the flow's max_body fails the step at once.
//
// After the tries, a status with an on_status fail answer fails the
// execution with that answer; an expected status succeeds; anything else
// fails the step. A required step failing, the deadline passing or the
// caller's context ending stop the execution: no further step starts and
// calls in flight are cancelled. An optional step never stops it: when it
// fails, its body is its fallback (or null), and an on_status fail answer
// does not apply to it.
//
// # Compensation
//
// A stopped execution compensates, one after another and awaited, the
// steps that succeeded (optional ones included), the last to complete
// first, after the steps cancelled in flight that may have reached a
// replica (see compensationOrder). A cancelled step is compensated only
// when its compensation's templates do not refer to its own id, since it
// has no answer; otherwise it is reported as not_compensated. A
// compensation is bounded by its own timeout and attempts, not by the
// deadline nor the caller's context, and follows the same retry rule; a
// 2xx or a 404 answer is done.
//
// # Requests
//
// A call's path is its call's path with each expression value escaped as
// (part of) one path segment: a value cannot add segments, a query or a
// fragment, and a value that is empty, "." or ".." is an error, since it
// would name another resource (DELETE /reservations/ rather than one
// reservation). Its query parameters are rendered, encoded and added to a
// query the path may hold; a list value repeats the parameter. A header
// field or query parameter that renders empty is left out, and a header
// value with a control character is an error. Every call carries
// Idempotency-Key: <flow id>-<step id> (with -compensate for a
// compensation) unless its headers set the field in any case,
// X-Request-ID, and a traceparent that is a new span of the input's trace,
// or of a trace started for the execution when the input has no valid one;
// each try is a span of its own. The engine's X-Request-ID and traceparent
// replace a step's own. A body that renders to null or "" is no body, a
// string is sent as text/plain, anything else as JSON, each Content-Type
// unless the step sets one. An execution whose input has no id gets a
// random one, so its Idempotency-Keys never collide with another's.
//
// # Expressions
//
// Expressions see input (method, path, query by first value, headers by
// lower-case name with values joined by ", ", body), path (the route's
// captures), flow (id, name, started in RFC 3339) and each step that has
// ended by its id (status, headers, body, ok, error, tries, duration_ms).
// Bodies are parsed as JSON when their Content-Type is JSON or they look
// like a JSON object or list, and are text otherwise; JSON numbers that
// are integers become ints, so ids keep every digit. A skipped step has
// ok false, status 0 and a null body. An expression that fails at run time
// fails its step with the expression and the message.
//
// # Answer
//
// A successful execution answers the flow's response (200 unless it says
// otherwise), or 200 with an object of every step's body by id. A failed
// one answers the on_status fail answer as declared (with the step's
// status if it declares none), or an RFC 9457 application/problem+json
// body of type ProblemStepFailed (502), ProblemDeadline (504),
// ProblemCancelled (503), ProblemAnswer (502: the answer itself could
// not be rendered; the steps are compensated even so, since the client is
// told the execution failed) or ProblemJournal (503, below). Every answer
// carries HeaderFlowID, and HeaderCompensated when compensation ran.
//
// # Journal
//
// With a Journal (WithJournal), an execution's progress is recorded so
// that a gateway that crashes can finish it (Runner.Recover): its start,
// the intent to send a step's call, each step's outcome (with its answer's
// raw body), each compensation's, and its end. The engine waits for a
// record only where a crash could otherwise leave an effect that nobody
// knows of or a client that was told the wrong thing:
//
//   - before the first try of a step that has a compensate, for its
//     intent: a recovery compensates a step with an intent and no
//     outcome, since it may have taken effect. A step whose intent cannot
//     be journaled fails without being sent;
//   - before answering, for the end, when some step may have taken
//     effect: one that has a compensate, or whose method is not a plain
//     read (GET, HEAD, OPTIONS, TRACE), got a try that may have reached a
//     replica. A recovery finds no execution whose client was told it
//     succeeded, so a success whose end cannot be journaled is
//     compensated and answered ProblemJournal instead. An execution whose
//     every call was a plain read never waits;
//   - for an asynchronous execution (Runner.Start), before its first
//     step, for its start: its client is told it was accepted only once
//     a restarted gateway would find it.
//
// Every other record rides along with the next one waited for, since a
// journal commits an execution's records in order. Without a journal
// nothing is recorded, kept or allocated for it.
//
// Recover rebuilds an execution from what its journal holds: the steps'
// outcomes are restored in the order recorded, their answers parsed as
// the engine parses answers. A synchronous execution, whose client is
// gone, is compensated as one its client cancelled, the steps in doubt (an
// intent and no outcome) first, as steps cancelled in flight; one in doubt
// whose compensation needs its answer is sent again first, with the same
// Idempotency-Key, so that a service that honours keys answers as it did
// instead of acting twice. An asynchronous one resumes with the steps
// that have no outcome.
package flow
