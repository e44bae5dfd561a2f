package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/client"
)

func TestBlocklistAdd(t *testing.T) {
	c := newCLI(t)
	c.fake.AddAgent(client.Agent{ID: 4, Name: "box", Owner: "maint", State: client.AgentApproved}, "")
	c.env["SPAREGRID_TOKEN"] = adminToken
	agent := int64(4)
	in72h := testNow.Add(72 * time.Hour)
	until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

	tests := []struct {
		name       string
		args       []string
		want       *client.BlockRule // the rule the fake holds; nil: refused
		wantStderr string
	}{
		{
			name:       "whole job, expiring in 72h",
			args:       []string{"--package", "linux-*", "--release", "trixie", "--arch", "arm64", "--reason", "hangs the testbed", "--expires", "72h"},
			want:       &client.BlockRule{ID: 1, Package: "linux-*", Release: "trixie", Arch: "arm64", Reason: "hangs the testbed", ExpiresAt: &in72h},
			wantStderr: "added blocklist rule 1 (~root, until 2026-11-24 12:00 UTC): hangs the testbed\n",
		},
		{
			name: "one test on an agent until a date",
			args: []string{"--package", "hello", "--version", "2.10-3", "--test", "smoke", "--agent", "4", "--reason", "flaky", "--expires", "2026-12-01T00:00:00Z"},
			want: &client.BlockRule{ID: 2, Package: "hello", Version: "2.10-3", Test: "smoke", Agent: &agent, Reason: "flaky", ExpiresAt: &until},
		},
		{
			name: "label",
			args: []string{"--package", "bash", "--label", "slow-disk", "--reason", "times out"},
			want: &client.BlockRule{ID: 3, Package: "bash", Label: "slow-disk", Reason: "times out"},
		},
		{name: "no package", args: []string{"--reason", "r"}, wantStderr: `"package" not set`},
		{name: "no reason", args: []string{"--package", "hello"}, wantStderr: `"reason" not set`},
		{name: "blank reason", args: []string{"--package", "hello", "--reason", " "}, wantStderr: "--reason must say why"},
		{name: "agent and label", args: []string{"--package", "hello", "--agent", "4", "--label", "x", "--reason", "r"}, wantStderr: "[agent label] were all set"},
		{name: "agent zero", args: []string{"--package", "hello", "--agent", "0", "--reason", "r"}, wantStderr: "--agent 0: want a positive agent id"},
		{name: "bad expiry", args: []string{"--package", "hello", "--reason", "r", "--expires", "tomorrow"}, wantStderr: `--expires "tomorrow": want an RFC 3339 time`},
		{name: "negative duration", args: []string{"--package", "hello", "--reason", "r", "--expires", "-1h"}, wantStderr: "must be positive"},
		{name: "coordinator refuses", args: []string{"--package", "linux-[", "--reason", "r"}, wantStderr: `package glob "linux-[" is malformed`},
		{name: "unknown agent", args: []string{"--package", "hello", "--agent", "9", "--reason", "r"}, wantStderr: "there is no agent 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(c.fake.BlockRules())
			r := c.run(append([]string{"blocklist", "add"}, tt.args...)...)
			if tt.want == nil {
				if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tt.wantStderr) {
					t.Errorf("blocklist add %v = %d, %q, %q; want 1, no stdout, stderr with %q", tt.args, r.code, r.stdout, r.stderr, tt.wantStderr)
				}
				if got := len(c.fake.BlockRules()); got != before {
					t.Errorf("blocklist add %v left %d rules, want %d", tt.args, got, before)
				}
				return
			}
			if r.code != 0 || r.stdout != itoa(tt.want.ID)+"\n" {
				t.Fatalf("blocklist add %v = %d, %q; want 0 and the rule id alone; stderr:\n%s", tt.args, r.code, r.stdout, r.stderr)
			}
			if tt.wantStderr != "" && r.stderr != tt.wantStderr {
				t.Errorf("blocklist add %v stderr = %q, want %q", tt.args, r.stderr, tt.wantStderr)
			}
			rules := c.fake.BlockRules()
			got := rules[len(rules)-1]
			tt.want.CreatedBy, tt.want.CreatedAt, tt.want.Explanation = got.CreatedBy, got.CreatedAt, got.Explanation
			if diff := cmp.Diff(*tt.want, got); diff != "" {
				t.Errorf("stored rule mismatch (-want +got):\n%s", diff)
			}
		})
	}

	delete(c.env, "SPAREGRID_TOKEN")
	if r := c.run("blocklist", "add", "--package", "hello", "--reason", "r"); r.code != 1 || !strings.Contains(r.stderr, "needs an API token") {
		t.Errorf("blocklist add without a token = %d, %q; want 1 and a request for a token", r.code, r.stderr)
	}
	if r := c.run("--token", maintainerToken, "blocklist", "add", "--package", "hello", "--reason", "r"); r.code != 1 || !strings.Contains(r.stderr, "only an admin") {
		t.Errorf("blocklist add as a maintainer = %d, %q; want 1 and the coordinator's refusal", r.code, r.stderr)
	}
}

