package admin

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
)

func events(from, to int) []api.Event {
	var out []api.Event
	for n := from; n <= to; n++ {
		out = append(out, testEvent(n))
	}
	return out
}

func TestEventBusBacklog(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		published int
		want      []api.Event
	}{
		{name: "empty", size: 3, published: 0, want: nil},
		{name: "partly filled", size: 3, published: 2, want: events(1, 2)},
		{name: "exactly full", size: 3, published: 3, want: events(1, 3)},
		{name: "wrapped once", size: 3, published: 5, want: events(3, 5)},
		{name: "wrapped many times", size: 3, published: 10, want: events(8, 10)},
		{name: "size one", size: 1, published: 4, want: events(4, 4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewEventBus(tt.size)
			for n := 1; n <= tt.published; n++ {
				b.Publish(testEvent(n))
			}
			if diff := cmp.Diff(tt.want, b.Backlog()); diff != "" {
				t.Errorf("Backlog() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventBusDefaultBacklog(t *testing.T) {
	for _, size := range []int{0, -1} {
		b := NewEventBus(size)
		for n := range DefaultEventBacklog + 5 {
			b.Publish(api.Event{Time: time.Unix(int64(n), 0), Type: api.EventScaled, To: n})
		}
		got := b.Backlog()
		if len(got) != DefaultEventBacklog {
			t.Fatalf("NewEventBus(%d): backlog holds %d events, want %d", size, len(got), DefaultEventBacklog)
		}
		if got[0].To != 5 || got[len(got)-1].To != DefaultEventBacklog+4 {
			t.Errorf("NewEventBus(%d): backlog runs from %d to %d, want 5 to %d", size, got[0].To, got[len(got)-1].To, DefaultEventBacklog+4)
		}
	}
}

func TestEventBusBacklogIsACopy(t *testing.T) {
	b := NewEventBus(3)
	b.Publish(testEvent(1))
	got := b.Backlog()
	got[0].Message = "changed"
	if diff := cmp.Diff(events(1, 1), b.Backlog()); diff != "" {
		t.Errorf("Backlog() changed through a returned slice (-want +got):\n%s", diff)
	}
}

func TestEventBusPublishStampsTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewEventBus(3)
		time.Sleep(time.Minute) // fake time: moves the bubble's clock only
		b.Publish(api.Event{Type: api.EventHealthy})
		b.Publish(testEvent(1))
		got := b.Backlog()
		if want := time.Now(); !got[0].Time.Equal(want) {
			t.Errorf("unstamped event: Time = %v, want %v", got[0].Time, want)
		}
		if want := testEvent(1).Time; !got[1].Time.Equal(want) {
			t.Errorf("stamped event: Time = %v, want it kept as %v", got[1].Time, want)
		}
	})
}

func TestEventBusFanOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewEventBus(10)
		b.Publish(testEvent(1))
		b.Publish(testEvent(2))
		ctx, cancel := context.WithCancel(t.Context())
		type sub struct {
			backlog []api.Event
			ch      <-chan api.Event
		}
		var subs []sub
		for range 3 {
			backlog, ch := b.Subscribe(ctx)
			subs = append(subs, sub{backlog, ch})
		}
		for n := 3; n <= 5; n++ {
			b.Publish(testEvent(n))
		}
		cancel()
		for i, s := range subs {
			if diff := cmp.Diff(events(1, 2), s.backlog); diff != "" {
				t.Errorf("subscriber %d: backlog mismatch (-want +got):\n%s", i, diff)
			}
			var live []api.Event
			for e := range s.ch { // ends once cancel has closed the channel
				live = append(live, e)
			}
			if diff := cmp.Diff(events(3, 5), live); diff != "" {
				t.Errorf("subscriber %d: live events mismatch (-want +got):\n%s", i, diff)
			}
		}
		if n := b.subscribers(); n != 0 {
			t.Errorf("%d subscribers left after their context ended, want 0", n)
		}
		if d := b.Dropped(); d != 0 {
			t.Errorf("Dropped() = %d, want 0", d)
		}
	})
}

