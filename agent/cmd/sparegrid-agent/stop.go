package main

import (
	"log/slog"
	"os"
	"time"
)

// stopStages stops the agent in stages as signals arrive: the first
// drains, the second (or the end of the drain grace, whichever comes
// first) cancels the running job, the next exits at once.
type stopStages struct {
	grace  time.Duration // 0: a draining job may run as long as it needs
	after  func(time.Duration) <-chan time.Time
	drain  func()
	cancel func()
	exit   func()
	log    *slog.Logger
}

// run reads sigs until done is closed.
func (s stopStages) run(sigs <-chan os.Signal, done <-chan struct{}) {
	var expired <-chan time.Time
	stage := 0
	for {
		select {
		case <-done:
			return
		case <-expired:
			expired = nil
			if stage == 1 {
				s.log.Warn("drain grace over: cancelling the running job (signal again to exit at once)", "grace", s.grace)
				stage = 2
				s.cancel()
			}
		case sig := <-sigs:
			stage++
			switch stage {
			case 1:
				if s.grace > 0 {
					s.log.Info("stopping: no new jobs; a running job may finish first (signal again to cancel it)", "signal", sig.String(), "grace", s.grace)
					expired = s.after(s.grace)
				} else {
					s.log.Info("stopping: no new jobs; a running job finishes first (signal again to cancel it)", "signal", sig.String())
				}
				s.drain()
			case 2:
				expired = nil
				s.log.Warn("cancelling the running job (signal again to exit at once)", "signal", sig.String())
				s.cancel()
			default:
				s.log.Error("exiting at once", "signal", sig.String())
				s.exit()
			}
		}
	}
}
