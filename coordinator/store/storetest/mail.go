package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// testMailOutbox checks queueing with deduplication, validation, what is
// due, sending, failing with and without a retry, and counting what was
// sent.
func testMailOutbox(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	ctx := t.Context()
	newMail := func(key string, change func(*store.Mail)) store.Mail {
		m := store.Mail{To: "dev@example.org", Subject: "REGRESSION: hello", Body: "body\n", Kind: store.MailVerdict, Key: key, CreatedAt: t0()}
		if change != nil {
			change(&m)
		}
		return m
	}

	refused := []struct {
		name string
		in   store.Mail
	}{
		{"unknown kind", newMail("k", func(m *store.Mail) { m.Kind = "spam" })},
		{"no key", newMail("", nil)},
		{"key too long", newMail(strings.Repeat("k", store.MaxMailKey+1), nil)},
		{"no subject", newMail("k", func(m *store.Mail) { m.Subject = "" })},
		{"subject with a newline", newMail("k", func(m *store.Mail) { m.Subject = "a\nBcc: x@example.org" })},
		{"body too long", newMail("k", func(m *store.Mail) { m.Body = strings.Repeat("x", store.MaxMailBody+1) })},
		{"address with a name", newMail("k", func(m *store.Mail) { m.To = "Dev <dev@example.org>" })},
		{"not an address", newMail("k", func(m *store.Mail) { m.To = "dev" })},
		{"with an id", newMail("k", func(m *store.Mail) { m.ID = 7 })},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.EnqueueMail(ctx, tt.in)
			checkErr(t, "EnqueueMail", err, store.ErrInvalid)
		})
	}

	first, queued, err := s.EnqueueMail(ctx, newMail("a", nil))
	if err != nil || !queued || first.ID <= 0 {
		t.Fatalf("EnqueueMail(a) = %+v, %v, %v; want a new mail", first, queued, err)
	}
	diff(t, "EnqueueMail(a)", first, newMail("a", func(m *store.Mail) { m.ID, m.NextAttempt = first.ID, ptr(t0()) }))
	again, queued, err := s.EnqueueMail(ctx, newMail("a", func(m *store.Mail) { m.Subject = "other" }))
	if err != nil || queued {
		t.Errorf("EnqueueMail(a again) = %v, %v; want the existing mail", queued, err)
	}
	diff(t, "EnqueueMail(a again)", again, first)
	later, _, err := s.EnqueueMail(ctx, newMail("b", func(m *store.Mail) { m.NextAttempt = ptr(at(time.Hour)) }))
	if err != nil {
		t.Fatalf("EnqueueMail(b) = %v", err)
	}
	infra, _, err := s.EnqueueMail(ctx, newMail("c", func(m *store.Mail) { m.Kind, m.To = store.MailInfra, "admin@example.org" }))
	if err != nil {
		t.Fatalf("EnqueueMail(c) = %v", err)
	}

	ids := func(ms []store.Mail) []int64 {
		var out []int64
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	due := func(now time.Time, limit int, want ...int64) {
		t.Helper()
		got, err := s.DueMail(ctx, now, limit)
		if err != nil {
			t.Fatalf("DueMail(%v, %d) = %v", now, limit, err)
		}
		diff(t, "DueMail", ids(got), want)
	}
	due(t0(), 10, first.ID, infra.ID)
	due(t0(), 1, first.ID)
	due(at(2*time.Hour), 10, first.ID, infra.ID, later.ID)

	if err := s.MarkMailFailed(ctx, first.ID, "connection refused", at(5*time.Minute)); err != nil {
		t.Fatalf("MarkMailFailed = %v", err)
	}
	due(at(time.Minute), 10, infra.ID)
	due(at(5*time.Minute), 10, infra.ID, first.ID)
	if err := s.MarkMailSent(ctx, first.ID, at(6*time.Minute)); err != nil {
		t.Fatalf("MarkMailSent = %v", err)
	}
	if err := s.MarkMailFailed(ctx, infra.ID, strings.Repeat("e", 5000), time.Time{}); err != nil {
		t.Fatalf("MarkMailFailed(give up) = %v", err)
	}
	due(at(2*time.Hour), 10, later.ID)

	got, _, err := s.EnqueueMail(ctx, newMail("a", nil))
	if err != nil {
		t.Fatalf("EnqueueMail(a) = %v", err)
	}
	diff(t, "sent mail", got, newMail("a", func(m *store.Mail) {
		m.ID, m.Attempts, m.LastError, m.SentAt = first.ID, 1, "connection refused", ptr(at(6*time.Minute))
	}))
	got, _, err = s.EnqueueMail(ctx, newMail("c", nil))
	if err != nil || got.NextAttempt != nil || got.Attempts != 1 || len(got.LastError) != store.MaxMailError {
		t.Errorf("given-up mail = next %v, attempts %d, error of %d bytes, %v; want nil, 1, %d bytes", got.NextAttempt, got.Attempts, len(got.LastError), err, store.MaxMailError)
	}

	for _, tt := range []struct {
		name string
		call func() error
		want error
	}{
		{"sent twice", func() error { return s.MarkMailSent(ctx, first.ID, at(7*time.Minute)) }, store.ErrConflict},
		{"fail after sent", func() error { return s.MarkMailFailed(ctx, first.ID, "x", at(time.Hour)) }, store.ErrConflict},
		{"fold after sent", func() error { return s.FoldMail(ctx, first.ID, at(time.Hour)) }, store.ErrConflict},
		{"unknown sent", func() error { return s.MarkMailSent(ctx, 9999, t0()) }, store.ErrNotFound},
		{"unknown failed", func() error { return s.MarkMailFailed(ctx, 9999, "x", t0()) }, store.ErrNotFound},
		{"unknown folded", func() error { return s.FoldMail(ctx, 9999, t0()) }, store.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) { checkErr(t, tt.name, tt.call(), tt.want) })
	}

	for _, tt := range []struct {
		to    string
		since time.Time
		want  int
	}{
		{"dev@example.org", t0(), 1},
		{"dev@example.org", at(6 * time.Minute), 1},
		{"dev@example.org", at(7 * time.Minute), 0},
		{"admin@example.org", t0(), 0},
		{"other@example.org", t0(), 0},
	} {
		n, err := s.MailSentSince(ctx, tt.to, tt.since)
		if err != nil || n != tt.want {
			t.Errorf("MailSentSince(%s, %v) = %d, %v; want %d", tt.to, tt.since, n, err, tt.want)
		}
	}
}

