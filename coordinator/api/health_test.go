package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/store"
)

func TestHoldAndResume(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := clockFixture(t, &now)
	maint := f.account("maint", "maintainer")
	check := store.Hold{Scope: "release:trixie", Reason: "check mirror failed: HTTP 503", Since: now.Add(-time.Hour), By: store.CheckHolder("mirror")}
	if _, err := f.db.SetHold(t.Context(), check); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name     string
		path     string
		token    string
		body     string
		wantCode int
		wantMsg  string // in the error message
	}{
		{name: "hold without token", path: "/api/v1/grid/hold", body: `{"reason":"r"}`, wantCode: 401},
		{name: "hold by a maintainer", path: "/api/v1/grid/hold", token: maint, body: `{"reason":"r"}`, wantCode: 403},
		{name: "hold without reason", path: "/api/v1/grid/hold", token: f.admin, body: `{}`, wantCode: 400, wantMsg: "a hold needs a reason"},
		{name: "hold a bad scope", path: "/api/v1/grid/hold", token: f.admin, body: `{"scope":"agent:1","reason":"r"}`, wantCode: 400, wantMsg: "release:NAME"},
		{name: "hold unknown field", path: "/api/v1/grid/hold", token: f.admin, body: `{"reason":"r","until":"x"}`, wantCode: 400},
		{name: "hold the grid", path: "/api/v1/grid/hold", token: f.admin, body: `{"reason":" mirror upgrade "}`, wantCode: 200},
		{name: "hold trixie too", path: "/api/v1/grid/hold", token: f.admin, body: `{"scope":"release:trixie","reason":"mirror upgrade"}`, wantCode: 200},
		{name: "resume by a maintainer", path: "/api/v1/grid/resume", token: maint, body: `{}`, wantCode: 403},
		{name: "resume a scope not held", path: "/api/v1/grid/resume", token: f.admin, body: `{"scope":"arch:arm64"}`, wantCode: 404, wantMsg: "arch:arm64 is not on hold"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			code, _, body := f.do("POST", s.path, s.token, strings.NewReader(s.body), nil)
			if code != s.wantCode || !strings.Contains(errorMessage(body), s.wantMsg) {
				t.Fatalf("POST %s %s = %d %s, want %d with %q", s.path, s.body, code, body, s.wantCode, s.wantMsg)
			}
		})
	}

	grid := apiv1.Hold{Scope: "grid", Reason: "mirror upgrade", Since: now, By: "admin"}
	trixie := apiv1.Hold{Scope: "release:trixie", Reason: "mirror upgrade", Since: now, By: "admin"}
	checkView := apiv1.Hold{Scope: "release:trixie", Reason: check.Reason, Since: check.Since, By: "check mirror"}
	var list apiv1.HoldList
	if code, _, body := f.do("GET", "/api/v1/grid/holds", "", nil, &list); code != http.StatusOK {
		t.Fatalf("GET /grid/holds = %d %s", code, body)
	}
	if d := cmp.Diff([]apiv1.Hold{grid, checkView, trixie}, list.Holds); d != "" {
		t.Errorf("GET /grid/holds mismatch (-want +got):\n%s", d)
	}

	var resumed apiv1.ResumeResponse
	if code, _, body := f.do("POST", "/api/v1/grid/resume", f.admin, strings.NewReader(`{"scope":"release:trixie"}`), &resumed); code != http.StatusOK {
		t.Fatalf("POST /grid/resume trixie = %d %s", code, body)
	}
	want := apiv1.ResumeResponse{Lifted: []apiv1.Hold{trixie}, Remaining: []apiv1.Hold{checkView}}
	if d := cmp.Diff(want, resumed); d != "" {
		t.Errorf("POST /grid/resume trixie mismatch (-want +got):\n%s", d)
	}
	if code, _, body := f.do("POST", "/api/v1/grid/resume", f.admin, strings.NewReader(`{}`), &resumed); code != http.StatusOK || len(resumed.Lifted) != 1 {
		t.Fatalf("POST /grid/resume grid = %d %s, want one hold lifted", code, body)
	}
	if code, _, body := f.do("GET", "/api/v1/grid/holds", "", nil, &list); code != http.StatusOK || len(list.Holds) != 1 || list.Holds[0].By != "check mirror" {
		t.Errorf("GET /grid/holds after resume = %d %s, want only the check's hold", code, body)
	}
}

func TestDowntimeReport(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := clockFixture(t, &now)
	ctx := t.Context()
	old := now.Add(-10 * 24 * time.Hour)
	for _, d := range []struct {
		check      string
		start, end time.Time
	}{
		{"ancient", old, old.Add(time.Hour)},
		{"dns", now.Add(-2 * time.Hour), now.Add(-90 * time.Minute)},
		{"mirror", now.Add(-time.Hour), time.Time{}},
	} {
		if _, err := f.db.OpenDowntime(ctx, d.check, store.ScopeGrid, d.start, "exit status 1"); err != nil {
			t.Fatal(err)
		}
		if !d.end.IsZero() {
			if _, err := f.db.CloseDowntime(ctx, d.check, d.end); err != nil {
				t.Fatal(err)
			}
		}
	}
	dnsEnd := now.Add(-90 * time.Minute)
	dns := apiv1.DowntimeInterval{Check: "dns", Scope: "grid", Start: now.Add(-2 * time.Hour), End: &dnsEnd, DurationSeconds: 1800, LastError: "exit status 1"}
	mirror := apiv1.DowntimeInterval{Check: "mirror", Scope: "grid", Start: now.Add(-time.Hour), DurationSeconds: 3600, LastError: "exit status 1"}
	tests := []struct {
		name     string
		query    string
		wantCode int
		want     []apiv1.DowntimeInterval
	}{
		{name: "default week", wantCode: 200, want: []apiv1.DowntimeInterval{dns, mirror}},
		{name: "since", query: "?since=" + now.Add(-80*time.Minute).Format(time.RFC3339), wantCode: 200, want: []apiv1.DowntimeInterval{mirror}},
		{name: "bad since", query: "?since=yesterday", wantCode: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got apiv1.DowntimeReport
			code, _, body := f.do("GET", "/api/v1/downtime"+tt.query, "", nil, &got)
			if code != tt.wantCode {
				t.Fatalf("GET /downtime%s = %d %s, want %d", tt.query, code, body, tt.wantCode)
			}
			if code != 200 {
				return
			}
			if d := cmp.Diff(tt.want, got.Intervals); d != "" {
				t.Errorf("GET /downtime%s mismatch (-want +got):\n%s", tt.query, d)
			}
		})
	}
}
