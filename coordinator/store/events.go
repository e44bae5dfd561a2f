package store

import (
	"fmt"
	"time"
)

// DefaultEventLimit is the number of events ListEvents returns when given
// no limit.
const DefaultEventLimit = 50

// Event is something a build system announced, with what the rules made
// of it. The store keeps it as given: the caller validates it (see package
// rules) and expands it.
type Event struct {
	ID          int64
	Type        string
	Source      string
	Version     string
	ArtifactURL string
	BuildID     string
	Metadata    map[string]string
	// Producer names the account that posted the event.
	Producer string
	Received time.Time
	// Rules and Requests are the expansion, empty until
	// SetEventExpansion stores it.
	Rules    []EventRule
	Requests []EventRequest
}

// Jobs returns the ids of the jobs the event's requests created, in
// request order.
func (e Event) Jobs() []int64 {
	var ids []int64
	for _, r := range e.Requests {
		if r.Job != 0 {
			ids = append(ids, r.Job)
		}
		ids = append(ids, r.SplitJobs...)
	}
	return ids
}

// EventRule is what one rule made of an event.
type EventRule struct {
	Rule     string   `json:"rule"`
	Matched  bool     `json:"matched"`
	Error    string   `json:"error,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Requests counts the requests the rule asked for.
	Requests int `json:"requests"`
}

// EventRequest is one test an event asked for, and the job made for it;
// Job is 0 while the request is pending.
type EventRequest struct {
	Package       string   `json:"package"`
	Version       string   `json:"version,omitempty"`
	Release       string   `json:"release"`
	Arch          string   `json:"arch"`
	Triggers      []string `json:"triggers,omitempty"`
	Priority      int      `json:"priority"`
	Lane          string   `json:"lane,omitempty"`
	Reason        string   `json:"reason"`
	Pending       bool     `json:"pending,omitempty"`
	PendingReason string   `json:"pending_reason,omitempty"`
	// Blocked is the blocklist rule's sentence when a whole-job rule kept
	// the request from becoming a job.
	Blocked string `json:"blocked,omitempty"`
	// Job is the job the request became; with Pending it waits for a
	// capable agent. SplitJobs are the other jobs its tests were split
	// into.
	Job       int64   `json:"job,omitempty"`
	SplitJobs []int64 `json:"split_jobs,omitempty"`
}

// ValidateNewEvent reports, as an *InvalidError, why AddEvent refuses e:
// it has no type or producer, or already has an id. The event's content is
// the caller's to validate.
func ValidateNewEvent(e Event) error {
	switch {
	case e.Type == "":
		return &InvalidError{Reason: "an event needs a type"}
	case e.Producer == "":
		return &InvalidError{Reason: "an event needs a producer"}
	case e.ID != 0:
		return &InvalidError{Reason: fmt.Sprintf("a new event has no id, not %d", e.ID)}
	}
	return nil
}
