// Package config owns the coordinator's configuration file: one TOML
// document, decoded strictly (a key sparegrid does not know is an error,
// not a silent typo), and checked as a whole before the coordinator starts:
// archives to watch, event rules, the schedule, health checks and holds,
// each validated by the package that uses it.
//
// It must not start anything: it only reads and checks. Command-line flags
// stay the way to set listening addresses and the data directory.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/sparegrid/sparegrid/coordinator/archive"
	"github.com/sparegrid/sparegrid/coordinator/health"
	"github.com/sparegrid/sparegrid/coordinator/intake"
	"github.com/sparegrid/sparegrid/coordinator/notify"
	"github.com/sparegrid/sparegrid/coordinator/rules"
)

// ErrConfig wraps every problem with a configuration file.
var ErrConfig = errors.New("config")

// maxFile caps the size of a configuration file.
const maxFile = 1 << 20

// Config is the coordinator's configuration file.
type Config struct {
	// Archives are the archives whose new uploads the coordinator
	// watches ([[archive]] tables).
	Archives []archive.Config `toml:"archive"`
	// Rules expand events from build systems into test requests
	// ([[rule]] tables).
	Rules []rules.Rule `toml:"rule"`
	// Schedule configures the selection policy and result reuse
	// ([schedule]).
	Schedule Schedule `toml:"schedule"`
	// Checks are the admins' health checks ([[check]] tables).
	Checks []health.Check `toml:"check"`
	// Hold configures what happens to jobs on hold ([hold]).
	Hold Hold `toml:"hold"`
	// Mail configures the outbox's SMTP server ([mail]); see notify.Config.
	Mail notify.Config `toml:"mail"`
}

// Hold is the [hold] table.
type Hold struct {
	// MaxHold is how long a queued job may wait in a held scope before
	// it is ended with verdict error (default 24h, at least 1h).
	MaxHold time.Duration `toml:"max_hold"`
}

// check reports every problem with h.
func (h Hold) check() []error {
	if h.MaxHold != 0 && h.MaxHold < time.Hour {
		return []error{fmt.Errorf("hold: max_hold %v is less than 1h", h.MaxHold)}
	}
	return nil
}

// Schedule is the [schedule] table.
type Schedule struct {
	// Policy, when set, is an external policy program and its arguments
	// (see sched.Exec); empty means the built-in policy.
	Policy []string `toml:"policy"`
	// PolicyTimeout bounds one run of the program (default 30s).
	PolicyTimeout time.Duration `toml:"policy_timeout"`
	// FanoutLimit is how many reverse-dependency tests one upload may
	// trigger before they go to the fanout lane (default 50).
	FanoutLimit int `toml:"fanout_limit"`
	// Sweep turns the round-robin sweep off when false (default on).
	Sweep *bool `toml:"sweep"`
	// SweepEvery is how often the sweep runs (default 10m, at least 1m).
	SweepEvery time.Duration `toml:"sweep_every"`
	// HarnessRevision pins the harness revision an earlier result must
	// have to be reused, written like "autopkgtest=5.28;backend=overlay"
	// (some or all of agent, autopkgtest, backend, image). Empty means
	// the harness of the newest result on the release and arch. The
	// environment variable SPAREGRID_HARNESS_REV overrides it.
	HarnessRevision string `toml:"harness_revision"`
}

// SweepOn reports whether the sweep runs.
func (s Schedule) SweepOn() bool { return s.Sweep == nil || *s.Sweep }

// check reports every problem with s.
func (s Schedule) check() []error {
	var errs []error
	if len(s.Policy) > 0 && !filepath.IsAbs(s.Policy[0]) {
		errs = append(errs, fmt.Errorf("schedule: policy program %q must be an absolute path", s.Policy[0]))
	}
	if s.PolicyTimeout < 0 || s.PolicyTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("schedule: policy_timeout %v is not between 0 and 10m", s.PolicyTimeout))
	}
	if s.FanoutLimit < 0 {
		errs = append(errs, fmt.Errorf("schedule: fanout_limit %d is negative", s.FanoutLimit))
	}
	if s.SweepEvery != 0 && s.SweepEvery < time.Minute {
		errs = append(errs, fmt.Errorf("schedule: sweep_every %v is less than 1m", s.SweepEvery))
	}
	if _, err := intake.ParsePin(s.HarnessRevision); err != nil {
		errs = append(errs, fmt.Errorf("schedule: harness_revision: %w", err))
	}
	return errs
}

// Load reads and checks the configuration file at path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and checks a configuration document.
func Parse(data []byte) (Config, error) {
	if len(data) > maxFile {
		return Config{}, fmt.Errorf("%w: file is larger than %d bytes", ErrConfig, maxFile)
	}
	var c Config
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("%w: unknown keys: %s", ErrConfig, strings.Join(keys, ", "))
	}
	return c, c.Check()
}

// Check validates every part of c, reporting all problems at once.
func (c Config) Check() error {
	var errs []error
	names := map[string]bool{}
	for i, a := range c.Archives {
		if err := a.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("archive %d (%q): %w", i+1, a.Name, err))
		}
		if names[a.Name] {
			errs = append(errs, fmt.Errorf("archive %d: the name %q is used twice", i+1, a.Name))
		}
		names[a.Name] = true
	}
	if err := rules.Check(c.Rules); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Schedule.check()...)
	if err := health.CheckAll(c.Checks); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Hold.check()...)
	if err := c.Mail.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("mail: %w", err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}
