package storetest

import (
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

func testAccounts(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	ctx := t.Context()

	tests := []struct {
		name string
		in   store.Account
		want error
	}{
		{"volunteer", store.Account{Name: "alice", DisplayName: "Alice", Email: "alice@example.org", Role: store.RoleVolunteer, CreatedAt: t0()}, nil},
		{"maintainer", store.Account{Name: "bob.smith+deb-1", Role: store.RoleMaintainer, CreatedAt: t0()}, nil},
		{"admin", store.Account{Name: "root0", Role: store.RoleAdmin, CreatedAt: t0()}, nil},
		{"duplicate name", store.Account{Name: "alice", Role: store.RoleAdmin}, store.ErrExists},
		{"upper case name", store.Account{Name: "Alice2", Role: store.RoleVolunteer}, store.ErrInvalid},
		{"tilde name", store.Account{Name: "~carol", Role: store.RoleVolunteer}, store.ErrInvalid},
		{"short name", store.Account{Name: "c", Role: store.RoleVolunteer}, store.ErrInvalid},
		{"empty role", store.Account{Name: "carol"}, store.ErrInvalid},
		{"unknown role", store.Account{Name: "carol", Role: "root"}, store.ErrInvalid},
	}
	var created []store.Account
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.CreateAccount(ctx, tt.in)
			checkErr(t, "CreateAccount("+tt.in.Name+")", err, tt.want)
			if err != nil {
				return
			}
			if got.ID == 0 {
				t.Errorf("CreateAccount(%q).ID = 0, want an id", tt.in.Name)
			}
			want := tt.in
			want.ID = got.ID
			diff(t, "CreateAccount", got, want)
			created = append(created, got)

			byName, err := s.AccountByName(ctx, tt.in.Name)
			if err != nil {
				t.Fatalf("AccountByName(%q) = %v", tt.in.Name, err)
			}
			diff(t, "AccountByName", byName, got)
		})
	}

	t.Run("default created at", func(t *testing.T) {
		a, err := s.CreateAccount(ctx, store.Account{Name: "dave", Role: store.RoleVolunteer})
		if err != nil {
			t.Fatalf("CreateAccount(dave) = %v", err)
		}
		if a.CreatedAt.IsZero() || a.CreatedAt.Location() != time.UTC {
			t.Errorf("CreateAccount(dave).CreatedAt = %v, want now in UTC", a.CreatedAt)
		}
		created = append(created, a)
	})

	t.Run("unknown name", func(t *testing.T) {
		_, err := s.AccountByName(ctx, "nobody")
		checkErr(t, "AccountByName(nobody)", err, store.ErrNotFound)
	})

	t.Run("list", func(t *testing.T) {
		got, err := s.ListAccounts(ctx)
		if err != nil {
			t.Fatalf("ListAccounts = %v", err)
		}
		diff(t, "ListAccounts", got, created)
	})
}

func testAPITokens(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	hash := func(s string) []byte {
		h := sha256.Sum256([]byte(s))
		return h[:]
	}

	tests := []struct {
		name    string
		account int64
		prefix  string
		hash    []byte
		want    error
	}{
		{"first", f.owner.ID, "sg_ab", hash("one"), nil},
		{"second for same account", f.owner.ID, "sg_cd", hash("two"), nil},
		{"other account", f.admin.ID, "sg_ef", hash("three"), nil},
		{"duplicate hash", f.admin.ID, "sg_gh", hash("one"), store.ErrExists},
		{"unknown account", 9999, "sg_ij", hash("four"), store.ErrNotFound},
		{"short hash", f.owner.ID, "sg_kl", []byte("short"), store.ErrInvalid},
		{"empty prefix", f.owner.ID, "", hash("five"), store.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.s.AddAPIToken(ctx, tt.account, tt.prefix, tt.hash)
			checkErr(t, "AddAPIToken", err, tt.want)
		})
	}

	lookups := []struct {
		name  string
		token string
		want  store.Account
		err   error
	}{
		{"first", "one", f.owner, nil},
		{"second", "two", f.owner, nil},
		{"other account", "three", f.admin, nil},
		{"used again", "one", f.owner, nil},
		{"unknown", "nope", store.Account{}, store.ErrNotFound},
		{"refused", "four", store.Account{}, store.ErrNotFound},
	}
	for _, tt := range lookups {
		t.Run("lookup "+tt.name, func(t *testing.T) {
			got, err := f.s.AccountByTokenHash(ctx, hash(tt.token))
			checkErr(t, "AccountByTokenHash("+tt.token+")", err, tt.err)
			diff(t, "AccountByTokenHash("+tt.token+")", got, tt.want)
		})
	}
}

