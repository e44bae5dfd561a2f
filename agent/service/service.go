// Package service owns installing and controlling the agent as a system
// service: the service configuration handed to github.com/kardianos/service,
// the unit text it installs (installer/systemd's shipped unit), and the
// install, uninstall, start, stop, restart and status actions.
//
// It must not run jobs or hold the agent's run loop, and it never decides
// on privileges: the caller checks that it runs as root.
package service

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	kservice "github.com/kardianos/service"

	"github.com/sparegrid/sparegrid/installer/systemd"
)

const (
	// Name is the service's name, and its unit's name without ".service".
	Name = "sparegrid-agent"
	// User is the system user the service runs as.
	User = "sparegrid"
	// DefaultExecutable is where packages install the agent.
	DefaultExecutable = "/usr/bin/sparegrid-agent"
	// DefaultStateDir is the state directory the shipped unit passes.
	DefaultStateDir = "/var/lib/sparegrid-agent"
	// DefaultDrainGrace is how long a stopping agent lets a running job
	// finish before it cancels it. The shipped unit's TimeoutStopSec is
	// longer, so that the cancelled job is still reported.
	DefaultDrainGrace = 10 * time.Minute
)

var (
	// ErrAction reports an action other than install, uninstall, start,
	// stop, restart or status.
	ErrAction = errors.New("service: unknown action")
	// ErrPath reports an executable or state directory that is not a
	// clean absolute path of plain characters.
	ErrPath = errors.New("service: path must be clean, absolute and use only A-Z a-z 0-9 / . _ + -")
	// ErrUnit reports that the shipped unit has no single ExecStart line.
	ErrUnit = errors.New("service: shipped unit has no single ExecStart line")
)

// Options chooses what the installed service runs; the zero value means
// the shipped unit unchanged.
type Options struct {
	Executable string // default DefaultExecutable
	StateDir   string // default DefaultStateDir
}

func (o Options) withDefaults() Options {
	if o.Executable == "" {
		o.Executable = DefaultExecutable
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	return o
}

// Actions returns the actions Control accepts.
func Actions() []string {
	return []string{"install", "uninstall", "start", "stop", "restart"}
}

var plainPath = regexp.MustCompile(`^/[A-Za-z0-9/._+-]*$`)

func checkPath(p string) error {
	if !plainPath.MatchString(p) || filepath.Clean(p) != p {
		return fmt.Errorf("%w: %q", ErrPath, p)
	}
	return nil
}

// Config returns the service configuration for o. Its SystemdScript
// option is Unit's text, which the systemd backend renders unchanged
// because it holds no template actions.
func Config(o Options) (*kservice.Config, error) {
	o = o.withDefaults()
	args := []string{"run", "--state", o.StateDir}
	unit, err := Unit(o.Executable, args)
	if err != nil {
		return nil, err
	}
	return &kservice.Config{
		Name:        Name,
		DisplayName: "sparegrid agent",
		Description: "Runs Debian package tests leased from a sparegrid coordinator",
		UserName:    User,
		Executable:  o.Executable,
		Arguments:   args,
		Option:      kservice.KeyValue{"SystemdScript": unit},
	}, nil
}

// Unit returns the shipped systemd unit with its ExecStart line running
// executable with args; for DefaultExecutable run --state DefaultStateDir
// it is the shipped text exactly.
func Unit(executable string, args []string) (string, error) {
	if err := checkPath(executable); err != nil {
		return "", err
	}
	for _, a := range args {
		if a != "--state" && a != "run" {
			if err := checkPath(a); err != nil {
				return "", err
			}
		}
	}
	lines := strings.SplitAfter(systemd.Unit(), "\n")
	found := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "ExecStart=") {
			if found >= 0 {
				return "", ErrUnit
			}
			found = i
		}
	}
	if found < 0 {
		return "", ErrUnit
	}
	lines[found] = "ExecStart=" + strings.Join(append([]string{executable}, args...), " ") + "\n"
	return strings.Join(lines, ""), nil
}

// ExecStart returns the command line of unit's ExecStart line.
func ExecStart(unit string) ([]string, bool) {
	for l := range strings.SplitSeq(unit, "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			return strings.Fields(v), true
		}
	}
	return nil, false
}

// controlOnly is the kservice.Interface of a service that this process
// controls but does not run.
type controlOnly struct{}

func (controlOnly) Start(kservice.Service) error { return nil }
func (controlOnly) Stop(kservice.Service) error  { return nil }

// New returns the service for c on the system's service manager.
func New(c *kservice.Config) (kservice.Service, error) {
	return kservice.New(controlOnly{}, c)
}

// Control performs action (one of Actions) on s.
func Control(s kservice.Service, action string) error {
	var err error
	switch action {
	case "install":
		err = s.Install()
	case "uninstall":
		err = s.Uninstall()
	case "start":
		err = s.Start()
	case "stop":
		err = s.Stop()
	case "restart":
		err = s.Restart()
	default:
		return fmt.Errorf("%w: %q (want one of %s)", ErrAction, action, strings.Join(Actions(), ", "))
	}
	if err != nil {
		return fmt.Errorf("service %s: %w", action, err)
	}
	return nil
}

// Status reports s's state in words: running, stopped or not installed.
func Status(s kservice.Service) (string, error) {
	st, err := s.Status()
	switch {
	case errors.Is(err, kservice.ErrNotInstalled):
		return "not installed", nil
	case err != nil:
		return "unknown", fmt.Errorf("service status: %w", err)
	}
	switch st {
	case kservice.StatusRunning:
		return "running", nil
	case kservice.StatusStopped:
		return "stopped", nil
	default:
		return "unknown", nil
	}
}
