package api

import (
	"net/http"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/intake"
	"github.com/sparegrid/sparegrid/coordinator/store"
)

func (a *API) setAgentLabels(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req apiv1.AgentLabelsRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Labels == nil {
		return badRequest(`request body: "labels" is missing; send [] to clear an agent's labels`)
	}
	ag, err := a.cfg.Store.SetAgentLabels(r.Context(), id, req.Labels)
	if err != nil {
		return err
	}
	a.cfg.Log.Info("agent labels set", "agent", id, "labels", ag.Labels, "by", caller(r).Name)
	writeJSON(w, http.StatusOK, agentView(ag))
	return nil
}

// effectiveCaps is how routing sees ag once it is approved, or nil when ag
// has advertised nothing usable.
func effectiveCaps(ag store.Agent) *apiv1.AgentCaps {
	ag.State = store.AgentApproved
	routed, ok := intake.AgentOf(ag)
	if !ok {
		return nil
	}
	c := routed.Caps
	labels := c.Labels
	if labels == nil {
		labels = []string{}
	}
	return &apiv1.AgentCaps{
		Arch: c.Arch, Backend: c.Backend, Isolation: string(c.Isolation),
		Root: c.Root, RevertFullSystem: c.RevertFullSystem, Reboot: c.Reboot, Internet: c.Internet,
		Labels: labels, MemoryMB: c.MemoryMB, DiskMB: c.DiskMB,
	}
}
