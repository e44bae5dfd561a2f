package sched

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return now.Add(-d) }

// brief is the part of a request the tests compare.
type brief struct {
	Package, Version, Release, Arch string
	Triggers                        string
	Priority                        int
	Lane                            string
}

func briefs(rs []Request) []brief {
	var out []brief
	for _, r := range rs {
		out = append(out, brief{r.Package, r.Version, r.Release, r.Arch, strings.Join(r.Triggers, " "), r.Priority, r.Lane})
	}
	return out
}

func TestDefault(t *testing.T) {
	arches := map[string][]string{"unstable": {"amd64"}, "trixie": {"amd64", "arm64"}}
	many := make([]string, 60)
	for i := range many {
		many[i] = fmt.Sprintf("rdep%02d", i)
	}
	tests := []struct {
		name   string
		policy Default
		state  State
		want   []brief
		// wantFirst compares only the first few requests.
		wantFirst  int
		wantOldest string
		wantAge    time.Duration
	}{
		{
			name:  "nothing to do",
			state: State{Now: now, Arches: arches},
		},
		{
			name: "new version: its own tests and its reverse dependencies, on every arch",
			state: State{Now: now, Arches: arches, Changes: []Change{
				{Source: "zlib", NewVersion: "1:1.3-1", Release: "trixie", Testable: true, Triggered: []string{"libssh2", "kronosnet", "zlib", "libssh2"}},
			}},
			want: []brief{
				{"zlib", "1:1.3-1", "trixie", "amd64", "zlib/1:1.3-1", PriorityUpload, LaneDefault},
				{"kronosnet", "", "trixie", "amd64", "zlib/1:1.3-1", PriorityRdeps, LaneDefault},
				{"libssh2", "", "trixie", "amd64", "zlib/1:1.3-1", PriorityRdeps, LaneDefault},
				{"zlib", "1:1.3-1", "trixie", "arm64", "zlib/1:1.3-1", PriorityUpload, LaneDefault},
				{"kronosnet", "", "trixie", "arm64", "zlib/1:1.3-1", PriorityRdeps, LaneDefault},
				{"libssh2", "", "trixie", "arm64", "zlib/1:1.3-1", PriorityRdeps, LaneDefault},
			},
		},
		{
			name: "untestable upload still triggers its reverse dependencies",
			state: State{Now: now, Arches: arches, Changes: []Change{
				{Source: "base-files", NewVersion: "13", Release: "unstable", Triggered: []string{"hello"}},
			}},
			want: []brief{{"hello", "", "unstable", "amd64", "base-files/13", PriorityRdeps, LaneDefault}},
		},
		{
			name:   "huge fan-out goes to its own lane",
			policy: Default{FanoutLimit: 50},
			state: State{Now: now, Arches: arches, Changes: []Change{
				{Source: "glibc", NewVersion: "2.41-1", Release: "unstable", Testable: false, Triggered: many},
			}},
			want:      []brief{{"rdep00", "", "unstable", "amd64", "glibc/2.41-1", PriorityFanout, LaneFanout}},
			wantFirst: 1,
		},
		{
			name: "already queued is not asked again",
			state: State{Now: now, Arches: arches,
				Changes: []Change{{Source: "hello", NewVersion: "2.10-4", Release: "unstable", Testable: true}},
				Queued:  []Request{{Package: "hello", Version: "2.10-4", Release: "unstable", Arch: "amd64", Triggers: []string{"hello/2.10-4"}}},
			},
		},
		{
			name: "sweep: never tested first, then oldest, up to the free slots",
			state: State{Now: now, Arches: arches, SweepSlots: 3, Testable: []Package{
				{Package: "fresh", Release: "unstable", Arch: "amd64", LastResult: ago(time.Hour)},
				{Package: "old", Release: "unstable", Arch: "amd64", LastResult: ago(72 * time.Hour)},
				{Package: "new-pkg", Release: "unstable", Arch: "amd64"},
				{Package: "older", Release: "unstable", Arch: "amd64", LastResult: ago(96 * time.Hour)},
			}},
			want: []brief{
				{"new-pkg", "", "unstable", "amd64", "", PrioritySweep, LaneSweep},
				{"older", "", "unstable", "amd64", "", PrioritySweep, LaneSweep},
				{"old", "", "unstable", "amd64", "", PrioritySweep, LaneSweep},
			},
			wantOldest: "new-pkg",
		},
		{
			name: "sweep skips what is queued without using a slot, and reports the oldest age",
			state: State{Now: now, Arches: arches, SweepSlots: 1,
				Testable: []Package{
					{Package: "pa", Release: "unstable", Arch: "amd64", LastResult: ago(48 * time.Hour)},
					{Package: "pb", Release: "unstable", Arch: "amd64", LastResult: ago(24 * time.Hour)},
				},
				Queued: []Request{{Package: "pa", Release: "unstable", Arch: "amd64"}},
			},
			want:       []brief{{"pb", "", "unstable", "amd64", "", PrioritySweep, LaneSweep}},
			wantOldest: "pa",
			wantAge:    48 * time.Hour,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.policy.Decide(t.Context(), tt.state)
			if err != nil {
				t.Fatalf("Decide = %v", err)
			}
			got := briefs(d.Requests)
			if tt.wantFirst > 0 && len(got) > tt.wantFirst {
				got = got[:tt.wantFirst]
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			for _, r := range d.Requests {
				if err := r.Validate(); err != nil {
					t.Errorf("Decide made an invalid request: %v", err)
				}
			}
			if tt.wantOldest != "" && (d.OldestResult == nil || d.OldestResult.Package != tt.wantOldest || d.OldestResultAge != tt.wantAge) {
				t.Errorf("oldest = %+v age %v, want %s age %v", d.OldestResult, d.OldestResultAge, tt.wantOldest, tt.wantAge)
			}
		})
	}
}

