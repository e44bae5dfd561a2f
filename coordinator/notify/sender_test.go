package notify

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/coordinator/verdict"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDrainOutage(t *testing.T) {
	ctx := t.Context()
	db := sqlite.NewTemp(t)
	now := time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)
	for _, k := range []string{"a", "b"} {
		if _, _, err := db.EnqueueMail(ctx, store.Mail{To: "dev@example.org", Subject: "s " + k, Body: "b", Kind: store.MailVerdict, Key: k, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	s := &Sender{Outbox: db, Config: Config{SMTP: closedAddr(t), From: "grid@example.org"}, Now: func() time.Time { return now }, Timeout: 5 * time.Second, Logger: quiet()}
	sent, err := s.Drain(ctx)
	if err != nil || sent != 0 {
		t.Fatalf("Drain with the server down = %d, %v; want 0, nil", sent, err)
	}
	if due, err := db.DueMail(ctx, now.Add(59*time.Second), 10); err != nil || len(due) != 0 {
		t.Errorf("DueMail before the retry = %d mails, %v; want none", len(due), err)
	}
	due, err := db.DueMail(ctx, now.Add(time.Minute), 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("DueMail at the retry = %d mails, %v; want 2", len(due), err)
	}
	for _, m := range due {
		if m.Attempts != 1 || m.LastError == "" {
			t.Errorf("mail %s = %d attempts, error %q; want 1 and the reason", m.Key, m.Attempts, m.LastError)
		}
	}
}

func TestDrainNotConfigured(t *testing.T) {
	s := &Sender{Outbox: sqlite.NewTemp(t)}
	if _, err := s.Drain(t.Context()); !errors.Is(err, ErrConfig) {
		t.Errorf("Drain without smtp = %v, want ErrConfig", err)
	}
}

// fakeRecipients is a Recipients with fixed answers.
type fakeRecipients struct {
	maintainer string
	admins     []string
}

func (f fakeRecipients) Maintainer(_ context.Context, _ store.Job) (string, error) {
	return f.maintainer, nil
}
func (f fakeRecipients) Admins(_ context.Context) ([]string, error) { return f.admins, nil }

func TestNotifierRouting(t *testing.T) {
	ctx := t.Context()
	db := sqlite.NewTemp(t)
	n := &Notifier{Outbox: db, Recipients: fakeRecipients{maintainer: "dev@example.org", admins: []string{"root@example.org", "ops@example.org"}}}
	v := verdict.Verdict{Package: "hello", Release: "unstable", Arch: "amd64", Status: verdict.Regression}
	job := store.Job{ID: 7, Package: "hello", Release: "unstable", Arch: "amd64", Verdict: dep8.VerdictError, Attempt: 3}

	steps := []struct {
		name string
		call func() (int, error)
		want int
	}{
		{"new regression", func() (int, error) {
			return boolCount(n.VerdictChanged(ctx, verdict.Pass, v, job, store.Result{}, "", nil))
		}, 1},
		{"same regression again", func() (int, error) {
			return boolCount(n.VerdictChanged(ctx, verdict.Running, v, job, store.Result{}, "", nil))
		}, 0},
		{"still failing", func() (int, error) {
			return boolCount(n.VerdictChanged(ctx, verdict.Regression, v, store.Job{ID: 8}, store.Result{}, "", nil))
		}, 0},
		{"job error to every admin", func() (int, error) { return n.JobEnded(ctx, job) }, 2},
		{"job error again", func() (int, error) { return n.JobEnded(ctx, job) }, 0},
		{"tmpfail mails no one", func() (int, error) {
			return n.JobEnded(ctx, store.Job{ID: 9, Verdict: dep8.VerdictTmpfail})
		}, 0},
		{"agent paused", func() (int, error) {
			return n.Admins(ctx, AgentPausedMessage(store.Agent{ID: 1, Name: "box1"}, "disk full", time.Unix(0, 0)), "agent-1-0")
		}, 2},
	}
	for _, st := range steps {
		got, err := st.call()
		if err != nil || got != st.want {
			t.Errorf("%s: queued %d, %v; want %d", st.name, got, err, st.want)
		}
	}
	if _, err := n.Admins(ctx, Message{Kind: Regression}, "x"); !errors.Is(err, ErrNoRecipient) {
		t.Errorf("Admins(regression) = %v, want ErrNoRecipient", err)
	}
	due, err := db.DueMail(ctx, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]store.MailKind{}
	for _, m := range due {
		kinds[m.To] = m.Kind
	}
	if kinds["dev@example.org"] != store.MailVerdict || kinds["root@example.org"] != store.MailInfra || len(due) != 5 {
		t.Errorf("outbox = %d mails, kinds %v; want 5, verdict mail to the maintainer and infra mail to admins", len(due), kinds)
	}
}

func boolCount(ok bool, err error) (int, error) {
	if ok {
		return 1, err
	}
	return 0, err
}
