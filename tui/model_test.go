package tui

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

// pump plays the program's part: it runs commands, feeds their messages
// to the model and runs the commands those return, until done holds or
// the time is up.
func pump(t *testing.T, m *Model, cmd tea.Cmd, done func() bool) {
	t.Helper()
	msgs := make(chan tea.Msg, 64)
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
			if msg != nil {
				select {
				case msgs <- msg:
				case <-m.d.ctx.Done():
				}
			}
		}()
	}
	run(cmd)
	deadline := time.After(5 * time.Second)
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for !done() {
		select {
		case msg := <-msgs:
			_, next := m.Update(msg)
			run(next)
		case <-poll.C:
		case <-deadline:
			t.Fatalf("gave up waiting; calls %q; the screen is\n%s", m.d.src.(*fakeSource).Calls(true), ansi.Strip(m.render()))
		}
	}
}

func TestInitStartsTheStreams(t *testing.T) {
	src := &fakeSource{status: testStatus(), events: testEvents(), logs: testLogs()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	m := newModel(ctx, &wg, src, Options{Initial: testStatus(), Refresh: time.Hour, Now: func() time.Time { return testNow }, Location: time.UTC})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})

	pump(t, m, m.Init(), func() bool { return len(m.events.events) == len(src.events) && len(m.logs.lines) == len(src.logs) })

	// The two streams start on their own goroutines, in either order.
	want := []string{"Events follow=true", "Logs shop/orders follow=true tail=200"}
	got := src.Calls(true)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// Every goroutine ends with the program.
	cancel()
	wg.Wait()
}

func TestLogsFollowTheSelection(t *testing.T) {
	src := &fakeSource{status: testStatus(), logs: testLogs()}
	m := newTestModel(t, src, 100, 30)
	send(m, statusMsg{st: testStatus()})
	// The debounce is a timer; deliver its message at once.
	typeKeys(m, "j")
	pump(t, m, startLogs(m), func() bool { return src.hasCall("Logs shop/search") })
	typeKeys(m, "k")
	pump(t, m, startLogs(m), func() bool { return len(m.logs.lines) == 30 })
}

// startLogs ends the debounce of the logs pane at once.
func startLogs(m *Model) tea.Cmd {
	gen := m.logs.gen
	return func() tea.Msg { return logsStartMsg{gen: gen} }
}

func (s *fakeSource) hasCall(prefix string) bool {
	for _, c := range s.Calls(true) {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

func TestGatewayGoneAndBack(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 100, 30)
	send(m, statusMsg{st: testStatus()})
	typeKeys(m, "G") // users/accounts

	gone := testStatus()
	gone.Cells = gone.Cells[1:] // the users gateway container was removed
	send(m, statusMsg{st: gone})
	screen := ansi.Strip(m.render())
	if !strings.Contains(strings.Join(strings.Fields(screen), " "), "users – – gateway down") {
		t.Errorf("a cell whose gateway disappeared is not shown as down:\n%s", screen)
	}
	if !strings.Contains(screen, "cells 1/2 up") {
		t.Errorf("the header does not count the cell as down:\n%s", screen)
	}

	send(m, statusMsg{st: testStatus()})
	if r, _ := m.services.selected(); r.key() != "users/accounts" || r.down() {
		t.Errorf("after the gateway came back: selected %s down %t, want users/accounts up", r.key(), r.down())
	}
}

func TestStatusErrorKeepsTheLastSnapshot(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 100, 30)
	send(m, statusMsg{st: testStatus()})
	send(m, statusMsg{err: errors.New("Cannot connect to the Docker daemon")})
	screen := ansi.Strip(m.render())
	for _, want := range []string{"status: Cannot connect to the Docker daemon", "orders", "accounts"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	send(m, statusMsg{st: testStatus()})
	if strings.Contains(ansi.Strip(m.render()), "status:") {
		t.Error("the error stays after a good snapshot")
	}
}

func TestEndedStreamsStartAgain(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 100, 30)
	feedAll(m, testStatus())
	gen := m.events.gen
	cmd := send(m, feedMsg[api.Event]{Gen: gen, Ended: true, Err: api.ErrNotRunning})
	if cmd == nil {
		t.Fatal("no retry after the event stream ended")
	}
	if !strings.Contains(ansi.Strip(m.render()), "stream: project is not running (retrying)") {
		t.Errorf("the events pane does not say why it is empty:\n%s", ansi.Strip(m.render()))
	}
	// The retry replays the backlog; nothing shows twice.
	send(m, eventsRetryMsg{gen: gen})
	send(m, feedMsg[api.Event]{Gen: m.events.gen, Items: testEvents()})
	if got := len(m.events.events); got != len(testEvents()) {
		t.Errorf("%d events after the replay, want %d", got, len(testEvents()))
	}
	// A message from the replaced stream is ignored.
	send(m, feedMsg[api.Event]{Gen: gen, Items: []api.Event{{Time: testNow, Cell: "x", Type: "started"}}})
	if got := len(m.events.events); got != len(testEvents()) {
		t.Errorf("a stale stream added events: %d", got)
	}

	lgen := m.logs.gen
	if cmd := send(m, feedMsg[api.LogLine]{Gen: lgen, Ended: true, Err: errors.New("EOF")}); cmd == nil {
		t.Fatal("no retry after the log stream ended")
	}
}

