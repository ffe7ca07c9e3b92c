package tui

import (
	"errors"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

// collect runs cmd, and the commands of any batch it returns, and gathers
// the messages that arrive within a short while: timers (the refresh tick,
// the logs debounce) are left behind. The calls to the source have ended
// by then: the model's goroutines are waited for first (the tests start no
// stream).
func collect(t *testing.T, m *Model, cmd tea.Cmd) []tea.Msg {
	t.Helper()
	m.d.wg.Wait()
	out := make(chan tea.Msg, 16)
	var run func(tea.Cmd)
	run = func(c tea.Cmd) {
		if c == nil {
			return
		}
		go func() {
			msg := c()
			if b, ok := msg.(tea.BatchMsg); ok {
				for _, c := range b {
					run(c)
				}
				return
			}
			out <- msg
		}()
	}
	run(cmd)
	var msgs []tea.Msg
	deadline := time.After(25 * time.Millisecond)
	for {
		select {
		case msg := <-out:
			msgs = append(msgs, msg)
		case <-deadline:
			return msgs
		}
	}
}

// deliver runs cmd and feeds the messages it yields back to the model,
// as the program would.
func deliver(t *testing.T, m *Model, cmd tea.Cmd) []tea.Msg {
	t.Helper()
	msgs := collect(t, m, cmd)
	for _, msg := range msgs {
		m.Update(msg)
	}
	return msgs
}

func hasQuit(msgs []tea.Msg) bool {
	for _, msg := range msgs {
		if _, ok := msg.(tea.QuitMsg); ok {
			return true
		}
	}
	return false
}

// readyOf returns the READY cell of a service in the rendered screen.
func readyOf(t *testing.T, m *Model, service string) string {
	t.Helper()
	for _, line := range strings.Split(ansi.Strip(m.render()), "\n") {
		f := strings.Fields(strings.TrimPrefix(line, "▸"))
		if len(f) > 3 && f[1] == service {
			return f[2]
		}
	}
	t.Fatalf("no row for service %s in\n%s", service, ansi.Strip(m.render()))
	return ""
}

func TestScaleKeys(t *testing.T) {
	tests := []struct {
		name      string
		keys      string
		want      []string // Scale and Restart calls
		wantReady string   // of orders, after the calls
		wantFlash string
	}{
		{name: "plus", keys: "+", want: []string{"Scale shop/orders 4"}, wantReady: "3/4", wantFlash: "scaled shop/orders to 4"},
		{name: "plus twice before a refresh", keys: "+ +", want: []string{"Scale shop/orders 4", "Scale shop/orders 5"}, wantReady: "3/5"},
		{name: "equals is plus", keys: "=", want: []string{"Scale shop/orders 4"}, wantReady: "3/4"},
		{name: "minus", keys: "-", want: []string{"Scale shop/orders 2"}, wantReady: "3/2"},
		{name: "set", keys: "s 5 enter", want: []string{"Scale shop/orders 5"}, wantReady: "3/5"},
		{name: "set ignores letters", keys: "s a 1 x 2 backspace 0 enter", want: []string{"Scale shop/orders 10"}, wantReady: "3/10"},
		{name: "set to zero", keys: "s 0 enter", want: []string{"Scale shop/orders 0"}, wantReady: "3/0"},
		{name: "set cancelled", keys: "s 5 esc", wantReady: "3/3"},
		{name: "set without a number", keys: "s enter", wantReady: "3/3", wantFlash: "scale shop/orders: type a number of replicas"},
		{name: "restart confirmed", keys: "r y", want: []string{"Restart shop/orders"}, wantReady: "3/3", wantFlash: "rolling restart of shop/orders started"},
		{name: "restart refused", keys: "r n", wantReady: "3/3", wantFlash: "restart cancelled"},
		{name: "restart escaped", keys: "r esc", wantReady: "3/3", wantFlash: "restart cancelled"},
		{name: "keys of a prompt do not leak", keys: "r q", wantReady: "3/3", wantFlash: "restart cancelled"},
		{name: "minus at zero", keys: "down down - ", wantReady: "3/3", wantFlash: "shop/worker already has no replica"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{}
			m := newTestModel(t, src, 100, 30)
			send(m, statusMsg{st: testStatus()})
			for _, k := range strings.Fields(tt.keys) {
				deliver(t, m, send(m, press(k)))
			}
			if diff := cmp.Diff(tt.want, src.Calls(false)); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if got := readyOf(t, m, "orders"); got != tt.wantReady {
				t.Errorf("orders shows READY %s, want %s", got, tt.wantReady)
			}
			if tt.wantFlash != "" && m.bar.flash.text != tt.wantFlash {
				t.Errorf("bottom bar says %q, want %q", m.bar.flash.text, tt.wantFlash)
			}
			if m.services.prompting() {
				t.Error("a prompt is still open")
			}
		})
	}
}

