package cellspec

import (
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Rendering of flows as cell file YAML, for convert. A loaded flow holds
// every setting in force and no longer knows its defaults mapping, so each
// setting is written where it differs from what the loader would fill in
// from the file as rendered: the file loads back to the same flows.

func renderFlows(flows []*Flow) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode}
	for _, f := range flows {
		n.Content = append(n.Content, renderFlow(f))
	}
	return n
}

func renderFlow(f *Flow) *yaml.Node {
	n := yMap("name", yStr(f.Name), "route", yStr(f.Route.String()))
	add := func(key string, v *yaml.Node) { n.Content = append(n.Content, yStr(key), v) }
	if f.Deadline != Duration(DefaultFlowDeadline) {
		add("deadline", yDuration(f.Deadline))
	}
	if f.Mode == FlowAsync {
		add("mode", yStr(f.Mode))
	}
	if f.AsyncDeadline != Duration(DefaultAsyncDeadline) && f.AsyncDeadline != 0 {
		add("async_deadline", yDuration(f.AsyncDeadline))
	}
	if f.MaxInflight != DefaultFlowMaxInflight {
		add("max_inflight", yInt(f.MaxInflight))
	}
	if f.MaxBody != DefaultFlowMaxBody {
		add("max_body", yStr(formatBytes(f.MaxBody)))
	}
	steps := &yaml.Node{Kind: yaml.SequenceNode}
	for _, s := range f.Steps {
		if !s.IsGroup() {
			steps.Content = append(steps.Content, renderStep(s))
			continue
		}
		members := &yaml.Node{Kind: yaml.SequenceNode}
		for _, m := range s.Parallel {
			members.Content = append(members.Content, renderStep(m))
		}
		steps.Content = append(steps.Content, yMap(parallelKey, members))
	}
	add("steps", steps)
	if f.Response != nil {
		add("response", renderAnswer(f.Response, DefaultResponseStatus))
	}
	return n
}

func renderStep(s *Step) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	add := func(key string, v *yaml.Node) { n.Content = append(n.Content, yStr(key), v) }
	if s.ID != "" {
		add("id", yStr(s.ID))
	}
	if s.When != nil {
		add("when", yValue(s.When.Raw()))
	}
	if s.Call != nil {
		add("call", yTemplateStr(s.Call.String()))
	}
	addRequest(add, s.Headers, s.Query, s.Body)
	if s.Timeout != Duration(DefaultStepTimeout) {
		add("timeout", yDuration(s.Timeout))
	}
	if rn := renderRetry(s.Retry, defaultRetry()); rn != nil {
		add("retry", rn)
	}
	if len(s.Expect) > 0 {
		en := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, code := range s.Expect {
			en.Content = append(en.Content, yInt(code))
		}
		add("expect", en)
	}
	if len(s.OnStatus) > 0 {
		on := &yaml.Node{Kind: yaml.MappingNode}
		codes := make([]int, 0, len(s.OnStatus))
		for code := range s.OnStatus {
			codes = append(codes, code)
		}
		slices.Sort(codes)
		for _, code := range codes {
			o := &yaml.Node{Kind: yaml.MappingNode}
			if fail := s.OnStatus[code].Fail; fail != nil {
				o = yMap("fail", renderAnswer(fail, code))
			}
			on.Content = append(on.Content, yInt(code), o)
		}
		add("on_status", on)
	}
	if s.Optional {
		add("optional", yBool(true))
	}
	if s.Fallback != nil {
		add("fallback", yValue(s.Fallback.Raw()))
	}
	if cp := s.Compensate; cp != nil {
		cn := &yaml.Node{Kind: yaml.MappingNode}
		cadd := func(key string, v *yaml.Node) { cn.Content = append(cn.Content, yStr(key), v) }
		if cp.Call != nil {
			cadd("call", yTemplateStr(cp.Call.String()))
		}
		addRequest(cadd, cp.Headers, cp.Query, cp.Body)
		if cp.Timeout != s.Timeout {
			cadd("timeout", yDuration(cp.Timeout))
		}
		base := s.Retry
		base.Attempts = max(base.Attempts, DefaultCompensateAttempts)
		if rn := renderRetry(cp.Retry, base); rn != nil {
			cadd("retry", rn)
		}
		add("compensate", cn)
	}
	return n
}

// addRequest adds the headers, query and body of a call.
func addRequest(add func(string, *yaml.Node), headers, query map[string]*Template, body *Template) {
	if len(headers) > 0 {
		add("headers", yTemplateMap(headers))
	}
	if len(query) > 0 {
		add("query", yTemplateMap(query))
	}
	if body != nil {
		add("body", yValue(body.Raw()))
	}
}

// renderAnswer writes an answer; its status is left out when it is the
// one the loader fills in.
func renderAnswer(a *FlowAnswer, defaultStatus int) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	if a.Status != defaultStatus {
		n.Content = append(n.Content, yStr("status"), yInt(a.Status))
	}
	if len(a.Headers) > 0 {
		n.Content = append(n.Content, yStr("headers"), yTemplateMap(a.Headers))
	}
	if a.Body != nil {
		n.Content = append(n.Content, yStr("body"), yValue(a.Body.Raw()))
	}
	return n
}

// renderRetry writes the fields of r that differ from base, or returns nil
// when none does.
func renderRetry(r, base Retry) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	add := func(key string, v *yaml.Node) { n.Content = append(n.Content, yStr(key), v) }
	if r.Attempts != base.Attempts {
		add("attempts", yInt(r.Attempts))
	}
	if r.Backoff != base.Backoff {
		add("backoff", yDuration(r.Backoff))
	}
	if r.MaxBackoff != base.MaxBackoff {
		add("max_backoff", yDuration(r.MaxBackoff))
	}
	if r.Jitter != base.Jitter {
		add("jitter", yBool(r.Jitter))
	}
	if !slices.Equal(r.RetryOn, base.RetryOn) {
		on := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, e := range r.RetryOn {
			if code, err := strconv.Atoi(e); err == nil {
				on.Content = append(on.Content, yInt(code))
			} else {
				on.Content = append(on.Content, yStr(e))
			}
		}
		add("retry_on", on)
	}
	if len(n.Content) == 0 {
		return nil
	}
	return n
}

// yValue writes a template's value as written (see decoder.value).
func yValue(v any) *yaml.Node {
	switch x := v.(type) {
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	case bool:
		return yBool(x)
	case float64:
		return yFloat(x)
	case int:
		return yInt(x)
	case string:
		return yTemplateStr(x)
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, e := range x {
			n.Content = append(n.Content, yValue(e))
		}
		return n
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range sortedKeys(x) {
			n.Content = append(n.Content, yKey(k), yValue(x[k]))
		}
		return n
	}
	return yStr(Text(v))
}

func yTemplateMap(m map[string]*Template) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range sortedKeys(m) {
		n.Content = append(n.Content, yKey(k), yValue(m[k].Raw()))
	}
	return n
}

// yKey writes a mapping key: keys are not interpolated.
func yKey(k string) *yaml.Node {
	n := yStr(k)
	n.Value = k
	return n
}

// yTemplateStr writes a string that may hold ${{ expressions }}: "$" is
// doubled in its text only, since interpolation leaves expressions alone.
func yTemplateStr(s string) *yaml.Node {
	var b strings.Builder
	expressionSpans(s, func(part string, expr bool) {
		if !expr {
			part = strings.ReplaceAll(part, "$", "$$")
		}
		b.WriteString(part)
	})
	n := yStr(s)
	n.Value = b.String()
	return n
}
