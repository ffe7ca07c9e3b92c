package tui

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

// executionsCalls counts the polls of failed executions src has had.
func executionsCalls(src *fakeSource) []string {
	var out []string
	for _, c := range src.Calls(true) {
		if strings.HasPrefix(c, "Executions ") {
			out = append(out, c)
		}
	}
	return out
}

// TestFailedExecutionsPolling checks when the flows pane asks for the
// failed executions of its cell: at once for a cell newly shown, then
// only every executionsRefresh of the clock, never for a cell without
// flows or whose gateway is down.
func TestFailedExecutionsPolling(t *testing.T) {
	src := &fakeSource{status: flowStatus(), executions: map[string][]api.ExecutionSummary{"shop": failedExecutions()}}
	m := newTestModel(t, src, 100, 30)
	deliver(t, m, send(m, statusMsg{st: flowStatus()}))
	want := []string{"Executions shop failed=true limit=5"}
	if diff := cmp.Diff(want, executionsCalls(src)); diff != "" {
		t.Fatalf("polls after the first snapshot (-want +got):\n%s", diff)
	}
	if len(m.flows.execs) != 3 {
		t.Fatalf("%d failed executions shown, want 3", len(m.flows.execs))
	}

	// Snapshots and ticks within the refresh ask nothing more.
	deliver(t, m, send(m, statusMsg{st: flowStatus()}))
	deliver(t, m, send(m, tickMsg(testNow.Add(executionsRefresh-time.Second))))
	if diff := cmp.Diff(want, executionsCalls(src)); diff != "" {
		t.Errorf("polls within the refresh (-want +got):\n%s", diff)
	}
	deliver(t, m, send(m, tickMsg(testNow.Add(executionsRefresh))))
	want = append(want, "Executions shop failed=true limit=5")
	if diff := cmp.Diff(want, executionsCalls(src)); diff != "" {
		t.Errorf("polls once the refresh is due (-want +got):\n%s", diff)
	}

	// users has no flows: not asked, and shop's executions are gone.
	deliver(t, m, send(m, press("G")))
	if diff := cmp.Diff(want, executionsCalls(src)); diff != "" {
		t.Errorf("polls with a cell without flows selected (-want +got):\n%s", diff)
	}
	if len(m.flows.execs) != 0 {
		t.Errorf("another cell shows shop's failed executions")
	}
	// Back to shop: asked at once, whatever the clock.
	deliver(t, m, send(m, press("g")))
	want = append(want, "Executions shop failed=true limit=5")
	if diff := cmp.Diff(want, executionsCalls(src)); diff != "" {
		t.Errorf("polls back in shop (-want +got):\n%s", diff)
	}

	// A gateway that is down is not asked.
	down := flowStatus()
	down.Cells[1].Gateway = "down"
	src.mu.Lock()
	src.status = down // what the tick's snapshot finds
	src.mu.Unlock()
	deliver(t, m, send(m, statusMsg{st: down}))
	deliver(t, m, send(m, tickMsg(testNow.Add(time.Hour))))
	if diff := cmp.Diff(want, executionsCalls(src)); diff != "" {
		t.Errorf("polls with the gateway down (-want +got):\n%s", diff)
	}
}

// TestFailedExecutionsOnePollAtATime checks that no poll starts while one
// is on its way, however the clock runs.
func TestFailedExecutionsOnePollAtATime(t *testing.T) {
	src := &fakeSource{}
	m := newTestModel(t, src, 100, 30)
	send(m, statusMsg{st: flowStatus()}) // its answer is never delivered
	for i := range 3 {
		send(m, tickMsg(testNow.Add(time.Duration(i+1)*executionsRefresh)))
	}
	m.d.wg.Wait()
	if n := len(executionsCalls(src)); n != 1 {
		t.Errorf("%d polls while the first is unanswered, want 1", n)
	}
}

func TestFailedExecutionsAnswers(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 100, 30)
	send(m, statusMsg{st: flowStatus()})
	// An answer for another cell is not shown.
	send(m, executionsMsg{cell: "users", at: testNow, list: failedExecutions()})
	if len(m.flows.execs) != 0 {
		t.Fatalf("an answer about users shows in shop's pane")
	}
	showFailed(m)
	typeKeys(m, "F j j j j") // the second execution
	if e, _ := m.flows.selectedExecution(); e.ID != failedExecutions()[1].ID {
		t.Fatalf("selected %q, want the second execution", e.ID)
	}
	// A newer failure comes first: the selection stays on the same one.
	newer := append([]api.ExecutionSummary{{ID: "ffff0000aaaa", Cell: "shop", Flow: "refund", State: api.ExecutionFailed, Started: testNow}},
		failedExecutions()...)
	send(m, executionsMsg{cell: "shop", at: testNow.Add(executionsRefresh), list: newer})
	if e, _ := m.flows.selectedExecution(); e.ID != failedExecutions()[1].ID {
		t.Errorf("after a poll %q is selected, want %q still", e.ID, failedExecutions()[1].ID)
	}
	if len(m.flows.execs) != executionsShown-1 {
		t.Errorf("%d executions shown, want %d", len(m.flows.execs), executionsShown-1)
	}
	// A failed poll keeps what is shown and says why.
	send(m, executionsMsg{cell: "shop", at: testNow.Add(2 * executionsRefresh), err: errors.New("list executions of shop: 500:\njournal gone")})
	screen := ansi.Strip(m.render())
	if !strings.Contains(screen, "executions: list executions of shop: 500: journal gone") || !strings.Contains(screen, "0b1c2d3e4f5a") {
		t.Errorf("after a failed poll, want the error in the title and the executions kept:\n%s", screen)
	}
}

