package main

import (
	"errors"
	"testing"
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
