package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

func TestLimitDecide(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 42, 0, 0, time.UTC)
	next := time.Date(2025, 3, 4, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		max  int
		kind store.MailKind
		sent int
		want Decision
	}{
		{"first mail", 0, store.MailVerdict, 0, Decision{Send: true}},
		{"last under the default", 0, store.MailVerdict, DefaultMaxPerHour - 1, Decision{Send: true}},
		{"over the default", 0, store.MailVerdict, DefaultMaxPerHour, Decision{DigestAt: next}},
		{"infra over the limit", 3, store.MailInfra, 3, Decision{DigestAt: next}},
		{"configured limit", 3, store.MailVerdict, 2, Decision{Send: true}},
		{"digest always goes", 1, store.MailDigest, 50, Decision{Send: true}},
		{"negative limit means default", -1, store.MailVerdict, 5, Decision{Send: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Limit{MaxPerHour: tt.max}.Decide(tt.kind, now, tt.sent)
			if got != tt.want {
				t.Errorf("Limit{%d}.Decide(%s, %v, %d) = %+v, want %+v", tt.max, tt.kind, now, tt.sent, got, tt.want)
			}
		})
	}
}

func TestHourOf(t *testing.T) {
	tests := []struct {
		in, want time.Time
	}{
		{time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC), time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)},
		{time.Date(2025, 3, 4, 5, 59, 59, 999, time.UTC), time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)},
		{time.Date(2025, 3, 4, 7, 30, 0, 0, time.FixedZone("x", 90*60)), time.Date(2025, 3, 4, 6, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		if got := HourOf(tt.in); !got.Equal(tt.want) {
			t.Errorf("HourOf(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestRetryAt(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)
	tests := []struct {
		attempts int
		want     time.Duration // 0: never
	}{
		{1, time.Minute},
		{2, 2 * time.Minute},
		{3, 4 * time.Minute},
		{9, 256 * time.Minute},
		{10, 6 * time.Hour},
		{MaxAttempts - 1, 6 * time.Hour},
		{MaxAttempts, 0},
	}
	for _, tt := range tests {
		got := RetryAt(now, tt.attempts)
		if (tt.want == 0 && !got.IsZero()) || (tt.want != 0 && got.Sub(now) != tt.want) {
			t.Errorf("RetryAt(now, %d) = now+%v, want now+%v", tt.attempts, got.Sub(now), tt.want)
		}
	}
}

func TestDigest(t *testing.T) {
	at := time.Date(2025, 3, 4, 6, 0, 0, 0, time.UTC)
	folded := []store.Mail{
		{ID: 3, Subject: "[sparegrid] REGRESSION: a 1 on unstable/amd64", Body: "body of a\n"},
		{ID: 4, Subject: "[sparegrid] fixed: b 1 on unstable/amd64 passes again", Body: "body of b\n"},
	}
	d, err := Limit{MaxPerHour: 2}.Digest("dev@example.org", folded, at, "")
	if err != nil {
		t.Fatalf("Digest = %v", err)
	}
	if err := store.ValidateNewMail(d); err != nil {
		t.Errorf("ValidateNewMail(digest) = %v, want nil", err)
	}
	for _, want := range []string{"2 mails to you were held back", "at most 2 mails", folded[0].Subject, "==== 2 of 2: " + folded[1].Subject, "body of b"} {
		if !strings.Contains(d.Body, want) {
			t.Errorf("Digest body lacks %q:\n%s", want, d.Body)
		}
	}
	if d.Kind != store.MailDigest || d.To != "dev@example.org" || d.Subject != "[sparegrid] 2 held-back mails" {
		t.Errorf("Digest = kind %q, to %q, subject %q", d.Kind, d.To, d.Subject)
	}

	big := strings.Repeat("x", 100<<10)
	many := []store.Mail{{Subject: "s1", Body: big}, {Subject: "s2", Body: big}, {Subject: "s3", Body: big}, {Subject: "s4", Body: big}}
	d, err = Limit{}.Digest("dev@example.org", many, at, "")
	if err != nil {
		t.Fatalf("Digest(big) = %v", err)
	}
	if len(d.Body) > store.MaxMailBody || !strings.Contains(d.Body, "2 more not shown") || !strings.Contains(d.Body, "s4") {
		t.Errorf("Digest(big) = %d bytes, want at most %d, listing s4 and saying 2 more not shown", len(d.Body), store.MaxMailBody)
	}
}
