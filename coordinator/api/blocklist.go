package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/blocklist"
	"github.com/sparegrid/sparegrid/coordinator/store"
)

func blockRuleView(r store.BlockRule, now time.Time) apiv1.BlockRule {
	v := apiv1.BlockRule{
		ID: r.ID, Package: r.Package, Version: r.Version, Release: r.Release, Arch: r.Arch, Test: r.Test,
		Label: r.Label, Reason: r.Reason, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
		Expired: !r.Active(now), Explanation: blocklist.Explain(r),
	}
	if r.AgentID != 0 {
		id := r.AgentID
		v.Agent = &id
	}
	return v
}

func (a *API) addBlockRule(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.BlockRuleRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	now := a.cfg.Now()
	rule := store.BlockRule{
		Package: req.Package, Version: req.Version, Release: req.Release, Arch: req.Arch, Test: req.Test,
		Label: req.Label, Reason: strings.TrimSpace(req.Reason), CreatedBy: caller(r).Name, CreatedAt: now,
		ExpiresAt: req.Expires,
	}
	if req.Agent != nil {
		if *req.Agent <= 0 {
			return badRequest("agent %d is not an agent id", *req.Agent)
		}
		rule.AgentID = *req.Agent
	}
	if req.Expires != nil && !req.Expires.After(now) {
		return badRequest("expires %s is not in the future", req.Expires.Format(time.RFC3339))
	}
	added, err := a.cfg.Store.AddBlockRule(r.Context(), rule)
	if errors.Is(err, store.ErrNotFound) {
		return badRequest("there is no agent %d (see GET /api/v1/agents)", rule.AgentID)
	}
	if err != nil {
		return err
	}
	a.cfg.Log.Info("blocklist rule added", "rule", added.ID, "package", added.Package, "test", added.Test, "by", added.CreatedBy)
	writeJSON(w, http.StatusCreated, blockRuleView(added, now))
	return nil
}

func (a *API) listBlockRules(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		all := false
		if s := r.URL.Query().Get("all"); s != "" {
			var err error
			if all, err = strconv.ParseBool(s); err != nil {
				return badRequest("all %q: use true or false", s)
			}
		}
		now := a.cfg.Now()
		rules, err := a.cfg.Store.BlockRules(r.Context(), now, all)
		if err != nil {
			return err
		}
		out := apiv1.BlockRuleList{Rules: make([]apiv1.BlockRule, 0, len(rules))}
		for _, rule := range rules {
			out.Rules = append(out.Rules, blockRuleView(rule, now))
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})(w, r)
}

func (a *API) removeBlockRule(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	err = a.cfg.Store.RemoveBlockRule(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no blocklist rule %d", id)
	}
	if err != nil {
		return err
	}
	a.cfg.Log.Info("blocklist rule removed", "rule", id, "by", caller(r).Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
