package flow

import (
	"net/http"
	"time"
)

// A Journal makes an execution's progress durable, so that a gateway that
// crashes can finish what it started: compensate a synchronous execution
// whose client is gone, or resume an asynchronous one (Runner.Recover).
//
// Each method queues one record and returns at once with a Commit; the
// engine waits on the Commit only where durability matters before it goes
// on (see Runner.Execute), and lets the others ride along with the next
// group commit. Records of one execution are committed in the order they
// were queued, so a crash loses a suffix of them, never a record in the
// middle: waiting for one record waits for the execution's earlier ones,
// and a record that cannot be made durable fails the Wait of every later
// one.
//
// A method reads its record, and what the record refers to, only until it
// returns: it encodes or copies what it keeps. The records share memory
// with the execution (its input, its answers, its Result), which their
// owners may change or reuse afterwards.
//
// A Journal is used by the executions of every Runner given it at once,
// and by the members of a parallel group at once: its methods must be
// safe for concurrent use. The engine calls a Commit's Wait at most once,
// and never for most records.
type Journal interface {
	// Begin records an execution's start: its flow, id and input.
	// Runner.Start waits for it before the first step, so that the
	// client of an asynchronous execution is told it was accepted only
	// once a restarted gateway would find it; Execute does not.
	Begin(rec *BeginRecord) Commit
	// Intent records that a step's call is about to be sent. The engine
	// waits for it before the first try of a step that has a compensate,
	// and fails the step without sending it when it cannot be durable:
	// after a crash, a step with an intent and no outcome may have taken
	// effect, and is compensated. Steps without a compensate record no
	// intent. A step may record more than one (a recovery that resumes or
	// sends it again records another).
	Intent(id, step string) Commit
	// Step records a step's outcome, with what later steps and its
	// compensation read of it. The members of a parallel group record
	// theirs in the order they end.
	Step(id string, rec *StepRecord) Commit
	// Compensation records the outcome of a step's compensation.
	Compensation(id string, rec *CompensationResult) Commit
	// End records the execution's answer. The engine waits for it before
	// answering when some step may have taken effect (a step that has a
	// compensate, or whose method is not GET, HEAD, OPTIONS or TRACE, got
	// a try that may have reached a replica), so that a recovery never
	// compensates an execution whose client was told it succeeded. A
	// success whose end cannot be durable is compensated and answered as
	// failed (ProblemJournal).
	End(id string, rec *EndRecord) Commit
}

// A Commit reports when a queued record is durable.
type Commit interface {
	// Wait blocks until the record is durable, or returns why it cannot
	// be.
	Wait() error
}

// BeginRecord is the start of an execution.
type BeginRecord struct {
	ID       string    `json:"id"`
	Flow     string    `json:"flow"`
	Async    bool      `json:"async,omitempty"`
	Started  time.Time `json:"started"`
	Deadline time.Time `json:"deadline"`
	Input    *Input    `json:"input"`
}

// StepRecord is the outcome of one step, as much of it as templating and
// recovery need: its answer's status, header and raw body.
type StepRecord struct {
	Step     string        `json:"step"`
	State    string        `json:"state"`
	Status   int           `json:"status,omitempty"`
	Header   http.Header   `json:"header,omitempty"`
	Body     []byte        `json:"body,omitempty"`
	Tries    int           `json:"tries,omitempty"`
	Error    string        `json:"error,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	// Reached reports that a try may have reached a replica.
	Reached bool `json:"reached,omitempty"`
}

// EndRecord is an execution's end: how it ended and its answer.
type EndRecord struct {
	Outcome    Outcome       `json:"outcome"`
	Status     int           `json:"status"`
	Header     http.Header   `json:"header,omitempty"`
	Body       []byte        `json:"body,omitempty"`
	FailedStep string        `json:"failed_step,omitempty"`
	TimedOut   bool          `json:"timed_out,omitempty"`
	Finished   time.Time     `json:"finished"`
	Duration   time.Duration `json:"duration"`
	// Recovered reports that a gateway finished the execution after a
	// restart rather than the one that started it.
	Recovered bool `json:"recovered,omitempty"`
}

// Journaled is what a journal holds of an execution that did not end (a
// Begin and no End): the input of Runner.Recover.
type Journaled struct {
	// Begin is never nil: no other record of an execution is durable
	// without it.
	Begin *BeginRecord
	// Intents are the steps whose call was about to be sent, in the order
	// recorded; a step may be listed more than once.
	Intents []string
	// Steps are the recorded outcomes, in the order they were recorded
	// (the steps' completion order).
	Steps []*StepRecord
	// Compensations are the compensations already recorded, in the order
	// recorded.
	Compensations []*CompensationResult
}
