package health

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		wasDown bool
		up      bool
		want    Transition
	}{
		{name: "up stays up", up: true, want: StillUp},
		{name: "up goes down", want: WentDown},
		{name: "down stays down", wasDown: true, want: StillDown},
		{name: "down comes up", wasDown: true, up: true, want: CameUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(tt.wasDown, Outcome{Up: tt.up}); got != tt.want {
				t.Errorf("decide(%v, up %v) = %v, want %v", tt.wasDown, tt.up, got, tt.want)
			}
		})
	}
}

func TestOverdue(t *testing.T) {
	now := time.Date(2026, 5, 6, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	cutoff := now.Add(-day)
	hold := func(scope store.Scope, by string, age time.Duration) store.Hold {
		return store.Hold{Scope: scope, Reason: "mirror unreachable", Since: now.Add(-age), By: by}
	}
	tests := []struct {
		name  string
		holds []store.Hold
		want  []abort
	}{
		{name: "no holds"},
		{name: "young hold", holds: []store.Hold{hold(store.ScopeGrid, "check dns", day-time.Second)}},
		{name: "check hold exactly at the limit", holds: []store.Hold{hold("release:trixie", "check mirror", day)},
			want: []abort{{scope: "release:trixie", queuedBefore: cutoff, reason: "held for 24h while check mirror failed"}}},
		{name: "admin hold", holds: []store.Hold{hold("arch:arm64", "alice", 2*day)},
			want: []abort{{scope: "arch:arm64", queuedBefore: cutoff, reason: "held for 24h while alice held arch:arm64: mirror unreachable"}}},
		{name: "oldest holder explains", holds: []store.Hold{
			hold("arch:arm64", "check a", 3*day), hold("arch:arm64", "check b", 2*day), hold(store.ScopeGrid, "check c", time.Hour),
		}, want: []abort{{scope: "arch:arm64", queuedBefore: cutoff, reason: "held for 24h while check a failed"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := overdue(tt.holds, now, day)
			if d := cmp.Diff(tt.want, got, cmp.AllowUnexported(abort{})); d != "" {
				t.Errorf("overdue mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestShortDuration(t *testing.T) {
	for _, tt := range []struct {
		in   time.Duration
		want string
	}{
		{24 * time.Hour, "24h"},
		{90 * time.Minute, "1h30m"},
		{90 * time.Second, "1m30s"},
		{2 * time.Minute, "2m"},
		{45 * time.Second, "45s"},
	} {
		if got := shortDuration(tt.in); got != tt.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Check{Name: "mirror", HTTP: "http://deb.example.org/debian/dists/trixie/Release"}
	change := func(f func(*Check)) Check {
		c := good
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		in      Check
		wantErr string // in the error; empty for none
	}{
		{name: "http with defaults", in: good},
		{name: "command", in: Check{Name: "dns-1", Command: []string{"/usr/bin/host", "deb.debian.org"}, Interval: 10 * time.Second, Timeout: 5 * time.Second, Scope: "arch:arm64"}},
		{name: "label scope", in: change(func(c *Check) { c.Scope = "label:gpu" })},
		{name: "no name", in: change(func(c *Check) { c.Name = "" }), wantErr: `name ""`},
		{name: "upper-case name", in: change(func(c *Check) { c.Name = "Mirror" }), wantErr: `name "Mirror"`},
		{name: "both probes", in: change(func(c *Check) { c.Command = []string{"/bin/true"} }), wantErr: "not both"},
		{name: "no probe", in: change(func(c *Check) { c.HTTP = "" }), wantErr: "set command"},
		{name: "relative program", in: Check{Name: "x", Command: []string{"true"}}, wantErr: "absolute path"},
		{name: "ftp url", in: change(func(c *Check) { c.HTTP = "ftp://x/" }), wantErr: "not an http"},
		{name: "url without host", in: change(func(c *Check) { c.HTTP = "http:///x" }), wantErr: "not an http"},
		{name: "interval too short", in: change(func(c *Check) { c.Interval = 9 * time.Second }), wantErr: "interval 9s"},
		{name: "negative timeout", in: change(func(c *Check) { c.Timeout = -time.Second }), wantErr: "timeout -1s"},
		{name: "timeout above interval", in: change(func(c *Check) { c.Interval, c.Timeout = 10*time.Second, 11*time.Second }), wantErr: "timeout 11s"},
		{name: "bad scope", in: change(func(c *Check) { c.Scope = "agent:1" }), wantErr: `scope "agent:1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrCheck) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want ErrCheck mentioning %q", err, tt.wantErr)
			}
		})
	}
	if err := CheckAll([]Check{good, good}); !errors.Is(err, ErrCheck) || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("CheckAll(twice) = %v, want ErrCheck mentioning the duplicate", err)
	}
}

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProbeCommand(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		timeout time.Duration
		want    Outcome
	}{
		{name: "true", command: []string{"/bin/true"}, want: Outcome{Up: true}},
		{name: "false", command: []string{"/bin/false"}, want: Outcome{Detail: "exit status 1"}},
		{name: "script output", command: []string{script(t, "echo 'mirror\tunreachable'; echo line2 >&2; exit 3")},
			want: Outcome{Detail: "exit status 3: mirror unreachable line2"}},
		{name: "long output is cut", command: []string{script(t, "head -c 10000 /dev/zero | tr '\\0' x; exit 1")},
			want: Outcome{Detail: "exit status 1: " + strings.Repeat("x", maxExcerpt) + "..."}},
		{name: "timeout kills the group", command: []string{script(t, "sleep 60 & sleep 60")}, timeout: 200 * time.Millisecond,
			want: Outcome{Detail: "timed out after 200ms"}},
		{name: "missing program", command: []string{"/nonexistent/check"},
			want: Outcome{Detail: "fork/exec /nonexistent/check: no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Probe(t.Context(), Check{Name: "c", Command: tt.command, Timeout: tt.timeout})
			if got != tt.want {
				t.Errorf("Probe(%v) = %+v, want %+v", tt.command, got, tt.want)
			}
		})
	}
}

func TestProbeHTTP(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") })
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "backend\nunavailable", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, strings.Repeat("y", 1<<20))
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	tests := []struct {
		name    string
		path    string
		timeout time.Duration
		want    Outcome
	}{
		{name: "2xx", path: "/ok", want: Outcome{Up: true}},
		{name: "503", path: "/down", want: Outcome{Detail: "HTTP 503 Service Unavailable: backend unavailable"}},
		{name: "big body is bounded", path: "/huge", want: Outcome{Detail: "HTTP 500 Internal Server Error: " + strings.Repeat("y", maxExcerpt) + "..."}},
		{name: "404", path: "/missing", want: Outcome{Detail: "HTTP 404 Not Found: 404 page not found"}},
		{name: "timeout", path: "/hang", timeout: 200 * time.Millisecond, want: Outcome{Detail: "timed out after 200ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Probe(t.Context(), Check{Name: "h", HTTP: srv.URL + tt.path, Timeout: tt.timeout})
			if got != tt.want {
				t.Errorf("Probe(%s) = %+v, want %+v", tt.path, got, tt.want)
			}
		})
	}
}

// runnerFixture is a Runner over a real store whose clock and probe
// outcomes the test sets.
type runnerFixture struct {
	db       *sqlite.DB
	r        *Runner
	now      time.Time
	outcome  map[string]Outcome
	resumed  int
	aborted  []int64
	checkFor map[string]Check
}

func newRunnerFixture(t *testing.T, checks ...Check) *runnerFixture {
	t.Helper()
	f := &runnerFixture{
		db:       sqlite.NewTemp(t),
		now:      time.Date(2026, 5, 6, 12, 0, 0, 0, time.UTC),
		outcome:  map[string]Outcome{},
		checkFor: map[string]Check{},
	}
	f.r = New(Config{
		Store: f.db, Checks: checks, MaxHold: 24 * time.Hour,
		Probe:    func(_ context.Context, c Check) Outcome { return f.outcome[c.Name] },
		Now:      func() time.Time { return f.now },
		OnResume: func() { f.resumed++ },
		OnAbort:  func(_ store.Scope, ids []int64, _ string) { f.aborted = append(f.aborted, ids...) },
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	for _, c := range f.r.cfg.Checks {
		f.checkFor[c.Name] = c
	}
	return f
}

func (f *runnerFixture) step(t *testing.T, name string, down bool) bool {
	t.Helper()
	got, err := f.r.step(t.Context(), f.checkFor[name], down)
	if err != nil {
		t.Fatalf("step(%s) = %v", name, err)
	}
	return got
}

func (f *runnerFixture) holds(t *testing.T) []store.Hold {
	t.Helper()
	h, err := f.db.Holds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (f *runnerFixture) downtime(t *testing.T) []store.DowntimeInterval {
	t.Helper()
	d, err := f.db.Downtime(t.Context(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRunnerStep(t *testing.T) {
	f := newRunnerFixture(t, Check{Name: "mirror", HTTP: "http://mirror.invalid/", Scope: "release:trixie"})
	start := f.now
	f.outcome["mirror"] = Outcome{Up: true}
	ignoreID := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".ID" }, cmp.Ignore())

	if down := f.step(t, "mirror", false); down {
		t.Fatalf("step(up) = down")
	}
	if h := f.holds(t); len(h) != 0 {
		t.Fatalf("holds after an up check = %+v, want none", h)
	}

	f.outcome["mirror"] = Outcome{Detail: "HTTP 503"}
	if down := f.step(t, "mirror", false); !down {
		t.Fatalf("step(failing) = up, want down")
	}
	f.now = start.Add(time.Minute)
	f.outcome["mirror"] = Outcome{Detail: "timed out after 10s"}
	f.step(t, "mirror", true)
	wantHold := []store.Hold{{Scope: "release:trixie", Reason: "check mirror failed: timed out after 10s", Since: start, By: "check mirror"}}
	if d := cmp.Diff(wantHold, f.holds(t)); d != "" {
		t.Errorf("holds while down (-want +got):\n%s", d)
	}
	wantDown := []store.DowntimeInterval{{Check: "mirror", Scope: "release:trixie", Started: start, LastError: "timed out after 10s"}}
	if d := cmp.Diff(wantDown, f.downtime(t), ignoreID); d != "" {
		t.Errorf("downtime while down (-want +got):\n%s", d)
	}

	f.now = start.Add(5 * time.Minute)
	f.outcome["mirror"] = Outcome{Up: true}
	if down := f.step(t, "mirror", true); down {
		t.Fatalf("step(recovered) = down, want up")
	}
	if h := f.holds(t); len(h) != 0 {
		t.Errorf("holds after recovery = %+v, want none", h)
	}
	wantDown[0].Ended = &f.now
	if d := cmp.Diff(wantDown, f.downtime(t), ignoreID); d != "" {
		t.Errorf("downtime after recovery (-want +got):\n%s", d)
	}
	if f.resumed != 1 {
		t.Errorf("OnResume called %d times, want 1", f.resumed)
	}
}

func TestRunnerSettle(t *testing.T) {
	f := newRunnerFixture(t, Check{Name: "dns", Command: []string{"/bin/true"}}, Check{Name: "moved", Command: []string{"/bin/true"}, Scope: "arch:arm64"})
	ctx := t.Context()
	past := f.now.Add(-time.Hour)
	for _, c := range []struct {
		name  string
		scope store.Scope
	}{{"dns", store.ScopeGrid}, {"gone", "release:sid"}, {"moved", "arch:amd64"}} {
		if _, err := f.db.SetHold(ctx, store.Hold{Scope: c.scope, Reason: "r", Since: past, By: store.CheckHolder(c.name)}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.db.OpenDowntime(ctx, c.name, c.scope, past, "e"); err != nil {
			t.Fatal(err)
		}
	}
	admin := store.Hold{Scope: "release:sid", Reason: "upgrade", Since: past, By: "alice"}
	if _, err := f.db.SetHold(ctx, admin); err != nil {
		t.Fatal(err)
	}
	down, err := f.r.settle(ctx)
	if err != nil {
		t.Fatalf("settle = %v", err)
	}
	if d := cmp.Diff(map[string]bool{"dns": true}, down); d != "" {
		t.Errorf("settle down checks (-want +got):\n%s", d)
	}
	wantHolds := []store.Hold{{Scope: store.ScopeGrid, Reason: "r", Since: past, By: "check dns"}, admin}
	if d := cmp.Diff(wantHolds, f.holds(t)); d != "" {
		t.Errorf("holds after settle (-want +got):\n%s", d)
	}
	for _, d := range f.downtime(t) {
		if open := d.Ended == nil; open != (d.Check == "dns") {
			t.Errorf("downtime of %s open = %v after settle, want open only for dns", d.Check, open)
		}
	}
}

func TestAbortOverdue(t *testing.T) {
	f := newRunnerFixture(t)
	ctx := t.Context()
	start := f.now
	job := func(release string, at time.Time) store.Job {
		j, err := f.db.CreateJob(ctx, store.Job{Package: "hello", Release: release, Arch: "amd64", CreatedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	old := job("trixie", start)
	other := job("sid", start)
	if _, err := f.db.SetHold(ctx, store.Hold{Scope: "release:trixie", Reason: "check mirror failed: HTTP 503", Since: start, By: "check mirror"}); err != nil {
		t.Fatal(err)
	}
	f.now = start.Add(23 * time.Hour)
	young := job("trixie", f.now)
	if err := f.r.abortOverdue(ctx); err != nil {
		t.Fatalf("abortOverdue = %v", err)
	}
	if len(f.aborted) != 0 {
		t.Fatalf("aborted %v before the limit, want none", f.aborted)
	}
	f.now = start.Add(24 * time.Hour)
	if err := f.r.abortOverdue(ctx); err != nil {
		t.Fatalf("abortOverdue = %v", err)
	}
	if d := cmp.Diff([]int64{old.ID}, f.aborted); d != "" {
		t.Errorf("aborted jobs (-want +got):\n%s", d)
	}
	j, err := f.db.Job(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != store.JobDone || j.Verdict != dep8.VerdictError || j.Reason != "held for 24h while check mirror failed" {
		t.Errorf("aborted job = %s %s %q, want done error %q", j.State, j.Verdict, j.Reason, "held for 24h while check mirror failed")
	}
	for _, id := range []int64{other.ID, young.ID} {
		if j, err := f.db.Job(ctx, id); err != nil || j.State != store.JobQueued {
			t.Errorf("Job(%d) = %s, %v; want queued", id, j.State, err)
		}
	}
}

// TestRunLoop runs the real loop, on the bubble's clock, with a real
// command: a script that fails until a file exists holds the grid, and the
// hold lifts once the file is there.
func TestRunLoop(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "ok")
	c := Check{Name: "flag", Command: []string{script(t, "test -e "+flag)}, Interval: MinInterval}
	db := sqlite.NewTemp(t)
	synctest.Test(t, func(t *testing.T) {
		resumed := make(chan struct{}, 1)
		probed := make(chan Outcome)
		r := New(Config{
			Store: db, Checks: []Check{c},
			Probe: func(ctx context.Context, c Check) Outcome {
				o := Probe(ctx, c)
				select {
				case probed <- o:
				case <-ctx.Done():
				}
				return o
			},
			OnResume: func() { resumed <- struct{}{} },
			Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()

		if o := <-probed; o.Up {
			t.Fatalf("first probe = up, want down")
		}
		synctest.Wait()
		if h, err := db.Holds(ctx); err != nil || len(h) != 1 || h[0].Scope != store.ScopeGrid {
			t.Errorf("Holds after a failure = %+v, %v; want the grid held", h, err)
		}
		if err := os.WriteFile(flag, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if o := <-probed; !o.Up {
			t.Fatalf("second probe = %+v, want up", o)
		}
		if waited := time.Since(start); waited < MinInterval*95/100 || waited > MinInterval*105/100 {
			t.Errorf("second probe came %v after the first, want the interval %v within 5%%", waited, MinInterval)
		}
		<-resumed
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
	})
	if h, err := db.Holds(t.Context()); err != nil || len(h) != 0 {
		t.Errorf("Holds after recovery = %+v, %v; want none", h, err)
	}
	d, err := db.Downtime(t.Context(), time.Time{})
	if err != nil || len(d) != 1 || d[0].Ended == nil || !strings.HasPrefix(d[0].LastError, "exit status 1") {
		t.Errorf("Downtime = %+v, %v; want one ended interval with exit status 1", d, err)
	}
}
