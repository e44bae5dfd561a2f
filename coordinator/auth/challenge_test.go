package auth

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

const challengeTTL = time.Minute

func TestChallenges(t *testing.T) {
	type step struct {
		advance time.Duration // before redeeming
		agentID int64
		nonce   func(issued []byte) []byte
		want    error
	}
	same := func(n []byte) []byte { return n }
	tests := []struct {
		name  string
		steps []step
	}{
		{"redeem once", []step{
			{0, 1, same, nil},
		}},
		{"single use", []step{
			{0, 1, same, nil},
			{0, 1, same, ErrChallengeUnknown},
		}},
		{"just before expiry", []step{
			{challengeTTL - time.Nanosecond, 1, same, nil},
		}},
		{"at expiry", []step{
			{challengeTTL, 1, same, ErrChallengeExpired},
		}},
		{"expired is gone", []step{
			{2 * challengeTTL, 1, same, ErrChallengeExpired},
			{0, 1, same, ErrChallengeUnknown},
		}},
		{"other agent", []step{
			{0, 2, same, ErrChallengeUnknown},
		}},
		{"other agent does not spoil it", []step{
			{0, 2, same, ErrChallengeUnknown},
			{0, 1, same, nil},
		}},
		{"other agent after expiry", []step{
			{2 * challengeTTL, 2, same, ErrChallengeUnknown},
		}},
		{"unknown nonce", []step{
			{0, 1, func([]byte) []byte { return make([]byte, NonceSize) }, ErrChallengeUnknown},
		}},
		{"flipped bit", []step{
			{0, 1, func(n []byte) []byte { m := bytes.Clone(n); m[0] ^= 1; return m }, ErrChallengeUnknown},
		}},
		{"truncated", []step{
			{0, 1, func(n []byte) []byte { return n[:NonceSize-1] }, ErrChallengeUnknown},
		}},
		{"nil", []step{
			{0, 1, func([]byte) []byte { return nil }, ErrChallengeUnknown},
			{0, 1, same, nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: t0()}
			c := NewChallenges(challengeTTL, clock.Now)
			nonce, expires := c.Issue(1)
			if len(nonce) != NonceSize {
				t.Fatalf("Issue(1) nonce has %d bytes, want %d", len(nonce), NonceSize)
			}
			if want := t0().Add(challengeTTL); !expires.Equal(want) {
				t.Fatalf("Issue(1) expires = %v, want %v", expires, want)
			}
			for i, s := range tt.steps {
				clock.now = clock.now.Add(s.advance)
				err := c.Redeem(s.agentID, s.nonce(nonce))
				if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
					t.Errorf("step %d: Redeem(%d, ...) = %v, want %v", i, s.agentID, err, s.want)
				}
			}
		})
	}
}

func TestChallengesNoncesDiffer(t *testing.T) {
	c := NewChallenges(challengeTTL, nil)
	a, _ := c.Issue(1)
	b, _ := c.Issue(1)
	if bytes.Equal(a, b) {
		t.Errorf("Issue(1) twice gave the same nonce %x", a)
	}
	if err := c.Redeem(1, b); err != nil {
		t.Errorf("Redeem(1, second) = %v, want nil", err)
	}
	if err := c.Redeem(1, a); err != nil {
		t.Errorf("Redeem(1, first) = %v, want nil", err)
	}
}

func TestChallengesCallerOwnsNonce(t *testing.T) {
	c := NewChallenges(challengeTTL, nil)
	nonce, _ := c.Issue(1)
	kept := bytes.Clone(nonce)
	nonce[0] ^= 0xff
	if err := c.Redeem(1, kept); err != nil {
		t.Errorf("Redeem(1, nonce) after the caller changed its copy = %v, want nil", err)
	}
}

func TestChallengesCap(t *testing.T) {
	clock := &fakeClock{now: t0()}
	c := NewChallenges(challengeTTL, clock.Now)
	first, _ := c.Issue(1)
	second, _ := c.Issue(1)
	for range MaxChallenges - 1 {
		c.Issue(2)
	}
	if n := len(c.pending); n != MaxChallenges {
		t.Errorf("after %d issues, %d challenges pending, want %d", MaxChallenges+1, n, MaxChallenges)
	}
	if err := c.Redeem(1, first); !errors.Is(err, ErrChallengeUnknown) {
		t.Errorf("Redeem(1, oldest) after overflow = %v, want %v", err, ErrChallengeUnknown)
	}
	if err := c.Redeem(1, second); err != nil {
		t.Errorf("Redeem(1, second oldest) after overflow = %v, want nil", err)
	}
	for range 3 * MaxChallenges {
		c.Issue(3)
	}
	if n, q := len(c.pending), len(c.order); n > MaxChallenges || q > MaxChallenges {
		t.Errorf("after a flood, %d pending and %d queued, want at most %d", n, q, MaxChallenges)
	}
}

func TestChallengesForgetExpired(t *testing.T) {
	clock := &fakeClock{now: t0()}
	c := NewChallenges(challengeTTL, clock.Now)
	for range 100 {
		c.Issue(1)
	}
	clock.now = clock.now.Add(challengeTTL)
	c.Issue(1)
	if n, q := len(c.pending), len(c.order); n != 1 || q != 1 {
		t.Errorf("after expiry and one issue, %d pending and %d queued, want 1 and 1", n, q)
	}
}

func TestChallengesConcurrent(t *testing.T) {
	c := NewChallenges(challengeTTL, nil)
	var wg sync.WaitGroup
	for agent := range int64(8) {
		wg.Go(func() {
			for range 200 {
				nonce, _ := c.Issue(agent + 1)
				if err := c.Redeem(agent+1, nonce); err != nil {
					t.Errorf("Redeem(%d, own nonce) = %v, want nil", agent+1, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
