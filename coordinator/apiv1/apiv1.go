// Package apiv1 owns the JSON shapes of version 1 of the coordinator's HTTP
// API (/api/v1, described in docs/api.md), shared by the server (package
// api) and its clients (package client): requests, answers, the error body
// and the values their enumerated fields take.
//
// Every field here is on the wire, so renaming one breaks deployed
// clients. It must not import the store, the server or net/http handlers:
// it holds the shapes and the few helpers that read them, nothing that
// serves or stores them.
package apiv1

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error Error `json:"error"`
}

// Error says why the coordinator refused a request.
type Error struct {
	// Code is a stable, machine-readable name such as "not_found".
	Code    string `json:"code"`
	Message string `json:"message"`
}

// VersionInfo is the answer of GET /version: the coordinator's build and
// the agent protocol version it speaks.
type VersionInfo struct {
	Protocol int    `json:"protocol"`
	Version  string `json:"version"`
}

// Account roles.
const (
	RoleVolunteer  = "volunteer"
	RoleMaintainer = "maintainer"
	RoleAdmin      = "admin"
)

// Account is a person, named the way Launchpad names people.
type Account struct {
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name"`
	Email       string    `json:"email"`
	Role        string    `json:"role"`
	CreatedAt   time.Time `json:"created_at"`
}

// CreateAccountRequest is the body of POST /accounts.
type CreateAccountRequest struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Role  string `json:"role"`
	// DisplayName defaults to Name.
	DisplayName string `json:"display_name,omitempty"`
}

// CreateAccountResponse carries the new account and its API token, which
// the coordinator shows this one time only.
type CreateAccountResponse struct {
	Account Account `json:"account"`
	Token   string  `json:"token"`
}

// Agent states.
const (
	AgentPending  = "pending"
	AgentApproved = "approved"
	AgentRejected = "rejected"
)

// Agent is a machine that runs tests for the grid.
type Agent struct {
	ID           int64    `json:"id"`
	Name         string   `json:"name"`
	Owner        string   `json:"owner"`
	State        string   `json:"state"`
	Claimed      bool     `json:"claimed"`
	AutoApproved bool     `json:"auto_approved"`
	Labels       []string `json:"labels"`
	// Capabilities is what the agent last advertised, passed on as it
	// sent it, or null when it never did; see ParseCapabilities.
	Capabilities json.RawMessage `json:"capabilities"`
	// Effective is what routing believes the agent's testbeds can do:
	// what it advertised with the labels an admin set applied over it.
	// It is null when the agent has advertised nothing usable, and shown
	// whatever the agent's state, though only approved agents get jobs.
	Effective *AgentCaps `json:"effective"`
	// PublicKey is the raw 32-byte Ed25519 key, standard base64 on the
	// wire.
	PublicKey []byte     `json:"public_key"`
	KeyID     string     `json:"key_id"`
	CreatedAt time.Time  `json:"created_at"`
	LastSeen  *time.Time `json:"last_seen"`
	DecidedBy string     `json:"decided_by"`
	DecidedAt *time.Time `json:"decided_at"`
	// Paused says why the agent paused itself (repeated infrastructure
	// failures, too little disk space); empty when it takes work.
	Paused   string     `json:"paused"`
	PausedAt *time.Time `json:"paused_at"`
}

// AgentCaps is what routing believes an agent's testbeds can do.
type AgentCaps struct {
	Arch    string `json:"arch"`
	Backend string `json:"backend"`
	// Isolation is "none", "container" or "machine".
	Isolation        string   `json:"isolation"`
	Root             bool     `json:"root"`
	RevertFullSystem bool     `json:"revert_full_system"`
	Reboot           bool     `json:"reboot"`
	Internet         bool     `json:"internet"`
	Labels           []string `json:"labels"`
	// MemoryMB and DiskMB are what one testbed may use; 0 means unknown.
	MemoryMB int64 `json:"memory_mb"`
	DiskMB   int64 `json:"disk_mb"`
}

// AgentLabelsRequest is the body of PUT /agents/{id}/labels: the labels
// an admin sets for the agent, replacing any earlier ones; [] clears them.
type AgentLabelsRequest struct {
	Labels []string `json:"labels"`
}

// Capabilities is what an agent advertises about itself.
type Capabilities struct {
	Arch               string   `json:"arch"`
	Releases           []string `json:"releases"`
	Backend            string   `json:"backend"`
	AutopkgtestVersion string   `json:"autopkgtest_version"`
	AgentVersion       string   `json:"agent_version"`
}

// ParseCapabilities decodes a.Capabilities. It returns nil and no error
// when the agent never advertised any.
func (a Agent) ParseCapabilities() (*Capabilities, error) {
	if len(a.Capabilities) == 0 {
		return nil, nil
	}
	var c *Capabilities
	if err := json.Unmarshal(a.Capabilities, &c); err != nil {
		return nil, fmt.Errorf("apiv1: capabilities of agent %d: %w", a.ID, err)
	}
	return c, nil
}

