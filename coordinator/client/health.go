package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
)

type (
	// Hold is one holder's hold on a scope.
	Hold = apiv1.Hold
	// ResumeResponse says which holds a resume lifted and which remain.
	ResumeResponse = apiv1.ResumeResponse
	// DowntimeInterval is one stretch of time a health check failed.
	DowntimeInterval = apiv1.DowntimeInterval
	// DowntimeReport is the downtime since a time.
	DowntimeReport = apiv1.DowntimeReport
)

// Hold puts scope ("" for the grid) on hold for reason (admin only) and
// returns the hold.
func (c *Client) Hold(ctx context.Context, scope, reason string) (Hold, error) {
	var h Hold
	err := c.doJSON(ctx, http.MethodPost, "/grid/hold", nil, apiv1.HoldRequest{Scope: scope, Reason: reason}, &h)
	return h, err
}

// Resume lifts the admins' holds on scope ("" for the grid; admin only).
func (c *Client) Resume(ctx context.Context, scope string) (ResumeResponse, error) {
	var r ResumeResponse
	err := c.doJSON(ctx, http.MethodPost, "/grid/resume", nil, apiv1.ResumeRequest{Scope: scope}, &r)
	return r, err
}

// Holds lists every hold, by scope.
func (c *Client) Holds(ctx context.Context) ([]Hold, error) {
	var resp apiv1.HoldList
	err := c.doJSON(ctx, http.MethodGet, "/grid/holds", nil, nil, &resp)
	return resp.Holds, err
}

// Downtime reports the health checks' downtime still open or ended after
// since; a zero since means the coordinator's default window.
func (c *Client) Downtime(ctx context.Context, since time.Time) (DowntimeReport, error) {
	var q url.Values
	if !since.IsZero() {
		q = url.Values{"since": {since.UTC().Format(time.RFC3339)}}
	}
	var r DowntimeReport
	err := c.doJSON(ctx, http.MethodGet, "/downtime", q, nil, &r)
	return r, err
}