func TestBlocklistListAndRemove(t *testing.T) {
	c := newCLI(t)
	agent := int64(4)
	until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	gone := testNow.Add(-time.Hour)
	rules := []client.BlockRule{
		{ID: 1, Package: "linux-*", Release: "trixie", Arch: "arm64", Reason: "hangs the testbed", CreatedBy: "root", ExpiresAt: &until},
		{ID: 2, Package: "hello", Version: "2.10-3", Test: "smoke", Agent: &agent, Reason: "flaky\x1b[2J", CreatedBy: "root"},
		{ID: 3, Package: "bash", Label: "slow-disk", Reason: "times out", CreatedBy: "root"},
		{ID: 4, Package: "old", Reason: "fixed upstream", CreatedBy: "root", ExpiresAt: &gone},
	}
	for _, r := range rules {
		c.fake.PutBlockRule(r)
	}

	r := c.ok("blocklist", "list")
	want := "ID  PACKAGE  VERSION  RELEASE  ARCH   TEST   SCOPE            EXPIRES               REASON\n" +
		"1   linux-*  -        trixie   arm64  -      all agents       2026-12-01 00:00 UTC  hangs the testbed\n" +
		"2   hello    2.10-3   -        -      smoke  agent 4          never                 flaky?[2J\n" +
		"3   bash     -        -        -      -      label slow-disk  never                 times out\n"
	if r.stdout != want {
		t.Errorf("blocklist list =\n%s\nwant\n%s", r.stdout, want)
	}
	r = c.ok("blocklist", "list", "--all")
	if !strings.Contains(r.stdout, "4   old ") || !strings.Contains(r.stdout, "expired 2026-11-21 11:00 UTC") {
		t.Errorf("blocklist list --all =\n%s\nwant rule 4, expired", r.stdout)
	}
	r = c.ok("blocklist", "list", "--json")
	var got []client.BlockRule
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("blocklist list --json printed %q: %v", r.stdout, err)
	}
	if diff := cmp.Diff(rules[:3], got); diff != "" {
		t.Errorf("blocklist list --json mismatch (-want +got):\n%s", diff)
	}

	if r := c.run("blocklist", "remove", "2"); r.code != 1 || !strings.Contains(r.stderr, "needs an API token") {
		t.Errorf("blocklist remove without a token = %d, %q; want a request for a token", r.code, r.stderr)
	}
	c.env["SPAREGRID_TOKEN"] = adminToken
	r = c.ok("blocklist", "remove", "2")
	if r.stdout != "" || r.stderr != "removed blocklist rule 2\n" {
		t.Errorf("blocklist remove 2 = %q, %q; want only a confirmation on stderr", r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"blocklist", "remove", "2"}, {"blocklist", "remove", "x"}} {
		if r := c.run(args...); r.code != 1 || r.stdout != "" {
			t.Errorf("sparegrid %v = %d, %q; want 1 and no stdout", args, r.code, r.stdout)
		}
	}
	r = c.ok("blocklist", "list", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 2 {
		t.Errorf("blocklist list --json after removal = %q (%v), want rules 1 and 3", r.stdout, err)
	}
}

func TestSubmitBlocked(t *testing.T) {
	c := newCLI(t)
	c.env["SPAREGRID_TOKEN"] = maintainerToken
	c.fake.PutBlockRule(client.BlockRule{ID: 3, Package: "linux-*", Reason: "hangs the testbed", CreatedBy: "root",
		Explanation: "blocklist rule 3 (~root): hangs the testbed"})

	r := c.run("submit", "linux-signed", "--release", "trixie")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "blocklist rule 3 (~root): hangs the testbed; submit with force (sparegrid submit --force)") {
		t.Errorf("submit of a blocked package = %d, %q, %q; want 1 and the rule's explanation", r.code, r.stdout, r.stderr)
	}
	r = c.ok("submit", "linux-signed", "--release", "trixie", "--force")
	if r.stdout != "1\n" || r.stderr != "job 1: submitted despite blocklist rule 3\n" {
		t.Errorf("submit --force = %q, %q; want the job id and the reason", r.stdout, r.stderr)
	}
	got := c.fake.Submitted()
	if len(got) != 2 || got[0].Force || !got[1].Force {
		t.Errorf("submitted %+v, want force only in the second request", got)
	}
}

func TestParseExpiry(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"72h", testNow.Add(72 * time.Hour), true},
		{"90m", testNow.Add(90 * time.Minute), true},
		{"2026-12-01T00:00:00Z", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), true},
		{"2026-12-01T01:00:00+01:00", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), true},
		{"0s", time.Time{}, false},
		{"-5m", time.Time{}, false},
		{"2026-12-01", time.Time{}, false},
		{"soon", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := parseExpiry(testNow, tt.in)
		if (err == nil) != tt.ok || (tt.ok && !got.Equal(tt.want)) {
			t.Errorf("parseExpiry(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
