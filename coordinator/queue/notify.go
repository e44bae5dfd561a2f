// Package queue owns the in-process signal that wakes agents' long-polling
// lease calls when work arrives, so a submitted job starts without waiting
// for the next poll.
//
// It holds no jobs: the store is the queue. It must not touch the store.
package queue

import "sync"

// Notifier broadcasts "something changed" to every waiter.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewNotifier returns a Notifier.
func NewNotifier() *Notifier {
	return &Notifier{ch: make(chan struct{})}
}

// Wait returns a channel that is closed at the next Notify.
func (n *Notifier) Wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

// Notify wakes every current waiter.
func (n *Notifier) Notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
}
