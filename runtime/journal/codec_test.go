package journal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/flow"
)

// codecCase is one record kind: how to encode a record and how to decode
// it back.
type codecCase struct {
	name   string
	rec    any
	encode func(e *enc)
	decode func(d *dec) any
	// times returns the times of a decoded record, to check they are UTC.
	times func(r any) []time.Time
}

// codecCases returns every record kind with all its fields set, with the
// times given.
func codecCases(started, deadline time.Time) []codecCase {
	begin := &flow.BeginRecord{
		ID: "x1", Flow: "place-order", Async: true, Started: started, Deadline: deadline,
		Input: &flow.Input{
			ID: "x1", Method: "POST", Path: "/checkout/42",
			Query:       map[string][]string{"coupon": {"a", "b"}, "empty": {""}},
			Header:      http.Header{"Content-Type": {"application/json"}, "X-User": {"ann", "bob"}},
			Body:        []byte("{\"items\":[1]}\x00\xff"),
			Captures:    map[string]string{"order": "42", "user": "ann"},
			RequestID:   "req-1",
			Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		},
	}
	beginNoInput := &flow.BeginRecord{ID: "x2", Flow: "f", Started: started, Deadline: deadline}
	step := &flow.StepRecord{
		Step: "reserve", State: flow.StepFailed, Status: -402,
		Header: http.Header{"Content-Type": {"text/plain"}, "Retry-After": {"3"}},
		Body:   []byte("declined\x00\xff"), Tries: 7, Error: "status 402",
		Started: started, Duration: -1500 * time.Microsecond, Reached: true,
	}
	comp := &flow.CompensationResult{Step: "reserve", Outcome: flow.CompensationDone, Status: 404, Tries: math.MaxInt32, Error: "gone"}
	end := &flow.EndRecord{
		Outcome: flow.Compensated, Status: 502,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       []byte(`{"error":"payment_declined"}`),
		FailedStep: "charge", TimedOut: true, Finished: deadline, Duration: 2*time.Hour + time.Nanosecond, Recovered: true,
	}
	return []codecCase{
		{
			name: "begin", rec: begin,
			encode: func(e *enc) { encodeBegin(e, begin) },
			decode: func(d *dec) any { return decodeBegin(d, "x1") },
			times:  func(r any) []time.Time { b := r.(*flow.BeginRecord); return []time.Time{b.Started, b.Deadline} },
		},
		{
			name: "begin without input", rec: beginNoInput,
			encode: func(e *enc) { encodeBegin(e, beginNoInput) },
			decode: func(d *dec) any { return decodeBegin(d, "x2") },
			times:  func(r any) []time.Time { b := r.(*flow.BeginRecord); return []time.Time{b.Started, b.Deadline} },
		},
		{
			name: "step", rec: step,
			encode: func(e *enc) { encodeStep(e, step) },
			decode: func(d *dec) any { return decodeStep(d) },
			times:  func(r any) []time.Time { return []time.Time{r.(*flow.StepRecord).Started} },
		},
		{
			name: "compensation", rec: comp,
			encode: func(e *enc) { encodeCompensation(e, comp) },
			decode: func(d *dec) any { return decodeCompensation(d) },
		},
		{
			name: "end", rec: end,
			encode: func(e *enc) { encodeEnd(e, end) },
			decode: func(d *dec) any { return decodeEnd(d) },
			times:  func(r any) []time.Time { return []time.Time{r.(*flow.EndRecord).Finished} },
		},
		{
			name: "intent", rec: "reserve",
			encode: func(e *enc) { e.str("reserve") },
			decode: func(d *dec) any { return d.str() },
		},
	}
}