func testAgents(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	caps := json.RawMessage(`{"releases":["unstable"],"arch":"amd64"}`)

	tests := []struct {
		name string
		in   store.Agent
		want store.Agent
		err  error
	}{
		{
			name: "pending",
			in: store.Agent{Name: "box2", OwnerID: f.owner.ID, PublicKey: []byte("k2"), ClaimCode: "ABCD-2345",
				Labels: []string{"fast", "big"}, Capabilities: caps, CreatedAt: t0()},
			want: store.Agent{Name: "box2", OwnerID: f.owner.ID, Owner: f.owner.Name, PublicKey: []byte("k2"),
				State: store.AgentPending, ClaimCode: "ABCD-2345", Labels: []string{"fast", "big"},
				Capabilities: caps, CreatedAt: t0()},
		},
		{
			name: "explicitly pending",
			in:   store.Agent{Name: "box3", OwnerID: f.admin.ID, PublicKey: []byte("k3"), ClaimCode: "ABCD-3456", State: store.AgentPending, CreatedAt: t0()},
			want: store.Agent{Name: "box3", OwnerID: f.admin.ID, Owner: f.admin.Name, PublicKey: []byte("k3"), State: store.AgentPending, ClaimCode: "ABCD-3456", CreatedAt: t0()},
		},
		{
			name: "auto-approved",
			in: store.Agent{Name: "demo", OwnerID: f.owner.ID, PublicKey: []byte("k4"), ClaimCode: "DEMO-0001",
				State: store.AgentApproved, AutoApproved: true, DecidedBy: "demo", CreatedAt: t0()},
			want: store.Agent{Name: "demo", OwnerID: f.owner.ID, Owner: f.owner.Name, PublicKey: []byte("k4"),
				State: store.AgentApproved, ClaimCode: "DEMO-0001", AutoApproved: true, DecidedBy: "demo",
				DecidedAt: ptr(t0()), CreatedAt: t0()},
		},
		{
			name: "approved without auto-approval",
			in:   store.Agent{Name: "sneaky", OwnerID: f.owner.ID, PublicKey: []byte("k"), ClaimCode: "SNEAKY", State: store.AgentApproved},
			err:  store.ErrInvalid,
		},
		{
			name: "created rejected",
			in:   store.Agent{Name: "odd", OwnerID: f.owner.ID, PublicKey: []byte("k"), ClaimCode: "ODD", State: store.AgentRejected},
			err:  store.ErrInvalid,
		},
		{
			name: "no name",
			in:   store.Agent{OwnerID: f.owner.ID, PublicKey: []byte("k"), ClaimCode: "NONAME"},
			err:  store.ErrInvalid,
		},
		{
			name: "no key",
			in:   store.Agent{Name: "nokey", OwnerID: f.owner.ID, ClaimCode: "NOKEY"},
			err:  store.ErrInvalid,
		},
		{
			name: "no claim code",
			in:   store.Agent{Name: "nocode", OwnerID: f.owner.ID, PublicKey: []byte("k")},
			err:  store.ErrInvalid,
		},
		{
			name: "capabilities not JSON",
			in:   store.Agent{Name: "badcaps", OwnerID: f.owner.ID, PublicKey: []byte("k"), ClaimCode: "BADCAPS", Capabilities: json.RawMessage("{")},
			err:  store.ErrInvalid,
		},
		{
			name: "unknown owner",
			in:   store.Agent{Name: "orphan", OwnerID: 9999, PublicKey: []byte("k"), ClaimCode: "ORPHAN"},
			err:  store.ErrNotFound,
		},
		{
			name: "duplicate claim code",
			in:   store.Agent{Name: "twin", OwnerID: f.owner.ID, PublicKey: []byte("k"), ClaimCode: "ABCD-2345"},
			err:  store.ErrExists,
		},
	}
	all := []store.Agent{f.agent}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.s.CreateAgent(ctx, tt.in)
			checkErr(t, "CreateAgent("+tt.in.Name+")", err, tt.err)
			if err != nil {
				return
			}
			want := tt.want
			want.ID = got.ID
			diff(t, "CreateAgent("+tt.in.Name+")", got, want)
			byID, err := f.s.Agent(ctx, got.ID)
			if err != nil {
				t.Fatalf("Agent(%d) = %v", got.ID, err)
			}
			diff(t, "Agent", byID, got)
			all = append(all, got)
		})
	}

	t.Run("unknown id", func(t *testing.T) {
		_, err := f.s.Agent(ctx, 9999)
		checkErr(t, "Agent(9999)", err, store.ErrNotFound)
	})

	t.Run("list", func(t *testing.T) {
		got, err := f.s.ListAgents(ctx)
		if err != nil {
			t.Fatalf("ListAgents = %v", err)
		}
		diff(t, "ListAgents", got, all)
	})
}

