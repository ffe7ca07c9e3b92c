package cli

import (
	"strings"
	"testing"
)

// TestRuntimeUsageErrors checks that every bad flag or argument of the
// runtime verbs is a usage error (exit code 2) that names the problem, and
// that none of them connects to the engine.
func TestRuntimeUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"up build and no-build", []string{"up", "--build", "--no-build"}, "--build and --no-build cannot be used together"},
		{"up argument", []string{"up", "shop"}, `takes no arguments, got "shop"`},
		{"up unknown flag", []string{"up", "--bogus"}, "unknown flag: --bogus"},
		{"up zero wait timeout", []string{"up", "--wait", "--wait-timeout", "0s"}, "--wait-timeout 0s must be positive"},
		{"up bad wait timeout", []string{"up", "--wait-timeout", "soon"}, `invalid argument "soon"`},
		{"down argument", []string{"down", "now"}, "takes no arguments"},
		{"down negative timeout", []string{"down", "--timeout", "-1s"}, "--timeout -1s must not be negative"},
		{"ps argument", []string{"ps", "shop"}, "takes no arguments"},
		{"events argument", []string{"events", "shop"}, "takes no arguments"},
		{"invalid project flag", []string{"-p", "Demo", "ps"}, `invalid project name "Demo"`},

		{"scale nothing", []string{"scale"}, "scale needs at least one CELL/SERVICE=N argument"},
		{"scale missing equals", []string{"scale", "shop/orders"}, `scale "shop/orders": missing '='`},
		{"scale missing slash", []string{"scale", "orders=3"}, `scale "orders=3": missing '/'`},
		{"scale not a number", []string{"scale", "shop/orders=many"}, `replicas "many" is not a non-negative integer`},
		{"scale negative", []string{"scale", "shop/orders=-1"}, `replicas "-1" is not a non-negative integer`},
		{"scale plus sign", []string{"scale", "shop/orders=+1"}, `replicas "+1" is not a non-negative integer`},
		{"scale empty count", []string{"scale", "shop/orders="}, `replicas "" is not a non-negative integer`},
		{"scale duplicate", []string{"scale", "shop/orders=1", "shop/catalog=1", "shop/orders=2"}, `scale "shop/orders=2": shop/orders is given twice`},
		{"scale empty service", []string{"scale", "shop/=2"}, "the service name is empty"},
		{"scale empty cell", []string{"scale", "/orders=2"}, "the cell name is empty"},
		{"scale too many slashes", []string{"scale", "shop/orders/x=2"}, "too many '/'"},
		{"scale bad name", []string{"scale", "Shop/orders=2"}, `invalid cell name "Shop"`},
		{"scale second argument bad", []string{"scale", "shop/orders=2", "catalog"}, `scale "catalog": missing '='`},
		{"scale unknown service", []string{"scale", "shop/ordres=2"}, `cell shop has no service "ordres"; did you mean "orders"?`},
		{"scale unknown cell", []string{"scale", "shpo/orders=2"}, `unknown cell "shpo" in project demo; did you mean "shop"?`},
		{"scale unknown cell no hint", []string{"scale", "billing/orders=2"}, `unknown cell "billing" in project demo` + "\n"},

		{"restart nothing", []string{"restart"}, "restart takes one CELL or CELL/SERVICE argument, got 0"},
		{"restart two", []string{"restart", "shop", "users"}, "got 2"},
		{"restart empty service", []string{"restart", "shop/"}, `restart "shop/": the service name is empty`},
		{"restart unknown service", []string{"restart", "shop/ordrs"}, `cell shop has no service "ordrs"; did you mean "orders"?`},
		{"restart gateway", []string{"restart", "shop/gateway"}, `cell shop has no service "gateway"`},

		{"flows two", []string{"flows", "shop", "users"}, "flows takes at most one CELL argument, got 2"},
		{"flows service", []string{"flows", "shop/orders"}, `flows "shop/orders": invalid cell name: write CELL`},
		{"flows unknown cell", []string{"flows", "shpo"}, `unknown cell "shpo" in project demo (cells: shop); did you mean "shop"?`},
		{"flows unknown cell no hint", []string{"flows", "--json", "billing"}, `unknown cell "billing" in project demo (cells: shop)` + "\n"},

		{"logs two", []string{"logs", "shop", "users"}, "logs takes at most one CELL or CELL/SERVICE argument, got 2"},
		{"logs bad tail", []string{"logs", "--tail", "ten"}, `--tail "ten" must be "all" or a non-negative number of lines`},
		{"logs negative tail", []string{"logs", "--tail", "-1"}, `--tail "-1" must be`},
		{"logs bad since", []string{"logs", "--since", "yesterday"}, `--since "yesterday" is neither a duration`},
		{"logs negative since", []string{"logs", "--since", "-5m"}, "--since -5m: the duration must not be negative"},
		{"logs unknown cell", []string{"logs", "shpo"}, `unknown cell "shpo" in project demo; did you mean "shop"?`},
		{"logs unknown service", []string{"logs", "shop/dv"}, `cell shop has no service "dv"; did you mean "db"?`},
		{"unknown command", []string{"bogus"}, `unknown command "bogus" for orchestro` + "\n"},
		{"unknown command with hint", []string{"scael", "shop/orders=2"}, `unknown command "scael" for orchestro; did you mean "scale"?`},
		{"logs file shorthand is follow", []string{"logs", "-f", "cell.yaml"}, `invalid cell name "cell.yaml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if code := h.run(t.Context(), tt.args...); code != ExitUsage {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", code, ExitUsage, h.errOut)
			}
			if !strings.Contains(h.errOut.String(), tt.want) {
				t.Errorf("stderr does not contain %q:\n%s", tt.want, h.errOut)
			}
			if h.out.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", h.out)
			}
			h.wantCalls() // a usage error never reaches the engine
		})
	}
}

// TestRuntimeNoSpec checks that a command naming no project, in a
// directory without a spec, is a usage error, and that -p is enough for
// the commands that act on a running project.
func TestRuntimeNoSpec(t *testing.T) {
	h := newHarness(t, map[string]string{})
	if code := h.run(t.Context(), "down"); code != ExitUsage {
		t.Errorf("down: exit code = %d, want %d", code, ExitUsage)
	}
	if want := "name the project with -p"; !strings.Contains(h.errOut.String(), want) {
		t.Errorf("stderr does not contain %q:\n%s", want, h.errOut)
	}
	h.wantCalls()

	if code := h.run(t.Context(), "-p", "other", "down"); code != ExitOK {
		t.Errorf("down -p: exit code = %d, want 0; stderr:\n%s", code, h.errOut)
	}
	h.wantCalls("connect", "Down other volumes=false timeout=10s progress=true")
}
