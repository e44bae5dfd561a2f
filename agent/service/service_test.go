package service

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	kservice "github.com/kardianos/service"

	"github.com/sparegrid/sparegrid/installer/systemd"
)

// fakeSystem is a kservice.System whose services record what is done
// to them.
type fakeSystem struct{ services []*fakeService }

func (*fakeSystem) String() string    { return "fake" }
func (*fakeSystem) Detect() bool      { return true }
func (*fakeSystem) Interactive() bool { return true }
func (f *fakeSystem) New(i kservice.Interface, c *kservice.Config) (kservice.Service, error) {
	s := &fakeService{cfg: c}
	f.services = append(f.services, s)
	return s, nil
}

type fakeService struct {
	cfg       *kservice.Config
	calls     []string
	installed string // the unit text Install was given
	status    kservice.Status
	statusErr error
	err       error
}

func (s *fakeService) record(name string) error { s.calls = append(s.calls, name); return s.err }
func (s *fakeService) Run() error               { return s.record("Run") }
func (s *fakeService) Start() error             { return s.record("Start") }
func (s *fakeService) Stop() error              { return s.record("Stop") }
func (s *fakeService) Restart() error           { return s.record("Restart") }
func (s *fakeService) Install() error {
	s.installed = s.cfg.Option["SystemdScript"].(string)
	return s.record("Install")
}
func (s *fakeService) Uninstall() error { return s.record("Uninstall") }
func (s *fakeService) Logger(chan<- error) (kservice.Logger, error) {
	return nil, s.record("Logger")
}
func (s *fakeService) SystemLogger(chan<- error) (kservice.Logger, error) {
	return nil, s.record("SystemLogger")
}
func (s *fakeService) String() string   { return s.cfg.Name }
func (s *fakeService) Platform() string { return "fake" }
func (s *fakeService) Status() (kservice.Status, error) {
	s.calls = append(s.calls, "Status")
	return s.status, s.statusErr
}

func newFake(t *testing.T, o Options) *fakeService {
	t.Helper()
	c, err := Config(o)
	if err != nil {
		t.Fatalf("Config(%+v) = %v", o, err)
	}
	var sys fakeSystem
	s, err := sys.New(controlOnly{}, c)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*fakeService)
}

func TestControl(t *testing.T) {
	tests := []struct {
		action string
		want   []string
	}{
		{"install", []string{"Install"}},
		{"uninstall", []string{"Uninstall"}},
		{"start", []string{"Start"}},
		{"stop", []string{"Stop"}},
		{"restart", []string{"Restart"}},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			s := newFake(t, Options{})
			if err := Control(s, tt.action); err != nil {
				t.Fatalf("Control(%q) = %v", tt.action, err)
			}
			if diff := cmp.Diff(tt.want, s.calls); diff != "" {
				t.Errorf("Control(%q) calls (-want +got):\n%s", tt.action, diff)
			}
			if tt.action == "install" && s.installed != systemd.Unit() {
				t.Errorf("Control(install) installed %q, want the shipped unit", s.installed)
			}
		})
	}
}

func TestControlRefuses(t *testing.T) {
	for _, action := range []string{"", "status", "enable", "INSTALL"} {
		s := newFake(t, Options{})
		if err := Control(s, action); !errors.Is(err, ErrAction) {
			t.Errorf("Control(%q) = %v, want %v", action, err, ErrAction)
		}
		if len(s.calls) != 0 {
			t.Errorf("Control(%q) called %v, want nothing", action, s.calls)
		}
	}
}

func TestControlWrapsErrors(t *testing.T) {
	s := newFake(t, Options{})
	s.err = kservice.ErrNotInstalled
	if err := Control(s, "stop"); !errors.Is(err, kservice.ErrNotInstalled) {
		t.Errorf("Control(stop) = %v, want %v", err, kservice.ErrNotInstalled)
	}
}

