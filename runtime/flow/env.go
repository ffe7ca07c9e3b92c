package flow

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Names of the expression environment besides the steps' ids.
const (
	envInput = "input"
	envPath  = "path"
	envFlow  = "flow"
)

// noHeaders stands for the headers of a step without an answer, so that
// an expression indexing them gets null rather than an error. It is never
// written to.
var noHeaders = map[string]any{}

// envNeeds says which names of the environment besides the steps an
// execution builds: the ones its expressions name.
type envNeeds struct {
	input, path, flow bool
}

// newEnv returns the environment of an execution before its first step:
// input, path and flow, as far as need says. Each step adds itself under
// its id when it ends.
func newEnv(in *Input, id, flowName string, started time.Time, steps int, need envNeeds) map[string]any {
	env := make(map[string]any, 3+steps)
	if need.input {
		env[envInput] = map[string]any{
			"method":  in.Method,
			"path":    in.Path,
			"query":   firstValues(in.Query),
			"headers": joinedHeaders(in.Header),
			"body":    parseBody(in.Header.Get(headerContentType), in.Body),
		}
	}
	if need.path {
		captures := make(map[string]any, len(in.Captures))
		for k, v := range in.Captures {
			captures[k] = v
		}
		env[envPath] = captures
	}
	if need.flow {
		env[envFlow] = map[string]any{
			"id":      id,
			"name":    flowName,
			"started": started.UTC().Format(time.RFC3339Nano),
		}
	}
	return env
}

// stepEnv is what expressions see of a step that ended: its answer (the
// fallback as body when an optional step failed), whether it succeeded,
// why not, and its tries and duration.
func stepEnv(run *stepRun) map[string]any {
	headers := noHeaders
	if len(run.header) > 0 {
		headers = joinedHeaders(run.header)
	}
	msg := ""
	if run.err != nil {
		msg = run.err.Error()
	}
	return map[string]any{
		"status":      run.status,
		"headers":     headers,
		"body":        run.body,
		"ok":          run.state == stateSucceeded,
		"error":       msg,
		"tries":       run.tries,
		"duration_ms": run.duration().Milliseconds(),
	}
}

// firstValues maps each query parameter to its first value.
func firstValues(q map[string][]string) map[string]any {
	out := make(map[string]any, len(q))
	for k, vs := range q {
		if len(vs) > 0 {
			out[k] = vs[0]
		}
	}
	return out
}

// joinedHeaders maps each header field, by its lower-case name, to its
// values joined with ", " (RFC 9110 §5.3).
func joinedHeaders(h http.Header) map[string]any {
	out := make(map[string]any, len(h))
	for k, vs := range h {
		out[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	return out
}

// parseBody returns a body as expressions see it: nil when empty; the
// decoded JSON when its media type is JSON (application/json or any
// +json), or when it has none of these but looks like a JSON object or
// list; otherwise (or when it does not decode) its text.
//
// JSON numbers that are integers become ints (expressions compute with
// them as integers, and an id of 19 digits is sent on exactly as it came
// rather than rounded as a float64 would); other numbers are float64.
func parseBody(contentType string, b []byte) any {
	if len(b) == 0 {
		return nil
	}
	if isJSON(contentType) || looksLikeJSON(b) {
		if v, ok := decodeJSON(b); ok {
			return v
		}
	}
	return string(b)
}

// isJSON reports whether a Content-Type is JSON.
func isJSON(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// looksLikeJSON reports whether b starts like a JSON object or list.
func looksLikeJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// decodeJSON decodes a JSON body. Most bodies hold no number of more
// than 15 digits, which float64 holds exactly, so they are decoded the
// quick way; the others keep every digit through json.Number.
func decodeJSON(b []byte) (any, bool) {
	if !hasLongNumber(b) {
		var v any
		if err := json.Unmarshal(b, &v); err == nil {
			return ints(v), true
		}
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, false // more after the value: not a JSON body
	}
	return numbers(v), true
}

// hasLongNumber reports whether b holds a run of more than 15 digits,
// which a float64 may not hold exactly. A run inside a string counts too:
// it only sends the body the slower, exact way.
func hasLongNumber(b []byte) bool {
	run := 0
	for _, c := range b {
		if '0' <= c && c <= '9' {
			if run++; run > 15 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// maxExactInt is the largest integer below which every float64 integer is
// exact.
const maxExactInt = 1 << 53

// ints replaces, in place, the integral float64s of a decoded value with
// ints, as numbers does for json.Numbers.
func ints(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < maxExactInt {
			return int(x)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = ints(e)
		}
	case []any:
		for i, e := range x {
			x[i] = ints(e)
		}
	}
	return v
}

// numbers replaces the json.Numbers of a decoded value, in place, as ints
// does: an int when the number is an integer that fits, else a float64. An
// integer too large for an int, or a number out of float64's range, stays
// a json.Number: text and JSON render it exactly as written.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 0); err == nil {
			return int(i)
		}
		if strings.ContainsAny(string(x), ".eE") {
			if f, err := x.Float64(); err == nil {
				return ints(f)
			}
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}
