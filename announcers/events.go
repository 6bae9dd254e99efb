package announcers

import (
	"context"
	"sync"
)

// EventHub fans an announcer's events out to every Events subscriber. A subscriber that does
// not keep up loses events rather than stalling the announcer.
type EventHub struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// Subscribe returns a channel of events published from now on; it is closed when ctx is done.
func (h *EventHub) Subscribe(ctx context.Context) <-chan Event {
	ch := make(chan Event, eventBuffer)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan Event]struct{}{}
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	go func() {
		<-ctx.Done()
		h.mu.Lock()
		delete(h.subs, ch)
		close(ch)
		h.mu.Unlock()
	}()
	return ch
}

// Publish sends e to every subscriber that has room for it.
func (h *EventHub) Publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
		}
	}
}
