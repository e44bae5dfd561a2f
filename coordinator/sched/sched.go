// Package sched owns the selection policy: given what changed in the
// archives, which packages are testable and how old their latest results
// are, and what is already queued, it decides which test requests to make
// next, with a priority, a lane and a reason for each. The default policy
// tests new versions and the reverse-dependency tests they trigger first,
// puts a huge fan-out in a lane of its own, and sweeps every testable
// package round-robin, oldest result first, so that none starves. Sites
// that want their own policy run an external program that reads the same
// State as JSON and answers with a Decision.
//
// It must not touch the store, the queue or the network: callers build a
// State and turn the Decision into jobs. Time comes only from State.Now.
package sched

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Priorities run from MinPriority to MaxPriority; higher is more urgent,
// as in coordinator/rules.
const (
	MinPriority = 1
	MaxPriority = 10
)

// Lanes the default policy uses. Each lane is served on its own, so a
// library upload that triggers a thousand tests does not hold up others.
const (
	LaneDefault = "default"
	LaneFanout  = "fanout"
	LaneSweep   = "sweep"
)

// ErrBadDecision means a policy answered with a request the grid cannot
// take.
var ErrBadDecision = errors.New("sched: bad decision")

// Change is a source that got a new version in an archive suite.
type Change struct {
	Source     string `json:"source"`
	NewVersion string `json:"new_version"`
	Release    string `json:"release"`
	// Testable is whether the source itself has an autopkgtest.
	Testable bool `json:"testable"`
	// Triggered are the other testable sources whose tests this upload
	// triggers (its reverse dependencies).
	Triggered []string `json:"triggered,omitempty"`
}

// Package is a testable package on a release and arch, and when its
// latest result came (zero: never tested).
type Package struct {
	Package    string    `json:"package"`
	Release    string    `json:"release"`
	Arch       string    `json:"arch"`
	LastResult time.Time `json:"last_result"`
}

// State is what a policy decides on.
type State struct {
	Now     time.Time `json:"now"`
	Changes []Change  `json:"changes,omitempty"`
	// Arches are the architectures to test each release on.
	Arches map[string][]string `json:"arches"`
	// Testable lists every testable package with the age of its latest
	// result, for the sweep.
	Testable []Package `json:"testable,omitempty"`
	// Queued are the requests already queued or running; a policy need
	// not ask for them again.
	Queued []Request `json:"queued,omitempty"`
	// SweepSlots is how many sweep requests may be made now (free
	// capacity; zero means none).
	SweepSlots int `json:"sweep_slots"`
}

// Request is one test to queue.
type Request struct {
	Package  string   `json:"package"`
	Version  string   `json:"version,omitempty"`
	Release  string   `json:"release"`
	Arch     string   `json:"arch"`
	Triggers []string `json:"triggers,omitempty"`
	Priority int      `json:"priority"`
	Lane     string   `json:"lane"`
	Reason   string   `json:"reason"`
}

// key identifies a request for deduplication: what is tested where, with
// which triggers.
func (r Request) key() string {
	return strings.Join([]string{r.Package, r.Version, r.Release, r.Arch, strings.Join(r.Triggers, " ")}, "\x00")
}

// Decision is a policy's answer.
type Decision struct {
	Requests []Request `json:"requests"`
	// OldestResult is the testable package whose latest result is the
	// oldest (never tested counts as oldest), and OldestResultAge its age
	// (zero when it was never tested); the grid reports them so that
	// starvation shows.
	OldestResult    *Package      `json:"oldest_result,omitempty"`
	OldestResultAge time.Duration `json:"oldest_result_age"`
}

// Policy decides which requests to make.
type Policy interface {
	Decide(ctx context.Context, s State) (Decision, error)
}

