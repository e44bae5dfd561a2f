package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sparegrid/sparegrid/shared/protocol"
)

// heartbeat extends the job's lease every job.HeartbeatInterval (±10%)
// until ctx ends. A stale lease, a cancel from the coordinator or a revoked
// agent drops the job.
func (w *Worker) heartbeat(ctx context.Context, j *jobRun) {
	interval := j.job.HeartbeatInterval
	if interval <= 0 {
		interval = DefaultHeartbeatInterval
	}
	t := time.NewTimer(w.jitter(interval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if cause := w.beat(ctx, j, interval); cause != nil {
			j.log.Warn("abandoning job", "cause", cause)
			j.drop(cause)
			return
		}
		t.Reset(w.jitter(interval))
	}
}

// beat sends one heartbeat. It returns a cause when the job must be
// dropped; other failures are logged and the next beat tries again.
func (w *Worker) beat(ctx context.Context, j *jobRun, interval time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, interval)
	defer cancel()
	var reply protocol.HeartbeatReply
	err := w.call(cctx, 1, func(ctx context.Context, c Conn, token string) error {
		var err error
		reply, err = c.Heartbeat(ctx, token, protocol.HeartbeatRequest{
			JobID:   j.job.ID,
			Attempt: j.job.Attempt,
			Stage:   j.currentStage(),
		})
		return err
	})
	switch {
	case err == nil && reply.Cancel:
		return ErrJobCancelled
	case err == nil:
		return nil
	case errors.Is(err, protocol.ErrStaleLease), fatal(err):
		return fmt.Errorf("worker: job %d attempt %d: %w", j.job.ID, j.job.Attempt, err)
	case ctx.Err() != nil:
		return nil
	}
	j.log.Warn("heartbeat failed", "err", err)
	return nil
}
