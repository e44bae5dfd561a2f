package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// testHolds checks setting, refreshing, listing and clearing holds, and
// the validation of new ones.
func testHolds(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	ctx := t.Context()
	hold := func(change func(*store.Hold)) store.Hold {
		h := store.Hold{Scope: "release:trixie", Reason: "mirror down", Since: t0(), By: store.CheckHolder("mirror")}
		if change != nil {
			change(&h)
		}
		return h
	}
	refusals := []struct {
		name string
		in   store.Hold
	}{
		{name: "no scope", in: hold(func(h *store.Hold) { h.Scope = "" })},
		{name: "unknown scope kind", in: hold(func(h *store.Hold) { h.Scope = "agent:3" })},
		{name: "bad release", in: hold(func(h *store.Hold) { h.Scope = "release:../x" })},
		{name: "bad label", in: hold(func(h *store.Hold) { h.Scope = "label:-x" })},
		{name: "no reason", in: hold(func(h *store.Hold) { h.Reason = "  " })},
		{name: "reason with a newline", in: hold(func(h *store.Hold) { h.Reason = "a\nb" })},
		{name: "reason too long", in: hold(func(h *store.Hold) { h.Reason = strings.Repeat("x", store.MaxHealthReason+1) })},
		{name: "no holder", in: hold(func(h *store.Hold) { h.By = "" })},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.SetHold(ctx, tt.in)
			var ie *store.InvalidError
			if !errors.As(err, &ie) || ie.Reason == "" || !errors.Is(err, store.ErrInvalid) {
				t.Errorf("SetHold(%+v) = %v, want an *InvalidError with a reason", tt.in, err)
			}
		})
	}

	check := hold(nil)
	got, err := s.SetHold(ctx, check)
	checkErr(t, "SetHold(check)", err, nil)
	diff(t, "SetHold(check)", got, check)

	again := hold(func(h *store.Hold) { h.Reason, h.Since = "mirror still down", at(time.Hour) })
	got, err = s.SetHold(ctx, again)
	checkErr(t, "SetHold(again)", err, nil)
	refreshed := hold(func(h *store.Hold) { h.Reason = "mirror still down" })
	diff(t, "SetHold(again) keeps Since", got, refreshed)

	admin := store.Hold{Scope: "release:trixie", Reason: "upgrading the mirror", Since: at(2 * time.Hour), By: "admin1"}
	grid := store.Hold{Scope: store.ScopeGrid, Reason: "maintenance", Since: at(3 * time.Hour), By: "admin1"}
	for _, h := range []store.Hold{admin, grid} {
		if _, err := s.SetHold(ctx, h); err != nil {
			t.Fatalf("SetHold(%+v) = %v", h, err)
		}
	}
	holds, err := s.Holds(ctx)
	checkErr(t, "Holds", err, nil)
	diff(t, "Holds", holds, []store.Hold{grid, refreshed, admin})

	checkErr(t, "ClearHold(check)", s.ClearHold(ctx, check.Scope, check.By), nil)
	checkErr(t, "ClearHold(check again)", s.ClearHold(ctx, check.Scope, check.By), store.ErrNotFound)
	checkErr(t, "ClearHold(unknown scope)", s.ClearHold(ctx, "arch:s390x", "admin1"), store.ErrNotFound)
	holds, err = s.Holds(ctx)
	checkErr(t, "Holds after clear", err, nil)
	diff(t, "Holds after clear", holds, []store.Hold{grid, admin})
}