func TestScaleRefused(t *testing.T) {
	src := &fakeSource{scaleErr: errors.New("cell shop has no service \"orders\"")}
	m := newTestModel(t, src, 100, 30)
	send(m, statusMsg{st: testStatus()})
	deliver(t, m, send(m, press("+")))
	if got := readyOf(t, m, "orders"); got != "3/3" {
		t.Errorf("after a failed scale orders shows READY %s, want 3/3", got)
	}
	want := `scale shop/orders to 4: cell shop has no service "orders"`
	if !m.bar.flash.isErr || m.bar.flash.text != want {
		t.Errorf("bottom bar says %+v, want the error %q", m.bar.flash, want)
	}
}

func TestActionsOnADownCell(t *testing.T) {
	src := &fakeSource{}
	m := newTestModel(t, src, 100, 30)
	send(m, statusMsg{st: unhealthyStatus()})
	for _, k := range []string{"G", "+", "s", "r"} {
		deliver(t, m, send(m, press(k)))
	}
	if calls := src.Calls(false); len(calls) != 0 {
		t.Errorf("calls to a cell whose gateway is down: %q", calls)
	}
	want := "cannot change users/accounts: the gateway of cell users is down"
	if m.bar.flash.text != want {
		t.Errorf("bottom bar says %q, want %q", m.bar.flash.text, want)
	}
}

// TestACellDownIsRemoving: a cell whose gateway down has stopped shows
// it, and takes no action, saying why.
func TestACellDownIsRemoving(t *testing.T) {
	src := &fakeSource{}
	m := newTestModel(t, src, 100, 30)
	st := testStatus()
	st.Cells[0].Gateway = api.GatewayStopping
	for i := range st.Cells[0].Services {
		st.Cells[0].Services[i].Health = "stopped"
	}
	send(m, statusMsg{st: st})
	if words := strings.Join(strings.Fields(ansi.Strip(m.render())), " "); !strings.Contains(words, "users accounts – stopping") {
		t.Errorf("a cell being removed is not shown so:\n%s", words)
	}
	for _, k := range []string{"G", "+"} {
		deliver(t, m, send(m, press(k)))
	}
	if calls := src.Calls(false); len(calls) != 0 {
		t.Errorf("calls to a cell being removed: %q", calls)
	}
	want := "cannot change users/accounts: the gateway of cell users is stopping"
	if m.bar.flash.text != want {
		t.Errorf("bottom bar says %q, want %q", m.bar.flash.text, want)
	}
}

func TestPendingScaleClears(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 100, 30)
	send(m, statusMsg{st: testStatus()})
	deliver(t, m, send(m, press("+")))
	// The autoscaler may have settled elsewhere; once the gateway reports
	// the count asked for, its own numbers are shown again.
	st := testStatus()
	st.Cells[1].Services[0].Desired = 4
	send(m, statusMsg{st: st})
	send(m, statusMsg{st: testStatus()})
	if got := readyOf(t, m, "orders"); got != "3/3" {
		t.Errorf("orders shows READY %s, want what the gateway reports, 3/3", got)
	}
}

