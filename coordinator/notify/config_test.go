package notify

import (
	"errors"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{SMTP: "mail.example.org:587", From: "grid@example.org", BaseURL: "https://grid.example.org/", StartTLS: true, Username: "grid", PasswordFile: "/etc/sparegrid/smtp-password", MaxPerHour: 20}
	change := func(f func(*Config)) Config {
		c := ok
		f(&c)
		return c
	}
	tests := []struct {
		name  string
		in    Config
		valid bool
	}{
		{"off", Config{}, true},
		{"full", ok, true},
		{"plain relay", Config{SMTP: "127.0.0.1:25", From: "grid@example.org"}, true},
		{"from only", Config{From: "grid@example.org"}, false},
		{"no port", change(func(c *Config) { c.SMTP = "mail.example.org" }), false},
		{"port zero", change(func(c *Config) { c.SMTP = "mail.example.org:0" }), false},
		{"port too big", change(func(c *Config) { c.SMTP = "mail.example.org:70000" }), false},
		{"no host", change(func(c *Config) { c.SMTP = ":25" }), false},
		{"from with a name", change(func(c *Config) { c.From = "Grid <grid@example.org>" }), false},
		{"no from", change(func(c *Config) { c.From = "" }), false},
		{"base URL without scheme", change(func(c *Config) { c.BaseURL = "grid.example.org" }), false},
		{"base URL ftp", change(func(c *Config) { c.BaseURL = "ftp://grid.example.org" }), false},
		{"base URL with query", change(func(c *Config) { c.BaseURL = "https://grid.example.org/?a=b" }), false},
		{"no base URL", change(func(c *Config) { c.BaseURL = "" }), true},
		{"username without password file", change(func(c *Config) { c.PasswordFile = "" }), false},
		{"password file without username", change(func(c *Config) { c.Username = "" }), false},
		{"relative password file", change(func(c *Config) { c.PasswordFile = "pw" }), false},
		{"auth without starttls", change(func(c *Config) { c.StartTLS = false }), false},
		{"negative limit", change(func(c *Config) { c.MaxPerHour = -1 }), false},
		{"limit too high", change(func(c *Config) { c.MaxPerHour = MaxPerHourLimit + 1 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.valid != (err == nil) || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Errorf("Validate() = %v, want valid %v", err, tt.valid)
			}
		})
	}
}
