package audit

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countSink counts and keeps the request IDs it gets.
type countSink struct {
	mu  sync.Mutex
	ids []string
}

func (c *countSink) Record(e *Event) {
	c.mu.Lock()
	c.ids = append(c.ids, e.RequestID)
	c.mu.Unlock()
}

func (c *countSink) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

func ev(i int) *Event { return &Event{Kind: KindHTTP, RequestID: strconv.Itoa(i)} }

// receive takes n events from ch, failing after a bounded wait.
func receive(t *testing.T, ch <-chan Event, n int) []Event {
	t.Helper()
	var out []Event
	timeout := time.After(5 * time.Second)
	for len(out) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %d of %d events", len(out), n)
			}
			out = append(out, e)
		case <-timeout:
			t.Fatalf("got %d of %d events", len(out), n)
		}
	}
	return out
}

func TestBroadcastInOrderToEverySubscriber(t *testing.T) {
	next := &countSink{}
	b := NewBroadcaster(next)
	const n = 100
	var chans []<-chan Event
	for range 3 {
		ch, dropped, cancel := b.Subscribe(n)
		defer cancel()
		defer func() {
			if d := dropped(); d != 0 {
				t.Errorf("dropped %d", d)
			}
		}()
		chans = append(chans, ch)
	}
	for i := range n {
		b.Record(ev(i))
	}
	for _, ch := range chans {
		for i, e := range receive(t, ch, n) {
			if e.RequestID != strconv.Itoa(i) {
				t.Fatalf("event %d is %q", i, e.RequestID)
			}
		}
	}
	if next.len() != n {
		t.Errorf("next got %d events, want %d", next.len(), n)
	}
}

func TestBroadcastSlowSubscriberDoesNotBlock(t *testing.T) {
	next := &countSink{}
	b := NewBroadcaster(next)
	const buffer, n = 16, 10000
	ch, dropped, cancel := b.Subscribe(buffer)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			b.Record(ev(i))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked on a subscriber that does not read")
	}
	if d := dropped(); d != n-buffer {
		t.Errorf("dropped %d, want %d", d, n-buffer)
	}
	if next.len() != n {
		t.Errorf("next got %d events, want %d", next.len(), n)
	}
	// The subscriber has the first events, in order.
	for i, e := range receive(t, ch, buffer) {
		if e.RequestID != strconv.Itoa(i) {
			t.Fatalf("event %d is %q", i, e.RequestID)
		}
	}
}

func TestBroadcastCancel(t *testing.T) {
	var b Broadcaster // the zero value works, with no next
	ch, dropped, cancel := b.Subscribe(0)
	if cap(ch) != 1 {
		t.Errorf("buffer 0 gave capacity %d, want 1", cap(ch))
	}
	other, _, cancelOther := b.Subscribe(10)
	defer cancelOther()
	b.Record(ev(1))
	cancel()
	cancel() // idempotent
	// Buffered events can still be read, then the channel is closed.
	if e := receive(t, ch, 1); e[0].RequestID != "1" {
		t.Errorf("got %q", e[0].RequestID)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel not closed after cancel")
	}
	b.Record(ev(2)) // must not panic, nor count as dropped
	if dropped() != 0 {
		t.Errorf("dropped %d after cancel", dropped())
	}
	if got := receive(t, other, 2); got[0].RequestID != "1" || got[1].RequestID != "2" {
		t.Errorf("other subscriber got %v", got)
	}
	cancelOther()
	if b.subs.Load() != nil {
		t.Error("subscribers left after every cancel")
	}
}

func TestBroadcastConcurrent(t *testing.T) {
	next := &countSink{}
	b := NewBroadcaster(next)
	const recorders, perRecorder, subscribers, rounds = 4, 2000, 4, 50
	var wg sync.WaitGroup
	var received atomic.Int64
	for r := range recorders {
		wg.Go(func() {
			for i := range perRecorder {
				b.Record(ev(r*perRecorder + i))
			}
		})
	}
	for range subscribers {
		wg.Go(func() {
			for range rounds {
				ch, _, cancel := b.Subscribe(8)
				// Read a little, cancel (maybe from another goroutine,
				// twice), and drain to the close.
				select {
				case <-ch:
					received.Add(1)
				default:
				}
				var cw sync.WaitGroup
				cw.Go(cancel)
				cancel()
				cw.Wait()
				for range ch {
					received.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if next.len() != recorders*perRecorder {
		t.Errorf("next got %d events, want %d", next.len(), recorders*perRecorder)
	}
	if b.subs.Load() != nil {
		t.Error("subscribers left after every cancel")
	}
	t.Logf("subscribers received %d events", received.Load())
}

func BenchmarkBroadcastNoSubscribers(b *testing.B) {
	br := NewBroadcaster(nil)
	e := ev(1)
	b.ReportAllocs()
	for b.Loop() {
		br.Record(e)
	}
}
