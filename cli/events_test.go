package cli

import (
	"errors"
	"testing"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

func testEvents() []api.Event {
	return []api.Event{
		{Time: testNow, Cell: "shop", Service: "orders", Type: api.EventScaled, From: 1, To: 3, Message: "inflight 23.5/replica > target 10"},
		{Time: testNow.Add(1500 * time.Millisecond), Cell: "shop", Service: "orders", Replica: "3", Type: api.EventStarted, Message: "container 5e1c started"},
		{Time: testNow.Add(4 * time.Second), Cell: "shop", Service: "catalog", Replica: "1", Type: api.EventUnhealthy, Message: "GET /healthz: 503 (3 failures)"},
		{Time: testNow.Add(5 * time.Second), Cell: "shop", Service: "catalog", Replica: "demo-shop-catalog-1", Type: api.EventReplaced},
		{Time: testNow.Add(6 * time.Second), Cell: "users", Type: api.EventUpdated, Message: "spec 3f2a applied"},
	}
}

func TestEvents(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCall string
		golden   string
	}{
		{"text", []string{"events"}, "Events demo follow=false", "events.stdout"},
		{"json", []string{"events", "--json"}, "Events demo follow=false", "events.ndjson"},
		{"follow", []string{"events", "-f"}, "Events demo follow=true", "events.stdout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.be.events = testEvents()
			if code := h.run(t.Context(), tt.args...); code != ExitOK {
				t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, h.errOut)
			}
			h.wantCalls("connect", tt.wantCall)
			golden(t, tt.golden, h.out.String())
		})
	}
}

func TestEventsFailure(t *testing.T) {
	h := newHarness(t, nil)
	h.be.eventsErr = errors.New("gateway shop: connection refused")
	if code := h.run(t.Context(), "events", "-f"); code != ExitFailure {
		t.Errorf("exit code = %d, want %d", code, ExitFailure)
	}
	if want := "error: events of demo: gateway shop: connection refused\n"; h.errOut.String() != want {
		t.Errorf("stderr = %q, want %q", h.errOut, want)
	}
}

func TestFormatEventColor(t *testing.T) {
	got := formatEvent(testEvents()[2], Palette{on: true})
	want := "\x1b[2m2026-11-22T10:00:04Z\x1b[0m shop/catalog-1 \x1b[31munhealthy\x1b[0m: GET /healthz: 503 (3 failures)"
	if got != want {
		t.Errorf("formatEvent = %q, want %q", got, want)
	}
}
