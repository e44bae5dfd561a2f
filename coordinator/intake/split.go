package intake

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// part is one job a request becomes.
type part struct {
	// tests are the only tests the job runs; nil for all.
	tests []string
	needs store.JobNeeds
	// why says why the part was split off; empty for the main part.
	why string
}

// split divides the request's tests between the agents offering its
// release and arch: tests that the same agents can run form one part, the
// part runnable by the most agents is the main one and the others are
// split off. With no known tests, or tests every agent agrees on, there is
// one part that runs everything.
func split(r Request, agents []Agent) []part {
	base := store.JobNeeds{Labels: r.Labels, MemoryMB: r.MemoryMB, DiskMB: r.DiskMB}
	if len(r.Tests) > 0 {
		base.Tests = r.TestNeeds
		return []part{{tests: r.Tests, needs: base}}
	}
	extra := base.Request(r.Arch)
	var offering []dep8.AgentCaps
	for _, a := range agents {
		if a.offers(r.Release, r.Arch) && !slices.Contains(r.AvoidAgents, a.Caps.ID) {
			offering = append(offering, a.Caps)
		}
	}
	var names []string
	reqs := map[string][]dep8.Requirements{}
	for _, t := range r.Control {
		if _, seen := reqs[t.Name]; !seen {
			names = append(names, t.Name)
		}
		reqs[t.Name] = append(reqs[t.Name], t.Requirements())
	}
	whole := func() []part {
		n := base
		for _, name := range names {
			n.Tests = append(n.Tests, reqs[name]...)
		}
		return []part{{needs: n}}
	}
	if len(names) == 0 || len(offering) == 0 {
		return whole()
	}

	type group struct {
		names  []string
		agents []int64
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, name := range names {
		var ids []int64
		for _, c := range offering {
			if capableAll(c, reqs[name], extra) {
				ids = append(ids, c.ID)
			}
		}
		key := fmt.Sprint(ids)
		g := byKey[key]
		if g == nil {
			g = &group{agents: ids}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.names = append(g.names, name)
	}
	if len(groups) == 1 {
		return whole()
	}
	main := 0
	for i, g := range groups {
		if len(g.agents) > len(groups[main].agents) {
			main = i
		}
	}
	parts := make([]part, 0, len(groups))
	for i, g := range groups {
		n := base
		for _, name := range g.names {
			n.Tests = append(n.Tests, reqs[name]...)
		}
		p := part{tests: g.names, needs: n}
		if i != main {
			p.why = fmt.Sprintf("tests %s split off: %s", strings.Join(g.names, ", "), splitWhy(g.agents, offering, reqs[g.names[0]], extra))
		}
		parts = append(parts, p)
	}
	// The main part first, so that callers showing one job show it.
	parts[0], parts[main] = parts[main], parts[0]
	if main != 0 {
		slices.SortStableFunc(parts[1:], func(a, b part) int { return strings.Compare(a.tests[0], b.tests[0]) })
	}
	return parts
}

func capableAll(c dep8.AgentCaps, reqs []dep8.Requirements, extra dep8.RequestNeeds) bool {
	for _, req := range reqs {
		if ok, _ := dep8.Capable(c, req, extra); !ok {
			return false
		}
	}
	return true
}

// splitWhy says why a group went to its own job: what the first agent
// that cannot run it lacks, and who can.
func splitWhy(ids []int64, offering []dep8.AgentCaps, reqs []dep8.Requirements, extra dep8.RequestNeeds) string {
	why := ""
	for _, c := range offering {
		if slices.Contains(ids, c.ID) {
			continue
		}
		for _, req := range reqs {
			if ok, reason := dep8.Capable(c, req, extra); !ok {
				why = reason
				break
			}
		}
		if why != "" {
			break
		}
	}
	if len(ids) == 0 {
		return why + "; no agent can run them yet"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return why + "; only agent " + strings.Join(s, ", ") + " can"
}

// pending says why none of agents can take a job with needs n on arch, or
// "" when one can.
func pending(n store.JobNeeds, arch string, agents []dep8.AgentCaps) string {
	extra := n.Request(arch)
	reqs := n.Tests
	if len(reqs) == 0 {
		for _, c := range agents {
			ok, why := dep8.Capable(c, dep8.Requirements{}, extra)
			if ok {
				return ""
			}
			if len(agents) == 1 {
				return "no capable agent: " + why
			}
		}
		_, why := dep8.Capable(agents[0], dep8.Requirements{}, extra)
		return fmt.Sprintf("no capable agent: %s (and %d more agents cannot either)", why, len(agents)-1)
	}
	var able []int64
	for i, req := range reqs {
		ids, why := dep8.Candidates(req, agents, extra)
		if len(ids) == 0 {
			return why
		}
		if i == 0 {
			able = ids
			continue
		}
		able = slices.DeleteFunc(able, func(id int64) bool { return !slices.Contains(ids, id) })
		if len(able) == 0 {
			return fmt.Sprintf("no single agent can run all of the job's tests (test '%s' narrows it to none)", req.Test)
		}
	}
	return ""
}