// Validate checks a request a policy made.
func (r Request) Validate() error {
	switch {
	case !dep8.ValidSource(r.Package):
		return fmt.Errorf("%w: package %q", ErrBadDecision, r.Package)
	case r.Version != "" && !dep8.ValidVersion(r.Version):
		return fmt.Errorf("%w: %s version %q", ErrBadDecision, r.Package, r.Version)
	case !dep8.ValidSuite(r.Release) || !dep8.ValidSuite(r.Arch):
		return fmt.Errorf("%w: %s on %q/%q", ErrBadDecision, r.Package, r.Release, r.Arch)
	case r.Priority < MinPriority || r.Priority > MaxPriority:
		return fmt.Errorf("%w: %s priority %d is not %d to %d", ErrBadDecision, r.Package, r.Priority, MinPriority, MaxPriority)
	case r.Lane == "" || len(r.Lane) > 32 || strings.ContainsFunc(r.Lane, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') }):
		return fmt.Errorf("%w: %s lane %q", ErrBadDecision, r.Package, r.Lane)
	case r.Reason == "" || len(r.Reason) > 500:
		return fmt.Errorf("%w: %s needs a reason of at most 500 bytes", ErrBadDecision, r.Package)
	}
	for _, t := range r.Triggers {
		if !dep8.ValidTrigger(t) {
			return fmt.Errorf("%w: %s trigger %q", ErrBadDecision, r.Package, t)
		}
	}
	return nil
}

// Default is the built-in policy.
type Default struct {
	// FanoutLimit is how many reverse-dependency tests one upload may
	// trigger before they go to LaneFanout at a lower priority (default
	// 50).
	FanoutLimit int
}

// Default priorities.
const (
	PriorityUpload  = 8 // the uploaded package's own tests
	PriorityRdeps   = 6 // the tests an upload triggers
	PriorityFanout  = 4 // the same, for a huge fan-out
	PrioritySweep   = 2 // the round-robin sweep
	defaultFanout   = 50
	sweepNeverLabel = "never tested"
)

// Decide implements Policy.
func (p Default) Decide(_ context.Context, s State) (Decision, error) {
	limit := p.FanoutLimit
	if limit <= 0 {
		limit = defaultFanout
	}
	seen := map[string]bool{}
	for _, q := range s.Queued {
		seen[q.key()] = true
	}
	var d Decision
	add := func(r Request) {
		if k := r.key(); !seen[k] {
			seen[k] = true
			d.Requests = append(d.Requests, r)
		}
	}
	for _, c := range s.Changes {
		trigger := c.Source + "/" + c.NewVersion
		rdeps := slices.DeleteFunc(slices.Clone(c.Triggered), func(src string) bool { return src == c.Source })
		slices.Sort(rdeps)
		rdeps = slices.Compact(rdeps)
		lane, prio := LaneDefault, PriorityRdeps
		if len(rdeps) > limit {
			lane, prio = LaneFanout, PriorityFanout
		}
		for _, arch := range s.Arches[c.Release] {
			if c.Testable {
				add(Request{Package: c.Source, Version: c.NewVersion, Release: c.Release, Arch: arch,
					Triggers: []string{trigger}, Priority: PriorityUpload, Lane: LaneDefault,
					Reason: fmt.Sprintf("new version %s of %s in %s", c.NewVersion, c.Source, c.Release)})
			}
			for _, src := range rdeps {
				add(Request{Package: src, Release: c.Release, Arch: arch, Triggers: []string{trigger},
					Priority: prio, Lane: lane,
					Reason: fmt.Sprintf("triggered by %s %s in %s (one of %d reverse-dependency tests)", c.Source, c.NewVersion, c.Release, len(rdeps))})
			}
		}
	}

	// The sweep: oldest result first, never tested before anything else;
	// ties by name so that the order is stable round after round.
	sweep := slices.Clone(s.Testable)
	slices.SortFunc(sweep, func(a, b Package) int {
		if c := a.LastResult.Compare(b.LastResult); c != 0 {
			return c
		}
		return strings.Compare(a.Package+"\x00"+a.Release+"\x00"+a.Arch, b.Package+"\x00"+b.Release+"\x00"+b.Arch)
	})
	if len(sweep) > 0 {
		oldest := sweep[0]
		d.OldestResult = &oldest
		if !oldest.LastResult.IsZero() {
			d.OldestResultAge = s.Now.Sub(oldest.LastResult)
		}
	}
	slots := s.SweepSlots
	for _, pk := range sweep {
		if slots <= 0 {
			break
		}
		age := sweepNeverLabel
		if !pk.LastResult.IsZero() {
			age = "last result " + s.Now.Sub(pk.LastResult).Round(time.Minute).String() + " ago"
		}
		before := len(d.Requests)
		add(Request{Package: pk.Package, Release: pk.Release, Arch: pk.Arch, Priority: PrioritySweep, Lane: LaneSweep,
			Reason: "sweep: " + age})
		if len(d.Requests) > before {
			slots--
		}
	}
	return d, nil
}
