package store

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// HealthStore holds the grid's holds and the downtime its health checks
// recorded.
//
// A hold keeps the jobs of its scope queued (see Scope.Covers); the store
// only records holds, the gateway applies them when it leases. A scope may
// be held by several holders at once (a failing check and an admin, say);
// it is held while any of them holds it.
type HealthStore interface {
	// SetHold records that h.By holds h.Scope for h.Reason since h.Since
	// (the store's clock when zero) and returns the hold as stored. When
	// h.By already holds the scope, its reason is replaced and its Since
	// kept. ErrInvalid (an *InvalidError) when Hold.Validate refuses h.
	SetHold(ctx context.Context, h Hold) (Hold, error)
	// ClearHold lifts the hold h.By set on scope. ErrNotFound when by does
	// not hold scope.
	ClearHold(ctx context.Context, scope Scope, by string) error
	// Holds returns every hold, by scope and then oldest first.
	Holds(ctx context.Context) ([]Hold, error)

	// OpenDowntime records that check, whose scope is scope, failed at at
	// with reason (the store's clock when at is zero). When the check
	// already has an open interval, only its LastError changes. It returns
	// the open interval. ErrInvalid for an empty check name, an invalid
	// scope or a reason that is not one line of at most MaxHealthReason
	// bytes.
	OpenDowntime(ctx context.Context, check string, scope Scope, at time.Time, reason string) (DowntimeInterval, error)
	// CloseDowntime ends the check's open interval at at (the store's
	// clock when zero) and returns it. ErrNotFound when the check has no
	// open interval; ErrInvalid when at is before the interval started.
	CloseDowntime(ctx context.Context, check string, at time.Time) (DowntimeInterval, error)
	// Downtime returns the intervals still open or ended after since,
	// oldest first.
	Downtime(ctx context.Context, since time.Time) ([]DowntimeInterval, error)

	// AbortHeldJobs ends, with VerdictError and reason, the queued jobs
	// scope covers that were created at or before queuedBefore, and
	// returns their ids. A label scope covers agents, not jobs: it aborts
	// nothing. ErrInvalid for an invalid scope or an empty reason.
	AbortHeldJobs(ctx context.Context, scope Scope, queuedBefore time.Time, reason string, at time.Time) ([]int64, error)
}

// MaxHealthReason is the longest hold reason or check error stored, in
// bytes; longer check errors are cut.
const MaxHealthReason = 500

// Scope names what a hold covers: "grid", "release:NAME", "arch:NAME" or
// "label:NAME".
type Scope string

// ScopeGrid covers every job on every agent.
const ScopeGrid Scope = "grid"

// Scope kinds, the part of a Scope before the colon.
const (
	ScopeRelease = "release"
	ScopeArch    = "arch"
	ScopeLabel   = "label"
)

// ParseScope returns s as a Scope, or, as an *InvalidError, why it is not
// one.
func ParseScope(s string) (Scope, error) {
	const hint = `use grid, release:NAME, arch:NAME or label:NAME`
	if s == string(ScopeGrid) {
		return ScopeGrid, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok {
		return "", invalid("scope %q: %s", s, hint)
	}
	switch kind {
	case ScopeRelease, ScopeArch:
		if !dep8.ValidSuite(name) {
			return "", invalid("scope %q: %q is not a %s name", s, name, kind)
		}
	case ScopeLabel:
		if !ValidLabel(name) {
			return "", invalid("scope %q: label %q: use 1 to 64 characters from a-z, 0-9 and \"._:=-\", starting with a letter or digit", s, name)
		}
	default:
		return "", invalid("scope %q: %s", s, hint)
	}
	return Scope(s), nil
}

// Kind returns the part before the colon ("grid" for ScopeGrid).
func (s Scope) Kind() string {
	k, _, _ := strings.Cut(string(s), ":")
	return k
}

// Name returns the part after the colon (empty for ScopeGrid).
func (s Scope) Name() string {
	_, n, _ := strings.Cut(string(s), ":")
	return n
}

// Covers reports whether a hold on s keeps a job for release and arch
// from an agent with the given labels: the grid covers every job, a
// release or arch scope the jobs of that release or arch, and a label
// scope every job on an agent that has the label.
func (s Scope) Covers(release, arch string, labels []string) bool {
	switch s.Kind() {
	case string(ScopeGrid):
		return true
	case ScopeRelease:
		return release == s.Name()
	case ScopeArch:
		return arch == s.Name()
	case ScopeLabel:
		return slices.Contains(labels, s.Name())
	}
	return false
}

// Hold is one holder's hold on a scope.
type Hold struct {
	Scope  Scope
	Reason string
	Since  time.Time
	// By is "check NAME" for a health check's hold, and the admin's
	// account name for an admin's.
	By string
}

// CheckHolder is the Hold.By of the hold set by the check called name.
func CheckHolder(name string) string { return "check " + name }

// CheckName returns the check that set a hold, or false when an admin did.
func (h Hold) CheckName() (string, bool) { return strings.CutPrefix(h.By, "check ") }

// Validate reports, as an *InvalidError, what makes h unfit to store.
func (h Hold) Validate() error {
	if _, err := ParseScope(string(h.Scope)); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(h.Reason) == "":
		return invalid("a hold needs a reason")
	case len(h.Reason) > MaxHealthReason:
		return invalid("reason is %d bytes; at most %d", len(h.Reason), MaxHealthReason)
	case !printable(h.Reason):
		return invalid("reason must be printable text on one line")
	case strings.TrimSpace(h.By) == "" || !printable(h.By) || len(h.By) > 200:
		return invalid("a hold needs the check or account that set it")
	}
	return nil
}

// HeldBy returns the first of holds that keeps a job for release and arch
// from an agent with the given labels, or nil.
func HeldBy(holds []Hold, release, arch string, labels []string) *Hold {
	for i := range holds {
		if holds[i].Scope.Covers(release, arch, labels) {
			return &holds[i]
		}
	}
	return nil
}

// DowntimeInterval is one stretch of time a health check failed.
type DowntimeInterval struct {
	ID    int64
	Check string
	Scope Scope
	// Started is when the check first failed.
	Started time.Time
	// Ended is when it passed again; nil while it still fails.
	Ended *time.Time
	// LastError is what the check's last failure said.
	LastError string
}

// Duration returns how long the interval lasted, up to now when it is
// still open.
func (d DowntimeInterval) Duration(now time.Time) time.Duration {
	if d.Ended != nil {
		return d.Ended.Sub(d.Started)
	}
	return now.Sub(d.Started)
}

// OneLine makes s fit a hold reason or check error: control characters
// become spaces and it is cut to MaxHealthReason bytes.
func OneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	s = strings.TrimSpace(s)
	if len(s) > MaxHealthReason {
		s = strings.ToValidUTF8(s[:MaxHealthReason], "")
	}
	return s
}
