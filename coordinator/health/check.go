// Package health owns the admins' health checks: it runs each configured
// check (a command or an HTTP probe) every interval, and when one starts
// failing it records a downtime interval and puts the check's scope on
// hold; when the check passes again it ends the interval and lifts the
// hold. It also ends, with verdict error, queued jobs whose scope has been
// on hold longer than the configured limit.
//
// It must not decide which jobs an agent may lease (the gateway applies
// holds), and must not serve humans (package api reports holds and
// downtime). Decisions are pure functions (decide, overdue); only Runner
// and the probes do I/O.
package health

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// ErrCheck wraps every problem with a check's configuration.
var ErrCheck = errors.New("health: check")

// Defaults and bounds of a check's timing.
const (
	DefaultInterval = time.Minute
	MinInterval     = 10 * time.Second
	MaxInterval     = 24 * time.Hour
	DefaultTimeout  = 10 * time.Second
	// DefaultMaxHold is how long a scope may be held before its queued
	// jobs are ended with verdict error.
	DefaultMaxHold = 24 * time.Hour
)

// Check is one [[check]] table of the coordinator's configuration.
type Check struct {
	// Name identifies the check in holds and downtime reports.
	Name string `toml:"name"`
	// Command is an absolute program path and its arguments; exit status
	// 0 means up.
	Command []string `toml:"command"`
	// HTTP is a URL to GET; a 2xx status means up.
	HTTP string `toml:"http"`
	// Interval is how often the check runs (default 1m, at least 10s).
	Interval time.Duration `toml:"interval"`
	// Timeout bounds one run (default 10s, at most Interval).
	Timeout time.Duration `toml:"timeout"`
	// Scope is what a failure holds: "grid" (the default), "release:R",
	// "arch:A" or "label:L".
	Scope string `toml:"scope"`
}

// WithDefaults returns c with its zero interval, timeout and scope set to
// their defaults.
func (c Check) WithDefaults() Check {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Scope == "" {
		c.Scope = string(store.ScopeGrid)
	}
	return c
}

// Validate reports every problem with c, defaults applied.
func (c Check) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if !validName(c.Name) {
		errs = append(errs, fmt.Errorf("name %q: use 1 to 64 characters from a-z, 0-9 and \"._-\", starting with a letter or digit", c.Name))
	}
	switch {
	case len(c.Command) > 0 && c.HTTP != "":
		errs = append(errs, errors.New("set command or http, not both"))
	case len(c.Command) == 0 && c.HTTP == "":
		errs = append(errs, errors.New(`set command = ["/abs/program", "arg", ...] or http = "http://host/path"`))
	case len(c.Command) > 0 && !filepath.IsAbs(c.Command[0]):
		errs = append(errs, fmt.Errorf("command program %q must be an absolute path", c.Command[0]))
	case c.HTTP != "":
		if u, err := url.Parse(c.HTTP); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("http %q is not an http:// or https:// URL with a host", c.HTTP))
		}
	}
	if c.Interval < MinInterval || c.Interval > MaxInterval {
		errs = append(errs, fmt.Errorf("interval %v is not between %v and %v", c.Interval, MinInterval, MaxInterval))
	}
	if c.Timeout <= 0 || c.Timeout > c.Interval {
		errs = append(errs, fmt.Errorf("timeout %v is not positive and at most the interval (%v)", c.Timeout, c.Interval))
	}
	if _, err := store.ParseScope(c.Scope); err != nil {
		var ie *store.InvalidError
		if errors.As(err, &ie) {
			err = errors.New(ie.Reason)
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w %q: %w", ErrCheck, c.Name, errors.Join(errs...))
	}
	return nil
}

// CheckAll validates every check and that no two share a name.
func CheckAll(checks []Check) error {
	var errs []error
	seen := map[string]bool{}
	for i, c := range checks {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("check %d: %w", i+1, err))
		}
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("check %d: %w: the name %q is used twice", i+1, ErrCheck, c.Name))
		}
		seen[c.Name] = true
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return false
		}
	}
	return true
}
