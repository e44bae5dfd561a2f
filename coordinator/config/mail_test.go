package config

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/notify"
)

func TestParseMail(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		want  notify.Config
		valid bool
	}{
		{name: "no mail", valid: true},
		{name: "full", valid: true, doc: `[mail]
smtp = "mail.example.org:587"
from = "grid@example.org"
base_url = "https://grid.example.org/"
starttls = true
username = "grid"
password_file = "/etc/sparegrid/smtp-password"
max_per_hour = 20
`, want: notify.Config{SMTP: "mail.example.org:587", From: "grid@example.org", BaseURL: "https://grid.example.org/", StartTLS: true, Username: "grid", PasswordFile: "/etc/sparegrid/smtp-password", MaxPerHour: 20}},
		{name: "unknown key", doc: "[mail]\nsmtp = \"localhost:25\"\nfrom = \"grid@example.org\"\nto = \"x@example.org\"\n"},
		{name: "no from", doc: "[mail]\nsmtp = \"localhost:25\"\n"},
		{name: "password in clear", doc: "[mail]\nsmtp = \"mail.example.org:25\"\nfrom = \"grid@example.org\"\nusername = \"u\"\npassword_file = \"/p\"\n"},
		{name: "wrong type", doc: "[mail]\nmax_per_hour = \"ten\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc))
			if tt.valid != (err == nil) || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Fatalf("Parse = %v, want valid %v", err, tt.valid)
			}
			if d := cmp.Diff(tt.want, c.Mail); err == nil && d != "" {
				t.Errorf("Parse mail mismatch (-want +got):\n%s", d)
			}
		})
	}
}