func TestLogFilterKeys(t *testing.T) {
	tests := []struct {
		name        string
		keys        string
		wantFilter  string
		wantEditing bool
		wantLines   int // shown from testLogs
	}{
		{name: "typing filters at once", keys: "/ e r r", wantFilter: "err", wantEditing: true, wantLines: 3},
		{name: "enter keeps it", keys: "/ e r r o r enter", wantFilter: "error", wantLines: 3},
		{name: "case does not matter", keys: "/ E R R O R enter", wantFilter: "ERROR", wantLines: 3},
		{name: "backspace", keys: "/ h e a l t h z x backspace enter", wantFilter: "healthz", wantLines: 5},
		{name: "esc while typing goes back", keys: "/ e r r enter / x esc", wantFilter: "err", wantLines: 3},
		{name: "esc clears a kept filter", keys: "/ e r r enter esc", wantFilter: "", wantLines: 30},
		{name: "q is text in the filter", keys: "/ q", wantFilter: "q", wantEditing: true, wantLines: 30},
		{name: "ctrl+u clears", keys: "/ a b ctrl+u", wantFilter: "", wantEditing: true, wantLines: 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(t, &fakeSource{}, 100, 30)
			feedAll(m, testStatus())
			var cmd tea.Cmd
			for _, k := range strings.Fields(tt.keys) {
				if k == "ctrl+u" {
					cmd = send(m, tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl})
					continue
				}
				cmd = send(m, press(k))
			}
			if hasQuit(collect(t, m, cmd)) {
				t.Fatal("the program quit")
			}
			if m.logs.filter != tt.wantFilter || m.logs.prompting() != tt.wantEditing {
				t.Errorf("filter %q editing %t, want %q editing %t", m.logs.filter, m.logs.prompting(), tt.wantFilter, tt.wantEditing)
			}
			if got := len(m.logs.visible()); got != tt.wantLines {
				t.Errorf("%d lines shown, want %d", got, tt.wantLines)
			}
		})
	}
}

func TestFocusKeys(t *testing.T) {
	tests := []struct {
		keys       string
		wantFocus  pane
		wantZoomed bool
		wantTarget string
	}{
		{keys: "", wantFocus: paneServices, wantTarget: "shop/orders"},
		{keys: "tab", wantFocus: paneReplicas, wantTarget: "shop/orders-1"},
		{keys: "tab tab", wantFocus: paneEvents, wantTarget: "shop/orders-1"},
		{keys: "tab tab tab", wantFocus: paneLogs, wantTarget: "shop/orders-1"},
		{keys: "tab tab tab tab", wantFocus: paneServices, wantTarget: "shop/orders"},
		{keys: "shift+tab", wantFocus: paneLogs, wantTarget: "shop/orders"},
		{keys: "j", wantFocus: paneServices, wantTarget: "shop/search"},
		{keys: "down down up", wantFocus: paneServices, wantTarget: "shop/search"},
		{keys: "G", wantFocus: paneServices, wantTarget: "users/accounts"},
		{keys: "enter", wantFocus: paneReplicas, wantTarget: "shop/orders-1"},
		{keys: "enter j", wantFocus: paneReplicas, wantTarget: "shop/orders-2"},
		{keys: "enter j enter", wantFocus: paneLogs, wantZoomed: true, wantTarget: "shop/orders-2"},
		{keys: "enter j enter esc", wantFocus: paneReplicas, wantTarget: "shop/orders-2"},
		{keys: "enter esc", wantFocus: paneServices, wantTarget: "shop/orders"},
		{keys: "tab tab esc", wantFocus: paneServices, wantTarget: "shop/orders"},
		{keys: "l", wantFocus: paneLogs, wantZoomed: true, wantTarget: "shop/orders"},
		{keys: "l l", wantFocus: paneServices, wantTarget: "shop/orders"},
		{keys: "l tab", wantFocus: paneReplicas, wantTarget: "shop/orders-1"},
		{keys: "? j", wantFocus: paneServices, wantTarget: "shop/orders"},
		{keys: "? esc j", wantFocus: paneServices, wantTarget: "shop/search"},
	}
	for _, tt := range tests {
		t.Run(tt.keys, func(t *testing.T) {
			m := newTestModel(t, &fakeSource{}, 100, 30)
			send(m, statusMsg{st: testStatus()})
			typeKeys(m, tt.keys)
			if m.focus != tt.wantFocus || m.zoomed != tt.wantZoomed {
				t.Errorf("focus %d zoomed %t, want %d zoomed %t", m.focus, m.zoomed, tt.wantFocus, tt.wantZoomed)
			}
			if got := m.logs.target.String(); got != tt.wantTarget {
				t.Errorf("logs follow %s, want %s", got, tt.wantTarget)
			}
		})
	}
}

func TestHelpOverlay(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 80, 24)
	send(m, statusMsg{st: testStatus()})
	typeKeys(m, "?")
	if !m.bar.visible || !strings.Contains(ansi.Strip(m.render()), "rolling restart") {
		t.Fatal("? does not show the key list")
	}
	typeKeys(m, "?")
	if m.bar.visible {
		t.Fatal("? does not close the key list")
	}
}

