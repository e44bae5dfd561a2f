package link

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/shared/protocol"
)

// fakeIssuer implements the token part of protocol.Coordinator in memory.
type fakeIssuer struct {
	protocol.Coordinator // other calls panic
	pub                  ed25519.PublicKey
	now                  func() time.Time
	life                 time.Duration
	refuse               error
	minted               int
}

func (f *fakeIssuer) Challenge(ctx context.Context, req protocol.ChallengeRequest) (protocol.ChallengeReply, error) {
	if f.refuse != nil {
		return protocol.ChallengeReply{}, f.refuse
	}
	return protocol.ChallengeReply{Nonce: []byte(fmt.Sprintf("nonce-%d", f.minted))}, nil
}

func (f *fakeIssuer) Token(ctx context.Context, req protocol.TokenRequest) (protocol.TokenReply, error) {
	if !ed25519.Verify(f.pub, protocol.ChallengeMessage(req.AgentID, req.Nonce), req.Signature) {
		return protocol.TokenReply{}, protocol.ErrBadSignature
	}
	f.minted++
	return protocol.TokenReply{Token: fmt.Sprintf("t%d", f.minted), Expires: f.now().Add(f.life)}, nil
}

func TestTokensRefreshAtTwoThirds(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	f := &fakeIssuer{pub: pub, now: clock, life: 15 * time.Minute}
	tok := NewTokens(7, priv, clock)

	steps := []struct {
		advance time.Duration
		want    string
	}{
		{0, "t1"},
		{9 * time.Minute, "t1"},  // 6 of 15 minutes left
		{59 * time.Second, "t1"}, // just over 5 left
		{time.Second, "t2"},      // a third left: refresh
		{time.Minute, "t2"},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		got, err := tok.Token(t.Context(), f)
		if err != nil {
			t.Fatalf("step %d: Token = %v", i, err)
		}
		if got != s.want {
			t.Errorf("step %d (+%v): Token = %s, want %s", i, s.advance, got, s.want)
		}
	}
	tok.Invalidate()
	if got, _ := tok.Token(t.Context(), f); got != "t3" {
		t.Errorf("Token after Invalidate = %s, want t3", got)
	}
}

func TestTokensExplainRefusals(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		refuse  error
		want    error
		message string
	}{
		{"pending", protocol.Errorf(protocol.ErrPending, "agent 7 is pending"), protocol.ErrPending,
			"agent 7 is not approved yet: its owner must claim it (sparegrid agents claim CODE"},
		{"rejected", protocol.ErrRejected, protocol.ErrRejected, "agent 7 was rejected or revoked"},
		{"unknown", protocol.ErrUnknownAgent, protocol.ErrUnknownAgent, "the coordinator does not know agent 7"},
		{"transport", io.ErrUnexpectedEOF, io.ErrUnexpectedEOF, "link: get token for agent 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeIssuer{now: time.Now, refuse: tt.refuse}
			_, err := NewTokens(7, priv, nil).Token(t.Context(), f)
			if !errors.Is(err, tt.want) {
				t.Errorf("Token = %v, want %v", err, tt.want)
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.message) {
				t.Errorf("Token error = %q, want it to start with %q", err, tt.message)
			}
		})
	}
}
