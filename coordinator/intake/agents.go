package intake

import (
	"context"
	"encoding/json"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

// AgentOf returns how routing sees a stored agent: what it last advertised
// with the labels an admin set applied over it. It returns false for an
// agent that is not approved or has advertised nothing usable yet; bad
// admin labels (refused when set) are ignored.
func AgentOf(ag store.Agent) (Agent, bool) {
	if ag.State != store.AgentApproved || len(ag.Capabilities) == 0 {
		return Agent{}, false
	}
	var caps protocol.Capabilities
	if err := json.Unmarshal(ag.Capabilities, &caps); err != nil || caps.Arch == "" {
		return Agent{}, false
	}
	return Agent{Caps: WithAdminLabels(caps.AgentCaps(ag.ID), ag.Labels), Releases: caps.Releases, Paused: ag.Paused}, true
}

// WithAdminLabels applies an admin's labels over c, keeping c when they do
// not parse (they are checked when an admin sets them).
func WithAdminLabels(c dep8.AgentCaps, labels []string) dep8.AgentCaps {
	if out, err := dep8.ApplyAdminLabels(c, labels); err == nil {
		return out
	}
	return c
}

// StoreAgents lists the approved agents of s for Config.Agents.
func StoreAgents(s store.Store) func(context.Context) ([]Agent, error) {
	return func(ctx context.Context) ([]Agent, error) {
		ags, err := s.ListAgents(ctx)
		if err != nil {
			return nil, err
		}
		var out []Agent
		for _, ag := range ags {
			if a, ok := AgentOf(ag); ok {
				out = append(out, a)
			}
		}
		return out, nil
	}
}
