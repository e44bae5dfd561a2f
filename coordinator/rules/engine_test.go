package rules

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var errLookup = errors.New("test: archive index unavailable")

// fakeDeps answers triggered() from a map and counts lookups.
type fakeDeps struct {
	mu    sync.Mutex
	deps  map[string][]string
	calls map[string]int
	err   error
	// block makes Triggered wait for its context to end.
	block bool
}

func (f *fakeDeps) Triggered(ctx context.Context, source string) ([]string, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[source]++
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	return f.deps[source], nil
}

func gridStatus() []TargetStatus {
	return []TargetStatus{
		{Target: Target{"unstable", "amd64"}, Capable: true},
		{Target: Target{"unstable", "arm64"}, Capable: true},
		{Target: Target{"unstable", "riscv64"}, Reason: "the only riscv64 agent is paused: disk nearly full"},
		{Target: Target{"trixie", "amd64"}, Capable: true},
		{Target: Target{"trixie", "i386"}},
	}
}

func staticTargets(ctx context.Context) ([]TargetStatus, error) { return gridStatus(), nil }

func defaultDeps() *fakeDeps {
	return &fakeDeps{deps: map[string][]string{
		"libfoo": {"libfoo", "bar", "baz", "bar"},
		"glibc":  {"glibc", "hello"},
	}}
}

func upload() Event {
	return Event{ID: 17, Type: "upload", Source: "libfoo", Version: "1.2-1", Metadata: map[string]string{"suite": "unstable"}}
}

// outcome is a RuleOutcome compared with cmpopts.EquateErrors, so that
// Err matches the sentinel it wraps.
type outcome struct {
	Rule     string
	Matched  bool
	Requests int
	Warnings []string
	Err      error
}

func outcomes(got []RuleOutcome) []outcome {
	out := make([]outcome, len(got))
	for i, o := range got {
		out[i] = outcome(o)
	}
	return out
}