// codecTimes are the pairs of times the records are encoded with.
var codecTimes = []struct {
	name              string
	started, deadline time.Time
}{
	{"utc", t0.Add(123456789 * time.Nanosecond), t0.Add(24 * time.Hour)},
	{"zero", time.Time{}, time.Time{}},
	{"other zone", time.Date(2026, 3, 1, 9, 30, 15, 999999999, time.FixedZone("X", -(3*3600+30*60))),
		time.Date(2026, 3, 2, 1, 0, 0, 1, time.FixedZone("Y", 14*3600))},
	{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
	{"now", time.Now(), time.Now().Add(time.Minute)},
}

// TestCodecRoundTrip encodes every record kind with all its fields set
// and decodes it back: the same record, every byte read, its times UTC
// and equal to the originals.
func TestCodecRoundTrip(t *testing.T) {
	for _, tm := range codecTimes {
		for _, tt := range codecCases(tm.started, tm.deadline) {
			t.Run(tm.name+"/"+tt.name, func(t *testing.T) {
				var e enc
				tt.encode(&e)
				d := dec{b: e.b}
				got := tt.decode(&d)
				if d.err != nil {
					t.Fatalf("decode: %v", d.err)
				}
				if len(d.b) != 0 {
					t.Errorf("%d bytes left after decoding, want 0", len(d.b))
				}
				if diff := cmp.Diff(tt.rec, got); diff != "" {
					t.Errorf("decoded record (-want +got):\n%s", diff)
				}
				if tt.times == nil {
					return
				}
				want := tt.times(tt.rec)
				for i, gt := range tt.times(got) {
					if gt.Location() != time.UTC {
						t.Errorf("time %d decoded in %v, want UTC", i, gt.Location())
					}
					if !gt.Equal(want[i]) {
						t.Errorf("time %d decoded as %v, want %v", i, gt, want[i])
					}
					if gt.IsZero() != want[i].IsZero() {
						t.Errorf("time %d: IsZero %v, want %v", i, gt.IsZero(), want[i].IsZero())
					}
				}
			})
		}
	}
}

// TestCodecHeads checks that the heads Open reads of a Begin and of an End
// are their first fields.
func TestCodecHeads(t *testing.T) {
	cases := codecCases(t0, t0.Add(time.Hour))
	var e enc
	cases[0].encode(&e)
	d := dec{b: e.b}
	bh := decodeBeginHead(&d)
	if d.err != nil {
		t.Fatal(d.err)
	}
	wantB := beginHead{flow: "place-order", async: true, started: t0}
	if bh.flow != wantB.flow || bh.async != wantB.async || !bh.started.Equal(wantB.started) {
		t.Errorf("begin head %+v, want %+v", bh, wantB)
	}

	e = enc{}
	cases[4].encode(&e)
	d = dec{b: e.b}
	eh := decodeEndHead(&d)
	if d.err != nil {
		t.Fatal(d.err)
	}
	wantE := endHead{outcome: flow.Compensated, failedStep: "charge", recovered: true, duration: 2*time.Hour + time.Nanosecond}
	if eh != wantE {
		t.Errorf("end head %+v, want %+v", eh, wantE)
	}
}

// TestCodecTruncated decodes every strict prefix of every record kind's
// encoding: each gives an error, and none panics.
func TestCodecTruncated(t *testing.T) {
	for _, tm := range codecTimes {
		for _, tt := range codecCases(tm.started, tm.deadline) {
			t.Run(tm.name+"/"+tt.name, func(t *testing.T) {
				var e enc
				tt.encode(&e)
				for n := range len(e.b) {
					// A copy of exactly n bytes, so that reading past it
					// cannot go unnoticed.
					d := dec{b: append([]byte(nil), e.b[:n]...)}
					func() {
						defer func() {
							if r := recover(); r != nil {
								t.Fatalf("decoding the first %d of %d bytes panicked: %v", n, len(e.b), r)
							}
						}()
						tt.decode(&d)
					}()
					if d.err == nil {
						t.Errorf("decoding the first %d of %d bytes: no error", n, len(e.b))
					}
				}
			})
		}
	}
}

// TestCodecDamaged decodes every record kind's encoding with each byte
// replaced by a few values: a decoder may read a wrong record but must
// not panic or allocate for a length the record cannot hold.
func TestCodecDamaged(t *testing.T) {
	for _, tt := range codecCases(t0, t0.Add(time.Hour)) {
		t.Run(tt.name, func(t *testing.T) {
			var e enc
			tt.encode(&e)
			for i := range e.b {
				for _, v := range []byte{0x00, 0x01, 0x7f, 0x80, 0xff, e.b[i] ^ 0x40} {
					b := append([]byte(nil), e.b...)
					b[i] = v
					func() {
						defer func() {
							if r := recover(); r != nil {
								t.Fatalf("byte %d set to %#x: panic: %v", i, v, r)
							}
						}()
						tt.decode(&dec{b: b})
					}()
				}
			}
		})
	}
}

// TestDecodeRefuses checks the values a decoder refuses though the bytes
// are there.
func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name   string
		encode func(e *enc)
		decode func(d *dec)
		want   string
	}{
		{"nanoseconds past a second", func(e *enc) { e.int(0); e.uint(uint64(time.Second)) },
			func(d *dec) { d.time() }, "nanoseconds"},
		{"int32 too large", func(e *enc) { e.int(math.MaxInt32 + 1) }, func(d *dec) { d.int32() }, "out of range"},
		{"int32 too small", func(e *enc) { e.int(math.MinInt32 - 1) }, func(d *dec) { d.int32() }, "out of range"},
		{"string longer than the record", func(e *enc) { e.uint(4); e.b = append(e.b, "abc"...) },
			func(d *dec) { d.str() }, errShort.Error()},
		{"huge map count", func(e *enc) { e.uint(1 << 60); e.str("k") }, func(d *dec) { d.values() }, errShort.Error()},
		{"huge string map count", func(e *enc) { e.uint(1 << 60); e.str("k") }, func(d *dec) { d.strings() }, errShort.Error()},
		{"huge list in a map", func(e *enc) { e.uint(1); e.str("k"); e.uint(1 << 60) }, func(d *dec) { d.values() }, errShort.Error()},
		{"varint over 64 bits", func(e *enc) { e.b = append(e.b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01) },
			func(d *dec) { d.uint() }, errShort.Error()},
		{"empty bool", func(*enc) {}, func(d *dec) { d.bool() }, errShort.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e enc
			tt.encode(&e)
			d := dec{b: e.b}
			tt.decode(&d)
			if d.err == nil || !strings.Contains(d.err.Error(), tt.want) {
				t.Errorf("err = %v, want one with %q", d.err, tt.want)
			}
			// The error sticks, and later reads are zero.
			if v := d.uint(); v != 0 || d.err == nil {
				t.Errorf("read after the error: %d, err %v", v, d.err)
			}
		})
	}
}