// testDowntime checks opening, refreshing, closing and listing downtime
// intervals.
func testDowntime(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	ctx := t.Context()

	for _, tt := range []struct {
		name, check string
		scope       store.Scope
		reason      string
	}{
		{name: "no check", scope: store.ScopeGrid, reason: "x"},
		{name: "bad scope", check: "dns", scope: "galaxy", reason: "x"},
		{name: "multi-line reason", check: "dns", scope: store.ScopeGrid, reason: "a\nb"},
		{name: "long reason", check: "dns", scope: store.ScopeGrid, reason: strings.Repeat("x", store.MaxHealthReason+1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.OpenDowntime(ctx, tt.check, tt.scope, t0(), tt.reason)
			checkErr(t, "OpenDowntime", err, store.ErrInvalid)
		})
	}

	open, err := s.OpenDowntime(ctx, "dns", store.ScopeGrid, t0(), "exit status 1")
	checkErr(t, "OpenDowntime(dns)", err, nil)
	if open.ID <= 0 {
		t.Errorf("OpenDowntime(dns) = id %d, want a positive id", open.ID)
	}
	want := store.DowntimeInterval{ID: open.ID, Check: "dns", Scope: store.ScopeGrid, Started: t0(), LastError: "exit status 1"}
	diff(t, "OpenDowntime(dns)", open, want)

	open, err = s.OpenDowntime(ctx, "dns", store.ScopeGrid, at(time.Minute), "exit status 2")
	checkErr(t, "OpenDowntime(dns again)", err, nil)
	want.LastError = "exit status 2"
	diff(t, "OpenDowntime(dns again) keeps the interval", open, want)

	_, err = s.CloseDowntime(ctx, "dns", at(-time.Minute))
	checkErr(t, "CloseDowntime(before start)", err, store.ErrInvalid)
	closed, err := s.CloseDowntime(ctx, "dns", at(10*time.Minute))
	checkErr(t, "CloseDowntime(dns)", err, nil)
	want.Ended = ptr(at(10 * time.Minute))
	diff(t, "CloseDowntime(dns)", closed, want)
	if d := closed.Duration(at(time.Hour)); d != 10*time.Minute {
		t.Errorf("Duration = %v, want 10m", d)
	}
	_, err = s.CloseDowntime(ctx, "dns", at(11*time.Minute))
	checkErr(t, "CloseDowntime(dns again)", err, store.ErrNotFound)
	_, err = s.CloseDowntime(ctx, "unknown", at(11*time.Minute))
	checkErr(t, "CloseDowntime(unknown)", err, store.ErrNotFound)

	second, err := s.OpenDowntime(ctx, "dns", store.ScopeGrid, at(20*time.Minute), "timeout")
	checkErr(t, "OpenDowntime(dns, second time)", err, nil)
	if second.ID == open.ID {
		t.Errorf("OpenDowntime after close = interval %d, want a new one", second.ID)
	}
	mirror, err := s.OpenDowntime(ctx, "mirror", "release:trixie", at(15*time.Minute), "HTTP 503")
	checkErr(t, "OpenDowntime(mirror)", err, nil)

	for _, tt := range []struct {
		name  string
		since time.Time
		want  []store.DowntimeInterval
	}{
		{name: "everything", since: time.Time{}, want: []store.DowntimeInterval{closed, mirror, second}},
		{name: "ended just before since", since: at(10 * time.Minute), want: []store.DowntimeInterval{mirror, second}},
		{name: "ended after since", since: at(10*time.Minute - time.Nanosecond), want: []store.DowntimeInterval{closed, mirror, second}},
	} {
		got, err := s.Downtime(ctx, tt.since)
		checkErr(t, "Downtime("+tt.name+")", err, nil)
		diff(t, "Downtime("+tt.name+")", got, tt.want)
	}
	if d := second.Duration(at(30 * time.Minute)); d != 10*time.Minute {
		t.Errorf("Duration(open) = %v, want 10m", d)
	}
}

// testAbortHeldJobs checks which queued jobs AbortHeldJobs ends.
func testAbortHeldJobs(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name  string
		scope store.Scope
		want  []string // packages of the aborted jobs
	}{
		{name: "grid", scope: store.ScopeGrid, want: []string{"old-trixie-amd64", "old-sid-arm64"}},
		{name: "release", scope: "release:trixie", want: []string{"old-trixie-amd64"}},
		{name: "arch", scope: "arch:arm64", want: []string{"old-sid-arm64"}},
		{name: "label", scope: "label:gpu"},
		{name: "nothing there", scope: "release:bookworm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, newStore)
			ctx := t.Context()
			byPkg := map[string]store.Job{}
			for _, j := range []store.Job{
				{Package: "old-trixie-amd64", Release: "trixie", Arch: "amd64", CreatedAt: t0()},
				{Package: "old-sid-arm64", Release: "sid", Arch: "arm64", CreatedAt: t0()},
				{Package: "new-trixie-amd64", Release: "trixie", Arch: "amd64", CreatedAt: at(2 * time.Hour)},
			} {
				byPkg[j.Package] = f.createJob(t, j)
			}
			running := f.createJob(t, store.Job{Package: "running", Release: "unstable", Arch: "amd64", CreatedAt: t0()})
			leased := f.lease(t, f.agent.ID, at(time.Minute))
			if leased.ID != running.ID {
				t.Fatalf("leased job %d, want %d", leased.ID, running.ID)
			}

			reason := "held for 24h while check mirror failed"
			ids, err := f.s.AbortHeldJobs(ctx, tt.scope, at(time.Hour), reason, at(3*time.Hour))
			checkErr(t, "AbortHeldJobs", err, nil)
			var want []int64
			for _, p := range tt.want {
				want = append(want, byPkg[p].ID)
			}
			diff(t, "AbortHeldJobs", ids, want)
			for _, id := range want {
				j := f.mustJob(t, id)
				if j.State != store.JobDone || j.Verdict != dep8.VerdictError || j.Reason != reason || j.FinishedAt == nil || !j.FinishedAt.Equal(at(3*time.Hour)) {
					t.Errorf("Job(%d) = %s %s %q finished %v, want done error %q at %v", id, j.State, j.Verdict, j.Reason, j.FinishedAt, reason, at(3*time.Hour))
				}
			}
			if j := f.mustJob(t, running.ID); j.State != store.JobRunning {
				t.Errorf("running job state = %s, want running", j.State)
			}
			if j := f.mustJob(t, byPkg["new-trixie-amd64"].ID); j.State != store.JobQueued {
				t.Errorf("new job state = %s, want queued", j.State)
			}
		})
	}
	t.Run("refusals", func(t *testing.T) {
		s := newStore(t)
		_, err := s.AbortHeldJobs(t.Context(), "nowhere", t0(), "r", t0())
		checkErr(t, "AbortHeldJobs(bad scope)", err, store.ErrInvalid)
		_, err = s.AbortHeldJobs(t.Context(), store.ScopeGrid, t0(), " ", t0())
		checkErr(t, "AbortHeldJobs(no reason)", err, store.ErrInvalid)
	})
}
