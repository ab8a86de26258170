package audit

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Broadcaster is a Sink that passes every event on to another Sink and
// offers a copy of it to live subscribers (the admin UI's event stream,
// say) without ever making the caller wait for them: a subscriber whose
// buffer is full loses the event, and its dropped count goes up. Unlike
// the Sink it wraps, a subscriber may therefore miss events; the audit
// trail itself (next) misses none.
//
// The zero Broadcaster is ready to use: it passes events to nobody but its
// subscribers. A Broadcaster must not be copied after first use. It is
// safe for concurrent use.
type Broadcaster struct {
	next Sink
	// mu serializes Subscribe and cancel, which replace subs.
	mu sync.Mutex
	// subs is the current subscribers: an immutable slice, replaced
	// (copy-on-write) under mu, read by Record with one atomic load. Nil
	// when there are none.
	subs atomic.Pointer[[]*subscriber]
}

// subscriber is one Subscribe call.
type subscriber struct {
	// mu guards closed and ch against close while Record sends: Record
	// holds it shared (its sends never block), cancel exclusively.
	mu      sync.RWMutex
	closed  bool
	ch      chan Event
	dropped atomic.Uint64
}

// NewBroadcaster returns a Broadcaster that passes every event to next
// before offering it to its subscribers. A nil next means none: the events
// go to the subscribers only.
func NewBroadcaster(next Sink) *Broadcaster {
	return &Broadcaster{next: next}
}

// Record passes e to next (and so may take as long as next does), then
// offers a copy of *e to each subscriber without blocking. With no
// subscribers the second part costs one atomic load. The copy is shallow:
// subscribers share e's slices (Groups, Categories) and must not change
// them, as the Sink contract says of e itself.
func (b *Broadcaster) Record(e *Event) {
	if b.next != nil {
		b.next.Record(e)
	}
	subs := b.subs.Load()
	if subs == nil {
		return
	}
	for _, s := range *subs {
		s.offer(e)
	}
}

// offer sends a copy of *e to s unless s is full (then it counts a drop)
// or cancelled.
func (s *subscriber) offer(e *Event) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	select {
	case s.ch <- *e:
	default:
		s.dropped.Add(1)
	}
}

// Subscribe adds a subscriber and returns the channel its events arrive
// on, in the order Record was called (events recorded concurrently arrive
// in some order). The channel holds up to buffer events the subscriber has
// not received yet; events recorded while it is full are lost. A buffer
// below 1 means 1.
//
// dropped returns how many events this subscriber has lost so far; it may
// be called at any time, also after cancel. cancel removes the subscriber
// and closes the channel (events still buffered can be received first);
// it may be called any number of times, from any goroutine. Every
// subscriber must be cancelled when it is done, or Record keeps offering
// it events (which it then drops).
func (b *Broadcaster) Subscribe(buffer int) (events <-chan Event, dropped func() uint64, cancel func()) {
	s := &subscriber{ch: make(chan Event, max(buffer, 1))}
	b.mu.Lock()
	var next []*subscriber
	if old := b.subs.Load(); old != nil {
		next = slices.Clone(*old)
	}
	next = append(next, s)
	b.subs.Store(&next)
	b.mu.Unlock()

	var once sync.Once
	cancel = func() {
		once.Do(func() {
			b.remove(s)
			s.mu.Lock()
			s.closed = true
			close(s.ch)
			s.mu.Unlock()
		})
	}
	return s.ch, s.dropped.Load, cancel
}

// remove takes s out of the subscribers (copy-on-write).
func (b *Broadcaster) remove(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.subs.Load()
	if old == nil {
		return
	}
	next := slices.DeleteFunc(slices.Clone(*old), func(x *subscriber) bool { return x == s })
	if len(next) == 0 {
		b.subs.Store(nil)
		return
	}
	b.subs.Store(&next)
}
