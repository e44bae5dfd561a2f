package store

import (
	"context"
	"time"
)

// CountStore answers how much work and how many agents the grid has, cheaply
// enough to be asked at every metrics scrape.
type CountStore interface {
	// JobCounts returns how many jobs are queued, running or held, one
	// JobCount per state and lane that has any, sorted by lane, then
	// state. Done and cancelled jobs are not counted.
	JobCounts(ctx context.Context) ([]JobCount, error)
	// AgentCounts returns how many agents are in each registration state
	// and, of the approved ones, how many paused themselves and how many
	// were last heard from at or after onlineSince.
	AgentCounts(ctx context.Context, onlineSince time.Time) (AgentCounts, error)
}

// JobCount is how many jobs one lane has in one state.
type JobCount struct {
	State JobState
	Lane  string
	Jobs  int
}

// AgentCounts is how many agents are in each state. Paused and Online count
// approved agents only, so both are at most Approved.
type AgentCounts struct {
	Pending  int
	Approved int
	Rejected int
	Paused   int
	Online   int
}