func TestExpand(t *testing.T) {
	const reason17 = "event 17 (upload of libfoo 1.2-1) matched rule 'r'"
	trig := []string{"libfoo/1.2-1"}
	tests := []struct {
		name         string
		rules        []Rule
		event        Event
		opts         Options
		want         []Request
		wantOutcomes []outcome
	}{
		{
			name:         "no match",
			rules:        []Rule{{Name: "r", When: `event.type == "image-built"`}},
			event:        upload(),
			wantOutcomes: []outcome{{Rule: "r"}},
		},
		{
			name:  "the event's own source by default",
			rules: []Rule{{Name: "r", When: `event.type == "upload"`, Releases: []string{"unstable"}, Arches: []string{"amd64"}}},
			event: upload(),
			want: []Request{
				{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "amd64", Triggers: trig, Priority: DefaultPriority, Rules: []string{"r"}, Reason: reason17},
			},
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Requests: 1}},
		},
		{
			name: "every event field at run time",
			rules: []Rule{{Name: "r", When: `event.id == 17 && event.type == "upload" && event.source == "libfoo" && event.version == "1.2-1" &&
				event.artifact_url.endsWith(".changes") && event.build_id == "4711" && event.producer == "~buildd" &&
				event.received == timestamp("2026-03-01T12:00:00Z") && event.metadata["suite"] == "unstable" &&
				event.metadata["Uploader"].split(" ")[0] == "Jane"`,
				Releases: []string{"unstable"}, Arches: []string{"amd64"}}},
			event: validEvent(),
			want: []Request{
				{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "amd64", Triggers: trig, Priority: DefaultPriority, Rules: []string{"r"},
					Reason: "event 17 (upload of libfoo 1.2-1, build 4711) matched rule 'r'"},
			},
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Requests: 1}},
		},
		{
			name: "reverse dependencies, with a target nobody serves",
			rules: []Rule{{Name: "r", When: `event.type == "upload" && event.source.glob("lib*")`, Packages: "triggered(event.source)",
				Releases: []string{"unstable"}, Arches: []string{"amd64", "riscv64"}, Priority: 7, Lane: "fanout"}},
			event: upload(),
			want: []Request{
				{Package: "bar", Release: "unstable", Arch: "amd64", Triggers: trig, Priority: 7, Lane: "fanout", Rules: []string{"r"}, Reason: reason17},
				{Package: "bar", Release: "unstable", Arch: "riscv64", Triggers: trig, Priority: 7, Lane: "fanout", Rules: []string{"r"}, Reason: reason17,
					Pending: true, PendingReason: "the only riscv64 agent is paused: disk nearly full"},
				{Package: "baz", Release: "unstable", Arch: "amd64", Triggers: trig, Priority: 7, Lane: "fanout", Rules: []string{"r"}, Reason: reason17},
				{Package: "baz", Release: "unstable", Arch: "riscv64", Triggers: trig, Priority: 7, Lane: "fanout", Rules: []string{"r"}, Reason: reason17,
					Pending: true, PendingReason: "the only riscv64 agent is paused: disk nearly full"},
				{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "amd64", Triggers: trig, Priority: 7, Lane: "fanout", Rules: []string{"r"}, Reason: reason17},
				{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "riscv64", Triggers: trig, Priority: 7, Lane: "fanout", Rules: []string{"r"}, Reason: reason17,
					Pending: true, PendingReason: "the only riscv64 agent is paused: disk nearly full"},
			},
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Requests: 6}},
		},
		{
			name:  "every architecture of a release, one without a reason",
			rules: []Rule{{Name: "r", When: "true", Releases: []string{"trixie"}}},
			event: upload(),
			want: []Request{
				{Package: "libfoo", Version: "1.2-1", Release: "trixie", Arch: "amd64", Triggers: trig, Priority: DefaultPriority, Rules: []string{"r"}, Reason: reason17},
				{Package: "libfoo", Version: "1.2-1", Release: "trixie", Arch: "i386", Triggers: trig, Priority: DefaultPriority, Rules: []string{"r"}, Reason: reason17,
					Pending: true, PendingReason: "no agent can run tests on trixie/i386 now"},
			},
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Requests: 2}},
		},
		{
			name:  "every release of an architecture",
			rules: []Rule{{Name: "r", When: "true", Arches: []string{"amd64"}}},
			event: upload(),
			want: []Request{
				{Package: "libfoo", Version: "1.2-1", Release: "trixie", Arch: "amd64", Triggers: trig, Priority: DefaultPriority, Rules: []string{"r"}, Reason: reason17},
				{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "amd64", Triggers: trig, Priority: DefaultPriority, Rules: []string{"r"}, Reason: reason17},
			},
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Requests: 2}},
		},
		{
			name:  "every known target",
			rules: []Rule{{Name: "r", When: "true"}},
			event: upload(),
			want: []Request{
				{Package: "libfoo", Version: "1.2-1", Release: "trixie", Arch: "amd64", Triggers: trig, Priority: DefaultPriority, Rules: []string{"r"}, Reason: reason17},
				{Package: "libfoo", Version: "1.2-1", Release: "trixie", Arch: "i386", Triggers: trig, Priority: DefaultPriority, Rules: []string{"r"}, Reason: reason17,
					Pending: true, PendingReason: "no agent can run tests on trixie/i386 now"},
				{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "amd64", Triggers: trig, Priority: DefaultPriority, Rules: []string{"r"}, Reason: reason17},
				{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "arm64", Triggers: trig, Priority: DefaultPriority, Rules: []string{"r"}, Reason: reason17},
				{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "riscv64", Triggers: trig, Priority: DefaultPriority, Rules: []string{"r"}, Reason: reason17,
					Pending: true, PendingReason: "the only riscv64 agent is paused: disk nearly full"},
			},
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Requests: 5}},
		},
		{
			name:  "a release and an arch the grid does not know",
			rules: []Rule{{Name: "r", When: "true", Releases: []string{"forky"}}, {Name: "s", When: "true", Releases: []string{"bookworm"}, Arches: []string{"s390x"}}},
			event: upload(),
			want: []Request{
				{Package: "libfoo", Version: "1.2-1", Release: "bookworm", Arch: "s390x", Triggers: trig, Priority: DefaultPriority, Rules: []string{"s"},
					Reason: "event 17 (upload of libfoo 1.2-1) matched rule 's'", Pending: true, PendingReason: "no agent offers bookworm/s390x"},
			},
			wantOutcomes: []outcome{
				{Rule: "r", Matched: true, Warnings: []string{"release forky: the grid knows no architecture for it, so nothing was requested there"}},
				{Rule: "s", Matched: true, Requests: 1},
			},
		},
		{
			name: "image smoke tests from metadata",
			rules: []Rule{{Name: "smoke", When: `event.type == "image-built"`, Packages: `["hello", "bash"]`,
				Targets: `[{"release": event.metadata["release"], "arch": event.metadata["arch"]}]`, Priority: 9, Lane: "images"}},
			event: Event{ID: 3, Type: "image-built", ArtifactURL: "https://images.example.org/trixie-arm64.img", BuildID: "b-9",
				Metadata: map[string]string{"release": "unstable", "arch": "arm64"}},
			want: []Request{
				{Package: "bash", Release: "unstable", Arch: "arm64", Priority: 9, Lane: "images", Rules: []string{"smoke"}, Reason: "event 3 (image-built, build b-9) matched rule 'smoke'"},
				{Package: "hello", Release: "unstable", Arch: "arm64", Priority: 9, Lane: "images", Rules: []string{"smoke"}, Reason: "event 3 (image-built, build b-9) matched rule 'smoke'"},
			},
			wantOutcomes: []outcome{{Rule: "smoke", Matched: true, Requests: 2}},
		},
		{
			name: "duplicates across rules keep the highest priority",
			rules: []Rule{
				{Name: "low", When: "true", Packages: "triggered(event.source)", Releases: []string{"unstable"}, Arches: []string{"amd64"}, Priority: 2, Lane: "bulk"},
				{Name: "high", When: `event.source.startsWith("lib")`, Packages: `["libfoo", "libfoo"]`, Releases: []string{"unstable"}, Arches: []string{"amd64"}, Priority: 9},
				{Name: "again", When: "true", Packages: `["bar"]`, Releases: []string{"unstable"}, Arches: []string{"amd64"}, Priority: 2, Lane: "other"},
			},
			event: upload(),
			want: []Request{
				{Package: "bar", Release: "unstable", Arch: "amd64", Triggers: trig, Priority: 2, Lane: "bulk", Rules: []string{"low", "again"},
					Reason: "event 17 (upload of libfoo 1.2-1) matched rules 'low', 'again'"},
				{Package: "baz", Release: "unstable", Arch: "amd64", Triggers: trig, Priority: 2, Lane: "bulk", Rules: []string{"low"},
					Reason: "event 17 (upload of libfoo 1.2-1) matched rule 'low'"},
				{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "amd64", Triggers: trig, Priority: 9, Rules: []string{"low", "high"},
					Reason: "event 17 (upload of libfoo 1.2-1) matched rules 'low', 'high'"},
			},
			wantOutcomes: []outcome{
				{Rule: "low", Matched: true, Requests: 3},
				{Rule: "high", Matched: true, Requests: 1},
				{Rule: "again", Matched: true, Requests: 1},
			},
		},
		{
			name:  "no version: no triggers",
			rules: []Rule{{Name: "r", When: "true", Packages: "triggered(event.source)", Releases: []string{"unstable"}, Arches: []string{"amd64"}}},
			event: Event{Type: "build-finished", Source: "glibc"},
			want: []Request{
				{Package: "glibc", Release: "unstable", Arch: "amd64", Priority: DefaultPriority, Rules: []string{"r"}, Reason: "event (build-finished of glibc) matched rule 'r'"},
				{Package: "hello", Release: "unstable", Arch: "amd64", Priority: DefaultPriority, Rules: []string{"r"}, Reason: "event (build-finished of glibc) matched rule 'r'"},
			},
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Requests: 2}},
		},
		{
			name:         "empty packages",
			rules:        []Rule{{Name: "r", When: "true", Packages: `triggered("unknown-src")`}},
			event:        upload(),
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Warnings: []string{"packages is empty: nothing to test"}}},
		},
		{
			name: "a failing rule does not stop the others",
			rules: []Rule{
				{Name: "broken", When: `event.metadata["missing"] == "x"`},
				{Name: "r", When: "true", Releases: []string{"unstable"}, Arches: []string{"amd64"}},
			},
			event: upload(),
			want: []Request{
				{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "amd64", Triggers: trig, Priority: DefaultPriority, Rules: []string{"r"}, Reason: reason17},
			},
			wantOutcomes: []outcome{{Rule: "broken", Err: ErrEval}, {Rule: "r", Matched: true, Requests: 1}},
		},
		{
			name:         "bad glob pattern",
			rules:        []Rule{{Name: "r", When: `event.source.glob("lib[")`}},
			event:        upload(),
			wantOutcomes: []outcome{{Rule: "r", Err: ErrEval}},
		},
		{
			name:         "bad package name from an expression",
			rules:        []Rule{{Name: "r", When: "true", Packages: `[event.metadata["suite"], "Not A Package"]`}},
			event:        upload(),
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Err: ErrBadResult}},
		},
		{
			name:         "bad target from an expression",
			rules:        []Rule{{Name: "r", When: "true", Targets: `[{"release": "unstable"}]`}},
			event:        upload(),
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Err: ErrBadResult}},
		},
		{
			name:         "extra key in a target",
			rules:        []Rule{{Name: "r", When: "true", Targets: `[{"release": "unstable", "arch": "amd64", "agent": "x"}]`}},
			event:        upload(),
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Err: ErrBadResult}},
		},
		{
			name:         "no source to test",
			rules:        []Rule{{Name: "r", When: "true"}},
			event:        Event{Type: "image-built"},
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Err: ErrBadResult}},
		},
		{
			name:         "triggered of a bad name",
			rules:        []Rule{{Name: "r", When: "true", Packages: `triggered("../etc")`}},
			event:        upload(),
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Err: ErrTriggered}},
		},
		{
			name:         "too many requests",
			rules:        []Rule{{Name: "r", When: "true", Packages: "triggered(event.source)"}},
			event:        upload(),
			opts:         Options{MaxRequests: 14},
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Err: ErrTooManyRequests}},
		},
		{
			name:         "too many lookups",
			rules:        []Rule{{Name: "r", When: "true", Packages: `triggered(event.source) + triggered("glibc")`}},
			event:        upload(),
			opts:         Options{MaxLookups: 1},
			wantOutcomes: []outcome{{Rule: "r", Matched: true, Err: ErrTooManyLookups}},
		},
		{
			name:         "cost limit",
			rules:        []Rule{{Name: "r", When: `[1, 2, 3, 4, 5, 6, 7, 8].all(x, [1, 2, 3, 4, 5, 6, 7, 8].all(y, x * y > 0))`}},
			event:        upload(),
			opts:         Options{CostLimit: 50},
			wantOutcomes: []outcome{{Rule: "r", Err: ErrCostLimit}},
		},
		{
			name:         "within the cost limit",
			rules:        []Rule{{Name: "r", When: `[1, 2, 3, 4, 5, 6, 7, 8].all(x, [1, 2, 3, 4, 5, 6, 7, 8].all(y, x * y < 0))`, Packages: "triggered(event.source)"}},
			event:        upload(),
			wantOutcomes: []outcome{{Rule: "r"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Targets = TargetsFunc(staticTargets)
			opts.ReverseDeps = defaultDeps()
			e, err := New(tt.rules, opts)
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			got, err := e.Expand(t.Context(), tt.event)
			if err != nil {
				t.Fatalf("Expand() error = %v", err)
			}
			if diff := cmp.Diff(tt.wantOutcomes, outcomes(got.Rules), cmpopts.EquateErrors()); diff != "" {
				t.Errorf("Expand() outcomes mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, got.Requests); diff != "" {
				t.Errorf("Expand() requests mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpandRuleErrorsNameTheRule(t *testing.T) {
	e, err := New([]Rule{{Name: "needs-suite", When: `event.metadata["suite"] == "unstable"`}}, Options{Targets: TargetsFunc(staticTargets)})
	if err != nil {
		t.Fatal(err)
	}
	x, err := e.Expand(t.Context(), Event{Type: "upload", Source: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	got := x.Rules[0].Err
	if !errors.Is(got, ErrEval) || !strings.Contains(got.Error(), `rule "needs-suite": when:`) || !strings.Contains(got.Error(), "suite") {
		t.Errorf("Expand() rule error = %v, want %v naming the rule, the expression and the key", got, ErrEval)
	}
}

func TestExpandLooksUpOncePerSource(t *testing.T) {
	deps := defaultDeps()
	rules := []Rule{
		{Name: "small", When: `size(triggered(event.source)) <= 2`, Packages: "triggered(event.source)"},
		{Name: "large", When: `size(triggered(event.source)) > 2`, Packages: "triggered(event.source)", Lane: "fanout"},
	}
	e, err := New(rules, Options{Targets: TargetsFunc(staticTargets), ReverseDeps: deps})
	if err != nil {
		t.Fatal(err)
	}
	x, err := e.Expand(t.Context(), upload())
	if err != nil {
		t.Fatal(err)
	}
	if got := deps.calls["libfoo"]; got != 1 {
		t.Errorf("Triggered(libfoo) called %d times, want 1", got)
	}
	if x.Rules[0].Matched || !x.Rules[1].Matched {
		t.Errorf("Expand() outcomes = %+v, want only %q to match", x.Rules, "large")
	}
	for _, q := range x.Requests {
		if q.Lane != "fanout" {
			t.Errorf("request %+v: lane %q, want fanout", q, q.Lane)
		}
	}
}

func TestExpandLookupFailure(t *testing.T) {
	deps := &fakeDeps{err: errLookup}
	e, err := New([]Rule{{Name: "r", When: "true", Packages: "triggered(event.source)"}}, Options{Targets: TargetsFunc(staticTargets), ReverseDeps: deps})
	if err != nil {
		t.Fatal(err)
	}
	x, err := e.Expand(t.Context(), upload())
	if err != nil {
		t.Fatal(err)
	}
	if got := x.Rules[0].Err; !errors.Is(got, ErrTriggered) || !errors.Is(got, errLookup) {
		t.Errorf("Expand() rule error = %v, want it to wrap %v and %v", got, ErrTriggered, errLookup)
	}
}

func TestExpandWithoutReverseDeps(t *testing.T) {
	e, err := New([]Rule{{Name: "r", When: "true", Packages: "triggered(event.source)"}}, Options{Targets: TargetsFunc(staticTargets)})
	if err != nil {
		t.Fatal(err)
	}
	x, err := e.Expand(t.Context(), upload())
	if err != nil {
		t.Fatal(err)
	}
	if got := x.Rules[0].Err; !errors.Is(got, ErrTriggered) {
		t.Errorf("Expand() rule error = %v, want %v", got, ErrTriggered)
	}
}

func TestExpandTimeout(t *testing.T) {
	deps := &fakeDeps{block: true}
	rules := []Rule{
		{Name: "slow", When: "true", Packages: "triggered(event.source)"},
		{Name: "after", When: "true", Releases: []string{"unstable"}, Arches: []string{"amd64"}},
	}
	e, err := New(rules, Options{Targets: TargetsFunc(staticTargets), ReverseDeps: deps, Timeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	x, err := e.Expand(t.Context(), upload())
	if err != nil {
		t.Fatalf("Expand() error = %v", err)
	}
	if got := x.Rules[0].Err; !errors.Is(got, ErrTimeout) {
		t.Errorf("Expand() rule %q error = %v, want %v", "slow", got, ErrTimeout)
	}
	if !x.Rules[1].Matched || len(x.Requests) != 1 {
		t.Errorf("Expand() = %+v, want rule %q to go on and make one request", x, "after")
	}
}

func TestExpandCancelled(t *testing.T) {
	deps := &fakeDeps{block: true}
	e, err := New([]Rule{{Name: "r", When: "true", Packages: "triggered(event.source)"}},
		Options{Targets: TargetsFunc(staticTargets), ReverseDeps: deps, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.Expand(ctx, upload()); !errors.Is(err, context.Canceled) {
		t.Errorf("Expand(cancelled) error = %v, want %v", err, context.Canceled)
	}
}

func TestExpandRefusesBadEvent(t *testing.T) {
	e, err := New(nil, Options{Targets: TargetsFunc(staticTargets)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Expand(t.Context(), Event{Type: "upload", Version: "1.0"}); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("Expand(version without source) error = %v, want %v", err, ErrInvalidEvent)
	}
}

func TestExpandTargetsFailure(t *testing.T) {
	errGrid := errors.New("test: agents table unreadable")
	e, err := New([]Rule{{Name: "r", When: "true"}}, Options{Targets: TargetsFunc(func(context.Context) ([]TargetStatus, error) { return nil, errGrid })})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Expand(t.Context(), upload()); !errors.Is(err, errGrid) {
		t.Errorf("Expand() error = %v, want %v", err, errGrid)
	}
}

func TestNewNeedsTargets(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New(no Targets) error = nil, want an error")
	}
}

func TestExampleRules(t *testing.T) {
	data, err := os.ReadFile("testdata/rules.toml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := ParseRules(data)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]string, 0, 250)
	for i := range 250 {
		big = append(big, "pkg"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	deps := &fakeDeps{deps: map[string][]string{"libfoo": {"libfoo", "bar"}, "glibc": big}}
	e, err := New(rules, Options{Targets: TargetsFunc(staticTargets), ReverseDeps: deps})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		event   Event
		matched []string
		lanes   map[string]int
	}{
		{"small upload", upload(), []string{"reverse-deps"}, map[string]int{"": 4}},
		{"large upload", Event{Type: "upload", Source: "glibc", Version: "2.41-1", Metadata: map[string]string{"suite": "unstable"}},
			[]string{"reverse-deps-large"}, map[string]int{"fanout": 500}},
		{"upload to experimental", Event{Type: "upload", Source: "libfoo", Version: "2.0-1", Metadata: map[string]string{"suite": "experimental"}}, nil, map[string]int{}},
		{"upload without suite", Event{Type: "upload", Source: "libfoo", Version: "2.0-1"}, nil, map[string]int{}},
		{"team build", Event{Type: "build-finished", Source: "libfoo", Producer: "~team-ci"}, []string{"team-libs-everywhere"}, map[string]int{"": 2}},
		{"other producer", Event{Type: "build-finished", Source: "libfoo", Producer: "~someone"}, nil, map[string]int{}},
		{"image", Event{Type: "image-built", ArtifactURL: "https://images.example.org/u.img", Metadata: map[string]string{"release": "unstable", "arch": "riscv64"}},
			[]string{"image-smoke"}, map[string]int{"images": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := e.Expand(t.Context(), tt.event)
			if err != nil {
				t.Fatal(err)
			}
			var matched []string
			for _, o := range x.Rules {
				if o.Err != nil {
					t.Errorf("rule %q error = %v", o.Rule, o.Err)
				}
				if o.Matched {
					matched = append(matched, o.Rule)
				}
			}
			if diff := cmp.Diff(tt.matched, matched); diff != "" {
				t.Errorf("Expand(%+v) matched rules mismatch (-want +got):\n%s", tt.event, diff)
			}
			lanes := map[string]int{}
			for _, q := range x.Requests {
				lanes[q.Lane]++
			}
			if diff := cmp.Diff(tt.lanes, lanes); diff != "" {
				t.Errorf("Expand(%+v) requests per lane mismatch (-want +got):\n%s", tt.event, diff)
			}
		})
	}
}

func TestExpandConcurrent(t *testing.T) {
	e, err := New([]Rule{{Name: "r", When: "true", Packages: "triggered(event.source)"}},
		Options{Targets: TargetsFunc(staticTargets), ReverseDeps: defaultDeps()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			x, err := e.Expand(t.Context(), upload())
			if err != nil || len(x.Requests) != 15 {
				t.Errorf("Expand() = %d requests, %v, want 15, nil", len(x.Requests), err)
			}
		})
	}
	wg.Wait()
}

func TestExpandAptSource(t *testing.T) {
	rules := []Rule{
		{Name: "from-artifact", When: "true", Packages: "triggered(event.source)", AptSource: "deb [trusted=yes] {artifact_url} ./"},
		{Name: "mirror", When: "true", Packages: "['bar']", AptSource: "deb http://mirror.example.org/debian unstable main"},
	}
	e, err := New(rules, Options{Targets: TargetsFunc(staticTargets), ReverseDeps: defaultDeps()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		artifact string
		// want maps a package to its requests' apt sources.
		want     map[string][]string
		warnings int
	}{
		{"artifact url substituted", "http://ci.example.org/repo/",
			map[string][]string{
				"bar":    {"deb [trusted=yes] http://ci.example.org/repo/ ./", "deb http://mirror.example.org/debian unstable main"},
				"baz":    {"deb [trusted=yes] http://ci.example.org/repo/ ./"},
				"libfoo": {"deb [trusted=yes] http://ci.example.org/repo/ ./"},
			}, 0},
		{"no artifact url", "",
			map[string][]string{"bar": {"deb http://mirror.example.org/debian unstable main"}, "baz": nil, "libfoo": nil}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := upload()
			ev.ArtifactURL = tt.artifact
			x, err := e.Expand(t.Context(), ev)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, q := range x.Requests {
				got[q.Package] = q.AptSources
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("apt sources per package mismatch (-want +got):\n%s", diff)
			}
			if n := len(x.Rules[0].Warnings); n != tt.warnings {
				t.Errorf("rule warnings = %v, want %d", x.Rules[0].Warnings, tt.warnings)
			}
		})
	}
}

func TestAptSourceChecked(t *testing.T) {
	for _, line := range []string{"rpm http://x a b", "deb http://x\nsuite main", "deb {artifact_url}"} {
		if err := Check([]Rule{{Name: "r", When: "true", AptSource: line}}); !errors.Is(err, ErrConfig) {
			t.Errorf("Check(apt_source %q) = %v, want %v", line, err, ErrConfig)
		}
	}
}
