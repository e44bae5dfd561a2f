// Package notify owns the coordinator's mail: who is told about what, the
// one plain-text template every mail is written with, the rate limit that
// folds a flood of mail into an hourly digest, and the Sender that drains
// the outbox (store.MailStore) through an SMTP server.
//
// Maintainers hear only about their own code: a verdict that changed (a
// new REGRESSION, or a fix). Trouble with the grid (a tmpfail, a job that
// ended in error, an agent that paused itself, a failing health check)
// goes to the admins and never to a maintainer.
//
// It must not compute verdicts (package verdict does), decide when a job
// is retried, or send mail on the path that stores a result: callers only
// queue mail in the outbox, and an SMTP outage delays mail and nothing
// else.
package notify

import (
	"errors"

	"github.com/sparegrid/sparegrid/coordinator/verdict"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Errors returned by this package.
var (
	ErrConfig      = errors.New("notify: invalid configuration")
	ErrNoRecipient = errors.New("notify: no recipient")
)

// Kind is what a mail is about.
type Kind string

// Mail kinds.
const (
	// Regression: a package's tests newly fail where they passed before.
	Regression Kind = "regression"
	// Fixed: a REGRESSION or ALWAYSFAIL became a PASS.
	Fixed Kind = "fixed"
	// JobError: a job ended in error, having used its attempts on
	// infrastructure trouble.
	JobError Kind = "job-error"
	// AgentPaused: an agent paused itself.
	AgentPaused Kind = "agent-paused"
	// CheckFailed: a health check failed and holds its scope.
	CheckFailed Kind = "check-failed"
	// Digest: mails the hourly limit held back, sent as one.
	Digest Kind = "digest"
)

// Audience is who a kind of mail goes to.
type Audience int

// Audiences.
const (
	Maintainer Audience = iota + 1
	Admins
)

// Audience returns who hears about k: maintainers about their code,
// admins about the grid.
func (k Kind) Audience() Audience {
	switch k {
	case Regression, Fixed:
		return Maintainer
	}
	return Admins
}

// settled reports whether s is a judgement of the package rather than of
// work still to do.
func settled(s verdict.Status) bool {
	switch s {
	case verdict.Pass, verdict.Regression, verdict.AlwaysFail, verdict.Neutral:
		return true
	}
	return false
}

// VerdictChange says whether the maintainer hears about a target whose
// status went from prev (empty when it had none) to next, and as what.
//
// A REGRESSION is news unless prev already was one; a PASS is news only
// after a REGRESSION or ALWAYSFAIL. Everything else is silent: a target
// that keeps failing, ALWAYSFAIL (the package never passed with these
// triggers' baseline, nothing changed), NEUTRAL, and RUNNING and PENDING,
// which are the grid's business and not a judgement. prev RUNNING or
// PENDING counts as unknown: pass the last settled status when there is
// one.
func VerdictChange(prev, next verdict.Status) (Kind, bool) {
	if !settled(prev) {
		prev = ""
	}
	switch {
	case next == verdict.Regression && prev != verdict.Regression:
		return Regression, true
	case next == verdict.Pass && (prev == verdict.Regression || prev == verdict.AlwaysFail):
		return Fixed, true
	}
	return "", false
}

// JobEnded says whether the admins hear about a job that ended with v: a
// job that ended in error did so on infrastructure trouble. A tmpfail is
// retried and a pass, fail or neutral is judged by VerdictChange, so
// neither mails anyone here; a cancelled job was cancelled by a person.
func JobEnded(v dep8.Verdict) (Kind, bool) {
	if v == dep8.VerdictError {
		return JobError, true
	}
	return "", false
}
