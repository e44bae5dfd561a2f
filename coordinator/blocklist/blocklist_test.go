package blocklist

import (
	"path"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func TestApplies(t *testing.T) {
	target := Target{Package: "linux-signed", Version: "6.12.9-1", Release: "trixie", Arch: "arm64"}
	onAgent := target
	onAgent.AgentID, onAgent.Labels = 4, []string{"slow-disk", "arch:arm64"}
	tests := []struct {
		name string
		rule store.BlockRule
		t    Target
		want bool
	}{
		{name: "exact package", rule: store.BlockRule{Package: "linux-signed"}, t: target, want: true},
		{name: "glob", rule: store.BlockRule{Package: "linux-*"}, t: target, want: true},
		{name: "glob matches whole name only", rule: store.BlockRule{Package: "linux"}, t: target, want: false},
		{name: "class", rule: store.BlockRule{Package: "linux-[rs]igned"}, t: target, want: true},
		{name: "other package", rule: store.BlockRule{Package: "hello"}, t: target, want: false},
		{name: "malformed glob never applies", rule: store.BlockRule{Package: "linux-["}, t: target, want: false},
		{name: "version", rule: store.BlockRule{Package: "*", Version: "6.12.9-1"}, t: target, want: true},
		{name: "other version", rule: store.BlockRule{Package: "*", Version: "6.12.10-1"}, t: target, want: false},
		{name: "version rule, job without version", rule: store.BlockRule{Package: "*", Version: "6.12.9-1"}, t: Target{Package: "linux-signed", Release: "trixie", Arch: "arm64"}, want: false},
		{name: "release", rule: store.BlockRule{Package: "*", Release: "trixie"}, t: target, want: true},
		{name: "other release", rule: store.BlockRule{Package: "*", Release: "sid"}, t: target, want: false},
		{name: "arch", rule: store.BlockRule{Package: "*", Arch: "arm64"}, t: target, want: true},
		{name: "other arch", rule: store.BlockRule{Package: "*", Arch: "amd64"}, t: target, want: false},
		{name: "agent, none picked yet", rule: store.BlockRule{Package: "*", AgentID: 4}, t: target, want: false},
		{name: "agent", rule: store.BlockRule{Package: "*", AgentID: 4}, t: onAgent, want: true},
		{name: "other agent", rule: store.BlockRule{Package: "*", AgentID: 5}, t: onAgent, want: false},
		{name: "label, none picked yet", rule: store.BlockRule{Package: "*", Label: "slow-disk"}, t: Target{Package: "x1", Labels: []string{"slow-disk"}}, want: false},
		{name: "label", rule: store.BlockRule{Package: "*", Label: "slow-disk"}, t: onAgent, want: true},
		{name: "label the agent lacks", rule: store.BlockRule{Package: "*", Label: "gpu"}, t: onAgent, want: false},
		{name: "unscoped rule on an agent", rule: store.BlockRule{Package: "*"}, t: onAgent, want: true},
		{name: "not yet expired", rule: store.BlockRule{Package: "*", ExpiresAt: ptr(now.Add(time.Nanosecond))}, t: target, want: true},
		{name: "expires now", rule: store.BlockRule{Package: "*", ExpiresAt: ptr(now)}, t: target, want: false},
		{name: "expired", rule: store.BlockRule{Package: "*", ExpiresAt: ptr(now.Add(-time.Hour))}, t: target, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Applies(tt.rule, tt.t, now); got != tt.want {
				t.Errorf("Applies(%+v, %+v) = %v, want %v", tt.rule, tt.t, got, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	target := Target{Package: "hello", Version: "2.10-3", Release: "trixie", Arch: "amd64", AgentID: 2, Labels: []string{"fast"}}
	whole := func(id int64, pkg string) store.BlockRule {
		return store.BlockRule{ID: id, Package: pkg, Reason: "reason " + pkg, CreatedBy: "admin"}
	}
	test := func(id int64, pkg, name string) store.BlockRule {
		r := whole(id, pkg)
		r.Test = name
		return r
	}
	expired := whole(1, "hello")
	expired.ExpiresAt = ptr(now.Add(-time.Minute))
	otherAgent := whole(2, "hello")
	otherAgent.AgentID = 9
	labelled := test(12, "h*", "upstream")
	labelled.Label = "fast"

	tests := []struct {
		name  string
		rules []store.BlockRule
		want  Decision
	}{
		{name: "no rules", want: Decision{}},
		{name: "nothing applies", rules: []store.BlockRule{whole(3, "bash"), expired, otherAgent}, want: Decision{}},
		{
			name:  "lowest id blocks, whatever the order given",
			rules: []store.BlockRule{whole(7, "h*"), whole(5, "hello"), whole(6, "*")},
			want:  Decision{Blocked: ptr(whole(5, "hello"))},
		},
		{
			name:  "single tests skipped once each, by rule id",
			rules: []store.BlockRule{test(11, "hello", "smoke"), labelled, test(10, "*", "smoke"), test(13, "bash", "unit")},
			want:  Decision{Skips: []Skip{{Test: "smoke", Rule: test(10, "*", "smoke")}, {Test: "upstream", Rule: labelled}}},
		},
		{
			name:  "blocked and skips together",
			rules: []store.BlockRule{test(4, "hello", "smoke"), whole(8, "hel*")},
			want:  Decision{Blocked: ptr(whole(8, "hel*")), Skips: []Skip{{Test: "smoke", Rule: test(4, "hello", "smoke")}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := append([]store.BlockRule(nil), tt.rules...)
			got := Decide(tt.rules, target, now)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Decide mismatch (-want +got):\n%s", d)
			}
			if d := cmp.Diff(before, tt.rules); d != "" {
				t.Errorf("Decide changed its input (-before +after):\n%s", d)
			}
		})
	}

	t.Run("at submission agent rules do not apply", func(t *testing.T) {
		byAgent := whole(1, "hello")
		byAgent.AgentID = 2
		got := Decide([]store.BlockRule{byAgent, labelled}, Target{Package: "hello", Release: "trixie", Arch: "amd64", Labels: []string{"fast"}}, now)
		if d := cmp.Diff(Decision{}, got); d != "" {
			t.Errorf("Decide without an agent mismatch (-want +got):\n%s", d)
		}
	})
}

func TestExplain(t *testing.T) {
	tests := []struct {
		name string
		rule store.BlockRule
		want string
	}{
		{
			name: "until a date",
			rule: store.BlockRule{ID: 3, CreatedBy: "admin", Reason: "flaky on arm64 builders", ExpiresAt: ptr(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))},
			want: "blocklist rule 3 (~admin, until 2026-12-01): flaky on arm64 builders",
		},
		{
			name: "until a time, shown in UTC",
			rule: store.BlockRule{ID: 4, CreatedBy: "root", Reason: "r", ExpiresAt: ptr(time.Date(2026, 11, 24, 13, 30, 59, 0, time.FixedZone("CET", 3600)))},
			want: "blocklist rule 4 (~root, until 2026-11-24 12:30 UTC): r",
		},
		{
			name: "midnight elsewhere is not midnight UTC",
			rule: store.BlockRule{ID: 5, CreatedBy: "root", Reason: "r", ExpiresAt: ptr(time.Date(2026, 12, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600)))},
			want: "blocklist rule 5 (~root, until 2026-11-30 23:00 UTC): r",
		},
		{
			name: "no expiry",
			rule: store.BlockRule{ID: 12, CreatedBy: "admin", Reason: "breaks the testbed"},
			want: "blocklist rule 12 (~admin): breaks the testbed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Explain(tt.rule); got != tt.want {
				t.Errorf("Explain(%+v) = %q, want %q", tt.rule, got, tt.want)
			}
		})
	}
}

// FuzzMatch checks that a rule whose glob store.ValidateBlockPattern
// accepts matches exactly the names path.Match does, that a refused glob
// never blocks anything, and that Explain stays on one line.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{{"linux-*", "linux-signed"}, {"[a-", "a"}, {"g\\+\\+", "g++"}, {"*", "x"}, {"py[^t]*", "pyx"}, {"\\", "x"}} {
		f.Add(s[0], s[1], "a reason")
	}
	f.Fuzz(func(t *testing.T, pattern, pkg, reason string) {
		rule := store.BlockRule{ID: 1, Package: pattern, Reason: reason, CreatedBy: "admin"}
		got := Decide([]store.BlockRule{rule}, Target{Package: pkg}, now).Blocked != nil
		if store.ValidateBlockPattern(pattern) != nil {
			if _, err := path.Match(pattern, pkg); err != nil && got {
				t.Errorf("malformed glob %q blocked %q", pattern, pkg)
			}
			return
		}
		want, err := path.Match(pattern, pkg)
		if err != nil {
			t.Fatalf("accepted glob %q: path.Match(_, %q) = %v", pattern, pkg, err)
		}
		if got != want {
			t.Errorf("Decide(glob %q, package %q) blocked = %v, want %v", pattern, pkg, got, want)
		}
		if rule.Validate() == nil && strings.ContainsAny(Explain(rule), "\n\r") {
			t.Errorf("Explain(%+v) = %q spans lines", rule, Explain(rule))
		}
	})
}