// testFrame is the frame of a Step record of execution "exec-1", and the
// body it carries.
func testFrame(t *testing.T) ([]byte, []byte) {
	t.Helper()
	var e enc
	encodeStep(&e, &flow.StepRecord{Step: "reserve", State: flow.StepSucceeded, Status: 201, Body: []byte("ok"), Started: t0})
	return appendFrame([]byte("prefix"), kindStep, 0x01020304, "exec-1", e.b)[len("prefix"):], e.b
}

// TestFrameRoundTrip reads back a frame appendFrame wrote, among others.
func TestFrameRoundTrip(t *testing.T) {
	frame, body := testFrame(t)
	// Followed by another frame and zeros: nextFrame reads the first only.
	buf := appendFrame(append([]byte(nil), frame...), kindIntent, 1, "other", []byte{1, 'x'})
	buf = append(buf, make([]byte, 64)...)
	p, n, err := nextFrame(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(frame) {
		t.Errorf("frame of %d bytes, want %d", n, len(frame))
	}
	if bound := frameSize("exec-1", body); n > bound {
		t.Errorf("frame of %d bytes, over frameSize's %d", n, bound)
	}
	got, err := parsePayload(p)
	if err != nil {
		t.Fatal(err)
	}
	want := payload{kind: kindStep, seq: 0x01020304, id: "exec-1", body: body}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(payload{})); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	p2, n2, err := nextFrame(buf[n:])
	if err != nil {
		t.Fatal(err)
	}
	got2, err := parsePayload(p2)
	if err != nil {
		t.Fatal(err)
	}
	if got2.kind != kindIntent || got2.seq != 1 || got2.id != "other" || string(got2.body) != "\x01x" {
		t.Errorf("second frame %+v", got2)
	}
	if _, _, err := nextFrame(buf[n+n2:]); !errors.Is(err, errDamaged) {
		t.Errorf("zeros after the frames: %v, want errDamaged (length 0)", err)
	}
}