func testClaimAgent(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	claimed := f.pendingAgent(t, "claimed")
	if _, err := f.s.ClaimAgent(ctx, claimed.ClaimCode, f.owner.ID); err != nil {
		t.Fatalf("ClaimAgent(%q) = %v", claimed.ClaimCode, err)
	}
	rejected := f.pendingAgent(t, "rejected")
	if _, err := f.s.DecideAgent(ctx, rejected.ID, store.AgentRejected, f.admin.Name); err != nil {
		t.Fatalf("DecideAgent(%d, rejected) = %v", rejected.ID, err)
	}
	fresh := f.pendingAgent(t, "fresh")
	stolen := f.pendingAgent(t, "stolen")

	tests := []struct {
		name    string
		code    string
		account int64
		want    error
	}{
		{"owner claims", fresh.ClaimCode, f.owner.ID, nil},
		{"claimed twice", fresh.ClaimCode, f.owner.ID, store.ErrConflict},
		{"claimed earlier", claimed.ClaimCode, f.owner.ID, store.ErrConflict},
		{"not the owner", stolen.ClaimCode, f.admin.ID, store.ErrForbidden},
		{"approved agent", f.agent.ClaimCode, f.owner.ID, store.ErrConflict},
		{"rejected agent", rejected.ClaimCode, f.owner.ID, store.ErrConflict},
		{"unknown code", "NO-SUCH-CODE", f.owner.ID, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.s.ClaimAgent(ctx, tt.code, tt.account)
			checkErr(t, "ClaimAgent("+tt.code+")", err, tt.want)
			if err != nil {
				return
			}
			if got.ClaimedAt == nil || got.State != store.AgentPending {
				t.Errorf("ClaimAgent(%q) = claimed at %v, state %s; want claimed and pending", tt.code, got.ClaimedAt, got.State)
			}
		})
	}

	t.Run("stolen stays unclaimed", func(t *testing.T) {
		a, err := f.s.Agent(ctx, stolen.ID)
		if err != nil {
			t.Fatalf("Agent(%d) = %v", stolen.ID, err)
		}
		if a.ClaimedAt != nil {
			t.Errorf("Agent(%d).ClaimedAt = %v after a refused claim, want nil", stolen.ID, a.ClaimedAt)
		}
	})
}