// testMailDigest checks folding mails, listing them when their digest is
// due, and a digest carrying them.
func testMailDigest(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	ctx := t.Context()
	enqueue := func(key string, kind store.MailKind) store.Mail {
		t.Helper()
		m, _, err := s.EnqueueMail(ctx, store.Mail{To: "dev@example.org", Subject: "s " + key, Body: "b", Kind: kind, Key: key, CreatedAt: t0()})
		if err != nil {
			t.Fatalf("EnqueueMail(%s) = %v", key, err)
		}
		return m
	}
	a, b, c := enqueue("a", store.MailVerdict), enqueue("b", store.MailVerdict), enqueue("c", store.MailInfra)
	hour := at(time.Hour)
	for _, m := range []store.Mail{a, b} {
		if err := s.FoldMail(ctx, m.ID, hour); err != nil {
			t.Fatalf("FoldMail(%d) = %v", m.ID, err)
		}
	}
	if err := s.FoldMail(ctx, c.ID, at(2*time.Hour)); err != nil {
		t.Fatalf("FoldMail(%d) = %v", c.ID, err)
	}
	checkErr(t, "FoldMail(again)", s.FoldMail(ctx, a.ID, hour), store.ErrConflict)
	if got, err := s.DueMail(ctx, at(3*time.Hour), 10); err != nil || len(got) != 0 {
		t.Errorf("DueMail = %d mails, %v; want none: folded mail is not due", len(got), err)
	}

	folded := func(now time.Time, want ...int64) []store.Mail {
		t.Helper()
		got, err := s.FoldedMail(ctx, now)
		if err != nil {
			t.Fatalf("FoldedMail(%v) = %v", now, err)
		}
		var ids []int64
		for _, m := range got {
			ids = append(ids, m.ID)
			if m.DigestAt == nil || m.NextAttempt != nil {
				t.Errorf("FoldedMail: mail %d has digest at %v, next attempt %v; want a time and nil", m.ID, m.DigestAt, m.NextAttempt)
			}
		}
		diff(t, "FoldedMail", ids, want)
		return got
	}
	folded(at(59 * time.Minute))
	folded(hour, a.ID, b.ID)

	digest := store.Mail{To: "dev@example.org", Subject: "digest", Body: "two mails", Kind: store.MailDigest, Key: "digest:1", CreatedAt: hour}
	_, _, err := s.EnqueueMail(ctx, store.Mail{To: "dev@example.org", Subject: "x", Kind: store.MailVerdict, Key: "x"}, a.ID)
	checkErr(t, "EnqueueMail(verdict covering)", err, store.ErrConflict)
	_, _, err = s.EnqueueMail(ctx, digest, a.ID, enqueue("d", store.MailVerdict).ID)
	checkErr(t, "EnqueueMail(digest covering a queued mail)", err, store.ErrConflict)
	folded(hour, a.ID, b.ID)

	d, queued, err := s.EnqueueMail(ctx, digest, a.ID, b.ID)
	if err != nil || !queued {
		t.Fatalf("EnqueueMail(digest) = %v, %v", queued, err)
	}
	folded(at(3*time.Hour), c.ID)
	_, _, err = s.EnqueueMail(ctx, store.Mail{To: "dev@example.org", Subject: "digest", Kind: store.MailDigest, Key: "digest:2"}, a.ID)
	checkErr(t, "EnqueueMail(digest covering a carried mail)", err, store.ErrConflict)

	if err := s.MarkMailSent(ctx, d.ID, hour); err != nil {
		t.Fatalf("MarkMailSent(digest) = %v", err)
	}
	if n, err := s.MailSentSince(ctx, "dev@example.org", t0()); err != nil || n != 0 {
		t.Errorf("MailSentSince = %d, %v; want 0: digests do not count", n, err)
	}
}
