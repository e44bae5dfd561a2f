package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/blobs"
	"github.com/sparegrid/sparegrid/coordinator/store"
)

// clockFixture is a fixture whose API clock the test sets.
func clockFixture(t *testing.T, now *time.Time) *fixture {
	t.Helper()
	f := newFixture(t)
	bs, err := blobs.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{Store: f.db, Blobs: bs, Now: func() time.Time { return *now },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(srv.Close)
	f.srv = srv
	return f
}

func errorMessage(b []byte) string {
	var e apiv1.ErrorResponse
	json.Unmarshal(b, &e)
	return e.Error.Message
}

func TestBlocklistRules(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := clockFixture(t, &now)
	maint := f.account("maint", "maintainer")
	owner, err := f.db.AccountByName(t.Context(), "maint")
	if err != nil {
		t.Fatal(err)
	}
	ag, err := f.db.CreateAgent(t.Context(), store.Agent{Name: "box", OwnerID: owner.ID, PublicKey: []byte("k"), ClaimCode: "C1", CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	until := now.Add(72 * time.Hour)
	tests := []struct {
		name     string
		token    string
		body     string
		wantCode int
		wantMsg  string // in the error message
	}{
		{name: "no token", body: `{"package":"hello","reason":"r"}`, wantCode: 401},
		{name: "maintainer", token: maint, body: `{"package":"hello","reason":"r"}`, wantCode: 403},
		{name: "no reason", token: f.admin, body: `{"package":"hello"}`, wantCode: 400, wantMsg: "a rule needs a reason"},
		{name: "bad glob", token: f.admin, body: `{"package":"linux-[","reason":"r"}`, wantCode: 400, wantMsg: `package glob "linux-[" is malformed`},
		{name: "agent and label", token: f.admin, body: `{"package":"hello","agent":1,"label":"x1","reason":"r"}`, wantCode: 400, wantMsg: "not both"},
		{name: "agent zero", token: f.admin, body: `{"package":"hello","agent":0,"reason":"r"}`, wantCode: 400, wantMsg: "agent 0 is not an agent id"},
		{name: "unknown agent", token: f.admin, body: `{"package":"hello","agent":99,"reason":"r"}`, wantCode: 400, wantMsg: "no agent 99"},
		{name: "expires in the past", token: f.admin, body: `{"package":"hello","reason":"r","expires":"2026-11-20T00:00:00Z"}`, wantCode: 400, wantMsg: "not in the future"},
		{name: "expires not a time", token: f.admin, body: `{"package":"hello","reason":"r","expires":"72h"}`, wantCode: 400},
		{name: "unknown field", token: f.admin, body: `{"package":"hello","reason":"r","priority":1}`, wantCode: 400},
		{name: "whole job", token: f.admin, body: `{"package":"hello","release":"trixie","reason":"  hangs the testbed "}`, wantCode: 201},
		{name: "one test on an agent, expiring", token: f.admin,
			body: `{"package":"linux-*","arch":"arm64","test":"smoke","agent":` + itoa(ag.ID) + `,"reason":"flaky on arm64 builders","expires":"` + until.Format(time.RFC3339) + `"}`, wantCode: 201},
	}
	var added []apiv1.BlockRule
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got apiv1.BlockRule
			code, _, body := f.do("POST", "/api/v1/blocklist", tt.token, strings.NewReader(tt.body), &got)
			if code != tt.wantCode || !strings.Contains(errorMessage(body), tt.wantMsg) {
				t.Fatalf("POST /blocklist %s = %d %s, want %d with %q", tt.body, code, body, tt.wantCode, tt.wantMsg)
			}
			if code == 201 {
				added = append(added, got)
			}
		})
	}
	if len(added) != 2 {
		t.Fatalf("added %d rules, want 2", len(added))
	}
	if r := added[0]; r.Reason != "hangs the testbed" || r.CreatedBy != "admin" || r.Agent != nil || r.ExpiresAt != nil ||
		r.Explanation != "blocklist rule "+itoa(r.ID)+" (~admin): hangs the testbed" {
		t.Errorf("whole-job rule = %+v", r)
	}
	if r := added[1]; r.Agent == nil || *r.Agent != ag.ID || r.ExpiresAt == nil || !r.ExpiresAt.Equal(until) || r.Expired ||
		r.Explanation != "blocklist rule "+itoa(r.ID)+" (~admin, until 2026-11-24 12:00 UTC): flaky on arm64 builders" {
		t.Errorf("single-test rule = %+v", r)
	}

	list := func(query string) []apiv1.BlockRule {
		t.Helper()
		var out apiv1.BlockRuleList
		code, _, body := f.do("GET", "/api/v1/blocklist"+query, "", nil, &out)
		if code != 200 || out.Rules == nil {
			t.Fatalf("GET /blocklist%s = %d %s", query, code, body)
		}
		return out.Rules
	}
	if got := list(""); len(got) != 2 || got[0].ID != added[0].ID || got[1].ID != added[1].ID {
		t.Errorf("GET /blocklist = %+v, want both rules, oldest first", got)
	}
	now = until
	if got := list(""); len(got) != 1 || got[0].ID != added[0].ID {
		t.Errorf("GET /blocklist after expiry = %+v, want the rule without expiry", got)
	}
	if got := list("?all=true"); len(got) != 2 || got[0].Expired || !got[1].Expired {
		t.Errorf("GET /blocklist?all=true after expiry = %+v, want both, the second expired", got)
	}
	if code, _, body := f.do("GET", "/api/v1/blocklist?all=maybe", "", nil, nil); code != 400 {
		t.Errorf("GET /blocklist?all=maybe = %d %s, want 400", code, body)
	}

	path := "/api/v1/blocklist/" + itoa(added[1].ID)
	steps := []struct {
		name     string
		path     string
		token    string
		wantCode int
	}{
		{"no token", path, "", 401},
		{"maintainer", path, maint, 403},
		{"bad id", "/api/v1/blocklist/x", f.admin, 400},
		{"admin", path, f.admin, 204},
		{"again", path, f.admin, 404},
	}
	for _, s := range steps {
		code, _, body := f.do("DELETE", s.path, s.token, nil, nil)
		if code != s.wantCode {
			t.Errorf("%s: DELETE %s = %d %s, want %d", s.name, s.path, code, body, s.wantCode)
		}
	}
	if got := list("?all=true"); len(got) != 1 {
		t.Errorf("GET /blocklist?all=true after removal = %+v, want one rule", got)
	}
}