// TestFrameDamaged flips every byte of a frame in turn: nextFrame reports
// it, as errDamaged when the flipped byte is the checksum or in the
// payload, as errTorn or errDamaged when it is the length.
func TestFrameDamaged(t *testing.T) {
	frame, _ := testFrame(t)
	for i := range frame {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			b := append([]byte(nil), frame...)
			b[i] ^= mask
			_, _, err := nextFrame(b)
			switch {
			case i >= 4 && !errors.Is(err, errDamaged):
				t.Errorf("byte %d ^ %#x: %v, want errDamaged", i, mask, err)
			case i < 4 && !errors.Is(err, errDamaged) && !errors.Is(err, errTorn):
				t.Errorf("length byte %d ^ %#x: %v, want errDamaged or errTorn", i, mask, err)
			}
		}
	}
}

// TestFrameShort reads every strict prefix of a frame: errTorn.
func TestFrameShort(t *testing.T) {
	frame, _ := testFrame(t)
	for n := range len(frame) {
		if _, _, err := nextFrame(append([]byte(nil), frame[:n]...)); !errors.Is(err, errTorn) {
			t.Errorf("first %d of %d bytes: %v, want errTorn", n, len(frame), err)
		}
	}
}

// TestFrameLength checks the lengths nextFrame refuses before reading a
// payload.
func TestFrameLength(t *testing.T) {
	for _, n := range []uint32{0, maxFrame + 1, math.MaxUint32} {
		b := make([]byte, 64)
		binary.LittleEndian.PutUint32(b, n)
		if _, _, err := nextFrame(b); !errors.Is(err, errDamaged) {
			t.Errorf("length %d: %v, want errDamaged", n, err)
		}
	}
}

// TestParsePayloadRefuses checks payloads with a valid checksum that are
// not records.
func TestParsePayloadRefuses(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want string
	}{
		{"empty", nil, errShort.Error()},
		{"no seq", []byte{kindBegin, 0, 0}, errShort.Error()},
		{"no id length", []byte{kindBegin, 0, 0, 0, 0}, errShort.Error()},
		{"id past the end", []byte{kindBegin, 0, 0, 0, 0, 5, 'a', 'b'}, errShort.Error()},
		{"unknown kind", []byte{'Z', 0, 0, 0, 0, 1, 'a'}, "unknown"},
		{"zero kind", []byte{0, 0, 0, 0, 0, 1, 'a'}, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parsePayload(tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parsePayload = %v, want an error with %q", err, tt.want)
			}
			// Framed, it still fails: the checksum does not make it a
			// record.
			b := make([]byte, frameHeader, frameHeader+len(tt.p))
			b = append(b, tt.p...)
			if len(tt.p) == 0 {
				return
			}
			binary.LittleEndian.PutUint32(b, uint32(len(tt.p)))
			binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(tt.p, castagnoli))
			p, _, err := nextFrame(b)
			if err != nil {
				t.Fatalf("nextFrame: %v", err)
			}
			if _, err := parsePayload(p); err == nil {
				t.Error("parsePayload of the framed payload: no error")
			}
		})
	}
}