func TestQuit(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		for _, state := range []string{"", "?", "s", "/"} {
			t.Run(k+" after "+state, func(t *testing.T) {
				m := newTestModel(t, &fakeSource{}, 80, 24)
				send(m, statusMsg{st: testStatus()})
				typeKeys(m, state)
				quits := hasQuit(collect(t, m, send(m, press(k))))
				// q is text in the filter and the replica prompt (where it
				// is refused); ctrl+c always quits.
				want := k == "ctrl+c" || state == "" || state == "?"
				if quits != want {
					t.Errorf("quit: %t, want %t", quits, want)
				}
			})
		}
	}
}

func TestFollowKeys(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 100, 30)
	feedAll(m, testStatus())
	typeKeys(m, "tab tab tab")
	if !m.logs.follow {
		t.Fatal("logs do not follow at first")
	}
	typeKeys(m, "k k")
	if m.logs.follow || m.logs.offset != 2 {
		t.Fatalf("scrolling up: follow %t offset %d, want paused at 2", m.logs.follow, m.logs.offset)
	}
	more := testLogs()[:3]
	for i := range more {
		// The replicas pane had focus: the logs follow replica 1.
		more[i].Replica = 1
		more[i].Time = testNow.Add(time.Duration(i+1) * time.Second)
	}
	send(m, feedMsg[api.LogLine]{Gen: m.logs.gen, Items: more})
	if m.logs.offset != 5 || m.logs.unseen != 3 {
		t.Errorf("paused, new lines: offset %d unseen %d, want 5 and 3", m.logs.offset, m.logs.unseen)
	}
	if !strings.Contains(ansi.Strip(m.render()), "paused (3 new)") {
		t.Error("the logs title does not say they are paused")
	}
	typeKeys(m, "f")
	if !m.logs.follow || m.logs.offset != 0 {
		t.Errorf("f: follow %t offset %d, want following from the end", m.logs.follow, m.logs.offset)
	}
	typeKeys(m, "f w t")
	if m.logs.follow || !m.logs.wrap || !m.logs.timestamps {
		t.Errorf("f w t: follow %t wrap %t timestamps %t, want false true true", m.logs.follow, m.logs.wrap, m.logs.timestamps)
	}
}

func TestMouseWheel(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 100, 30)
	feedAll(m, testStatus())
	send(m, tea.MouseWheelMsg{X: 10, Y: 28, Button: tea.MouseWheelUp})
	if m.logs.follow || m.logs.offset != 3 {
		t.Errorf("wheel up over the logs: follow %t offset %d, want paused at 3", m.logs.follow, m.logs.offset)
	}
	// Row 3 is the first service row (header, title, column titles).
	send(m, tea.MouseWheelMsg{X: 10, Y: 3, Button: tea.MouseWheelDown})
	if r, _ := m.services.selected(); r.key() != "shop/search" {
		t.Errorf("wheel down over the services selects %s, want shop/search", r.key())
	}
}

func TestResize(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 120, 36)
	feedAll(m, testStatus())
	for _, size := range [][2]int{{80, 24}, {200, 60}, {40, 12}, {20, 5}, {100, 30}} {
		send(m, tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		checkSize(t, screen(t, m), size[0], size[1])
	}
}