func TestStatus(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		status  kservice.Status
		err     error
		want    string
		wantErr error
	}{
		{"running", kservice.StatusRunning, nil, "running", nil},
		{"stopped", kservice.StatusStopped, nil, "stopped", nil},
		{"not installed", kservice.StatusUnknown, kservice.ErrNotInstalled, "not installed", nil},
		{"failure", kservice.StatusUnknown, boom, "unknown", boom},
		{"unknown", kservice.StatusUnknown, nil, "unknown", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t, Options{})
			s.status, s.statusErr = tt.status, tt.err
			got, err := Status(s)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("Status() = %q, %v, want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name     string
		o        Options
		wantArgs []string
		shipped  bool
	}{
		{"defaults", Options{}, []string{DefaultExecutable, "run", "--state", DefaultStateDir}, true},
		{"explicit defaults", Options{Executable: DefaultExecutable, StateDir: DefaultStateDir}, []string{DefaultExecutable, "run", "--state", DefaultStateDir}, true},
		{"elsewhere", Options{Executable: "/opt/sg/bin/sparegrid-agent", StateDir: "/srv/sg"}, []string{"/opt/sg/bin/sparegrid-agent", "run", "--state", "/srv/sg"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Config(tt.o)
			if err != nil {
				t.Fatalf("Config(%+v) = %v", tt.o, err)
			}
			if c.Name != Name || c.UserName != User || c.DisplayName == "" || c.Description == "" {
				t.Errorf("Config(%+v) = %+v, want name %s and user %s", tt.o, c, Name, User)
			}
			if diff := cmp.Diff(tt.wantArgs, append([]string{c.Executable}, c.Arguments...)); diff != "" {
				t.Errorf("Config(%+v) command (-want +got):\n%s", tt.o, diff)
			}
			unit, _ := c.Option["SystemdScript"].(string)
			got, ok := ExecStart(unit)
			if diff := cmp.Diff(tt.wantArgs, got); !ok || diff != "" {
				t.Errorf("Config(%+v) unit ExecStart (-want +got):\n%s", tt.o, diff)
			}
			if (unit == systemd.Unit()) != tt.shipped {
				t.Errorf("Config(%+v) unit equals the shipped one = %v, want %v", tt.o, !tt.shipped, tt.shipped)
			}
			if strings.Contains(unit, "{{") {
				t.Errorf("Config(%+v) unit has template syntax, so the systemd backend would change it", tt.o)
			}
			if rest := strings.Replace(unit, strings.Join(got, " "), "", 1); rest != strings.Replace(systemd.Unit(), strings.Join([]string{DefaultExecutable, "run", "--state", DefaultStateDir}, " "), "", 1) {
				t.Errorf("Config(%+v) unit differs from the shipped one beyond ExecStart", tt.o)
			}
		})
	}
}

func TestConfigRefusesPaths(t *testing.T) {
	for _, o := range []Options{
		{Executable: "sparegrid-agent"},
		{Executable: "/usr/bin/../bin/sparegrid-agent"},
		{StateDir: "/var/lib/my state"},
		{StateDir: "/var/lib/%h"},
		{StateDir: "/var/lib/{{Name}}"},
		{StateDir: "/var/lib/x\nExecStartPre=/bin/sh"},
	} {
		if _, err := Config(o); !errors.Is(err, ErrPath) {
			t.Errorf("Config(%+v) = %v, want %v", o, err, ErrPath)
		}
	}
}

// unitValue returns the value of the only line "key=value" in unit.
func unitValue(t *testing.T, unit, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^`+key+`=(.*)$`).FindAllStringSubmatch(unit, -1)
	if len(m) != 1 {
		t.Fatalf("unit has %d %s= lines, want 1", len(m), key)
	}
	return m[0][1]
}

func TestShippedUnit(t *testing.T) {
	unit := systemd.Unit()
	for key, want := range map[string]string{
		"KillMode": "process",
		"User":     User,
		"Group":    User,
		"Restart":  "on-failure",
	} {
		if got := unitValue(t, unit, key); got != want {
			t.Errorf("unit %s=%s, want %s", key, got, want)
		}
	}
	stop := unitValue(t, unit, "TimeoutStopSec")
	d, err := time.ParseDuration(strings.Replace(stop, "min", "m", 1))
	if err != nil {
		t.Fatalf("TimeoutStopSec=%s: %v", stop, err)
	}
	if d <= DefaultDrainGrace {
		t.Errorf("TimeoutStopSec=%s (%v), want longer than the drain grace %v", stop, d, DefaultDrainGrace)
	}
	c, err := Config(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := unitValue(t, unit, "ExecStart"), strings.Join(append([]string{c.Executable}, c.Arguments...), " "); got != want {
		t.Errorf("unit ExecStart=%s, want %s", got, want)
	}
	if regexp.MustCompile(`(?m)^NoNewPrivileges=`).MatchString(unit) {
		t.Errorf("unit sets NoNewPrivileges, which stops sudo")
	}
}
