package flow

import "net/http"

// WithJournal makes the Runner's executions durable in j (see Journal and
// Runner.Execute). Without it nothing is journaled, and executions cost
// nothing more.
func WithJournal(j Journal) Option {
	return func(r *Runner) { r.journal = j }
}

// begin journals the start of the execution of in.
func (e *execution) begin(in *Input, async bool) Commit {
	return e.r.journal.Begin(&BeginRecord{
		ID:       e.id.flowID,
		Flow:     e.r.flow.Name,
		Async:    async,
		Started:  e.started,
		Deadline: e.started.Add(e.deadline),
		Input:    in,
	})
}

// abandonStart journals the end of an asynchronous execution whose start
// the journal could not hold, so that a recovery never runs an execution
// its client was told was refused, should the start be durable after all.
func (e *execution) abandonStart() {
	now := e.r.clock.Now()
	e.r.journal.End(e.id.flowID, &EndRecord{
		Outcome:  Failed,
		Status:   http.StatusServiceUnavailable,
		Finished: now,
		Duration: now.Sub(e.started),
	})
}

// record is the journal's record of a step that ended.
func (run *stepRun) record() *StepRecord {
	rec := &StepRecord{
		Step:     run.plan.step.ID,
		State:    run.state.String(),
		Status:   run.status,
		Header:   run.header,
		Body:     run.raw,
		Tries:    run.tries,
		Started:  run.started,
		Duration: run.duration(),
		Reached:  run.reached,
	}
	if run.err != nil {
		rec.Error = run.err.Error()
	}
	return rec
}

// end journals the execution's end, and waits until it is durable when
// some step may have taken effect; it returns why it is not.
func (e *execution) end(res *Result) error {
	c := e.r.journal.End(e.id.flowID, &EndRecord{
		Outcome:    res.Outcome,
		Status:     res.Status,
		Header:     res.Header,
		Body:       res.Body,
		FailedStep: res.FailedStep,
		TimedOut:   res.TimedOut,
		Finished:   res.Started.Add(res.Duration),
		Duration:   res.Duration,
		Recovered:  res.Recovered,
	})
	if !e.mayHaveTakenEffect() {
		return nil
	}
	return c.Wait()
}

// mayHaveTakenEffect reports whether a recovery that found no end in the
// journal would have something to do: some step that has a compensate or
// is not a plain read got a try that may have reached a replica. An
// execution whose every call was a plain read, or never reached a
// replica, need not wait for its end to be durable before answering.
func (e *execution) mayHaveTakenEffect() bool {
	for i := range e.runs {
		if run := &e.runs[i]; run.reached && run.plan.effect {
			return true
		}
	}
	return false
}
