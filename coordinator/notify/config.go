package notify

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"path/filepath"
	"strconv"
)

// MaxPerHourLimit is the highest max_per_hour a configuration may set.
const MaxPerHourLimit = 1000

// Config is the coordinator's [mail] table. Mail is off while SMTP is
// empty.
type Config struct {
	// SMTP is the mail server's host:port.
	SMTP string `toml:"smtp"`
	// From is the sender's plain address.
	From string `toml:"from"`
	// BaseURL is where the dashboard is served, for the links in mail.
	BaseURL string `toml:"base_url"`
	// StartTLS requires STARTTLS before anything is sent.
	StartTLS bool `toml:"starttls"`
	// Username and PasswordFile, set together, authenticate to the
	// server; the file holds the password.
	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"`
	// MaxPerHour caps the mails to one address per clock hour
	// (DefaultMaxPerHour when 0).
	MaxPerHour int `toml:"max_per_hour"`
}

// Enabled reports whether mail is configured.
func (c Config) Enabled() bool { return c.SMTP != "" }

// Validate reports every problem with c, wrapping ErrConfig. A Config
// with nothing set is valid and turns mail off.
func (c Config) Validate() error {
	if c == (Config{}) {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if host, port, err := net.SplitHostPort(c.SMTP); err != nil || host == "" {
		bad("smtp %q is not host:port", c.SMTP)
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		bad("smtp %q: port is not 1 to 65535", c.SMTP)
	}
	if a, err := mail.ParseAddress(c.From); err != nil || a.Address != c.From {
		bad("from %q is not a plain mail address", c.From)
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("base_url %q is not an http or https URL without query or fragment", c.BaseURL)
		}
	}
	switch {
	case (c.Username == "") != (c.PasswordFile == ""):
		bad("username and password_file go together")
	case c.PasswordFile != "" && !filepath.IsAbs(c.PasswordFile):
		bad("password_file %q must be an absolute path", c.PasswordFile)
	case c.Username != "" && !c.StartTLS:
		bad("username needs starttls = true: the password must not cross the network in clear")
	}
	if c.MaxPerHour < 0 || c.MaxPerHour > MaxPerHourLimit {
		bad("max_per_hour %d is not between 0 and %d", c.MaxPerHour, MaxPerHourLimit)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}
