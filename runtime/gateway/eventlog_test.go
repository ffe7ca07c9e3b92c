package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/admin"
	"github.com/orchestro/orchestro/runtime/api"
)

// TestEventsSurviveRestart: what one run of a gateway publishes, the next
// run's bus holds, up to the backlog, and the file stays bounded.
func TestEventsSurviveRestart(t *testing.T) {
	const backlog = 10
	path := filepath.Join(t.TempDir(), "state", "events.jsonl")
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ev := func(i int) api.Event {
		return api.Event{Time: at.Add(time.Duration(i) * time.Second), Cell: "shop", Service: "orders", Type: api.EventStarted, Message: fmt.Sprint(i)}
	}

	// One run publishes 25 events.
	bus := admin.NewEventBus(backlog)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- keepEvents(ctx, bus, path, backlog, nil) }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("keepEvents did not open its file")
		}
	}
	for i := range 25 {
		bus.Publish(ev(i))
	}
	// The last event written is the sign the others are.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), `"message":"24"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last event never reached the file:\n%s", b)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n >= 2*backlog {
		t.Errorf("the file holds %d events, want under %d", n, 2*backlog)
	}
	// A write the process did not finish.
	if err := os.WriteFile(path, append(b, `{"time":"2026-12-0`...), 0o600); err != nil {
		t.Fatal(err)
	}

	// The next run gets the last backlog events back.
	got, err := loadEvents(path, backlog)
	if err != nil {
		t.Fatal(err)
	}
	var want []api.Event
	for i := 25 - backlog; i < 25; i++ {
		want = append(want, ev(i))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events loaded (-want +got):\n%s", diff)
	}
	next := admin.NewEventBus(backlog)
	next.Restore(got)
	next.Publish(ev(25))
	if diff := cmp.Diff(append(want[1:], ev(25)), next.Backlog()); diff != "" {
		t.Errorf("backlog of the next run (-want +got):\n%s", diff)
	}
}

func TestLoadEventsMissing(t *testing.T) {
	got, err := loadEvents(filepath.Join(t.TempDir(), "events.jsonl"), 10)
	if err != nil || got != nil {
		t.Errorf("loadEvents of a missing file = %v, %v; want nothing", got, err)
	}
}