func TestEventBusSlowSubscriberDropsWithoutBlocking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewEventBus(10)
		b.subBuf = 2
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		_, slow := b.Subscribe(ctx)
		_, fast := b.Subscribe(ctx)

		var fastGot []api.Event
		fastDone := make(chan struct{})
		go func() {
			defer close(fastDone)
			for e := range fast {
				fastGot = append(fastGot, e)
			}
		}()
		for n := 1; n <= 5; n++ {
			b.Publish(testEvent(n)) // would deadlock here if Publish blocked on slow
			synctest.Wait()         // let the fast reader keep up
		}
		if d := b.Dropped(); d != 3 {
			t.Errorf("Dropped() = %d, want 3", d)
		}
		cancel()
		var slowGot []api.Event
		for e := range slow {
			slowGot = append(slowGot, e)
		}
		<-fastDone
		if diff := cmp.Diff(events(1, 2), slowGot); diff != "" {
			t.Errorf("slow subscriber mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(events(1, 5), fastGot); diff != "" {
			t.Errorf("fast subscriber mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(events(1, 5), b.Backlog()); diff != "" {
			t.Errorf("backlog lost events dropped for a subscriber (-want +got):\n%s", diff)
		}
	})
}

func TestEventBusSubscribeEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewEventBus(10)
		ctx, cancel := context.WithCancel(t.Context())
		_, ch := b.Subscribe(ctx)
		if n := b.subscribers(); n != 1 {
			t.Fatalf("%d subscribers, want 1", n)
		}
		cancel()
		synctest.Wait()
		if _, ok := <-ch; ok {
			t.Fatal("channel still open after the context ended")
		}
		if n := b.subscribers(); n != 0 {
			t.Errorf("%d subscribers after the context ended, want 0", n)
		}
		b.Publish(testEvent(1)) // must not send on the closed channel
		// synctest.Test fails if the AfterFunc goroutine were still alive.
	})
}

func TestEventBusSubscribeDoneContext(t *testing.T) {
	b := NewEventBus(10)
	b.Publish(testEvent(1))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	backlog, ch := b.Subscribe(ctx)
	if diff := cmp.Diff(events(1, 1), backlog); diff != "" {
		t.Errorf("backlog mismatch (-want +got):\n%s", diff)
	}
	if _, ok := <-ch; ok {
		t.Error("channel open for a context that had already ended")
	}
	if n := b.subscribers(); n != 0 {
		t.Errorf("%d subscribers, want 0", n)
	}
}

func TestEventBusClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewEventBus(10)
		_, ch := b.Subscribe(t.Context())
		b.Close()
		if _, ok := <-ch; ok {
			t.Fatal("channel still open after Close")
		}
		b.Close() // idempotent
		b.Publish(testEvent(1))
		backlog, ch2 := b.Subscribe(t.Context())
		if _, ok := <-ch2; ok {
			t.Error("Subscribe after Close returned an open channel")
		}
		if diff := cmp.Diff(events(1, 1), backlog); diff != "" {
			t.Errorf("backlog after Close mismatch (-want +got):\n%s", diff)
		}
		if n := b.subscribers(); n != 0 {
			t.Errorf("%d subscribers after Close, want 0", n)
		}
	})
}

// TestEventBusConcurrent is for the race detector: publishers, readers
// and subscribers that come and go, all at once.
func TestEventBusConcurrent(t *testing.T) {
	b := NewEventBus(50)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for n := range 200 {
				b.Publish(api.Event{Type: api.EventScaled, From: p, To: n})
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 20 {
				sctx, scancel := context.WithCancel(ctx)
				backlog, ch := b.Subscribe(sctx)
				_ = len(backlog)
				select {
				case <-ch:
				default:
				}
				scancel()
				for range ch {
				}
			}
		})
	}
	_, ch := b.Subscribe(ctx)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		last := map[int]int{}
		for e := range ch {
			if prev, ok := last[e.From]; ok && e.To <= prev {
				t.Errorf("publisher %d: event %d after %d, out of order", e.From, e.To, prev)
			}
			last[e.From] = e.To
		}
	}()
	wg.Wait()
	cancel()
	<-readerDone
	if got := len(b.Backlog()); got != 50 {
		t.Errorf("backlog holds %d events, want 50", got)
	}
}
