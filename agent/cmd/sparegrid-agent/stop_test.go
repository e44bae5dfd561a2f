package main

import (
	"errors"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	agentservice "github.com/sparegrid/sparegrid/agent/service"
)

// step is one thing that happens to stopStages: a signal, or the drain
// grace running out; want is the callback it must cause ("" for none).
type step struct {
	signal bool
	want   string
}

func TestStopStages(t *testing.T) {
	const grace = 7 * time.Minute
	sig, expire := true, false
	tests := []struct {
		name  string
		grace time.Duration
		steps []step
	}{
		{"first signal drains", grace, []step{{sig, "drain"}}},
		{"grace expiry cancels", grace, []step{{sig, "drain"}, {expire, "cancel"}}},
		{"signal after expiry exits", grace, []step{{sig, "drain"}, {expire, "cancel"}, {sig, "exit"}}},
		{"second signal before grace cancels", grace, []step{{sig, "drain"}, {sig, "cancel"}}},
		{"third signal exits", grace, []step{{sig, "drain"}, {sig, "cancel"}, {sig, "exit"}}},
		{"fourth signal exits too", grace, []step{{sig, "drain"}, {sig, "cancel"}, {sig, "exit"}, {sig, "exit"}}},
		{"no grace", 0, []step{{sig, "drain"}, {sig, "cancel"}, {sig, "exit"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := make(chan string)
			timer := make(chan time.Time)
			var asked []time.Duration
			s := stopStages{
				grace: tt.grace,
				after: func(d time.Duration) <-chan time.Time {
					asked = append(asked, d)
					return timer
				},
				drain:  func() { events <- "drain" },
				cancel: func() { events <- "cancel" },
				exit:   func() { events <- "exit" },
				log:    slog.New(slog.DiscardHandler),
			}
			sigs := make(chan os.Signal)
			done := make(chan struct{})
			finished := make(chan struct{})
			go func() { s.run(sigs, done); close(finished) }()
			for i, st := range tt.steps {
				if st.signal {
					sigs <- syscall.SIGTERM
				} else {
					timer <- time.Time{}
				}
				if got := <-events; got != st.want {
					t.Errorf("step %d: callback %q, want %q", i, got, st.want)
				}
			}
			close(done)
			<-finished
			var want []time.Duration
			if tt.grace > 0 {
				want = []time.Duration{tt.grace}
			}
			if diff := cmp.Diff(want, asked); diff != "" {
				t.Errorf("timers asked for (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStopStagesLateTimer checks that a grace that runs out after a second
// signal has cancelled the job does not count as a further stage.
func TestStopStagesLateTimer(t *testing.T) {
	events := make(chan string, 4)
	timer := make(chan time.Time, 1)
	s := stopStages{
		grace:  time.Minute,
		after:  func(time.Duration) <-chan time.Time { return timer },
		drain:  func() { events <- "drain" },
		cancel: func() { events <- "cancel" },
		exit:   func() { events <- "exit" },
		log:    slog.New(slog.DiscardHandler),
	}
	sigs := make(chan os.Signal)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() { s.run(sigs, done); close(finished) }()
	sigs <- syscall.SIGINT
	sigs <- syscall.SIGINT
	timer <- time.Time{} // fires after the second signal; must be ignored
	close(done)
	<-finished
	close(events)
	var got []string
	for e := range events {
		got = append(got, e)
	}
	if diff := cmp.Diff([]string{"drain", "cancel"}, got); diff != "" {
		t.Errorf("callbacks (-want +got):\n%s", diff)
	}
}

func TestDrainGraceDefault(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		want    time.Duration
		wantErr error
	}{
		{"unset", "", agentservice.DefaultDrainGrace, nil},
		{"set", "90s", 90 * time.Second, nil},
		{"no limit", "0", 0, nil},
		{"negative", "-1m", 0, errDrainGrace},
		{"not a duration", "soon", 0, errDrainGrace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := drainGraceDefault(func(k string) string {
				if k == envDrainGrace {
					return tt.env
				}
				return ""
			})
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("drainGraceDefault(%s=%q) = %v, %v, want %v, %v", envDrainGrace, tt.env, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
