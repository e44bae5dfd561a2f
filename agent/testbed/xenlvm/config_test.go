package xenlvm

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var goodArgs = []string{
	"--vg", "vg0", "--base", "sparegrid-base-bookworm",
	"--guest-config", "/etc/sparegrid/xenlvm/bookworm.cfg.in",
	"--ssh-key", "/etc/sparegrid/xenlvm/id_ed25519",
	"--known-hosts", "/etc/sparegrid/xenlvm/known_hosts",
	"--address", "192.0.2.10",
}

func TestFromArgs(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		wantIs error
	}{
		{"minimal", goodArgs, nil},
		{"dm", append(goodArgs[:len(goodArgs):len(goodArgs)], "--cow", "dm", "--scratch", "sparegrid-scratch"), nil},
		{"saved image", append(goodArgs[:len(goodArgs):len(goodArgs)], "--saved-image", "/var/lib/sparegrid/images/bookworm.save"), nil},
		{"insecure host keys", []string{"--vg", "vg0", "--base", "b", "--guest-config", "/g", "--ssh-key", "/k", "--address", "::1", "--insecure-no-host-key-check"}, nil},
		{"cow none", append(goodArgs[:len(goodArgs):len(goodArgs)], "--cow", "none"), ErrNoCopyOnWrite},
		{"dm without scratch", append(goodArgs[:len(goodArgs):len(goodArgs)], "--cow", "dm"), ErrUsage},
		{"no known hosts", goodArgs[:len(goodArgs)-4], ErrUsage},
		{"unknown flag", append(goodArgs[:len(goodArgs):len(goodArgs)], "--nope"), ErrUsage},
		{"stray argument", append(goodArgs[:len(goodArgs):len(goodArgs)], "extra"), ErrUsage},
		{"base looks like an option", []string{"--vg", "vg0", "--base=-x", "--guest-config", "/g", "--ssh-key", "/k", "--address", "192.0.2.1", "--insecure-no-host-key-check"}, ErrUsage},
		{"base with a slash", append(goodArgs[:len(goodArgs):len(goodArgs)], "--base", "../root"), ErrUsage},
		{"base with our prefix", append(goodArgs[:len(goodArgs):len(goodArgs)], "--base", prefix+"x"), ErrUsage},
		{"address is a hostname", append(goodArgs[:len(goodArgs):len(goodArgs)], "--address", "-oProxyCommand=x"), ErrUsage},
		{"user with options", append(goodArgs[:len(goodArgs):len(goodArgs)], "--ssh-user", "-oProxyCommand=x"), ErrUsage},
		{"relative template", append(goodArgs[:len(goodArgs):len(goodArgs)], "--guest-config", "g.cfg"), ErrUsage},
		{"bad size", append(goodArgs[:len(goodArgs):len(goodArgs)], "--snapshot-size", "4 G"), ErrUsage},
		{"no ssh attempts", append(goodArgs[:len(goodArgs):len(goodArgs)], "--ssh-attempts", "0"), ErrUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := FromArgs(tt.args)
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("FromArgs(%q) = %v, want %v", tt.args, err, tt.wantIs)
			}
			if err == nil && b.Name() != "xenlvm" {
				t.Errorf("FromArgs(%q).Name() = %q, want xenlvm", tt.args, b.Name())
			}
		})
	}
}

func TestFromArgsFillsConfig(t *testing.T) {
	got, err := parse(append(goodArgs[:len(goodArgs):len(goodArgs)], "--xl", "/usr/sbin/xl", "--ssh-interval", "1s", "--sudo", "/usr/bin/sudo"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.VG, want.Base, want.Address = "vg0", "sparegrid-base-bookworm", "192.0.2.10"
	want.GuestConfig = "/etc/sparegrid/xenlvm/bookworm.cfg.in"
	want.SSHKey, want.KnownHosts = "/etc/sparegrid/xenlvm/id_ed25519", "/etc/sparegrid/xenlvm/known_hosts"
	want.XL, want.SSHInterval, want.Sudo = "/usr/sbin/xl", time.Second, "/usr/bin/sudo"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parse (-want +got):\n%s", diff)
	}
}
