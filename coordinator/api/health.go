package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/store"
)

// DefaultDowntimeWindow is how far back GET /downtime looks without since.
const DefaultDowntimeWindow = 7 * 24 * time.Hour

func holdView(h store.Hold) apiv1.Hold {
	return apiv1.Hold{Scope: string(h.Scope), Reason: h.Reason, Since: h.Since, By: h.By}
}

func holdViews(hs []store.Hold) []apiv1.Hold {
	out := make([]apiv1.Hold, 0, len(hs))
	for _, h := range hs {
		out = append(out, holdView(h))
	}
	return out
}

// requestScope parses a scope from a request, empty meaning the grid.
func requestScope(s string) (store.Scope, error) {
	if s == "" {
		return store.ScopeGrid, nil
	}
	return store.ParseScope(s)
}

func (a *API) holdGrid(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.HoldRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	scope, err := requestScope(req.Scope)
	if err != nil {
		return err
	}
	h, err := a.cfg.Store.SetHold(r.Context(), store.Hold{Scope: scope, Reason: strings.TrimSpace(req.Reason), Since: a.cfg.Now(), By: caller(r).Name})
	if err != nil {
		return err
	}
	a.cfg.Log.Warn("scope put on hold", "scope", h.Scope, "by", h.By, "reason", h.Reason)
	writeJSON(w, http.StatusOK, holdView(h))
	return nil
}

func (a *API) resumeGrid(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.ResumeRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	scope, err := requestScope(req.Scope)
	if err != nil {
		return err
	}
	holds, err := a.cfg.Store.Holds(r.Context())
	if err != nil {
		return err
	}
	var lifted, remaining []store.Hold
	for _, h := range holds {
		if h.Scope != scope {
			continue
		}
		if _, isCheck := h.CheckName(); isCheck {
			remaining = append(remaining, h)
			continue
		}
		err := a.cfg.Store.ClearHold(r.Context(), h.Scope, h.By)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		lifted = append(lifted, h)
	}
	if len(lifted) == 0 && len(remaining) == 0 {
		return notFound("%s is not on hold (see GET /api/v1/grid/holds)", scope)
	}
	if len(lifted) > 0 {
		a.cfg.Log.Info("hold lifted", "scope", scope, "by", caller(r).Name)
		a.cfg.Jobs.Notify()
	}
	writeJSON(w, http.StatusOK, apiv1.ResumeResponse{Lifted: holdViews(lifted), Remaining: holdViews(remaining)})
	return nil
}

func (a *API) listHolds(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		holds, err := a.cfg.Store.Holds(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, apiv1.HoldList{Holds: holdViews(holds)})
		return nil
	})(w, r)
}

func (a *API) downtime(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		now := a.cfg.Now().UTC()
		since := now.Add(-DefaultDowntimeWindow)
		if s := r.URL.Query().Get("since"); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return badRequest("since %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
			}
			since = t.UTC()
		}
		ds, err := a.cfg.Store.Downtime(r.Context(), since)
		if err != nil {
			return err
		}
		out := apiv1.DowntimeReport{Since: since, Now: now, Intervals: make([]apiv1.DowntimeInterval, 0, len(ds))}
		for _, d := range ds {
			out.Intervals = append(out.Intervals, apiv1.DowntimeInterval{
				Check: d.Check, Scope: string(d.Scope), Start: d.Started, End: d.Ended,
				DurationSeconds: int64(d.Duration(now) / time.Second), LastError: d.LastError,
			})
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})(w, r)
}