func TestSubmitBlocked(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := clockFixture(t, &now)
	maint := f.account("maint", "maintainer")
	add := func(body string) apiv1.BlockRule {
		t.Helper()
		var r apiv1.BlockRule
		if code, _, b := f.do("POST", "/api/v1/blocklist", f.admin, strings.NewReader(body), &r); code != 201 {
			t.Fatalf("POST /blocklist %s = %d %s", body, code, b)
		}
		return r
	}
	whole := add(`{"package":"linux-*","release":"trixie","reason":"hangs the testbed","expires":"2026-12-01T00:00:00Z"}`)
	add(`{"package":"hello","test":"smoke","reason":"flaky"}`)
	add(`{"package":"hello","label":"slow","reason":"too slow there"}`)
	add(`{"package":"bash","version":"5.2-1","reason":"broken upload"}`)

	tests := []struct {
		name       string
		req        map[string]any
		wantCode   int
		wantMsg    string
		wantReason string
	}{
		{name: "blocked", req: map[string]any{"package": "linux-signed", "release": "trixie"}, wantCode: 409,
			wantMsg: "linux-signed on trixie/amd64 is blocked by blocklist rule " + itoa(whole.ID) + " (~admin, until 2026-12-01): hangs the testbed; submit with force"},
		{name: "forced", req: map[string]any{"package": "linux-signed", "release": "trixie", "force": true}, wantCode: 201,
			wantReason: "submitted despite blocklist rule " + itoa(whole.ID)},
		{name: "other release", req: map[string]any{"package": "linux-signed", "release": "sid"}, wantCode: 201},
		{name: "single-test rules do not block", req: map[string]any{"package": "hello", "release": "trixie"}, wantCode: 201},
		{name: "version blocked", req: map[string]any{"package": "bash", "release": "trixie", "version": "5.2-1"}, wantCode: 409, wantMsg: "bash 5.2-1 on trixie/amd64 is blocked"},
		{name: "other version", req: map[string]any{"package": "bash", "release": "trixie", "version": "5.2-2"}, wantCode: 201},
		{name: "forced, nothing blocks", req: map[string]any{"package": "dash", "release": "trixie", "force": true}, wantCode: 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j apiv1.Job
			code, _, body := f.do("POST", "/api/v1/jobs", maint, jsonBody(tt.req), &j)
			if code != tt.wantCode || !strings.Contains(errorMessage(body), tt.wantMsg) {
				t.Fatalf("POST /jobs %v = %d %s, want %d with %q", tt.req, code, body, tt.wantCode, tt.wantMsg)
			}
			if code == 409 && errorCode(body) != "conflict" {
				t.Errorf("POST /jobs %v error code = %q, want conflict", tt.req, errorCode(body))
			}
			if code == 201 && j.Reason != tt.wantReason {
				t.Errorf("POST /jobs %v reason = %q, want %q", tt.req, j.Reason, tt.wantReason)
			}
			if code == 201 {
				stored, err := f.db.Job(t.Context(), j.ID)
				if force, _ := tt.req["force"].(bool); err != nil || stored.Forced != force {
					t.Errorf("stored job %d = Forced %v, %v; want %v", j.ID, stored.Forced, err, force)
				}
			}
		})
	}

	now = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if code, _, body := f.do("POST", "/api/v1/jobs", maint, jsonBody(map[string]any{"package": "linux-signed", "release": "trixie"}), nil); code != 201 {
		t.Errorf("POST /jobs once the rule expired = %d %s, want 201", code, body)
	}
}

func TestInvalidErrorIsBadRequest(t *testing.T) {
	f := newFixture(t)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	New(Config{Store: f.db, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).fail(rec, req, &store.InvalidError{Reason: "reason text"})
	if rec.Code != http.StatusBadRequest || errorMessage(rec.Body.Bytes()) != "reason text" {
		t.Errorf("fail(InvalidError) = %d %s, want 400 with the reason alone", rec.Code, rec.Body)
	}
}
