package admin

import (
	"context"
	"sync"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

// DefaultEventBacklog is how many events an EventBus keeps when
// NewEventBus is given no positive size.
const DefaultEventBacklog = 1000

// subscriberBuffer is how many events a subscriber may fall behind before
// the bus drops events for it. It covers a burst (a rolling restart of a
// large service emits a few events per replica) without letting one stuck
// reader hold memory without bound.
const subscriberBuffer = 256

// EventBus keeps the controller's most recent events and fans every new
// one out to its subscribers. It is safe for concurrent use.
//
// Publish never blocks the controller. A subscriber that is more than 256
// events behind loses the events that do not fit in its buffer; they are
// counted by Dropped and the subscriber stays connected. Dropping rather
// than disconnecting keeps a follow stream alive through a burst, and the
// backlog still holds the dropped events for anyone who asks again.
type EventBus struct {
	mu      sync.Mutex
	ring    []api.Event // len(ring) is the capacity
	next    int         // index the next event goes to
	full    bool        // the ring has wrapped at least once
	subs    map[*subscriber]struct{}
	closed  bool
	dropped uint64
	// subBuf is the channel capacity of new subscribers; tests shrink it.
	subBuf int
}

// subscriber is one live reader of the bus.
type subscriber struct {
	ch chan api.Event
	// stop cancels the context.AfterFunc that unsubscribes it.
	stop func() bool
}

// NewEventBus returns an empty bus that keeps the last backlog events, or
// DefaultEventBacklog when backlog is not positive.
func NewEventBus(backlog int) *EventBus {
	if backlog <= 0 {
		backlog = DefaultEventBacklog
	}
	return &EventBus{
		ring:   make([]api.Event, backlog),
		subs:   make(map[*subscriber]struct{}),
		subBuf: subscriberBuffer,
	}
}

// Publish records e and sends it to every subscriber without waiting for
// any of them. An event with a zero Time is stamped with the current time,
// so the controller need not stamp what it publishes.
func (b *EventBus) Publish(e api.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ring[b.next] = e
	b.next++
	if b.next == len(b.ring) {
		b.next = 0
		b.full = true
	}
	// Sending under the lock is what makes it safe for unsubscribe to
	// close a channel: no send can race with the close.
	for s := range b.subs {
		select {
		case s.ch <- e:
		default:
			b.dropped++
		}
	}
}

// Restore puts events, oldest first, in the bus's backlog as if they had
// been published, without sending them to anyone: a restarted gateway
// gets back the history it kept. Call it before the first Publish.
func (b *EventBus) Restore(events []api.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(events) > len(b.ring) {
		events = events[len(events)-len(b.ring):]
	}
	for _, e := range events {
		b.ring[b.next] = e
		b.next++
		if b.next == len(b.ring) {
			b.next = 0
			b.full = true
		}
	}
}

// Backlog returns a copy of the events the bus holds, oldest first.
func (b *EventBus) Backlog() []api.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.backlogLocked()
}

func (b *EventBus) backlogLocked() []api.Event {
	if !b.full {
		return append([]api.Event(nil), b.ring[:b.next]...)
	}
	out := make([]api.Event, 0, len(b.ring))
	out = append(out, b.ring[b.next:]...)
	return append(out, b.ring[:b.next]...)
}

// Subscribe returns the events the bus holds, oldest first, and a channel
// that receives every event published after them: none falls between
// the two or appears in both (though a reader that falls behind loses
// events, see EventBus). The channel is closed when ctx ends or the
// bus is closed; it is closed at once if either has already happened.
//
// Subscribe starts no goroutine of its own: the subscription is removed
// by a context.AfterFunc, so a subscriber costs nothing once ctx ends.
func (b *EventBus) Subscribe(ctx context.Context) (backlog []api.Event, ch <-chan api.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	backlog = b.backlogLocked()
	s := &subscriber{ch: make(chan api.Event, b.subBuf)}
	if b.closed || ctx.Err() != nil {
		close(s.ch)
		return backlog, s.ch
	}
	b.subs[s] = struct{}{}
	// AfterFunc runs unsubscribe on its own goroutine, after this lock is
	// released, even when ctx ends right now.
	s.stop = context.AfterFunc(ctx, func() { b.unsubscribe(s) })
	return backlog, s.ch
}

// unsubscribe removes s and closes its channel; removing it twice is a
// no-op.
func (b *EventBus) unsubscribe(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	close(s.ch)
}

// Dropped returns how many events have been dropped, over all
// subscribers, because a subscriber's buffer was full.
func (b *EventBus) Dropped() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// Close closes every subscriber's channel, which ends the admin API's
// follow streams; a gateway calls it when it shuts down, because
// http.Server.Shutdown waits for streams that would otherwise never end.
// Later subscribers get the backlog and a closed channel; later events
// are still recorded in the backlog. Close is idempotent.
func (b *EventBus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		s.stop()
		delete(b.subs, s)
		close(s.ch)
	}
}

// subscribers returns the number of live subscribers, for tests.
func (b *EventBus) subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
