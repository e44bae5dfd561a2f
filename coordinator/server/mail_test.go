package server

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/blobs"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/coordinator/verdict"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// TestMailerQueuesVerdictChanges checks that judging a package queues one
// mail to the submitter when a verdict changes (a new REGRESSION, then a
// fix), none while it stays the same, and admins' mail for a job that
// ended in error.
func TestMailerQueuesVerdictChanges(t *testing.T) {
	ctx := t.Context()
	db := sqlite.NewTemp(t)
	bs, err := blobs.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []store.Account{
		{Name: "maint", Email: "maint@example.org", Role: store.RoleMaintainer},
		{Name: "root", Email: "root@example.org", Role: store.RoleAdmin},
	} {
		if _, err := db.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	job, err := db.CreateJob(ctx, store.Job{Package: "bar", Version: "1", Release: "bookworm", Arch: "amd64",
		Triggers: []string{"libfoo/2"}, SubmittedBy: "maint"})
	if err != nil {
		t.Fatal(err)
	}
	m := newMailer(db, bs, "https://grid.example.org/", slog.New(slog.DiscardHandler))
	judge := func(s verdict.Status) {
		m.Judged(ctx, "bar", verdict.Output{Verdicts: []verdict.Verdict{{Package: "bar", Version: "1", Triggers: []string{"libfoo/2"},
			Release: "bookworm", Arch: "amd64", Status: s, Reason: "r", Jobs: []int64{job.ID}}}})
	}
	due := func() []store.Mail {
		t.Helper()
		mails, err := db.DueMail(ctx, time.Now().Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		return mails
	}
	steps := []struct {
		status verdict.Status
		want   int // mails due after the step
	}{
		{verdict.Running, 0},
		{verdict.Regression, 1},
		{verdict.Regression, 1},
		{verdict.Running, 1},
		{verdict.Pass, 2},
		{verdict.Pass, 2},
	}
	for i, st := range steps {
		judge(st.status)
		if got := due(); len(got) != st.want {
			t.Fatalf("step %d (%s): %d mails due, want %d: %+v", i, st.status, len(got), st.want, got)
		}
	}
	for _, mail := range due() {
		if mail.To != "maint@example.org" || mail.Kind != store.MailVerdict {
			t.Errorf("verdict mail to %s of kind %s, want the submitter's verdict mail", mail.To, mail.Kind)
		}
	}

	errored := store.Job{ID: 99, Package: "bar", Release: "bookworm", Arch: "amd64", State: store.JobDone, Verdict: dep8.VerdictError,
		Reason: "infrastructure failure on every attempt"}
	m.JobEnded(ctx, errored)
	m.JobEnded(ctx, store.Job{ID: 100, Package: "bar", State: store.JobDone, Verdict: dep8.VerdictFail})
	var admin int
	for _, mail := range due() {
		if mail.Kind == store.MailInfra {
			admin++
			if mail.To != "root@example.org" {
				t.Errorf("infrastructure mail to %s, want the admin", mail.To)
			}
		}
	}
	if admin != 1 {
		t.Errorf("infrastructure mails = %d, want 1 (the error, not the failure)", admin)
	}
}