func TestFlowsPaneKeys(t *testing.T) {
	tests := []struct {
		name      string
		st        *api.ProjectStatus
		w, h      int
		keys      string
		wantFocus pane
		wantFlow  string // selected in the flows pane
		wantFlash string
	}{
		{name: "F focuses", keys: "F", wantFocus: paneFlows, wantFlow: "place-order"},
		{name: "F again goes back", keys: "F F", wantFocus: paneServices, wantFlow: "place-order"},
		{name: "F goes back to the replicas", keys: "enter F F", wantFocus: paneReplicas, wantFlow: "place-order"},
		{name: "esc goes back", keys: "F esc", wantFocus: paneServices, wantFlow: "place-order"},
		{name: "tab reaches it after the replicas", keys: "tab tab", wantFocus: paneFlows, wantFlow: "place-order"},
		{name: "tab leaves it for the events", keys: "tab tab tab", wantFocus: paneEvents, wantFlow: "place-order"},
		{name: "shift+tab reaches it", keys: "shift+tab shift+tab shift+tab", wantFocus: paneFlows, wantFlow: "place-order"},
		{name: "moving", keys: "F j", wantFocus: paneFlows, wantFlow: "cancel-order"},
		{name: "moving stops at the end", keys: "F j j j j", wantFocus: paneFlows, wantFlow: "refund"},
		{name: "bottom and top", keys: "F G k g", wantFocus: paneFlows, wantFlow: "place-order"},
		{name: "F leaves full-screen logs", keys: "l F", wantFocus: paneFlows, wantFlow: "place-order"},
		{name: "another cell has none", keys: "F j F G", wantFocus: paneServices},
		{name: "back in the cell, the first flow", keys: "F j F G g", wantFocus: paneServices, wantFlow: "place-order"},
		{
			name: "no flows in the project", st: testStatus(), keys: "F", wantFocus: paneServices,
			wantFlash: "no flows: no cell of the project reports any",
		},
		{name: "no flows: tab skips the pane", st: testStatus(), keys: "tab tab", wantFocus: paneEvents},
		{
			name: "too small", w: 40, h: 12, keys: "F", wantFocus: paneServices, wantFlow: "place-order",
			wantFlash: "the terminal is too small for the flows pane",
		},
		{name: "too small: tab skips the pane", w: 40, h: 12, keys: "tab tab", wantFocus: paneEvents, wantFlow: "place-order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, h, st := tt.w, tt.h, tt.st
			if w == 0 {
				w, h = 100, 30
			}
			if st == nil {
				st = flowStatus()
			}
			m := newTestModel(t, &fakeSource{}, w, h)
			send(m, statusMsg{st: st})
			for _, k := range strings.Fields(tt.keys) {
				deliver(t, m, send(m, press(k)))
			}
			if m.focus != tt.wantFocus {
				t.Errorf("focus %d, want %d", m.focus, tt.wantFocus)
			}
			f, _ := m.flows.selected()
			if f.Flow != tt.wantFlow {
				t.Errorf("flow %q selected, want %q", f.Flow, tt.wantFlow)
			}
			if m.bar.flash.text != tt.wantFlash {
				t.Errorf("bottom bar says %q, want %q", m.bar.flash.text, tt.wantFlash)
			}
		})
	}
}

// TestFlowsPaneRefresh checks that a new snapshot keeps the selection on
// the same flow, wherever the gateway now lists it, and that a screen too
// small for the pane takes the focus away from it.
func TestFlowsPaneRefresh(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 100, 30)
	send(m, statusMsg{st: flowStatus()})
	typeKeys(m, "F j")
	st := flowStatus()
	flows := st.Cells[1].Flows
	flows[0], flows[1] = flows[1], flows[0]
	flows[0].Executions++
	send(m, statusMsg{st: st})
	if f, _ := m.flows.selected(); f.Flow != "cancel-order" || f.Executions != 5 {
		t.Errorf("after a refresh %s (%d executions) is selected, want cancel-order (5)", f.Flow, f.Executions)
	}
	if !strings.Contains(ansi.Strip(m.render()), "▸ cancel-order") {
		t.Errorf("the selected flow is not marked:\n%s", ansi.Strip(m.render()))
	}

	send(m, tea.WindowSizeMsg{Width: 40, Height: 12})
	if m.focus != paneServices {
		t.Errorf("the flows pane left the screen but focus is %d, want the services", m.focus)
	}
}

func TestFlowsPaneMouseWheel(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 100, 30)
	send(m, statusMsg{st: flowStatus()})
	// The header, 6 lines of services and 5 of replicas, then the flows
	// title and column titles: row 14 is the first flow.
	send(m, tea.MouseWheelMsg{X: 10, Y: 14, Button: tea.MouseWheelDown})
	if f, _ := m.flows.selected(); f.Flow != "cancel-order" {
		t.Errorf("wheel down over the flows selects %s, want cancel-order", f.Flow)
	}
	if r, _ := m.services.selected(); r.key() != "shop/orders" {
		t.Errorf("wheel over the flows moved the services to %s", r.key())
	}
	// Below the flows pane (5 lines from row 12), the events scroll.
	send(m, tea.MouseWheelMsg{X: 10, Y: 17, Button: tea.MouseWheelDown})
	if f, _ := m.flows.selected(); f.Flow != "cancel-order" {
		t.Errorf("wheel over the events moved the flows to %s", f.Flow)
	}
}
