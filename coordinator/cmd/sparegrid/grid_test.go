package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/api"
	"github.com/sparegrid/sparegrid/coordinator/client"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
)

// realCLI is a CLI talking to a real API over a real store, whose clock
// is testNow; it returns the store and the admin's token.
func realCLI(t *testing.T) (*cli, *sqlite.DB, string) {
	t.Helper()
	db := sqlite.NewTemp(t)
	_, tok, err := api.CreateAccount(t.Context(), db, store.Account{Name: "root", Email: "root@example.org", Role: store.RoleAdmin, CreatedAt: testNow})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{Store: db, Now: func() time.Time { return testNow },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(srv.Close)
	return &cli{t: t, env: map[string]string{"SPAREGRID_SERVER": srv.URL}}, db, tok
}

func TestGridHoldResume(t *testing.T) {
	c, db, tok := realCLI(t)
	if r := c.run("grid", "hold", "--reason", "upgrade"); r.code == 0 || !strings.Contains(r.stderr, "API token") {
		t.Errorf("grid hold without a token = %d %q, want a refusal naming the token", r.code, r.stderr)
	}
	c.env["SPAREGRID_TOKEN"] = tok
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "no reason", args: []string{"grid", "hold"}, wantCode: 1, wantStderr: `"reason" not set`},
		{name: "blank reason", args: []string{"grid", "hold", "--reason", " "}, wantCode: 1, wantStderr: "--reason must say why"},
		{name: "bad scope", args: []string{"grid", "hold", "--scope", "agent:1", "--reason", "r"}, wantCode: 1, wantStderr: "release:NAME"},
		{name: "hold the grid", args: []string{"grid", "hold", "--reason", "mirror upgrade"},
			wantStderr: "grid on hold by root since 2026-11-21 12:00 UTC: mirror upgrade\n"},
		{name: "hold trixie", args: []string{"grid", "hold", "--scope", "release:trixie", "--reason", "rebuild"},
			wantStderr: "release:trixie on hold by root"},
		{name: "resume the grid", args: []string{"grid", "resume"}, wantStderr: "lifted the hold root set on grid: mirror upgrade\n"},
		{name: "resume again", args: []string{"grid", "resume"}, wantCode: 1, wantStderr: "grid is not on hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run(tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("sparegrid %s = %d, stderr %q; want %d with %q", strings.Join(tt.args, " "), r.code, r.stderr, tt.wantCode, tt.wantStderr)
			}
		})
	}

	check := store.Hold{Scope: "release:trixie", Reason: "check mirror failed: HTTP 503", Since: testNow.Add(-90 * time.Minute), By: "check mirror"}
	if _, err := db.SetHold(t.Context(), check); err != nil {
		t.Fatal(err)
	}
	r := c.ok("grid", "holds")
	want := "SCOPE           BY            SINCE                 FOR    REASON\n" +
		"release:trixie  check mirror  2026-11-21 10:30 UTC  1h30m  check mirror failed: HTTP 503\n" +
		"release:trixie  root          2026-11-21 12:00 UTC  0s     rebuild\n"
	if r.stdout != want {
		t.Errorf("grid holds =\n%s\nwant\n%s", r.stdout, want)
	}
	var holds []client.Hold
	if err := json.Unmarshal([]byte(c.ok("grid", "holds", "--json").stdout), &holds); err != nil || len(holds) != 2 {
		t.Errorf("grid holds --json = %+v, %v; want two holds", holds, err)
	}

	r = c.run("grid", "resume", "--scope", "release:trixie")
	wantStderr := "lifted the hold root set on release:trixie: rebuild\n" +
		"release:trixie stays on hold while mirror fails: check mirror failed: HTTP 503\n"
	if r.code != 1 || !strings.HasPrefix(r.stderr, wantStderr) {
		t.Errorf("grid resume with a failing check = %d, stderr %q; want 1 starting %q", r.code, r.stderr, wantStderr)
	}
}

func TestDowntimeCommand(t *testing.T) {
	c, db, _ := realCLI(t)
	ctx := t.Context()
	for _, d := range []struct {
		check      string
		scope      store.Scope
		start, end time.Duration // before testNow; end 0: still down
		why        string
	}{
		{"mirror", "release:trixie", 5 * time.Hour, 4 * time.Hour, "HTTP 503"},
		{"dns", store.ScopeGrid, 3 * time.Hour, 150 * time.Minute, "exit status 1: SERVFAIL"},
		{"mirror", "release:trixie", 30 * time.Minute, 0, "timed out after 10s"},
	} {
		if _, err := db.OpenDowntime(ctx, d.check, d.scope, testNow.Add(-d.start), d.why); err != nil {
			t.Fatal(err)
		}
		if d.end != 0 {
			if _, err := db.CloseDowntime(ctx, d.check, testNow.Add(-d.end)); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := c.ok("downtime", "--since", "24h")
	want := "CHECK   SCOPE           START                 END                   DOWN  LAST ERROR\n" +
		"mirror  release:trixie  2026-11-21 07:00 UTC  2026-11-21 08:00 UTC  1h    HTTP 503\n" +
		"dns     grid            2026-11-21 09:00 UTC  2026-11-21 09:30 UTC  30m   exit status 1: SERVFAIL\n" +
		"mirror  release:trixie  2026-11-21 11:30 UTC  still down            30m   timed out after 10s\n" +
		"\nsince 2026-11-20 12:00 UTC:\n" +
		"  mirror held release:trixie for 1h30m in 2 interval(s)\n" +
		"  dns held grid for 30m in 1 interval(s)\n"
	if d := cmp.Diff(want, r.stdout); d != "" {
		t.Errorf("downtime --since 24h mismatch (-want +got):\n%s", d)
	}

	var rep client.DowntimeReport
	if err := json.Unmarshal([]byte(c.ok("downtime", "--since", "2026-11-21T08:30:00Z", "--json").stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Intervals) != 2 || rep.Intervals[0].Check != "dns" || rep.Intervals[1].End != nil {
		t.Errorf("downtime --json = %+v, want dns and the open mirror interval", rep.Intervals)
	}
	if r := c.run("downtime", "--since", "yesterday"); r.code != 1 || !strings.Contains(r.stderr, `--since "yesterday"`) {
		t.Errorf("downtime --since yesterday = %d %q, want a refusal", r.code, r.stderr)
	}
	if r := c.ok("downtime", "--since", "1m"); strings.Count(r.stdout, "UTC  still down") != 1 || strings.Count(r.stdout, "\n") != 5 {
		t.Errorf("downtime --since 1m =\n%s\nwant only the open interval", r.stdout)
	}
}
