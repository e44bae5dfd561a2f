package intake

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Router answers, from one view of the agents, which jobs no agent can take
// and which agents could confirm a failure.
type Router struct {
	agents []Agent
}

// Router returns a Router over the agents as they are now.
func (in *Intake) Router(ctx context.Context) (*Router, error) {
	agents, err := in.cfg.Agents(ctx)
	if err != nil {
		return nil, err
	}
	return &Router{agents: agents}, nil
}

// NewRouter returns a Router over agents.
func NewRouter(agents []Agent) *Router { return &Router{agents: agents} }

// Unroutable says why no agent can take a queued job on release and arch
// with needs, avoiding the agents in avoid: no approved agent offers the
// release and arch, every one that does is paused or to be avoided, or
// none offers what the tests need. It returns "" when some agent can.
func (rt *Router) Unroutable(release, arch string, needs store.JobNeeds, avoid []int64) string {
	target := release + "/" + arch
	var offering, avoided, paused []Agent
	for _, a := range rt.agents {
		switch {
		case !a.offers(release, arch):
		case slices.Contains(avoid, a.Caps.ID):
			avoided = append(avoided, a)
		case a.Paused != "":
			paused = append(paused, a)
		default:
			offering = append(offering, a)
		}
	}
	if len(offering) == 0 {
		switch {
		case len(paused) > 0:
			return fmt.Sprintf("every agent offering %s is paused (agent %d: %s)", target, paused[0].Caps.ID, paused[0].Paused)
		case len(avoided) > 0:
			return fmt.Sprintf("no agent offering %s other than %s, which the job must avoid", target, agentList(avoided))
		}
		return "no approved agent offers " + target
	}
	caps := make([]dep8.AgentCaps, len(offering))
	for i, a := range offering {
		caps[i] = a.Caps
	}
	return pending(needs, arch, caps)
}

// Capable returns the agents that take work and offer release and arch,
// for verdict.Input.CapableAgents.
func (rt *Router) Capable(_, release, arch string) []int64 {
	var ids []int64
	for _, a := range rt.agents {
		if a.offers(release, arch) && a.Paused == "" {
			ids = append(ids, a.Caps.ID)
		}
	}
	return ids
}

// Targets returns every release and arch some agent offers, as
// "release/arch", sorted.
func (rt *Router) Targets() []string {
	var out []string
	for _, a := range rt.agents {
		for _, r := range a.Releases {
			out = append(out, r+"/"+a.Caps.Arch)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func agentList(as []Agent) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = strconv.FormatInt(a.Caps.ID, 10)
	}
	return "agent " + strings.Join(s, ", ")
}
