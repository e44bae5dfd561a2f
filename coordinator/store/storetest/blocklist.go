package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// testBlockRules checks adding, validating, listing with and without
// expired rules, and removing blocklist rules.
func testBlockRules(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	expires := at(48 * time.Hour)
	rule := func(change func(*store.BlockRule)) store.BlockRule {
		r := store.BlockRule{Package: "linux-*", Reason: "hangs the testbed", CreatedBy: f.admin.Name, CreatedAt: t0()}
		if change != nil {
			change(&r)
		}
		return r
	}

	tests := []struct {
		name string
		in   store.BlockRule
		err  error
	}{
		{name: "whole package", in: rule(nil)},
		{name: "every field", in: rule(func(r *store.BlockRule) {
			r.Package, r.Version, r.Release, r.Arch, r.Test = "hello", "2.10-3", "trixie", "arm64", "upstream-suite"
			r.AgentID, r.ExpiresAt = f.agent.ID, &expires
		})},
		{name: "label", in: rule(func(r *store.BlockRule) { r.Label = "slow-disk" })},
		{name: "no package", in: rule(func(r *store.BlockRule) { r.Package = "" }), err: store.ErrInvalid},
		{name: "malformed glob", in: rule(func(r *store.BlockRule) { r.Package = "linux-[" }), err: store.ErrInvalid},
		{name: "upper-case glob", in: rule(func(r *store.BlockRule) { r.Package = "Linux" }), err: store.ErrInvalid},
		{name: "bad version", in: rule(func(r *store.BlockRule) { r.Version = "x;y" }), err: store.ErrInvalid},
		{name: "bad release", in: rule(func(r *store.BlockRule) { r.Release = "../x" }), err: store.ErrInvalid},
		{name: "bad arch", in: rule(func(r *store.BlockRule) { r.Arch = "AMD64" }), err: store.ErrInvalid},
		{name: "bad test", in: rule(func(r *store.BlockRule) { r.Test = "a b" }), err: store.ErrInvalid},
		{name: "agent and label", in: rule(func(r *store.BlockRule) { r.AgentID, r.Label = f.agent.ID, "x1" }), err: store.ErrInvalid},
		{name: "bad label", in: rule(func(r *store.BlockRule) { r.Label = "-x" }), err: store.ErrInvalid},
		{name: "no reason", in: rule(func(r *store.BlockRule) { r.Reason = " " }), err: store.ErrInvalid},
		{name: "reason too long", in: rule(func(r *store.BlockRule) { r.Reason = strings.Repeat("x", store.MaxBlockReason+1) }), err: store.ErrInvalid},
		{name: "reason with a newline", in: rule(func(r *store.BlockRule) { r.Reason = "a\nb" }), err: store.ErrInvalid},
		{name: "no creator", in: rule(func(r *store.BlockRule) { r.CreatedBy = "" }), err: store.ErrInvalid},
		{name: "expires when made", in: rule(func(r *store.BlockRule) { r.ExpiresAt = ptr(t0()) }), err: store.ErrInvalid},
		{name: "unknown agent", in: rule(func(r *store.BlockRule) { r.AgentID = 9999 }), err: store.ErrNotFound},
		{name: "negative agent", in: rule(func(r *store.BlockRule) { r.AgentID = -1 }), err: store.ErrInvalid},
	}
	var added []store.BlockRule
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.s.AddBlockRule(ctx, tt.in)
			checkErr(t, "AddBlockRule", err, tt.err)
			var ie *store.InvalidError
			if errors.Is(tt.err, store.ErrInvalid) && (!errors.As(err, &ie) || ie.Reason == "") {
				t.Errorf("AddBlockRule = %v, want an *InvalidError with a reason", err)
			}
			if err != nil {
				return
			}
			if got.ID <= 0 {
				t.Errorf("AddBlockRule = id %d, want a positive id", got.ID)
			}
			want := tt.in
			want.ID = got.ID
			diff(t, "AddBlockRule", got, want)
			added = append(added, got)
		})
	}
	if len(added) != 3 {
		t.Fatalf("added %d rules, want 3", len(added))
	}

	t.Run("expiry and listing", func(t *testing.T) {
		list := []struct {
			name string
			now  time.Time
			all  bool
			want []store.BlockRule
		}{
			{name: "before expiry", now: expires.Add(-time.Nanosecond), want: added},
			{name: "at expiry", now: expires, want: []store.BlockRule{added[0], added[2]}},
			{name: "all after expiry", now: expires.Add(time.Hour), all: true, want: added},
		}
		for _, l := range list {
			got, err := f.s.BlockRules(ctx, l.now, l.all)
			if err != nil {
				t.Fatalf("BlockRules(%s) = %v", l.name, err)
			}
			diff(t, "BlockRules("+l.name+")", got, l.want)
			for _, r := range got {
				if r.Active(l.now) != (r.ExpiresAt == nil || l.now.Before(*r.ExpiresAt)) {
					t.Errorf("rule %d Active(%v) disagrees with its expiry %v", r.ID, l.now, r.ExpiresAt)
				}
			}
		}
	})

	t.Run("remove", func(t *testing.T) {
		checkErr(t, "RemoveBlockRule(expired rule)", f.s.RemoveBlockRule(ctx, added[1].ID), nil)
		checkErr(t, "RemoveBlockRule(again)", f.s.RemoveBlockRule(ctx, added[1].ID), store.ErrNotFound)
		checkErr(t, "RemoveBlockRule(unknown)", f.s.RemoveBlockRule(ctx, 9999), store.ErrNotFound)
		got, err := f.s.BlockRules(ctx, t0(), true)
		if err != nil {
			t.Fatalf("BlockRules = %v", err)
		}
		diff(t, "BlockRules after remove", got, []store.BlockRule{added[0], added[2]})
	})
}

// testForcedJob checks that a new job's reason and force flag are stored
// and kept.
func testForcedJob(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	in := store.Job{Package: "hello", Release: "unstable", Arch: "amd64", Reason: "submitted despite blocklist rule 3",
		Forced: true, SubmittedBy: f.admin.Name, CreatedAt: t0()}
	got := f.createJob(t, in)
	if !got.Forced || got.Reason != in.Reason {
		t.Errorf("CreateJob(forced) = Forced %v, Reason %q; want true, %q", got.Forced, got.Reason, in.Reason)
	}
	if j := f.mustJob(t, got.ID); !j.Forced || j.Reason != in.Reason {
		t.Errorf("Job(%d) = Forced %v, Reason %q; want true, %q", got.ID, j.Forced, j.Reason, in.Reason)
	}
	if plain := f.job(t, "plain", 3); plain.Forced || plain.Reason != "" {
		t.Errorf("CreateJob(plain) = Forced %v, Reason %q; want false, empty", plain.Forced, plain.Reason)
	}
}
