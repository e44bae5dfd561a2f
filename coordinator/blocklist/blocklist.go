// Package blocklist owns what the admins' blocklist rules mean: which rules
// apply to a job on a given agent, whether they block the whole job or skip
// single tests, and the one sentence that explains a rule wherever it
// decides something.
//
// It is pure: it must not read the store, the clock or the network, and it
// does not validate rules (store.BlockRule.Validate does, before a rule is
// stored). Callers pass the active rules, the target and the time.
package blocklist

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// Target is what a decision is about: a job, and the agent that would run
// it. AgentID 0 means no agent has been picked yet (as at submission), when
// rules scoped to an agent or a label do not apply.
type Target struct {
	Package string
	Version string
	Release string
	Arch    string
	AgentID int64
	// Labels are the agent's labels, as the coordinator records them.
	Labels []string
}

// Skip is one test a rule keeps from running.
type Skip struct {
	Test string
	Rule store.BlockRule
}

// Decision is what the rules say about a target.
type Decision struct {
	// Blocked is the whole-job rule that applies, the one with the lowest
	// id when several do; nil when none does.
	Blocked *store.BlockRule
	// Skips lists the tests that single-test rules skip, each once (with
	// the lowest-id rule naming it), in the order of those rules' ids. It is
	// filled whether or not Blocked is set.
	Skips []Skip
}

// Decide applies rules to t at now. Expired rules and rules whose package
// glob is malformed never apply.
func Decide(rules []store.BlockRule, t Target, now time.Time) Decision {
	sorted := slices.SortedFunc(slices.Values(rules), func(a, b store.BlockRule) int { return cmp.Compare(a.ID, b.ID) })
	var d Decision
	for _, r := range sorted {
		if !Applies(r, t, now) {
			continue
		}
		if r.Test == "" {
			if d.Blocked == nil {
				d.Blocked = &r
			}
			continue
		}
		if !slices.ContainsFunc(d.Skips, func(s Skip) bool { return s.Test == r.Test }) {
			d.Skips = append(d.Skips, Skip{Test: r.Test, Rule: r})
		}
	}
	return d
}

// Applies reports whether rule r covers target t at now, ignoring whether
// it names a test.
func Applies(r store.BlockRule, t Target, now time.Time) bool {
	if !r.Active(now) {
		return false
	}
	if ok, err := path.Match(r.Package, t.Package); err != nil || !ok {
		return false
	}
	switch {
	case r.Version != "" && r.Version != t.Version,
		r.Release != "" && r.Release != t.Release,
		r.Arch != "" && r.Arch != t.Arch:
		return false
	case r.AgentID != 0:
		return t.AgentID == r.AgentID
	case r.Label != "":
		return t.AgentID != 0 && slices.Contains(t.Labels, r.Label)
	}
	return true
}

// Explain says which rule decided something and why, for every message a
// rule causes: "blocklist rule 3 (~admin, until 2026-12-01): flaky on arm64
// builders". The expiry is a date when the rule ends at midnight UTC, and a
// UTC time to the minute otherwise.
func Explain(r store.BlockRule) string {
	who := "~" + r.CreatedBy
	if r.ExpiresAt != nil {
		e := r.ExpiresAt.UTC()
		if e.Equal(e.Truncate(24 * time.Hour)) {
			who += ", until " + e.Format(time.DateOnly)
		} else {
			who += ", until " + e.Format("2006-01-02 15:04 UTC")
		}
	}
	return fmt.Sprintf("blocklist rule %d (%s): %s", r.ID, who, r.Reason)
}
