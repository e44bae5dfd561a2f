package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/recovery"
	"github.com/sparegrid/sparegrid/agent/state"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

func TestVirtSudoDefault(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		euid    int
		want    bool
		wantErr error
	}{
		{"root without env", "", 0, false, nil},
		{"user without env", "", 1000, true, nil},
		{"root asks for sudo", "1", 0, true, nil},
		{"user turns sudo off", "false", 1000, false, nil},
		{"not a boolean", "maybe", 1000, false, errVirtSudo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == envVirtSudo {
					return tt.env
				}
				return ""
			}
			got, err := virtSudoDefault(getenv, tt.euid)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("virtSudoDefault(%s=%q, euid %d) = %v, %v, want %v, %v", envVirtSudo, tt.env, tt.euid, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSudoCommand(t *testing.T) {
	got := sudoCommand()
	if len(got) != 2 || got[0] == "" || got[0][0] != '/' || got[1] != "-n" {
		t.Errorf("sudoCommand() = %q, want an absolute sudo and -n", got)
	}
}

// failingVirtServer writes a virt server whose every run fails.
func failingVirtServer(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "autopkgtest-virt-sparegrid")
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho cannot clean >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeOverlayImage(t *testing.T, dir string) {
	t.Helper()
	img := image.Image{Release: "bookworm", Arch: "amd64", Backend: image.BackendOverlay, Format: image.FormatDirectory,
		Digest: "sha256:" + strings.Repeat("0", 64)}
	if err := image.WriteRecord(dir, img); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverCrash(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		virt    func(t *testing.T) string
		wantLog string
		wantErr error
	}{
		{name: "nothing left", setup: func(*testing.T, string) {}},
		{
			name: "work directory left",
			setup: func(t *testing.T, dir string) {
				if err := os.MkdirAll(filepath.Join(dir, state.WorkDir, "job-5-2", "out"), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			wantLog: `msg="recovered after a crash" killed=0 removed=1 jobs=[5]`,
		},
		{
			name: "malformed run record",
			setup: func(t *testing.T, dir string) {
				job := filepath.Join(dir, state.WorkDir, "job-6-1")
				if err := os.MkdirAll(job, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(job, recovery.RecordFile), []byte("{"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantLog: `msg="unreadable run record; nothing signalled" dir=job-6-1`,
		},
		{
			name:    "testbed cleanup fails",
			setup:   writeOverlayImage,
			virt:    failingVirtServer,
			wantErr: errRecover,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			virt := "/nonexistent/autopkgtest-virt-sparegrid"
			if tt.virt != nil {
				virt = tt.virt(t)
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			err := recoverCrash(t.Context(), log, dir, []string{"overlay", "unshare"}, virt, nil)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("recoverCrash error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantLog == "" && tt.wantErr == nil && logs.Len() != 0 {
				t.Errorf("recoverCrash logged %q, want nothing", logs.String())
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("recoverCrash logged %q, want it to contain %q", logs.String(), tt.wantLog)
			}
			if _, err := os.Stat(filepath.Join(dir, state.WorkDir)); err == nil {
				entries, _ := os.ReadDir(filepath.Join(dir, state.WorkDir))
				if len(entries) != 0 {
					t.Errorf("work directory holds %d entries after recoverCrash, want none", len(entries))
				}
			}
		})
	}
}

func TestRunStopsWhenRecoveryFails(t *testing.T) {
	dir := t.TempDir()
	writeRegistered(t, dir)
	writeOverlayImage(t, dir)
	code, _, stderr := runCLI(t, nil, "run", "--state", dir, "--backend", "overlay", "--virt-sudo=false", "--virt-server", failingVirtServer(t))
	if code == 0 || !strings.Contains(stderr, errRecover.Error()) || !strings.Contains(stderr, "cannot clean") {
		t.Errorf("run with a failing testbed cleanup = %d, stderr %q, want failure mentioning %q and the cleanup's output", code, stderr, errRecover)
	}
}

func TestRunOptionsVirt(t *testing.T) {
	tests := []struct {
		name     string
		o        runOptions
		wantVirt string
		wantSudo bool
	}{
		{"flag", runOptions{virtServer: "/opt/v"}, "/opt/v", false},
		{"flag with sudo", runOptions{virtServer: "/opt/v", virtSudo: true}, "/opt/v", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			virt, sudo := tt.o.virt()
			if virt != tt.wantVirt || (len(sudo) > 0) != tt.wantSudo {
				t.Errorf("%+v.virt() = %q, %q, want %q and sudo %v", tt.o, virt, sudo, tt.wantVirt, tt.wantSudo)
			}
		})
	}
}

func TestRunPauseSettingErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"zero pause", []string{"--pause-for", "0s"}, errPauseFor},
		{"zero failures", []string{"--max-infra-failures", "0"}, errZeroPause},
		{"zero disk", []string{"--min-free-disk", "0"}, errZeroPause},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "--state", "x"}, tt.args...)
			code, _, stderr := runCLI(t, nil, args...)
			if code == 0 || !strings.Contains(stderr, tt.want.Error()) {
				t.Errorf("%v = %d, stderr %q; want %v", args, code, stderr, tt.want)
			}
		})
	}
}

func TestRunLabelErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want error
	}{
		{"upper case", nil, []string{"--label", "GPU"}, dep8.ErrBadLabel},
		{"one of several", nil, []string{"--label", "gpu", "--label", "big disk"}, dep8.ErrBadLabel},
		{"commas in the flag", nil, []string{"--label", "gpu,fast"}, dep8.ErrBadLabel},
		{"capability setting", nil, []string{"--label", "internet=no"}, dep8.ErrBadLabel},
		{"from env", map[string]string{envLabels: "gpu,-x"}, nil, dep8.ErrBadLabel},
		{"bad no-internet env", map[string]string{envNoInternet: "maybe"}, nil, errNoInternet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "--state", "x"}, tt.args...)
			code, _, stderr := runCLI(t, tt.env, args...)
			if code == 0 || !strings.Contains(stderr, tt.want.Error()) {
				t.Errorf("%v with env %v = %d, stderr %q; want %v", args, tt.env, code, stderr, tt.want)
			}
		})
	}
}

func TestSplitLabels(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"gpu", []string{"gpu"}},
		{"gpu,big-disk", []string{"gpu", "big-disk"}},
		{" gpu, big-disk ,,arm:v8\tx ", []string{"gpu", "big-disk", "arm:v8", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := splitLabels(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("splitLabels(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNoInternetDefault(t *testing.T) {
	tests := []struct {
		env     string
		want    bool
		wantErr error
	}{
		{"", false, nil},
		{"1", true, nil},
		{"true", true, nil},
		{"false", false, nil},
		{"maybe", false, errNoInternet},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			getenv := func(k string) string {
				if k == envNoInternet {
					return tt.env
				}
				return ""
			}
			got, err := noInternetDefault(getenv)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("noInternetDefault(%s=%q) = %v, %v, want %v, %v", envNoInternet, tt.env, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
