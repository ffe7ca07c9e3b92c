package tui

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// screen renders the model as a terminal without colour shows it: the
// ASCII profile keeps bold, faint and reverse video and drops colours.
func screen(t testing.TB, m *Model) string {
	t.Helper()
	var b bytes.Buffer
	w := &colorprofile.Writer{Forward: &b, Profile: colorprofile.ASCII}
	if _, err := w.WriteString(m.View().Content); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestViewGolden(t *testing.T) {
	tests := []struct {
		name string
		w, h int
		// setup brings the model to the state shown.
		setup func(m *Model)
	}{
		{name: "normal_80x24", w: 80, h: 24, setup: func(m *Model) { feedAll(m, testStatus()) }},
		{name: "normal_120x36", w: 120, h: 36, setup: func(m *Model) { feedAll(m, testStatus()) }},
		{name: "empty_80x24", w: 80, h: 24, setup: func(m *Model) { send(m, statusMsg{st: &api.ProjectStatus{Project: "demo"}}) }},
		{name: "waiting_80x24", w: 80, h: 24, setup: func(m *Model) {}},
		{name: "unhealthy_100x30", w: 100, h: 30, setup: func(m *Model) {
			feedAll(m, testStatus())
			send(m, statusMsg{st: unhealthyStatus()})
			typeKeys(m, "down")
		}},
		{name: "help_80x24", w: 80, h: 24, setup: func(m *Model) {
			feedAll(m, testStatus())
			typeKeys(m, "?")
		}},
		{name: "filter_100x30", w: 100, h: 30, setup: func(m *Model) {
			feedAll(m, testStatus())
			typeKeys(m, "/ e r r o r")
		}},
		{name: "filter_applied_100x30", w: 100, h: 30, setup: func(m *Model) {
			feedAll(m, testStatus())
			typeKeys(m, "/ e r r o r enter t")
		}},
		{name: "narrow_50x20", w: 50, h: 20, setup: func(m *Model) { feedAll(m, testStatus()) }},
		{name: "replica_logs_zoomed_80x24", w: 80, h: 24, setup: func(m *Model) {
			feedAll(m, testStatus())
			typeKeys(m, "enter j enter w t")
		}},
		{name: "scale_prompt_80x24", w: 80, h: 24, setup: func(m *Model) {
			feedAll(m, testStatus())
			typeKeys(m, "down s 5")
		}},
		{name: "restart_confirm_80x24", w: 80, h: 24, setup: func(m *Model) {
			feedAll(m, testStatus())
			typeKeys(m, "r")
		}},
		{name: "too_small_30x10", w: 30, h: 10, setup: func(m *Model) { feedAll(m, testStatus()) }},
		{name: "flows_80x24", w: 80, h: 24, setup: func(m *Model) { feedAll(m, flowStatus()) }},
		{name: "flows_120x36", w: 120, h: 36, setup: func(m *Model) { feedAll(m, flowStatus()) }},
		{name: "flows_narrow_50x20", w: 50, h: 20, setup: func(m *Model) { feedAll(m, flowStatus()) }},
		{name: "flows_focused_100x30", w: 100, h: 30, setup: func(m *Model) {
			feedAll(m, flowStatus())
			typeKeys(m, "F j")
		}},
		{name: "flows_other_cell_80x24", w: 80, h: 24, setup: func(m *Model) {
			feedAll(m, flowStatus())
			typeKeys(m, "G")
		}},
		{name: "flows_failed_100x30", w: 100, h: 30, setup: func(m *Model) {
			feedAll(m, flowStatus())
			showFailed(m)
		}},
		{name: "flows_failed_focused_100x30", w: 100, h: 30, setup: func(m *Model) {
			feedAll(m, flowStatus())
			showFailed(m)
			typeKeys(m, "F j j j")
		}},
		{name: "flows_failed_focused_80x24", w: 80, h: 24, setup: func(m *Model) {
			feedAll(m, flowStatus())
			showFailed(m)
			typeKeys(m, "F G")
		}},
		{name: "timeline_100x30", w: 100, h: 30, setup: func(m *Model) {
			feedAll(m, flowStatus())
			showFailed(m)
			typeKeys(m, "F j j j enter")
			send(m, executionMsg{cell: "shop", id: failedTimeline().ID, e: failedTimeline()})
		}},
		{name: "timeline_narrow_60x16", w: 60, h: 16, setup: func(m *Model) {
			feedAll(m, flowStatus())
			showFailed(m)
			typeKeys(m, "F j j j enter")
			send(m, executionMsg{cell: "shop", id: failedTimeline().ID, e: failedTimeline()})
		}},
		{name: "flows_gateway_down_100x30", w: 100, h: 30, setup: func(m *Model) {
			feedAll(m, flowStatus())
			st := unhealthyStatus()
			st.Cells[1].Gateway, st.Cells[1].Error = "down", "gateway not found"
			send(m, statusMsg{st: st})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(t, &fakeSource{}, tt.w, tt.h)
			tt.setup(m)
			got := screen(t, m)
			checkSize(t, got, tt.w, tt.h)
			golden(t, tt.name, got)
		})
	}
}

// checkSize fails when the screen is larger than w × h, or, at a usable
// size, does not fill exactly h lines.
func checkSize(t *testing.T, s string, w, h int) {
	t.Helper()
	lines := strings.Split(s, "\n")
	if w >= minWidth && h >= minHeight && len(lines) != h {
		t.Errorf("screen has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if got := ansi.StringWidth(l); got > w {
			t.Errorf("line %d is %d wide, more than %d: %q", i+1, got, w, l)
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}
