package worker

import (
	"context"
	"errors"
	"time"

	"github.com/sparegrid/sparegrid/agent/link"
)

// maxConnFailures is how many transport failures in a row make the worker
// give up on a session that has not noticed it is dead.
const maxConnFailures = 3

// connection returns a live connection, dialling a new one when there is
// none or the session has ended.
func (w *Worker) connection(ctx context.Context) (Conn, error) {
	w.mu.Lock()
	c := w.conn
	w.mu.Unlock()
	if c != nil {
		select {
		case <-c.Done():
		default:
			return c, nil
		}
	}
	return w.reconnect(ctx, c)
}

// reconnect replaces old with a new connection, retrying with capped
// exponential backoff and jitter. Concurrent callers share one attempt.
func (w *Worker) reconnect(ctx context.Context, old Conn) (Conn, error) {
	select {
	case w.dialSem <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-w.dialSem }()

	w.mu.Lock()
	cur := w.conn
	w.mu.Unlock()
	if cur != old {
		return cur, nil
	}
	if old != nil {
		old.Close()
		w.Log.Warn("session lost, reconnecting")
	}
	if w.Dial == nil {
		return nil, ErrNoDial
	}
	bo := w.newBackoff(time.Second, time.Minute)
	for {
		c, err := w.Dial(ctx)
		if err == nil {
			w.mu.Lock()
			w.conn, w.connFailures = c, 0
			w.mu.Unlock()
			w.Log.Info("connected", connAttrs(c)...)
			return c, nil
		}
		if fatal(err) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		d := bo.next()
		w.Log.Warn("cannot connect to the coordinator", "err", err, "retry_in", d.Round(time.Second))
		if !sleep(ctx, d) {
			return nil, errors.Join(err, context.Cause(ctx))
		}
	}
}

func (w *Worker) callSucceeded(c Conn) {
	w.mu.Lock()
	if w.conn == c {
		w.connFailures = 0
	}
	w.mu.Unlock()
}

// callFailed notes a transport failure on c, and drops c after several in
// a row so that the next call dials afresh.
func (w *Worker) callFailed(c Conn) {
	w.mu.Lock()
	drop := false
	if w.conn == c {
		w.connFailures++
		if w.connFailures >= maxConnFailures {
			w.conn, w.connFailures, drop = nil, 0, true
		}
	}
	w.mu.Unlock()
	if drop {
		c.Close()
	}
}

// dropConn gives up on c after a call on it got no answer in time.
func (w *Worker) dropConn(c Conn, err error) {
	w.mu.Lock()
	drop := w.conn == c
	if drop {
		w.conn, w.connFailures = nil, 0
	}
	w.mu.Unlock()
	if drop {
		w.Log.Warn("no answer from the coordinator in time; dropping the session", "err", err)
		c.Close()
	}
}

func (w *Worker) closeConn() {
	w.mu.Lock()
	c := w.conn
	w.conn = nil
	w.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// connAttrs describes a connection for the log, as far as it can.
func connAttrs(c Conn) []any {
	var attrs []any
	if t, ok := c.(interface{ Transport() string }); ok {
		attrs = append(attrs, "transport", t.Transport())
	}
	if lc, ok := c.(*link.Conn); ok {
		attrs = append(attrs, "coordinator_version", lc.HelloReply.CoordinatorVersion)
	}
	return attrs
}
