package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"
)

var (
	// ErrChallengeUnknown means the nonce was never issued to this agent,
	// was already redeemed, or was dropped to keep memory bounded.
	ErrChallengeUnknown = errors.New("auth: unknown challenge")
	// ErrChallengeExpired means the nonce was issued to this agent but its
	// time ran out before it was redeemed.
	ErrChallengeExpired = errors.New("auth: challenge expired")
)

// MaxChallenges is how many challenges may be outstanding at once. Issuing
// one more drops the oldest, so agents that ask and never answer cannot grow
// memory without bound.
const MaxChallenges = 10000

// NonceSize is the length in bytes of a challenge nonce.
const NonceSize = 32

// Challenges hands out single-use nonces that an agent signs with its host
// key to prove who it is before it gets a token. It keeps them in memory
// only: a coordinator restart voids them all, and agents just ask again.
// It is safe for concurrent use.
type Challenges struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	pending map[string]challenge
	order   []string // nonces in the order they were issued, oldest first
}

type challenge struct {
	agentID int64
	expires time.Time
}

// NewChallenges returns an empty set whose challenges expire ttl after they
// are issued, by the clock now (time.Now when nil).
func NewChallenges(ttl time.Duration, now func() time.Time) *Challenges {
	if now == nil {
		now = time.Now
	}
	return &Challenges{
		ttl:     ttl,
		now:     now,
		pending: make(map[string]challenge),
	}
}

// Issue makes a fresh nonce for agentID and says when it expires.
func (c *Challenges) Issue(agentID int64) (nonce []byte, expires time.Time) {
	nonce = make([]byte, NonceSize)
	rand.Read(nonce) // never fails; it crashes the program instead

	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.dropExpired(now)
	for len(c.order) >= MaxChallenges {
		c.dropOldest()
	}
	expires = now.Add(c.ttl)
	key := string(nonce)
	c.pending[key] = challenge{agentID: agentID, expires: expires}
	c.order = append(c.order, key)
	return nonce, expires
}

// Redeem consumes the nonce issued to agentID. A nonce works once. Naming
// the wrong agent does not consume it, so a stranger who saw a nonce cannot
// spoil the real agent's attempt.
func (c *Challenges) Redeem(agentID int64, nonce []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := string(nonce)
	ch, ok := c.pending[key]
	if !ok || ch.agentID != agentID {
		return fmt.Errorf("%w for agent %d; ask for a new one", ErrChallengeUnknown, agentID)
	}
	delete(c.pending, key)
	if !c.now().Before(ch.expires) {
		return fmt.Errorf("%w at %s; ask for a new one", ErrChallengeExpired, ch.expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// dropExpired forgets challenges from the front of the queue that have
// expired or were redeemed. Challenges are queued in issue order with one
// TTL, so the first live one stops the scan.
func (c *Challenges) dropExpired(now time.Time) {
	for len(c.order) > 0 {
		ch, ok := c.pending[c.order[0]]
		if ok && now.Before(ch.expires) {
			return
		}
		c.dropOldest()
	}
}

func (c *Challenges) dropOldest() {
	delete(c.pending, c.order[0])
	c.order[0] = ""
	c.order = c.order[1:]
}
