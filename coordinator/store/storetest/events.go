package storetest

import (
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// testEvents checks adding events, storing their expansion, reading one
// and listing them newest first.
func testEvents(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	upload := store.Event{
		Type: "upload", Source: "libfoo", Version: "1.2-1", ArtifactURL: "https://ci.example.org/libfoo.changes",
		BuildID: "4711", Metadata: map[string]string{"suite": "unstable"}, Producer: "ci", Received: t0(),
	}

	add := []struct {
		name string
		in   store.Event
		err  error
	}{
		{name: "full", in: upload},
		{name: "type only", in: store.Event{Type: "image-built", Producer: "ci", Received: at(time.Minute)}},
		{name: "no type", in: store.Event{Producer: "ci"}, err: store.ErrInvalid},
		{name: "no producer", in: store.Event{Type: "upload"}, err: store.ErrInvalid},
		{name: "with an id", in: store.Event{ID: 5, Type: "upload", Producer: "ci"}, err: store.ErrInvalid},
	}
	var added []store.Event
	for _, tt := range add {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.s.AddEvent(ctx, tt.in)
			checkErr(t, "AddEvent", err, tt.err)
			if err != nil {
				return
			}
			if got.ID <= 0 {
				t.Errorf("AddEvent = id %d, want a positive id", got.ID)
			}
			want := tt.in
			want.ID = got.ID
			diff(t, "AddEvent", got, want)
			added = append(added, got)
		})
	}
	if len(added) != 2 {
		t.Fatalf("added %d events, want 2", len(added))
	}

	job := f.job(t, "libfoo", 0)
	rules := []store.EventRule{
		{Rule: "uploads", Matched: true, Requests: 2, Warnings: []string{"no architecture for release sid"}},
		{Rule: "broken", Error: "rules: evaluation failed: no such key: x"},
	}
	requests := []store.EventRequest{
		{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "amd64", Triggers: []string{"libfoo/1.2-1"},
			Priority: 5, Reason: "event 1 matched rule 'uploads'", Job: job.ID},
		{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "s390x", Triggers: []string{"libfoo/1.2-1"},
			Priority: 5, Lane: "slow", Reason: "event 1 matched rule 'uploads'", Pending: true, PendingReason: "no agent offers unstable/s390x"},
	}
	t.Run("expansion", func(t *testing.T) {
		got, err := f.s.SetEventExpansion(ctx, added[0].ID, rules, requests)
		if err != nil {
			t.Fatalf("SetEventExpansion = %v", err)
		}
		want := added[0]
		want.Rules, want.Requests = rules, requests
		diff(t, "SetEventExpansion", got, want)
		diff(t, "Jobs", got.Jobs(), []int64{job.ID})
		got, err = f.s.Event(ctx, added[0].ID)
		if err != nil {
			t.Fatalf("Event(%d) = %v", added[0].ID, err)
		}
		diff(t, "Event", got, want)
		added[0] = got
	})
	t.Run("unknown", func(t *testing.T) {
		_, err := f.s.SetEventExpansion(ctx, 9999, nil, nil)
		checkErr(t, "SetEventExpansion(9999)", err, store.ErrNotFound)
		_, err = f.s.Event(ctx, 9999)
		checkErr(t, "Event(9999)", err, store.ErrNotFound)
	})
	list := []struct {
		name  string
		limit int
		want  []store.Event
	}{
		{name: "default", want: []store.Event{added[1], added[0]}},
		{name: "one", limit: 1, want: []store.Event{added[1]}},
	}
	for _, tt := range list {
		t.Run("list "+tt.name, func(t *testing.T) {
			got, err := f.s.ListEvents(ctx, tt.limit)
			if err != nil {
				t.Fatalf("ListEvents(%d) = %v", tt.limit, err)
			}
			diff(t, "ListEvents", got, tt.want)
		})
	}
}
