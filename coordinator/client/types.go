package client

import (
	"time"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Account is a person, named the way Launchpad names people.
type Account struct {
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name"`
	Email       string    `json:"email"`
	Role        string    `json:"role"`
	CreatedAt   time.Time `json:"created_at"`
}

// Account roles.
const (
	RoleVolunteer  = "volunteer"
	RoleMaintainer = "maintainer"
	RoleAdmin      = "admin"
)

// CreateAccountRequest asks for a new account.
type CreateAccountRequest struct {
	Name        string `json:"name"`
	Email       string `json:"email"`
	Role        string `json:"role"`
	DisplayName string `json:"display_name,omitempty"`
}

// Agent states.
const (
	AgentPending  = "pending"
	AgentApproved = "approved"
	AgentRejected = "rejected"
)

// Agent is a machine that runs tests for the grid.
type Agent struct {
	ID           int64         `json:"id"`
	Name         string        `json:"name"`
	Owner        string        `json:"owner"`
	State        string        `json:"state"`
	Claimed      bool          `json:"claimed"`
	AutoApproved bool          `json:"auto_approved"`
	Labels       []string      `json:"labels"`
	Capabilities *Capabilities `json:"capabilities"`
	// PublicKey is the standard base64 of the raw 32-byte Ed25519 key.
	PublicKey string     `json:"public_key"`
	KeyID     string     `json:"key_id"`
	CreatedAt time.Time  `json:"created_at"`
	LastSeen  *time.Time `json:"last_seen"`
	DecidedBy string     `json:"decided_by"`
	DecidedAt *time.Time `json:"decided_at"`
}

// Capabilities is what an agent last advertised about itself.
type Capabilities struct {
	Arch               string   `json:"arch"`
	Releases           []string `json:"releases"`
	Backend            string   `json:"backend"`
	AutopkgtestVersion string   `json:"autopkgtest_version"`
	AgentVersion       string   `json:"agent_version"`
}

// Test is the result of one test of a package.
type Test = dep8.Test

// Harness is the harness revision a result was produced with.
type Harness = dep8.Harness

// Blob is a log or artifact a result uploaded.
type Blob struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Source kinds.
const (
	KindTree = "tree"
	KindDsc  = "dsc"
)

// Source names an uploaded source package: a tar archive held by the
// coordinator, with the path inside it to hand to autopkgtest.
type Source struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Kind   string `json:"kind"`
	Entry  string `json:"entry"`
}

// SourceRef is what the coordinator stored for an uploaded archive.
type SourceRef struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Job states.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateHeld      = "held"
	StateDone      = "done"
	StateCancelled = "cancelled"
)

// Job is one request to test a package on one release and architecture,
// with the tests, harness and blobs of its latest result.
type Job struct {
	ID       int64    `json:"id"`
	Package  string   `json:"package"`
	Version  string   `json:"version"`
	Release  string   `json:"release"`
	Arch     string   `json:"arch"`
	Triggers []string `json:"triggers"`
	// Source is nil when the package comes from the archive.
	Source  *Source      `json:"source"`
	State   string       `json:"state"`
	Verdict dep8.Verdict `json:"verdict"`
	Attempt int          `json:"attempt"`
	// Agent is the id of the agent holding, or last holding, the lease.
	Agent       *int64     `json:"agent"`
	AgentName   string     `json:"agent_name"`
	Owner       string     `json:"owner"`
	Stage       string     `json:"stage"`
	Reason      string     `json:"reason"`
	Transport   string     `json:"transport"`
	SubmittedBy string     `json:"submitted_by"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at"`
	ExitCode    *int       `json:"exit_code"`
	Tests       []Test     `json:"tests"`
	Harness     *Harness   `json:"harness"`
	Blobs       []Blob     `json:"blobs"`
	LogURL      string     `json:"log_url"`
}

// Finished reports whether the job will not change any more.
func (j Job) Finished() bool {
	return j.State == StateDone || j.State == StateCancelled
}

// SubmitRequest asks for a package to be tested. Either Package names a
// package of the archive, or Source names an uploaded archive and Package
// is the source package name read from it.
type SubmitRequest struct {
	Package string `json:"package"`
	Release string `json:"release"`
	// Arch defaults to the coordinator's default architecture.
	Arch     string   `json:"arch,omitempty"`
	Version  string   `json:"version,omitempty"`
	Triggers []string `json:"triggers,omitempty"`
	Source   *Source  `json:"source,omitempty"`
}

// JobsFilter selects jobs. Zero fields match everything; the coordinator
// caps the list when Limit is not positive.
type JobsFilter struct {
	Package string
	State   string
	Limit   int
}
