package link

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sparegrid/sparegrid/shared/protocol"
)

// Tokens mints and caches the agent's short-lived token. A token is reused
// until less than a third of its lifetime remains. Tokens is independent of
// any one connection, so a reconnected agent keeps its token. It is safe for
// concurrent use.
type Tokens struct {
	agentID int64
	key     ed25519.PrivateKey
	now     func() time.Time

	mu      sync.Mutex
	token   string
	refresh time.Time // when to mint the next one
	expires time.Time
}

// NewTokens returns a token source for agent agentID. now may be nil for
// time.Now.
func NewTokens(agentID int64, key ed25519.PrivateKey, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{agentID: agentID, key: key, now: now}
}

// Token returns a valid token, minting a fresh one over c when the cached
// one is missing or past two thirds of its lifetime. Refusals because the
// agent is unknown, not yet approved or rejected come back as errors that
// say what to do, and still match the protocol error with errors.Is.
func (t *Tokens) Token(ctx context.Context, c protocol.Coordinator) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.token != "" && now.Before(t.refresh) {
		return t.token, nil
	}
	ch, err := c.Challenge(ctx, protocol.ChallengeRequest{AgentID: t.agentID})
	if err != nil {
		return "", t.explain(err)
	}
	sig := ed25519.Sign(t.key, protocol.ChallengeMessage(t.agentID, ch.Nonce))
	tr, err := c.Token(ctx, protocol.TokenRequest{AgentID: t.agentID, Nonce: ch.Nonce, Signature: sig})
	if err != nil {
		return "", t.explain(err)
	}
	if tr.Token == "" {
		return "", fmt.Errorf("link: coordinator returned an empty token for agent %d", t.agentID)
	}
	t.token = tr.Token
	t.expires = tr.Expires
	// A token that is already expired by our clock is used for this call
	// only: the next call mints again.
	t.refresh = now
	if life := tr.Expires.Sub(now); life > 0 {
		t.refresh = now.Add(life - life/3)
	}
	return t.token, nil
}

// Invalidate drops the cached token, for example after the coordinator
// refused it as unauthenticated.
func (t *Tokens) Invalidate() {
	t.mu.Lock()
	t.token = ""
	t.mu.Unlock()
}

// StatusError explains why the coordinator will not issue a token. It
// unwraps to the coordinator's *protocol.Error.
type StatusError struct {
	AgentID int64
	Err     error
}

func (e *StatusError) Error() string {
	switch {
	case errors.Is(e.Err, protocol.ErrPending):
		return fmt.Sprintf("agent %d is not approved yet: its owner must claim it (sparegrid agents claim CODE, with the code shown at registration) and an admin must approve it (sparegrid agents approve %d)", e.AgentID, e.AgentID)
	case errors.Is(e.Err, protocol.ErrRejected):
		return fmt.Sprintf("agent %d was rejected or revoked by an admin: it can no longer connect; ask the grid's admins, or register a new agent", e.AgentID)
	case errors.Is(e.Err, protocol.ErrUnknownAgent):
		return fmt.Sprintf("the coordinator does not know agent %d: the state directory belongs to another grid or the agent was deleted; register again", e.AgentID)
	}
	return e.Err.Error()
}

func (e *StatusError) Unwrap() error { return e.Err }

func (t *Tokens) explain(err error) error {
	if errors.Is(err, protocol.ErrPending) || errors.Is(err, protocol.ErrRejected) || errors.Is(err, protocol.ErrUnknownAgent) {
		return &StatusError{AgentID: t.agentID, Err: err}
	}
	return fmt.Errorf("link: get token for agent %d: %w", t.agentID, err)
}