func TestTimeline(t *testing.T) {
	src := &fakeSource{timelines: map[string]*api.Execution{failedTimeline().ID: failedTimeline()}}
	m := newTestModel(t, src, 100, 30)
	feedAll(m, flowStatus())
	showFailed(m)

	// enter on a flow opens nothing.
	typeKeys(m, "F")
	if cmd := send(m, press("enter")); m.timeline.visible {
		t.Fatalf("enter on a flow opened a timeline (%v)", cmd)
	}
	typeKeys(m, "j j j")
	cmd := send(m, press("enter"))
	if !m.timeline.visible || !strings.Contains(ansi.Strip(m.render()), "loading…") {
		t.Fatalf("enter on an execution: want its timeline, loading:\n%s", ansi.Strip(m.render()))
	}
	// An answer about another execution is not shown.
	send(m, executionMsg{cell: "shop", id: "other", e: &api.Execution{ID: "other", Flow: "refund"}})
	if m.timeline.e != nil {
		t.Fatal("the timeline shows an execution it did not ask for")
	}
	deliver(t, m, cmd)
	if diff := cmp.Diff([]string{"Execution shop " + failedTimeline().ID}, src.Calls(false)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	screen := ansi.Strip(m.render())
	for _, want := range []string{"3f2a9c1b2d4e shop/place-order", "compensated · failed at charge", "answered 402, which on_status fails", "not_compensated", "Response 402 Payment Required"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the timeline lacks %q:\n%s", want, screen)
		}
	}
	// Keys go to the overlay: F does not leave the flows pane.
	typeKeys(m, "F")
	if !m.timeline.visible || m.focus != paneFlows {
		t.Errorf("F with the timeline open: visible %t, focus %d", m.timeline.visible, m.focus)
	}
	typeKeys(m, "esc")
	if m.timeline.visible || m.focus != paneFlows {
		t.Errorf("esc: timeline visible %t, focus %d; want it closed, the flows focused", m.timeline.visible, m.focus)
	}
	send(m, press("enter"))
	typeKeys(m, "enter")
	if m.timeline.visible {
		t.Error("enter does not close the timeline")
	}
	send(m, press("enter"))
	if !hasQuit(collect(t, m, send(m, press("q")))) {
		t.Error("q in the timeline does not quit")
	}
}

func TestTimelineGone(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 100, 30)
	send(m, statusMsg{st: flowStatus()})
	showFailed(m)
	typeKeys(m, "F j j j enter")
	send(m, executionMsg{cell: "shop", id: failedTimeline().ID})
	if want := "cell shop no longer has execution " + failedTimeline().ID; !strings.Contains(ansi.Strip(m.render()), want) {
		t.Errorf("an execution the journal lost: want %q:\n%s", want, ansi.Strip(m.render()))
	}
}

// TestTimelineScrolls checks that a timeline taller than the screen
// scrolls under its first line, within what there is.
func TestTimelineScrolls(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 60, 15)
	send(m, statusMsg{st: flowStatus()})
	showFailed(m)
	typeKeys(m, "F j j j enter")
	send(m, executionMsg{cell: "shop", id: failedTimeline().ID, e: failedTimeline()})
	top := ansi.Strip(m.render())
	if !strings.Contains(top, "esc closes · ↑/↓ scroll") || strings.Contains(top, "Response") {
		t.Fatalf("a timeline taller than the screen, at the top:\n%s", top)
	}
	typeKeys(m, "G")
	bottom := ansi.Strip(m.render())
	if !strings.Contains(bottom, "3f2a9c1b2d4e shop/place-order") || !strings.Contains(bottom, "Response 402") {
		t.Errorf("at the bottom, want the first line and the response:\n%s", bottom)
	}
	typeKeys(m, "j j j")
	if diff := cmp.Diff(bottom, ansi.Strip(m.render())); diff != "" {
		t.Errorf("scrolling past the end moved (-bottom +now):\n%s", diff)
	}
	typeKeys(m, "g")
	if diff := cmp.Diff(top, ansi.Strip(m.render())); diff != "" {
		t.Errorf("g does not go back to the top (-top +now):\n%s", diff)
	}
	checkSize(t, screen(t, m), 60, 15)
}
