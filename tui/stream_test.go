package tui

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// drain reads a feed until it ends and returns what it delivered.
func drain[T any](t *testing.T, f *feed[T]) ([]T, error) {
	t.Helper()
	var items []T
	for range 100 {
		msg := f.next()().(feedMsg[T])
		if msg.Gen != f.gen {
			t.Fatalf("message of generation %d from feed %d", msg.Gen, f.gen)
		}
		items = append(items, msg.Items...)
		if msg.Ended {
			return items, msg.Err
		}
	}
	t.Fatal("the feed does not end")
	return nil, nil
}

func TestFeedDeliversEverythingThenEnds(t *testing.T) {
	var wg sync.WaitGroup
	f := startFeed(t.Context(), &wg, 7, 0, func(ctx context.Context, sink func(int)) error {
		for i := range 5 {
			sink(i)
		}
		return nil
	})
	got, err := drain(t, f)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{0, 1, 2, 3, 4}, got); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	wg.Wait()
}

func TestFeedReportsItsError(t *testing.T) {
	var wg sync.WaitGroup
	boom := errors.New("gateway went away")
	f := startFeed(t.Context(), &wg, 1, 0, func(ctx context.Context, sink func(string)) error {
		sink("last words")
		return boom
	})
	got, err := drain(t, f)
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Errorf("got %q, %v; want the line and %v", got, err, boom)
	}
	wg.Wait()
}

func TestFeedKeepsTheNewest(t *testing.T) {
	var wg sync.WaitGroup
	pushed := make(chan struct{})
	f := startFeed(t.Context(), &wg, 1, 3, func(ctx context.Context, sink func(int)) error {
		for i := range 10 {
			sink(i)
		}
		close(pushed)
		return nil
	})
	<-pushed
	got, _ := drain(t, f)
	if diff := cmp.Diff([]int{7, 8, 9}, got); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	wg.Wait()
}

func TestFeedStops(t *testing.T) {
	for _, how := range []string{"stop", "program ends"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var wg sync.WaitGroup
			f := startFeed(ctx, &wg, 1, 0, func(ctx context.Context, sink func(int)) error {
				sink(1)
				<-ctx.Done()
				return ctx.Err()
			})
			if msg := f.next()().(feedMsg[int]); msg.Ended || len(msg.Items) != 1 {
				t.Fatalf("first batch %+v, want the item", msg)
			}
			if how == "stop" {
				f.stop()
			} else {
				cancel()
			}
			done := make(chan struct{})
			go func() {
				wg.Wait()
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the producer goroutine outlived its feed")
			}
			if msg := f.next()().(feedMsg[int]); !msg.Ended {
				t.Errorf("after the end: %+v, want Ended", msg)
			}
		})
	}
}
