package store

import (
	"context"
	"net/mail"
	"strings"
	"time"
)

// MailKind says why a queued mail was written.
type MailKind string

// Mail kinds.
const (
	// MailVerdict tells a maintainer that a verdict of their package
	// changed.
	MailVerdict MailKind = "verdict"
	// MailInfra tells the admins about trouble with the grid.
	MailInfra MailKind = "infra"
	// MailDigest carries the mails a rate limit held back.
	MailDigest MailKind = "digest"
)

// Valid reports whether k is a known mail kind.
func (k MailKind) Valid() bool {
	return k == MailVerdict || k == MailInfra || k == MailDigest
}

// Limits on a queued mail, in bytes.
const (
	MaxMailSubject = 300
	MaxMailBody    = 256 << 10
	MaxMailKey     = 500
	MaxMailError   = 1000
)

// Mail is one message in the outbox. It is queued until it is sent,
// folded into a digest, or given up on.
type Mail struct {
	ID      int64
	To      string
	Subject string
	// Body is plain text.
	Body string
	Kind MailKind
	// Key identifies what the mail is about: a second mail with the same
	// key is not queued.
	Key       string
	CreatedAt time.Time
	// Attempts counts the failed attempts to send it.
	Attempts int
	// NextAttempt is when it is due; nil once it is sent, folded or given
	// up on.
	NextAttempt *time.Time
	SentAt      *time.Time
	LastError   string
	// DigestAt, when set, is when the mail is to go out in a digest
	// instead, because the rate limit held it back.
	DigestAt *time.Time
	// DigestID names the digest mail that carried it.
	DigestID int64
}

// ValidateNewMail reports, as an *InvalidError, why EnqueueMail refuses m.
func ValidateNewMail(m Mail) error {
	switch {
	case m.ID != 0:
		return invalid("a new mail has no id, not %d", m.ID)
	case !m.Kind.Valid():
		return invalid("unknown mail kind %q", m.Kind)
	case m.Key == "" || len(m.Key) > MaxMailKey:
		return invalid("a mail needs a key of 1 to %d bytes", MaxMailKey)
	case m.Subject == "" || len(m.Subject) > MaxMailSubject || strings.ContainsAny(m.Subject, "\r\n"):
		return invalid("a mail needs a one-line subject of 1 to %d bytes", MaxMailSubject)
	case len(m.Body) > MaxMailBody:
		return invalid("the mail body is longer than %d bytes", MaxMailBody)
	}
	if a, err := mail.ParseAddress(m.To); err != nil || a.Name != "" || a.Address != m.To {
		return invalid("%q is not a plain mail address", m.To)
	}
	return nil
}

// MailStore is the outbox: mail waiting to be sent, with its attempts, so
// that trouble with the mail server delays mail and nothing else.
type MailStore interface {
	// EnqueueMail queues m, due at once unless m.NextAttempt is set, and
	// returns it with its ID and CreatedAt set and true. When a mail with
	// m.Key is already in the outbox it returns that one and false
	// instead. A digest (MailDigest) lists in covers the folded mails it
	// carries; they are marked as carried by it in the same transaction.
	// ErrInvalid (an *InvalidError) when ValidateNewMail refuses m;
	// ErrConflict when a covered mail is unknown, not folded or already
	// carried by a digest, or covers is given for another kind.
	EnqueueMail(ctx context.Context, m Mail, covers ...int64) (Mail, bool, error)
	// DueMail returns at most limit mails due at now (not sent, not
	// folded, NextAttempt at or before now), those due first, then oldest
	// first.
	DueMail(ctx context.Context, now time.Time, limit int) ([]Mail, error)
	// MarkMailSent records that the mail was sent at the given time.
	// ErrNotFound for an unknown id, ErrConflict when it is not due to be
	// sent (already sent, folded or given up on).
	MarkMailSent(ctx context.Context, id int64, at time.Time) error
	// MarkMailFailed records a failed attempt and its error; the mail is
	// due again at retryAt, or never when retryAt is zero. Errors as for
	// MarkMailSent.
	MarkMailFailed(ctx context.Context, id int64, reason string, retryAt time.Time) error
	// FoldMail takes a queued mail out of the queue to go out in the
	// digest due at digestAt. Errors as for MarkMailSent.
	FoldMail(ctx context.Context, id int64, digestAt time.Time) error
	// FoldedMail returns the folded mails no digest carries yet whose
	// digest is due at now, oldest first.
	FoldedMail(ctx context.Context, now time.Time) ([]Mail, error)
	// MailSentSince counts the mails other than digests sent to the
	// address at or after since.
	MailSentSince(ctx context.Context, to string, since time.Time) (int, error)
}