// TestSweepNeverStarves runs rounds of one sweep slot over a fixed set of
// packages, each result arriving after its round: every package is tested
// once before any is tested twice.
func TestSweepNeverStarves(t *testing.T) {
	pkgs := []Package{
		{Package: "pa", Release: "unstable", Arch: "amd64", LastResult: ago(time.Hour)},
		{Package: "pb", Release: "unstable", Arch: "amd64", LastResult: ago(2 * time.Hour)},
		{Package: "pc", Release: "unstable", Arch: "amd64"},
		{Package: "pd", Release: "unstable", Arch: "amd64", LastResult: ago(3 * time.Hour)},
	}
	clock := now
	var order []string
	for round := 0; round < 2*len(pkgs); round++ {
		d, err := Default{}.Decide(t.Context(), State{Now: clock, SweepSlots: 1, Testable: pkgs})
		if err != nil || len(d.Requests) != 1 {
			t.Fatalf("round %d: Decide = %+v, %v; want one request", round, d.Requests, err)
		}
		name := d.Requests[0].Package
		order = append(order, name)
		clock = clock.Add(time.Minute)
		for i := range pkgs {
			if pkgs[i].Package == name {
				pkgs[i].LastResult = clock
			}
		}
	}
	want := []string{"pc", "pd", "pb", "pa", "pc", "pd", "pb", "pa"}
	if diff := cmp.Diff(want, order); diff != "" {
		t.Errorf("sweep order (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	good := Request{Package: "hello", Release: "unstable", Arch: "amd64", Priority: 5, Lane: "default", Reason: "why", Triggers: []string{"zlib/1.3-1"}}
	tests := []struct {
		name string
		edit func(*Request)
		ok   bool
	}{
		{"good", func(*Request) {}, true},
		{"bad package", func(r *Request) { r.Package = "Hello World" }, false},
		{"bad version", func(r *Request) { r.Version = "1 2" }, false},
		{"bad release", func(r *Request) { r.Release = "../etc" }, false},
		{"priority 0", func(r *Request) { r.Priority = 0 }, false},
		{"priority 11", func(r *Request) { r.Priority = 11 }, false},
		{"no lane", func(r *Request) { r.Lane = "" }, false},
		{"lane with spaces", func(r *Request) { r.Lane = "a b" }, false},
		{"no reason", func(r *Request) { r.Reason = "" }, false},
		{"bad trigger", func(r *Request) { r.Triggers = []string{"zlib"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.edit(&r)
			if err := r.Validate(); (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrBadDecision)) {
				t.Errorf("Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExec(t *testing.T) {
	state := State{Now: now, SweepSlots: 2, Testable: []Package{{Package: "hello", Release: "unstable", Arch: "amd64"}}}
	tests := []struct {
		name    string
		body    string
		timeout time.Duration
		want    []brief
		wantErr string
	}{
		{
			name: "answers with a request, having read the state",
			body: `grep -q '"sweep_slots":2' || exit 3
echo '{"requests":[{"package":"hello","release":"unstable","arch":"amd64","priority":9,"lane":"custom","reason":"site policy"}],"oldest_result_age":0}'`,
			want: []brief{{"hello", "", "unstable", "amd64", "", 9, "custom"}},
		},
		{name: "fails", body: "echo 'no database' >&2; exit 1", wantErr: "no database"},
		{name: "not JSON", body: "echo hello", wantErr: "bad decision"},
		{name: "unknown field", body: `echo '{"requests":[],"verdict":"pass"}'`, wantErr: "unknown field"},
		{name: "invalid request", body: `echo '{"requests":[{"package":"hello","release":"unstable","arch":"amd64","priority":99,"lane":"x","reason":"r"}]}'`, wantErr: "priority 99"},
		{name: "two answers", body: `echo '{"requests":[]}{"requests":[]}'`, wantErr: "data after"},
		{name: "hangs", body: "exec sleep 3600", timeout: 200 * time.Millisecond, wantErr: "deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Exec{Argv: []string{script(t, tt.body)}, Timeout: tt.timeout}
			d, err := p.Decide(t.Context(), state)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrPolicyProgram) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decide = %+v, %v; want an error saying %q", d, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide = %v", err)
			}
			if diff := cmp.Diff(tt.want, briefs(d.Requests)); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := (Exec{}).Decide(context.Background(), state); !errors.Is(err, ErrPolicyProgram) {
		t.Errorf("Decide without a program = %v, want %v", err, ErrPolicyProgram)
	}
}

func FuzzDecodeDecision(f *testing.F) {
	f.Add([]byte(`{"requests":[{"package":"hello","release":"unstable","arch":"amd64","priority":9,"lane":"custom","reason":"r"}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"requests":[{"package":"../x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDecision(b)
		if err != nil {
			return
		}
		for _, r := range d.Requests {
			if err := r.Validate(); err != nil {
				t.Errorf("DecodeDecision accepted an invalid request: %v", err)
			}
		}
	})
}
