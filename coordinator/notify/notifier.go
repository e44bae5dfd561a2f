package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/verdict"
)

// Recipients says who gets mail.
type Recipients interface {
	// Maintainer returns the address of whoever hears about the job's
	// package, or "" when no one does.
	Maintainer(ctx context.Context, job store.Job) (string, error)
	// Admins returns the admins' addresses.
	Admins(ctx context.Context) ([]string, error)
}

// Accounts is what AccountRecipients reads.
type Accounts interface {
	AccountByName(ctx context.Context, name string) (store.Account, error)
	ListAccounts(ctx context.Context) ([]store.Account, error)
}

// AccountRecipients finds recipients among the coordinator's accounts: a
// job's maintainer is the account that submitted it, and the admins are
// the accounts with the admin role that have an address.
type AccountRecipients struct {
	Accounts Accounts
}

// Maintainer implements Recipients.
func (r AccountRecipients) Maintainer(ctx context.Context, job store.Job) (string, error) {
	if job.SubmittedBy == "" {
		return "", nil
	}
	a, err := r.Accounts.AccountByName(ctx, job.SubmittedBy)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return a.Email, nil
}

// Admins implements Recipients.
func (r AccountRecipients) Admins(ctx context.Context) ([]string, error) {
	as, err := r.Accounts.ListAccounts(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range as {
		if a.Role == store.RoleAdmin && a.Email != "" {
			out = append(out, a.Email)
		}
	}
	return out, nil
}

// Notifier decides who hears about what and queues the mail in the
// outbox; the Sender sends it.
type Notifier struct {
	Outbox     store.MailStore
	Recipients Recipients
	// BaseURL is Config.BaseURL.
	BaseURL string
}

// VerdictChanged queues mail to the job's maintainer when the target's
// status went from prev to v.Status in a way VerdictChange calls news. job
// and res are the run v rests on, log its log text (only read for a
// regression) and runs the package's latest runs. It reports whether a
// mail was queued; a second call about the same change queues nothing.
func (n *Notifier) VerdictChanged(ctx context.Context, prev verdict.Status, v verdict.Verdict, job store.Job, res store.Result, log string, runs []store.PackageRun) (bool, error) {
	k, ok := VerdictChange(prev, v.Status)
	if !ok {
		return false, nil
	}
	to, err := n.Recipients.Maintainer(ctx, job)
	if err != nil {
		return false, fmt.Errorf("notify: maintainer of job %d: %w", job.ID, err)
	}
	if to == "" {
		return false, nil
	}
	m := VerdictMessage(k, v, job, res, log, runs)
	return n.queue(ctx, to, store.MailVerdict, m, fmt.Sprintf("%s:job-%d", k, job.ID))
}

// JobEnded queues mail to the admins when JobEnded calls the job's end
// infrastructure trouble; it returns how many mails it queued.
func (n *Notifier) JobEnded(ctx context.Context, job store.Job) (int, error) {
	if _, ok := JobEnded(job.Verdict); !ok {
		return 0, nil
	}
	return n.Admins(ctx, JobErrorMessage(job), "job-"+strconv.FormatInt(job.ID, 10))
}

// Admins queues m to every admin; key names the occurrence it reports
// (such as an agent and the time it paused), so that reporting it again
// queues nothing. It returns how many mails it queued.
func (n *Notifier) Admins(ctx context.Context, m Message, key string) (int, error) {
	if m.Kind.Audience() != Admins {
		return 0, fmt.Errorf("%w: %s mail is not for admins", ErrNoRecipient, m.Kind)
	}
	tos, err := n.Recipients.Admins(ctx)
	if err != nil {
		return 0, fmt.Errorf("notify: admins: %w", err)
	}
	queued := 0
	for _, to := range tos {
		ok, err := n.queue(ctx, to, store.MailInfra, m, string(m.Kind)+":"+key)
		if err != nil {
			return queued, err
		}
		if ok {
			queued++
		}
	}
	return queued, nil
}

func (n *Notifier) queue(ctx context.Context, to string, kind store.MailKind, m Message, key string) (bool, error) {
	body, err := Render(m, n.BaseURL)
	if err != nil {
		return false, err
	}
	key = key + ":" + to
	if len(key) > store.MaxMailKey {
		key = key[:store.MaxMailKey]
	}
	_, queued, err := n.Outbox.EnqueueMail(ctx, store.Mail{To: to, Subject: m.Subject(), Body: body, Kind: kind, Key: key})
	if err != nil {
		return false, fmt.Errorf("notify: queue mail to %s: %w", to, err)
	}
	return queued, nil
}
