package tui

import (
	"context"
	"slices"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
)

// feedBatchDelay gathers what a busy stream produces into fewer, larger
// messages, so a chatty log costs a few renders a second rather than one
// per line.
const feedBatchDelay = 40 * time.Millisecond

// feed runs a producer (an event or log stream of the Source) in a
// goroutine and hands what it pushes to the model in batches, as
// feedMsg messages. The sink never blocks the producer: past limit
// buffered items the oldest are dropped, since the panes only keep the
// newest anyway.
type feed[T any] struct {
	gen   int
	limit int

	mu    sync.Mutex
	items []T
	err   error

	ready  chan struct{} // holds a token when items are buffered
	done   chan struct{} // closed when the producer has returned
	stopCh <-chan struct{}
	cancel context.CancelFunc
}

// feedMsg carries a batch of a feed's items. Ended reports that the
// producer returned (with Err, if it failed); Gen tells a current feed from
// one that was replaced.
type feedMsg[T any] struct {
	Gen   int
	Items []T
	Ended bool
	Err   error
}

// startFeed starts produce in a goroutine tracked by wg, under a context
// derived from ctx; stop or the end of ctx ends it.
func startFeed[T any](ctx context.Context, wg *sync.WaitGroup, gen, limit int, produce func(ctx context.Context, sink func(T)) error) *feed[T] {
	fctx, cancel := context.WithCancel(ctx)
	f := &feed[T]{
		gen:    gen,
		limit:  limit,
		ready:  make(chan struct{}, 1),
		done:   make(chan struct{}),
		stopCh: fctx.Done(),
		cancel: cancel,
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(f.done)
		err := produce(fctx, f.push)
		f.mu.Lock()
		f.err = err
		f.mu.Unlock()
	}()
	return f
}

func (f *feed[T]) push(v T) {
	f.mu.Lock()
	f.items = append(f.items, v)
	if over := len(f.items) - f.limit; f.limit > 0 && over > 0 {
		f.items = append(f.items[:0], f.items[over:]...)
	}
	f.mu.Unlock()
	select {
	case f.ready <- struct{}{}:
	default:
	}
}

// stop cancels the producer. Its goroutine ends once the producer honours
// the cancellation.
func (f *feed[T]) stop() {
	if f != nil {
		f.cancel()
	}
}

// next waits for the next batch. The model asks again after each batch
// until one arrives with Ended set.
func (f *feed[T]) next() tea.Cmd {
	if f == nil {
		return nil
	}
	return func() tea.Msg {
		select {
		case <-f.ready:
			// Let more arrive, unless the producer is finishing.
			t := time.NewTimer(feedBatchDelay)
			select {
			case <-t.C:
			case <-f.done:
				t.Stop()
			}
		case <-f.done:
		case <-f.stopCh:
			// Cancelled: the producer is on its way out; report it as
			// ended without waiting for it, as nobody listens any more.
			return feedMsg[T]{Gen: f.gen, Ended: true}
		}
		// Look at done before draining: once it is closed, nothing more
		// can be pushed, so this batch is the last one.
		ended := false
		select {
		case <-f.done:
			ended = true
		default:
		}
		f.mu.Lock()
		items, err := f.items, f.err
		f.items = nil
		f.mu.Unlock()
		return feedMsg[T]{Gen: f.gen, Items: items, Ended: ended, Err: err}
	}
}

// insertByTime adds v to s, which is in time order, after every item not
// later than it. Items mostly arrive in order, so the search starts at the
// end.
func insertByTime[T any](s []T, v T, at func(T) time.Time) []T {
	i := len(s)
	for i > 0 && at(s[i-1]).After(at(v)) {
		i--
	}
	return slices.Insert(s, i, v)
}
