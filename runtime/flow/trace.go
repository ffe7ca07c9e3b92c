package flow

import (
	"math/rand/v2"
	"strings"
)

// traceContext is the W3C trace an execution's calls belong to: every call
// is a child span of the input's traceparent, or of a trace started for
// the execution when the input has none or a malformed one.
type traceContext struct {
	// traceID is 32 lower-case hex digits; flags 2.
	traceID string
	flags   string
}

// Lengths and offsets of a version 00 traceparent:
// 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>.
const (
	traceparentLen = 55
	traceIDStart   = 3
	spanIDStart    = 36
	flagsStart     = 53
)

// newTraceContext continues the trace of traceparent, or starts a sampled
// one (as the gateway's proxy does for a request without a valid one).
func newTraceContext(traceparent string) traceContext {
	if traceID, flags, ok := parseTraceparent(traceparent); ok {
		return traceContext{traceID: traceID, flags: flags}
	}
	var id [32]byte
	putHex(id[:16], nonZeroRandom())
	putHex(id[16:], rand.Uint64())
	return traceContext{traceID: string(id[:]), flags: "01"}
}

// child returns the traceparent of a new span of the trace.
func (tc traceContext) child() string {
	var b [traceparentLen]byte
	copy(b[:], "00-")
	copy(b[traceIDStart:], tc.traceID)
	b[spanIDStart-1] = '-'
	putHex(b[spanIDStart:spanIDStart+16], nonZeroRandom())
	b[flagsStart-1] = '-'
	copy(b[flagsStart:], tc.flags)
	return string(b[:])
}

// parseTraceparent returns the trace id and flags of a traceparent valid
// under W3C Trace Context: lower-case hex, a version other than ff, the
// exact length for version 00 (a later version may add fields after a
// dash), and trace and parent ids that are not all zeros.
func parseTraceparent(s string) (traceID, flags string, ok bool) {
	if len(s) < traceparentLen {
		return "", "", false
	}
	version := s[:2]
	if !isHex(version) || version == "ff" || s[2] != '-' || s[spanIDStart-1] != '-' || s[flagsStart-1] != '-' {
		return "", "", false
	}
	if len(s) > traceparentLen && (version == "00" || s[traceparentLen] != '-') {
		return "", "", false
	}
	traceID, spanID, flags := s[traceIDStart:spanIDStart-1], s[spanIDStart:flagsStart-1], s[flagsStart:traceparentLen]
	if !isHex(traceID) || !isHex(spanID) || !isHex(flags) || isZeros(traceID) || isZeros(spanID) {
		return "", "", false
	}
	return traceID, flags, true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isZeros reports whether a hex id is all zeros, which W3C forbids.
func isZeros(s string) bool { return strings.TrimLeft(s, "0") == "" }

// putHex writes v into dst as len(dst) hex digits, the last ones of v.
func putHex(dst []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = digits[v&0xf]
		v >>= 4
	}
}

// nonZeroRandom returns a random value other than zero: an all-zero span
// or trace id is invalid.
func nonZeroRandom() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}