// AgentList is the answer of GET /agents.
type AgentList struct {
	Agents []Agent `json:"agents"`
}

// ClaimRequest is the body of POST /agents/claim.
type ClaimRequest struct {
	Code string `json:"code"`
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
	// Size is set by the coordinator from the uploaded archive.
	Size  int64  `json:"size"`
	Kind  string `json:"kind"`
	Entry string `json:"entry"`
}

// SourceRef is the answer of POST /sources: what the coordinator stored.
type SourceRef struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Blob is a log or artifact a result uploaded.
type Blob struct {
	Name   string `json:"name"`
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
// with the tests, harness and blobs of its latest result. The lists are
// empty, never null.
type Job struct {
	ID       int64    `json:"id"`
	Package  string   `json:"package"`
	Version  string   `json:"version"`
	Release  string   `json:"release"`
	Arch     string   `json:"arch"`
	Triggers []string `json:"triggers"`
	// Source is nil when the package comes from the archive.
	Source *Source `json:"source"`
	State  string  `json:"state"`
	// Verdict is empty until the job is done or cancelled.
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
	// ExitCode and Harness are nil until the job has a result.
	ExitCode *int          `json:"exit_code"`
	Tests    []dep8.Test   `json:"tests"`
	Harness  *dep8.Harness `json:"harness"`
	Blobs    []Blob        `json:"blobs"`
	// LogURL is the path of the log of the latest result, when it has one.
	LogURL string `json:"log_url"`
	// Priority (1 to 10, higher first) and Lane place the job in the
	// queue.
	Priority int    `json:"priority"`
	Lane     string `json:"lane"`
	// ReusedFrom names the earlier job whose result stands for this one:
	// the job was not run (same package, version, triggers, release, arch,
	// test selection and harness revision). Its results are that job's.
	ReusedFrom *int64 `json:"reused_from"`
	// OnlyTests, when not empty, are the only tests the job runs: the
	// package's tests were split between agents that can run them.
	OnlyTests []string `json:"only_tests"`
	// AptSources are the sources.list lines the testbed adds before the
	// tests, such as the repository of the upload that triggered the job.
	AptSources []string `json:"apt_sources"`
	// AvoidAgents are agents that must not take the job: those whose
	// failure a confirmation run checks.
	AvoidAgents []int64 `json:"avoid_agents"`
	// Pending, for a queued job, says why no agent can take it now.
	Pending string `json:"pending,omitempty"`
	// SplitJobs, in the answer to a submission, are the other jobs the
	// request was split into.
	SplitJobs []int64 `json:"split_jobs,omitempty"`
}

// Finished reports whether the job will not change any more.
func (j Job) Finished() bool {
	return j.State == StateDone || j.State == StateCancelled
}

// JobList is the answer of GET /jobs and GET /results.
type JobList struct {
	Jobs []Job `json:"jobs"`
}

// SubmitRequest is the body of POST /jobs. Either Package names a package
// of the archive, or Source names an uploaded archive and Package is the
// source package name read from it.
type SubmitRequest struct {
	Package string `json:"package"`
	Release string `json:"release"`
	// Arch defaults to the coordinator's default architecture.
	Arch     string   `json:"arch,omitempty"`
	Version  string   `json:"version,omitempty"`
	Triggers []string `json:"triggers,omitempty"`
	Source   *Source  `json:"source,omitempty"`
	// Force submits the job although a whole-job blocklist rule covers
	// it, and runs it although an earlier result could be reused; the
	// job's reason then names the rule.
	Force bool `json:"force,omitempty"`
	// Priority is 1 to 10, higher first; 0 means DefaultSubmitPriority.
	Priority int `json:"priority,omitempty"`
	// Labels, MemoryMB and DiskMB are what an agent must offer to take
	// the job, on top of what the package's tests need.
	Labels   []string `json:"labels,omitempty"`
	MemoryMB int64    `json:"memory_mb,omitempty"`
	DiskMB   int64    `json:"disk_mb,omitempty"`
}

// DefaultSubmitPriority is the priority of a submission that names none:
// above the tests an upload triggers, below the upload's own.
const DefaultSubmitPriority = 7

// BlockRule is an admin's rule that keeps a source package, or one of its
// tests, off the grid. Empty strings match anything.
type BlockRule struct {
	ID int64 `json:"id"`
	// Package is a shell glob matched against the source package name.
	Package string `json:"package"`
	Version string `json:"version"`
	Release string `json:"release"`
	Arch    string `json:"arch"`
	// Test, when set, is the one test the rule skips; otherwise the rule
	// blocks whole jobs.
	Test string `json:"test"`
	// Agent (an agent id) or Label scope the rule; null and "" when it
	// applies on every agent.
	Agent     *int64     `json:"agent"`
	Label     string     `json:"label"`
	Reason    string     `json:"reason"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	// Expired is set when the rule no longer applies; only a list with
	// all=true holds such rules.
	Expired bool `json:"expired"`
	// Explanation is the sentence every decision the rule causes shows.
	Explanation string `json:"explanation"`
}

// BlockRuleRequest is the body of POST /blocklist.
type BlockRuleRequest struct {
	Package string `json:"package"`
	Version string `json:"version,omitempty"`
	Release string `json:"release,omitempty"`
	Arch    string `json:"arch,omitempty"`
	Test    string `json:"test,omitempty"`
	Agent   *int64 `json:"agent,omitempty"`
	Label   string `json:"label,omitempty"`
	Reason  string `json:"reason"`
	// Expires is when the rule stops applying; null for never.
	Expires *time.Time `json:"expires,omitempty"`
}

// BlockRuleList is the answer of GET /blocklist.
type BlockRuleList struct {
	Rules []BlockRule `json:"rules"`
}

// Verdict statuses, in britney's words (see docs/scheduling.md).
const (
	StatusPass       = "PASS"
	StatusRegression = "REGRESSION"
	StatusAlwaysFail = "ALWAYSFAIL"
	StatusNeutral    = "NEUTRAL"
	StatusRunning    = "RUNNING"
	StatusPending    = "PENDING"
)

// VerdictList is the answer of GET /verdicts: a package's verdicts and the
// confirmation runs they wait for.
type VerdictList struct {
	Package  string         `json:"package"`
	Verdicts []Verdict      `json:"verdicts"`
	Retries  []VerdictRetry `json:"retries"`
}

// Verdict is the judgement of one package version's tests against one
// trigger set on one release and architecture.
type Verdict struct {
	Package  string   `json:"package"`
	Version  string   `json:"version"`
	Triggers []string `json:"triggers"`
	Release  string   `json:"release"`
	Arch     string   `json:"arch"`
	// OnlyTests is the test selection the verdict is about when the
	// package's tests were split between agents; empty for all tests.
	OnlyTests []string `json:"only_tests"`
	// Status is one of the Status* values.
	Status string `json:"status"`
	Reason string `json:"reason"`
	// Jobs are the jobs the verdict rests on.
	Jobs []int64 `json:"jobs"`
	// HarnessRevisions are the harness revisions of the results in Jobs.
	HarnessRevisions []string `json:"harness_revisions"`
	// Baseline is nil when the package has no run without triggers to
	// compare with.
	Baseline *VerdictBaseline `json:"baseline"`
	// FailedOn lists the agents that saw the failure since the last pass.
	FailedOn    []int64 `json:"failed_on"`
	Unconfirmed bool    `json:"unconfirmed"`
	Flaky       bool    `json:"flaky"`
}

// VerdictBaseline is the run without triggers a verdict was judged
// against.
type VerdictBaseline struct {
	JobID    int64        `json:"job_id"`
	Result   dep8.Verdict `json:"result"`
	Version  string       `json:"version"`
	Finished time.Time    `json:"finished"`
}

// VerdictRetry is a confirmation run a failure waits for before it is
// declared a REGRESSION: the target again, on an agent other than
// AvoidAgents.
type VerdictRetry struct {
	Package     string   `json:"package"`
	Version     string   `json:"version"`
	Triggers    []string `json:"triggers"`
	Release     string   `json:"release"`
	Arch        string   `json:"arch"`
	OnlyTests   []string `json:"only_tests"`
	AvoidAgents []int64  `json:"avoid_agents"`
	Reason      string   `json:"reason"`
}

// Event is something a build system announced, with what the coordinator's
// rules made of it.
type Event struct {
	ID          int64             `json:"id"`
	Type        string            `json:"type"`
	Source      string            `json:"source"`
	Version     string            `json:"version"`
	ArtifactURL string            `json:"artifact_url"`
	BuildID     string            `json:"build_id"`
	Metadata    map[string]string `json:"metadata"`
	// Producer names the account that posted the event.
	Producer string    `json:"producer"`
	Received time.Time `json:"received"`
	// Rules has one outcome per configured rule, in evaluation order.
	Rules    []EventRule    `json:"rules"`
	Requests []EventRequest `json:"requests"`
	// Jobs are the ids of the jobs the requests created.
	Jobs []int64 `json:"jobs"`
}

// EventRule is what one rule made of an event.
type EventRule struct {
	Rule    string `json:"rule"`
	Matched bool   `json:"matched"`
	// Error says why the rule failed for this event; "" when it did not.
	Error    string   `json:"error"`
	Warnings []string `json:"warnings"`
	// Requests counts the requests the rule asked for.
	Requests int `json:"requests"`
}

// EventRequest is one test an event asked for.
type EventRequest struct {
	Package  string   `json:"package"`
	Version  string   `json:"version"`
	Release  string   `json:"release"`
	Arch     string   `json:"arch"`
	Triggers []string `json:"triggers"`
	Priority int      `json:"priority"`
	Lane     string   `json:"lane"`
	Reason   string   `json:"reason"`
	// Pending is set when no agent could run the request; it then has
	// no job and PendingReason says why.
	Pending       bool   `json:"pending"`
	PendingReason string `json:"pending_reason"`
	// Blocked is set when a blocklist rule kept the request from becoming
	// a job: the rule's sentence.
	Blocked string `json:"blocked"`
	Job     *int64 `json:"job"`
	// SplitJobs are the other jobs the request's tests were split into.
	SplitJobs []int64 `json:"split_jobs"`
}

// EventPost is the body of POST /events; see docs/scheduling.md for
// what each field may hold. The coordinator decodes it strictly.
type EventPost struct {
	Type        string            `json:"type"`
	Source      string            `json:"source,omitempty"`
	Version     string            `json:"version,omitempty"`
	ArtifactURL string            `json:"artifact_url,omitempty"`
	BuildID     string            `json:"build_id,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// EventList is the answer of GET /events.
type EventList struct {
	Events []Event `json:"events"`
}

// Schedule is the answer of GET /schedule: what the coordinator's own
// scheduling did last.
type Schedule struct {
	// Running is false on a coordinator that runs no selection policy.
	Running bool `json:"running"`
	// SweepEverySeconds is how often the sweep runs; 0 when it does not.
	SweepEverySeconds int64 `json:"sweep_every_seconds"`
	// Last is the latest decision, LastSweep the latest sweep's; null
	// before the first.
	Last      *ScheduleDecision `json:"last"`
	LastSweep *ScheduleDecision `json:"last_sweep"`
}

// ScheduleDecision is what one decision of the selection policy did.
type ScheduleDecision struct {
	At       time.Time `json:"at"`
	Sweep    bool      `json:"sweep"`
	Requests int       `json:"requests"`
	Jobs     int       `json:"jobs"`
	Reused   int       `json:"reused"`
	Blocked  int       `json:"blocked"`
	// OldestResult is the testable package whose latest result is the
	// oldest (a sweep's decisions only), with LastResult null when it
	// was never tested, and OldestResultAgeSeconds that result's age.
	OldestResult           *ScheduleTarget `json:"oldest_result"`
	OldestResultAgeSeconds int64           `json:"oldest_result_age_seconds"`
}

// ScheduleTarget is a package on a release and arch.
type ScheduleTarget struct {
	Package    string     `json:"package"`
	Release    string     `json:"release"`
	Arch       string     `json:"arch"`
	LastResult *time.Time `json:"last_result"`
}

// Hold is one holder's hold on a scope: while a scope is held, the jobs it
// covers stay queued.
type Hold struct {
	// Scope is "grid", "release:NAME", "arch:NAME" or "label:NAME".
	Scope  string    `json:"scope"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// By is "check NAME" for a failing health check, or an admin's
	// account name.
	By string `json:"by"`
}

// HoldList is the answer of GET /grid/holds.
type HoldList struct {
	Holds []Hold `json:"holds"`
}

// HoldRequest is the body of POST /grid/hold; an empty scope means the
// grid.
type HoldRequest struct {
	Scope  string `json:"scope,omitempty"`
	Reason string `json:"reason"`
}

// ResumeRequest is the body of POST /grid/resume; an empty scope means
// the grid. Resume lifts the admins' holds on the scope, not a failing
// check's.
type ResumeRequest struct {
	Scope string `json:"scope,omitempty"`
}

// ResumeResponse is the answer of POST /grid/resume.
type ResumeResponse struct {
	// Lifted are the holds resume lifted.
	Lifted []Hold `json:"lifted"`
	// Remaining are the holds left on the scope, set by failing checks.
	Remaining []Hold `json:"remaining"`
}

// DowntimeInterval is one stretch of time a health check failed.
type DowntimeInterval struct {
	Check string    `json:"check"`
	Scope string    `json:"scope"`
	Start time.Time `json:"start"`
	// End is null while the check still fails.
	End *time.Time `json:"end"`
	// DurationSeconds is how long it lasted, up to the answer's time
	// while it is open.
	DurationSeconds int64 `json:"duration_seconds"`
	// LastError is what the check's last failure said.
	LastError string `json:"last_error"`
}

// DowntimeReport is the answer of GET /downtime.
type DowntimeReport struct {
	Since     time.Time          `json:"since"`
	Now       time.Time          `json:"now"`
	Intervals []DowntimeInterval `json:"intervals"`
}
