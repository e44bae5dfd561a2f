package worker

import (
	"context"
	"time"
)

// backoff yields capped exponential delays with jitter: the n-th delay is
// drawn from [d/2, d) where d = min(max, base·2ⁿ).
type backoff struct {
	base, max time.Duration
	rand      func() float64
	n         int
}

func (b *backoff) next() time.Duration {
	d := b.base
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.n++
	return d/2 + time.Duration(b.rand()*float64(d/2))
}

func (b *backoff) reset() { b.n = 0 }

// sleep waits for d or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
