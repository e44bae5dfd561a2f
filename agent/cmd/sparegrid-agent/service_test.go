package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	kservice "github.com/kardianos/service"

	agentservice "github.com/sparegrid/sparegrid/agent/service"
	"github.com/sparegrid/sparegrid/installer/systemd"
)

// fakeService records the calls made to it, never touching the system.
type fakeService struct {
	kservice.Service // nil: methods the commands must not call panic
	calls            []string
	cfg              *kservice.Config
	status           kservice.Status
	statusErr        error
}

func (s *fakeService) Install() error   { s.calls = append(s.calls, "Install"); return nil }
func (s *fakeService) Uninstall() error { s.calls = append(s.calls, "Uninstall"); return nil }
func (s *fakeService) Start() error     { s.calls = append(s.calls, "Start"); return nil }
func (s *fakeService) Stop() error      { s.calls = append(s.calls, "Stop"); return nil }
func (s *fakeService) Restart() error   { s.calls = append(s.calls, "Restart"); return nil }
func (s *fakeService) Status() (kservice.Status, error) {
	s.calls = append(s.calls, "Status")
	return s.status, s.statusErr
}

type serviceRun struct {
	euid    int
	noUser  bool
	status  kservice.Status
	statErr error
}

func runService(t *testing.T, r serviceRun, args ...string) (fake *fakeService, stdout string, err error) {
	t.Helper()
	fake = &fakeService{status: r.status, statusErr: r.statErr}
	var out, errb bytes.Buffer
	c := &cli{
		stdout:  &out,
		stderr:  &errb,
		getenv:  func(string) string { return "" },
		geteuid: func() int { return r.euid },
		newService: func(c *kservice.Config) (kservice.Service, error) {
			fake.cfg = c
			return fake, nil
		},
		lookupUser: func(string) error {
			if r.noUser {
				return errors.New("unknown user")
			}
			return nil
		},
	}
	cmd := c.rootCmd()
	cmd.SetArgs(append([]string{"service"}, args...))
	err = cmd.Execute()
	return fake, out.String(), err
}

func TestServiceActions(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		want      []string
		wantState string
	}{
		{"install", []string{"install"}, []string{"Install"}, agentservice.DefaultStateDir},
		{"install elsewhere", []string{"install", "--state", "/srv/sg"}, []string{"Install"}, "/srv/sg"},
		{"uninstall", []string{"uninstall"}, []string{"Uninstall"}, agentservice.DefaultStateDir},
		{"start", []string{"start"}, []string{"Start"}, agentservice.DefaultStateDir},
		{"stop", []string{"stop"}, []string{"Stop"}, agentservice.DefaultStateDir},
		{"restart", []string{"restart"}, []string{"Restart"}, agentservice.DefaultStateDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, _, err := runService(t, serviceRun{euid: 0}, tt.args...)
			if err != nil {
				t.Fatalf("service %v = %v", tt.args, err)
			}
			if diff := cmp.Diff(tt.want, fake.calls); diff != "" {
				t.Errorf("service %v calls (-want +got):\n%s", tt.args, diff)
			}
			if got := fake.cfg.Arguments; len(got) != 3 || got[2] != tt.wantState {
				t.Errorf("service %v arguments %q, want run --state %s", tt.args, got, tt.wantState)
			}
			unit, _ := fake.cfg.Option["SystemdScript"].(string)
			if tt.wantState == agentservice.DefaultStateDir && unit != systemd.Unit() {
				t.Errorf("service %v unit is not the shipped one", tt.args)
			}
		})
	}
}

func TestServiceRefuses(t *testing.T) {
	tests := []struct {
		name string
		r    serviceRun
		args []string
		want error
	}{
		{"install as a user", serviceRun{euid: 1000}, []string{"install"}, errNotRoot},
		{"stop as a user", serviceRun{euid: 1000}, []string{"stop"}, errNotRoot},
		{"install without the user", serviceRun{noUser: true}, []string{"install"}, errNoUser},
		{"install to a relative state", serviceRun{}, []string{"install", "--state", "state"}, agentservice.ErrPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, _, err := runService(t, tt.r, tt.args...)
			if !errors.Is(err, tt.want) {
				t.Errorf("service %v = %v, want %v", tt.args, err, tt.want)
			}
			if len(fake.calls) != 0 {
				t.Errorf("service %v called %v, want nothing", tt.args, fake.calls)
			}
		})
	}
}

func TestServiceStatus(t *testing.T) {
	tests := []struct {
		name string
		r    serviceRun
		want string
	}{
		{"running", serviceRun{euid: 1000, status: kservice.StatusRunning}, "running\n"},
		{"stopped", serviceRun{euid: 1000, status: kservice.StatusStopped}, "stopped\n"},
		{"not installed", serviceRun{euid: 1000, statErr: kservice.ErrNotInstalled}, "not installed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out, err := runService(t, tt.r, "status")
			if err != nil || out != tt.want {
				t.Errorf("service status = %q, %v, want %q", out, err, tt.want)
			}
		})
	}
}

func TestRunDrainGraceErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"negative flag", nil, []string{"run", "--state", "x", "--drain-grace", "-1s"}},
		{"bad env", map[string]string{envDrainGrace: "soon"}, []string{"run", "--state", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.env, tt.args...)
			if code == 0 || !strings.Contains(stderr, errDrainGrace.Error()) {
				t.Errorf("%v = %d, stderr %q; want %v", tt.args, code, stderr, errDrainGrace)
			}
		})
	}
}
