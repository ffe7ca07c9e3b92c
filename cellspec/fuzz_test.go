package cellspec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// maxFuzzInput bounds the work per input: cell files are small, and the
// loader's cost grows with the input (and with alias expansion, which it
// caps itself).
const maxFuzzInput = 64 << 10

// FuzzLoad feeds arbitrary bytes to LoadCell: no input may panic or hang,
// every failure must be Problems located in the file, and whatever loads
// must hold the guarantees validation gives.
//
//	go test -run='^$' -fuzz=FuzzLoad -fuzztime=60s ./cellspec/
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{filepath.Join("..", "testdata"), "testdata"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ext := filepath.Ext(path); d.IsDir() || (ext != ".yaml" && ext != ".yml") {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			f.Add(data)
			return nil
		})
		if err != nil {
			f.Fatal(err)
		}
	}
	for _, s := range []string{
		"cell: a\ngateway: {port: 1}\nservices: {s: &x {image: i, port: 2}, t: {<<: *x, port: 3}}\n",
		"cell: ${A:-a}\ngateway: {port: '${P:?no}'}\nservices: {s: {image: $$x}}\n",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\ncell: *c\n",
		"cell: a\ngateway: {port: 1}\nservices:\n  a: {image: i, depends_on: [b]}\n  b: {image: i, depends_on: [a]}\n",
		"cell: a\ngateway: {port: 1, routes: [], outlier: {consecutive_5xx: 0}}\nservices: {s: {image: i, outlier: {max_ejection_percent: 100}}}\n",
		"cell: a\ngateway: {port: 1}\nservices: {s: {image: i, port: 2}}\nflows:\n  - name: f\n    route: \"POST /x/{id}\"\n    steps:\n      - {id: a, call: \"GET s /${{ path.id }}\", body: {n: [1, \"${{ input.body }}\"]}}\n      - parallel: [{id: b, call: GET s /b, when: \"${{ a.ok }}\", compensate: {call: \"DELETE s /${{ b.body }}\"}}]\n",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			t.Skip()
		}
		type result struct {
			c   *Cell
			err error
		}
		done := make(chan result, 1)
		go func() {
			c, _, err := LoadCell("fuzz.yaml", data, MapEnv(nil))
			done <- result{c, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("LoadCell did not return within 10s on:\n%q", data)
		}

		if r.err != nil {
			var probs Problems
			if !errors.As(r.err, &probs) || len(probs) == 0 {
				t.Fatalf("error is not Problems: %T %v", r.err, r.err)
			}
			for _, p := range probs {
				if p.Pos.File != "fuzz.yaml" || p.Pos.Line < 0 || p.Pos.Column < 0 || p.Msg == "" {
					t.Errorf("badly placed problem %#v", p)
				}
			}
			return
		}
		checkValidCell(t, r.c)
	})
}

// checkValidCell asserts what validation promises of a cell that loads.
func checkValidCell(t *testing.T, c *Cell) {
	t.Helper()
	// The loader accepts an empty name today (cell: "" or an unset
	// ${VAR}); anything else must be a DNS label.
	if c.Name != "" && !IsDNSLabel(c.Name) {
		t.Errorf("cell name %q", c.Name)
	}
	g := c.Gateway
	if g.Port < 1 || g.Port > 65535 {
		t.Errorf("gateway port %d", g.Port)
	}
	if g.Balance != BalanceRoundRobin && g.Balance != BalanceLeastRequest {
		t.Errorf("balance %q", g.Balance)
	}
	if len(c.Services) == 0 {
		t.Errorf("no services")
	}
	if g.Routes == nil {
		t.Errorf("routes are nil; absent routes are the default ones, routes: [] an empty list")
	}
	for _, r := range g.Routes {
		s := c.Services[r.Service]
		if !strings.HasPrefix(r.Path, "/") || s == nil || s.Port == 0 || r.Timeout <= 0 || r.Retries < 0 {
			t.Errorf("route %+v", r)
		}
	}
	for name, s := range c.Services {
		if !IsDNSLabel(name) || (s.Build == nil) == (s.Image == "") || s.Replicas < 0 {
			t.Errorf("service %s: %+v", name, s)
		}
		if s.Port < 0 || s.Port > 65535 {
			t.Errorf("service %s: port %d", name, s.Port)
		}
		if s.Restart != RestartAlways && s.Restart != RestartOnFailure && s.Restart != RestartNever {
			t.Errorf("service %s: restart %q", name, s.Restart)
		}
		if h := s.Health; h != nil && (h.Kind() == "" || h.Interval <= 0 || h.Timeout <= 0 || h.Retries < 1) {
			t.Errorf("service %s: health %+v", name, h)
		}
		if a := s.Autoscale; a != nil && (a.Min < 0 || a.Max < a.Min || a.Max < 1 || s.Replicas < a.Min || s.Replicas > a.Max) {
			t.Errorf("service %s: autoscale %+v with %d replicas", name, a, s.Replicas)
		}
		if o := c.OutlierFor(name); o.Consecutive5xx < 0 || o.BaseEjection <= 0 || o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
			t.Errorf("service %s: outlier %+v", name, o)
		}
		for _, dep := range s.DependsOn {
			if c.Services[dep] == nil || dep == name {
				t.Errorf("service %s: depends_on %q", name, dep)
			}
		}
	}
	for _, f := range c.Flows {
		if !IsDNSLabel(f.Name) || !isMethod(f.Route.Method) || !strings.HasPrefix(f.Route.Path, "/") ||
			f.Deadline <= 0 || f.MaxInflight < 1 || f.MaxBody < 1 || len(f.Steps) == 0 {
			t.Errorf("flow %+v", f)
		}
		if r := f.Response; r != nil && (r.Status < 100 || r.Status > 599) {
			t.Errorf("flow %s: response status %d", f.Name, r.Status)
		}
		ids := map[string]bool{}
		f.eachStep("", func(_ string, s *Step) {
			if s.ID == "" || ids[s.ID] || s.Call == nil || s.Timeout <= 0 || s.Retry.Attempts < 1 || s.Retry.Backoff > s.Retry.MaxBackoff {
				t.Errorf("flow %s: step %+v", f.Name, s)
			}
			ids[s.ID] = true
			if cp := s.Compensate; cp != nil && (cp.Call == nil || cp.Timeout <= 0 || cp.Retry.Attempts < 1) {
				t.Errorf("flow %s: step %s: compensate %+v", f.Name, s.ID, cp)
			}
		})
	}
}
