package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/orchestro/orchestro/runtime/flow"
)

// Records are encoded in a compact binary form rather than JSON: a
// busy flow journals several records per execution, and encoding them is
// on the path of every call. Integers are varints, strings and byte
// slices a length then their bytes, times seconds and nanoseconds since
// the Unix epoch (read back in UTC), maps a count then their pairs. Fields
// follow in the order of the functions below; a change of that order is
// a new segment version (see segmentMagic).

// enc appends encoded values to a buffer.
type enc struct{ b []byte }

func (e *enc) uint(v uint64)  { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) int(v int64)    { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string)   { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) bytes(p []byte) { e.uint(uint64(len(p))); e.b = append(e.b, p...) }

func (e *enc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *enc) time(t time.Time) {
	e.int(t.Unix())
	e.uint(uint64(t.Nanosecond()))
}

func (e *enc) values(m map[string][]string) {
	e.uint(uint64(len(m)))
	for k, vs := range m {
		e.str(k)
		e.uint(uint64(len(vs)))
		for _, v := range vs {
			e.str(v)
		}
	}
}

func (e *enc) strings(m map[string]string) {
	e.uint(uint64(len(m)))
	for k, v := range m {
		e.str(k)
		e.str(v)
	}
}

// errShort reports a record that ends before its fields do, or whose
// lengths run past its end.
var errShort = errors.New("record cut short")

// dec reads what enc wrote. The first error sticks: every later read
// returns a zero value, and err reports it.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *dec) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length or a count of items of at least one byte each,
// which cannot be more than what is left.
func (d *dec) count() int {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return 0
	}
	return int(n)
}

// bytes returns a slice of the record itself, not a copy: the caller owns
// the buffer it decodes.
func (d *dec) bytes() []byte {
	n := d.count()
	if d.err != nil || n == 0 {
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) str() string { return string(d.bytes()) }

func (d *dec) bool() bool {
	if len(d.b) == 0 {
		d.fail(errShort)
		return false
	}
	v := d.b[0] != 0
	d.b = d.b[1:]
	return v
}

func (d *dec) int32() int {
	v := d.int()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail(fmt.Errorf("integer %d out of range", v))
		return 0
	}
	return int(v)
}

func (d *dec) time() time.Time {
	sec := d.int()
	nsec := d.uint()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) {
		d.fail(fmt.Errorf("nanoseconds %d out of range", nsec))
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *dec) values() map[string][]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	m := make(map[string][]string, n)
	for range n {
		k := d.str()
		vs := make([]string, d.count())
		for i := range vs {
			vs[i] = d.str()
		}
		if d.err != nil {
			return nil
		}
		m[k] = vs
	}
	return m
}

func (d *dec) strings() map[string]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.str()
		m[k] = d.str()
	}
	if d.err != nil {
		return nil
	}
	return m
}

// Bodies of each record kind. A Begin starts with what the index keeps
// (flow, async, start), an End likewise (outcome, failed step, recovered,
// duration), so that Open reads no further into them.

func encodeBegin(e *enc, r *flow.BeginRecord) {
	e.str(r.Flow)
	e.bool(r.Async)
	e.time(r.Started)
	e.time(r.Deadline)
	in := r.Input
	e.bool(in != nil)
	if in == nil {
		return
	}
	e.str(in.ID)
	e.str(in.Method)
	e.str(in.Path)
	e.values(in.Query)
	e.values(in.Header)
	e.bytes(in.Body)
	e.strings(in.Captures)
	e.str(in.RequestID)
	e.str(in.Traceparent)
}

// beginHead is what the index keeps of a Begin.
type beginHead struct {
	flow    string
	async   bool
	started time.Time
}

func decodeBeginHead(d *dec) beginHead {
	return beginHead{flow: d.str(), async: d.bool(), started: d.time()}
}

func decodeBegin(d *dec, id string) *flow.BeginRecord {
	h := decodeBeginHead(d)
	r := &flow.BeginRecord{ID: id, Flow: h.flow, Async: h.async, Started: h.started, Deadline: d.time()}
	if d.bool() {
		r.Input = &flow.Input{
			ID: d.str(), Method: d.str(), Path: d.str(), Query: d.values(), Header: d.values(),
			Body: d.bytes(), Captures: d.strings(), RequestID: d.str(), Traceparent: d.str(),
		}
	}
	return r
}

func encodeStep(e *enc, r *flow.StepRecord) {
	e.str(r.Step)
	e.str(r.State)
	e.int(int64(r.Status))
	e.values(r.Header)
	e.bytes(r.Body)
	e.int(int64(r.Tries))
	e.str(r.Error)
	e.time(r.Started)
	e.int(int64(r.Duration))
	e.bool(r.Reached)
}

func decodeStep(d *dec) *flow.StepRecord {
	return &flow.StepRecord{
		Step: d.str(), State: d.str(), Status: d.int32(), Header: d.values(), Body: d.bytes(),
		Tries: d.int32(), Error: d.str(), Started: d.time(), Duration: time.Duration(d.int()), Reached: d.bool(),
	}
}

func encodeCompensation(e *enc, r *flow.CompensationResult) {
	e.str(r.Step)
	e.str(r.Outcome)
	e.int(int64(r.Status))
	e.int(int64(r.Tries))
	e.str(r.Error)
}

func decodeCompensation(d *dec) *flow.CompensationResult {
	return &flow.CompensationResult{Step: d.str(), Outcome: d.str(), Status: d.int32(), Tries: d.int32(), Error: d.str()}
}

func encodeEnd(e *enc, r *flow.EndRecord) {
	e.str(string(r.Outcome))
	e.str(r.FailedStep)
	e.bool(r.Recovered)
	e.int(int64(r.Duration))
	e.bool(r.TimedOut)
	e.time(r.Finished)
	e.int(int64(r.Status))
	e.values(r.Header)
	e.bytes(r.Body)
}

// endHead is what the index keeps of an End.
type endHead struct {
	outcome    flow.Outcome
	failedStep string
	recovered  bool
	duration   time.Duration
}

func decodeEndHead(d *dec) endHead {
	return endHead{outcome: flow.Outcome(d.str()), failedStep: d.str(), recovered: d.bool(), duration: time.Duration(d.int())}
}

func decodeEnd(d *dec) *flow.EndRecord {
	h := decodeEndHead(d)
	return &flow.EndRecord{
		Outcome: h.outcome, FailedStep: h.failedStep, Recovered: h.recovered, Duration: h.duration,
		TimedOut: d.bool(), Finished: d.time(), Status: d.int32(), Header: d.values(), Body: d.bytes(),
	}
}

func (h endHead) summary(id string, b beginHead) Summary {
	return Summary{
		ID: id, Flow: b.flow, State: stateOf(true, h.outcome, false), Outcome: h.outcome, Started: b.started,
		Duration: Duration(h.duration), FailedStep: h.failedStep, Recovered: h.recovered, Async: b.async,
	}
}
