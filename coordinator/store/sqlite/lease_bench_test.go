package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// BenchmarkLeaseJob measures one lease among many queued jobs spread over
// three lanes, as the ranking by lane share and priority sorts them all.
//
//	go test -run '^$' -bench LeaseJob -benchtime 200x ./coordinator/store/sqlite/
func BenchmarkLeaseJob(b *testing.B) {
	for _, queued := range []int{1000, 10000, 50000} {
		b.Run(fmt.Sprintf("queued=%d", queued), func(b *testing.B) {
			db := NewTemp(b)
			ctx := b.Context()
			acct, err := db.CreateAccount(ctx, store.Account{Name: "vol", Role: store.RoleVolunteer})
			if err != nil {
				b.Fatal(err)
			}
			ag, err := db.CreateAgent(ctx, store.Agent{Name: "box", OwnerID: acct.ID, PublicKey: []byte("k"), ClaimCode: "C",
				State: store.AgentApproved, AutoApproved: true})
			if err != nil {
				b.Fatal(err)
			}
			now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
			lanes := []struct {
				name     string
				priority int
			}{{"default", 6}, {"fanout", 4}, {"sweep", 2}}
			for i := range queued + b.N {
				l := lanes[i%len(lanes)]
				if _, err := db.CreateJob(ctx, store.Job{Package: fmt.Sprintf("pkg%d", i), Release: "bookworm", Arch: "amd64",
					Priority: l.priority, Lane: l.name, CreatedAt: now}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				j, err := db.LeaseJob(ctx, store.LeaseParams{AgentID: ag.ID, Arch: "amd64", Releases: []string{"bookworm"},
					TTL: time.Hour, Now: now.Add(time.Duration(i) * time.Second), Nonce: fmt.Sprint(i)})
				if err != nil || j == nil {
					b.Fatalf("LeaseJob = %v, %v", j, err)
				}
			}
		})
	}
}