func TestRefreshTick(t *testing.T) {
	src := &fakeSource{status: testStatus()}
	m := newTestModel(t, src, 100, 30)
	at := testNow.Add(3 * time.Second)
	msgs := collect(t, m, send(m, tickMsg(at)))
	var got *statusMsg
	for _, msg := range msgs {
		if s, ok := msg.(statusMsg); ok {
			got = &s
		}
	}
	if got == nil || got.st == nil {
		t.Fatalf("a tick did not take a snapshot: %v", msgs)
	}
	// A second tick while the first snapshot is on its way asks nothing.
	m.fetching = true
	collect(t, m, send(m, tickMsg(at.Add(time.Second))))
	if n := strings.Count(strings.Join(src.Calls(true), "\n"), "Status"); n != 1 {
		t.Errorf("%d Status calls, want 1", n)
	}
	if !strings.Contains(m.render(), "10:00:04") {
		t.Error("the clock does not follow the ticks")
	}
}

func TestEventsAndLogsInTimeOrder(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, 100, 30)
	send(m, statusMsg{st: testStatus()})
	at := func(s int) time.Time { return testNow.Add(time.Duration(s) * time.Second) }
	// Each cell streams on its own: a late batch may hold older events.
	send(m, feedMsg[api.Event]{Gen: m.events.gen, Items: []api.Event{
		{Time: at(5), Cell: "shop", Type: "started"}, {Time: at(7), Cell: "shop", Type: "healthy"},
	}})
	send(m, feedMsg[api.Event]{Gen: m.events.gen, Items: []api.Event{
		{Time: at(4), Cell: "users", Type: "started"}, {Time: at(6), Cell: "users", Type: "healthy"},
	}})
	var got []int
	for _, e := range m.events.events {
		got = append(got, int(e.Time.Sub(testNow)/time.Second))
	}
	if diff := cmp.Diff([]int{4, 5, 6, 7}, got); diff != "" {
		t.Errorf("event times (-want +got):\n%s", diff)
	}

	// So does each replica, the backlog of one after the other's.
	line := func(r, s int) api.LogLine {
		return api.LogLine{Cell: "shop", Service: "orders", Replica: r, Time: at(s), Text: strconv.Itoa(s)}
	}
	send(m, feedMsg[api.LogLine]{Gen: m.logs.gen, Items: []api.LogLine{line(2, 2), line(2, 4), line(1, 1), line(1, 3), line(1, 5)}})
	var texts []string
	for _, l := range m.logs.lines {
		texts = append(texts, l.Text)
	}
	if diff := cmp.Diff([]string{"1", "2", "3", "4", "5"}, texts); diff != "" {
		t.Errorf("log lines (-want +got):\n%s", diff)
	}
}

func TestProjectGoneMidSession(t *testing.T) {
	src := &fakeSource{}
	m := newTestModel(t, src, 100, 30)
	send(m, statusMsg{st: testStatus()})
	src.mu.Lock()
	src.statusErr = api.ErrNotRunning
	src.mu.Unlock()
	deliver(t, m, send(m, tickMsg(testNow.Add(time.Second))))
	screen := ansi.Strip(m.render())
	words := strings.Join(strings.Fields(screen), " ")
	if !strings.Contains(words, "cells 0/2 up") || !strings.Contains(words, "shop – – gateway down") ||
		!strings.Contains(words, "users – – gateway down") || strings.Contains(words, "status:") {
		t.Errorf("with every gateway gone, want both cells down and no error:\n%s", screen)
	}
}
