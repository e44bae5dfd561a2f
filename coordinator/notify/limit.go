package notify

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// DefaultMaxPerHour is how many mails one address gets in a clock hour
// when the configuration sets no limit.
const DefaultMaxPerHour = 10

// Limit caps the mail one address gets per clock hour (UTC). What exceeds
// the cap is folded into one digest, sent when the hour ends.
type Limit struct {
	// MaxPerHour is DefaultMaxPerHour when not positive.
	MaxPerHour int
}

// Decision is what to do with one due mail.
type Decision struct {
	// Send is true when the mail goes out now.
	Send bool
	// DigestAt, when Send is false, is when the digest that carries it
	// is due.
	DigestAt time.Time
}

func (l Limit) max() int {
	if l.MaxPerHour <= 0 {
		return DefaultMaxPerHour
	}
	return l.MaxPerHour
}

// HourOf returns the start of the clock hour holding t, in UTC.
func HourOf(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// Decide says what to do at now with a due mail of kind k to an address
// that has been sent sentThisHour mails since HourOf(now). Digests always
// go out: they are the limit's own output.
func (l Limit) Decide(k store.MailKind, now time.Time, sentThisHour int) Decision {
	if k == store.MailDigest || sentThisHour < l.max() {
		return Decision{Send: true}
	}
	return Decision{DigestAt: HourOf(now).Add(time.Hour)}
}

// maxDigestBody leaves room in a digest for its header and footer.
const maxDigestBody = store.MaxMailBody - 8<<10

// Digest builds the digest that carries the folded mails to one
// address, due at at: a list of their subjects, then each mail in full
// for as long as the digest stays under store.MaxMailBody.
func (l Limit) Digest(to string, folded []store.Mail, at time.Time, baseURL string) (store.Mail, error) {
	m := Message{
		Kind: Digest, At: at,
		Summary: fmt.Sprintf("%d mails to you were held back: this grid sends at most %d mails an hour to one address. Here they are in one.",
			len(folded), l.max()),
	}
	for _, f := range folded {
		m.Held = append(m.Held, f.Subject)
	}
	head, err := Render(m, baseURL)
	if err != nil {
		return store.Mail{}, err
	}
	var b strings.Builder
	b.WriteString(head)
	for i, f := range folded {
		part := fmt.Sprintf("\n==== %d of %d: %s\n\n%s", i+1, len(folded), f.Subject, f.Body)
		if b.Len()+len(part) > maxDigestBody {
			fmt.Fprintf(&b, "\n==== %d more not shown: the digest is full.\n", len(folded)-i)
			break
		}
		b.WriteString(part)
	}
	return store.Mail{
		To: to, Subject: m.Subject(), Body: b.String(), Kind: store.MailDigest, CreatedAt: at,
		Key: "digest:" + to + ":" + strconv.FormatInt(at.Unix(), 10),
	}, nil
}
