package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// Sender tuning.
const (
	// MaxAttempts is how many times a mail is tried before it is given up.
	MaxAttempts = 12
	// DefaultBatch is how many due mails one Drain takes.
	DefaultBatch = 50
	// DefaultTimeout bounds each SMTP connection and command.
	DefaultTimeout = 30 * time.Second
	firstRetry     = time.Minute
	maxRetry       = 6 * time.Hour
)

// RetryAt returns when a mail that has now failed attempts times is tried
// again: a minute after the first failure, doubling up to six hours, and
// never (the zero time) after MaxAttempts.
func RetryAt(now time.Time, attempts int) time.Time {
	if attempts >= MaxAttempts {
		return time.Time{}
	}
	d := firstRetry
	for i := 1; i < attempts && d < maxRetry; i++ {
		d *= 2
	}
	return now.Add(min(d, maxRetry))
}

// Sender drains the outbox through an SMTP server, applying the rate limit
// and sending the digests it calls for. One Sender drains an outbox at a
// time.
type Sender struct {
	Outbox store.MailStore
	Config Config
	// Password is the content of Config.PasswordFile, read by the caller.
	Password string
	// Now is time.Now when nil.
	Now func() time.Time
	// Logger is slog.Default() when nil.
	Logger *slog.Logger
	// Timeout is DefaultTimeout when zero.
	Timeout time.Duration
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Sender) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Run drains the outbox about every interval, with jitter, until ctx is
// done, and returns ctx's cause.
func (s *Sender) Run(ctx context.Context, every time.Duration) error {
	for {
		if n, err := s.Drain(ctx); err != nil && ctx.Err() == nil {
			s.logger().Warn("mail: draining the outbox failed; will retry", "sent", n, "err", err)
		}
		t := time.NewTimer(every/2 + rand.N(every))
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// Drain builds the digests that are due, then sends the mails that are
// due, folding those over the rate limit into the next digest. It returns
// how many mails it sent. A failure to reach the server is recorded on
// each mail it meant to send, which is retried later (see RetryAt); the
// error returned is then nil. It returns an error only when the outbox
// itself fails.
func (s *Sender) Drain(ctx context.Context) (int, error) {
	if !s.Config.Enabled() {
		return 0, fmt.Errorf("%w: no smtp server", ErrConfig)
	}
	now := s.now()
	limit := Limit{MaxPerHour: s.Config.MaxPerHour}
	if err := s.digests(ctx, now, limit); err != nil {
		return 0, err
	}
	due, err := s.Outbox.DueMail(ctx, now, DefaultBatch)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	sentTo := map[string]int{}
	var send []store.Mail
	for _, m := range due {
		if _, ok := sentTo[m.To]; !ok {
			n, err := s.Outbox.MailSentSince(ctx, m.To, HourOf(now))
			if err != nil {
				return 0, err
			}
			sentTo[m.To] = n
		}
		d := limit.Decide(m.Kind, now, sentTo[m.To])
		if !d.Send {
			if err := s.Outbox.FoldMail(ctx, m.ID, d.DigestAt); err != nil {
				return 0, err
			}
			continue
		}
		if m.Kind != store.MailDigest {
			sentTo[m.To]++
		}
		send = append(send, m)
	}
	if len(send) == 0 {
		return 0, nil
	}
	return s.send(ctx, now, send)
}

// digests queues one digest per address for the folded mails whose
// digest is due.
func (s *Sender) digests(ctx context.Context, now time.Time, limit Limit) error {
	folded, err := s.Outbox.FoldedMail(ctx, now)
	if err != nil {
		return err
	}
	byTo := map[string][]store.Mail{}
	var order []string
	for _, m := range folded {
		if _, ok := byTo[m.To]; !ok {
			order = append(order, m.To)
		}
		byTo[m.To] = append(byTo[m.To], m)
	}
	for _, to := range order {
		ms := byTo[to]
		d, err := limit.Digest(to, ms, now, s.Config.BaseURL)
		if err != nil {
			return err
		}
		d.Key += ":" + strconv.FormatInt(ms[0].ID, 10)
		ids := make([]int64, len(ms))
		for i, m := range ms {
			ids[i] = m.ID
		}
		if _, _, err := s.Outbox.EnqueueMail(ctx, d, ids...); err != nil {
			return fmt.Errorf("notify: queue the digest for %s: %w", to, err)
		}
	}
	return nil
}

func (s *Sender) client() (*gomail.Client, error) {
	host, port, err := net.SplitHostPort(s.Config.SMTP)
	if err != nil {
		return nil, fmt.Errorf("%w: smtp %q: %w", ErrConfig, s.Config.SMTP, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("%w: smtp %q: %w", ErrConfig, s.Config.SMTP, err)
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	tls := gomail.NoTLS
	if s.Config.StartTLS {
		tls = gomail.TLSMandatory
	}
	opts := []gomail.Option{gomail.WithPort(p), gomail.WithTLSPolicy(tls), gomail.WithTimeout(timeout)}
	if s.Config.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.Config.Username), gomail.WithPassword(s.Password))
	}
	return gomail.NewClient(host, opts...)
}

// message turns an outbox mail into the message to send.
func (s *Sender) message(m store.Mail, now time.Time) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(s.Config.From); err != nil {
		return nil, fmt.Errorf("%w: from: %w", ErrConfig, err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, err
	}
	msg.Subject(m.Subject)
	msg.SetDateWithValue(now)
	msg.SetMessageID()
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader("X-Sparegrid-Kind", string(m.Kind))
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	return msg, nil
}

// send sends ms over one connection and records the outcome of each.
func (s *Sender) send(ctx context.Context, now time.Time, ms []store.Mail) (int, error) {
	fail := func(m store.Mail, cause error) error {
		retry := RetryAt(now, m.Attempts+1)
		if retry.IsZero() {
			s.logger().Error("mail: giving up", "to", m.To, "subject", m.Subject, "attempts", m.Attempts+1, "err", cause)
		}
		return s.Outbox.MarkMailFailed(ctx, m.ID, cause.Error(), retry)
	}
	c, err := s.client()
	if err != nil {
		return 0, err
	}
	if err := c.DialWithContext(ctx); err != nil {
		s.logger().Warn("mail: cannot reach the mail server; mail stays queued", "smtp", s.Config.SMTP, "queued", len(ms), "err", err)
		var errs []error
		for _, m := range ms {
			errs = append(errs, fail(m, err))
		}
		return 0, errors.Join(errs...)
	}
	defer c.Close()
	sent := 0
	for _, m := range ms {
		msg, err := s.message(m, now)
		if err == nil {
			err = c.Send(msg)
		}
		if err != nil {
			if ferr := fail(m, err); ferr != nil {
				return sent, ferr
			}
			if rerr := c.Reset(); rerr != nil {
				return sent, nil
			}
			continue
		}
		if err := s.Outbox.MarkMailSent(ctx, m.ID, now); err != nil {
			return sent, err
		}
		sent++
	}
	return sent, nil
}
