package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/blobs"
	"github.com/sparegrid/sparegrid/coordinator/notify"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/verdict"
)

// maxMailLog bounds the part of a log read for a mail's excerpt.
const maxMailLog = 4 << 20

// mailer queues the mail package notify decides on when the coordinator
// judges a package or a job ends; the outbox's sender delivers it.
type mailer struct {
	db    store.Store
	blobs *blobs.Store
	n     *notify.Notifier
	log   *slog.Logger

	mu sync.Mutex
	// last is each target's latest settled status, so that only a
	// change mails.
	last map[string]verdict.Status
}

func newMailer(db store.Store, bs *blobs.Store, baseURL string, log *slog.Logger) *mailer {
	return &mailer{
		db: db, blobs: bs, log: log, last: map[string]verdict.Status{},
		n: &notify.Notifier{Outbox: db, Recipients: notify.AccountRecipients{Accounts: db}, BaseURL: baseURL},
	}
}

// startSender drains the outbox over SMTP until ctx ends, and returns a
// function that waits for it to stop.
func startSender(ctx context.Context, db store.Store, cfg notify.Config, log *slog.Logger) (wait func(), err error) {
	var pw string
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, err
		}
		pw = strings.TrimSpace(string(b))
	}
	s := &notify.Sender{Outbox: db, Config: cfg, Password: pw, Logger: log}
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx, mailEvery) })
	return wg.Wait, nil
}

// mailEvery is how often the sender looks at the outbox.
const mailEvery = 30 * time.Second

// Judged queues verdict-change mail for the verdicts of pkg that changed
// since it was last judged (a new REGRESSION, a fix). Errors are logged:
// mail never fails what caused it.
func (m *mailer) Judged(ctx context.Context, pkg string, out verdict.Output) {
	var runs []store.PackageRun
	for _, v := range out.Verdicts {
		if len(v.Jobs) == 0 {
			continue
		}
		key := strings.Join([]string{v.Package, v.Version, strings.Join(v.Triggers, " "), v.Release, v.Arch, strings.Join(v.Tests, " ")}, "\x00")
		// Only settled statuses are remembered: a REGRESSION that goes
		// RUNNING while it is rerun and then PASS is a fix.
		m.mu.Lock()
		prev := m.last[key]
		switch v.Status {
		case verdict.Pass, verdict.Regression, verdict.AlwaysFail, verdict.Neutral:
			m.last[key] = v.Status
		}
		m.mu.Unlock()
		if _, ok := notify.VerdictChange(prev, v.Status); !ok {
			continue
		}
		if runs == nil {
			var err error
			if runs, _, err = m.db.PackageRuns(ctx, pkg); err != nil {
				m.log.Error("cannot read the package's runs for mail", "package", pkg, "err", err)
				return
			}
		}
		if err := m.verdictMail(ctx, prev, v, runs); err != nil {
			m.log.Error("cannot queue verdict mail", "package", pkg, "status", v.Status, "err", err)
		}
	}
}

func (m *mailer) verdictMail(ctx context.Context, prev verdict.Status, v verdict.Verdict, runs []store.PackageRun) error {
	job, err := m.db.Job(ctx, v.Jobs[0])
	if err != nil {
		return err
	}
	of := job.ID
	if job.ReusedFrom != nil {
		of = *job.ReusedFrom
	}
	res, err := m.db.LatestResult(ctx, of)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	text := ""
	if v.Status == verdict.Regression {
		text = m.logText(res)
	}
	queued, err := m.n.VerdictChanged(ctx, prev, v, job, res, text, runs)
	if queued {
		m.log.Info("verdict mail queued", "package", v.Package, "status", v.Status, "job", job.ID)
	}
	return err
}

// logText returns the start of a result's log, "" when it has none.
func (m *mailer) logText(res store.Result) string {
	for _, b := range res.Blobs {
		if b.Name != "log" {
			continue
		}
		r, _, err := m.blobs.Open(b.SHA256)
		if err != nil {
			return ""
		}
		defer r.Close()
		data, _ := io.ReadAll(io.LimitReader(r, maxMailLog))
		return string(data)
	}
	return ""
}

// JobEnded queues the admins' mail for a job that ended in error.
func (m *mailer) JobEnded(ctx context.Context, j store.Job) {
	if n, err := m.n.JobEnded(ctx, j); err != nil {
		m.log.Error("cannot queue job mail", "job", j.ID, "err", err)
	} else if n > 0 {
		m.log.Info("infrastructure mail queued", "job", j.ID, "admins", n)
	}
}