func testDecideAgent(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	claim := func(a store.Agent) store.Agent {
		t.Helper()
		a, err := f.s.ClaimAgent(ctx, a.ClaimCode, f.owner.ID)
		if err != nil {
			t.Fatalf("ClaimAgent(%q) = %v", a.ClaimCode, err)
		}
		return a
	}
	auto, err := f.s.CreateAgent(ctx, store.Agent{Name: "auto", OwnerID: f.owner.ID, PublicKey: []byte("k"), ClaimCode: "AUTO", AutoApproved: true})
	if err != nil {
		t.Fatalf("CreateAgent(auto) = %v", err)
	}
	claimed := claim(f.pendingAgent(t, "claimed"))
	unclaimed := f.pendingAgent(t, "unclaimed")
	toReject := f.pendingAgent(t, "toreject")
	claimedReject := claim(f.pendingAgent(t, "claimedreject"))

	tests := []struct {
		name  string
		id    int64
		state store.AgentState
		by    string
		want  error
	}{
		{"approve claimed", claimed.ID, store.AgentApproved, "admin1", nil},
		{"approve approved", claimed.ID, store.AgentApproved, "admin1", store.ErrConflict},
		{"reject approved", claimed.ID, store.AgentRejected, "admin1", store.ErrConflict},
		{"approve unclaimed", unclaimed.ID, store.AgentApproved, "admin1", store.ErrNotClaimed},
		{"approve unclaimed auto-approved", auto.ID, store.AgentApproved, "demo", nil},
		{"reject unclaimed", toReject.ID, store.AgentRejected, "admin1", nil},
		{"reject rejected", toReject.ID, store.AgentRejected, "admin1", store.ErrConflict},
		{"approve rejected", toReject.ID, store.AgentApproved, "admin1", store.ErrConflict},
		{"reject claimed", claimedReject.ID, store.AgentRejected, "admin1", nil},
		{"back to pending", unclaimed.ID, store.AgentPending, "admin1", store.ErrInvalid},
		{"unknown state", unclaimed.ID, "revoked", "admin1", store.ErrInvalid},
		{"nobody decides", unclaimed.ID, store.AgentRejected, "", store.ErrInvalid},
		{"unknown agent", 9999, store.AgentApproved, "admin1", store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := f.s.Agent(ctx, tt.id)
			got, err := f.s.DecideAgent(ctx, tt.id, tt.state, tt.by)
			checkErr(t, "DecideAgent", err, tt.want)
			if err != nil {
				after, _ := f.s.Agent(ctx, tt.id)
				diff(t, "agent after refused DecideAgent", after, before)
				return
			}
			want := before
			want.State = tt.state
			want.DecidedBy = tt.by
			want.DecidedAt = got.DecidedAt
			diff(t, "DecideAgent", got, want)
			if got.DecidedAt == nil {
				t.Errorf("DecideAgent(%d).DecidedAt = nil, want set", tt.id)
			}
		})
	}
}

func testSeenAgent(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	caps1 := json.RawMessage(`{"arch":"amd64"}`)
	caps2 := json.RawMessage(`{"arch":"arm64"}`)

	tests := []struct {
		name     string
		id       int64
		at       time.Time
		caps     json.RawMessage
		want     error
		wantCaps json.RawMessage
	}{
		{"first", f.agent.ID, at(time.Minute), caps1, nil, caps1},
		{"no caps keeps old", f.agent.ID, at(2 * time.Minute), nil, nil, caps1},
		{"new caps", f.agent.ID, at(3 * time.Minute), caps2, nil, caps2},
		{"caps not JSON", f.agent.ID, at(4 * time.Minute), json.RawMessage(`{"arch"`), store.ErrInvalid, caps2},
		{"unknown agent", 9999, at(5 * time.Minute), caps1, store.ErrNotFound, nil},
	}
	last := time.Time{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.s.SeenAgent(ctx, tt.id, tt.at, tt.caps)
			checkErr(t, "SeenAgent", err, tt.want)
			if tt.id != f.agent.ID {
				return
			}
			if err == nil {
				last = tt.at
			}
			a, err := f.s.Agent(ctx, tt.id)
			if err != nil {
				t.Fatalf("Agent(%d) = %v", tt.id, err)
			}
			if a.LastSeen == nil || !a.LastSeen.Equal(last) {
				t.Errorf("Agent(%d).LastSeen = %v, want %v", tt.id, a.LastSeen, last)
			}
			if !cmp.Equal(a.Capabilities, tt.wantCaps) {
				t.Errorf("Agent(%d).Capabilities = %s, want %s", tt.id, a.Capabilities, tt.wantCaps)
			}
		})
	}
}
