package client

import (
	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// The client speaks in the types of package apiv1; these aliases let its
// callers use the client alone.
type (
	// Account is a person, named the way Launchpad names people.
	Account = apiv1.Account
	// CreateAccountRequest asks for a new account.
	CreateAccountRequest = apiv1.CreateAccountRequest
	// Agent is a machine that runs tests for the grid.
	Agent = apiv1.Agent
	// AgentCaps is what routing believes an agent can do.
	AgentCaps = apiv1.AgentCaps
	// Schedule is what the coordinator's selection policy did last.
	Schedule = apiv1.Schedule
	// ScheduleDecision is one decision of the selection policy.
	ScheduleDecision = apiv1.ScheduleDecision
	// ScheduleTarget is a package on a release and arch.
	ScheduleTarget = apiv1.ScheduleTarget
	// Capabilities is what an agent last advertised about itself.
	Capabilities = apiv1.Capabilities
	// Blob is a log or artifact a result uploaded.
	Blob = apiv1.Blob
	// Source names an uploaded source package.
	Source = apiv1.Source
	// SourceRef is what the coordinator stored for an uploaded archive.
	SourceRef = apiv1.SourceRef
	// Job is one request to test a package on one release and
	// architecture, with the tests, harness and blobs of its latest
	// result.
	Job = apiv1.Job
	// SubmitRequest asks for a package to be tested.
	SubmitRequest = apiv1.SubmitRequest
	// VersionInfo is what the coordinator reports about its build.
	VersionInfo = apiv1.VersionInfo
	// BlockRule is an admin's rule that keeps a package, or one of its
	// tests, off the grid.
	BlockRule = apiv1.BlockRule
	// BlockRuleRequest asks for a new blocklist rule.
	BlockRuleRequest = apiv1.BlockRuleRequest
	// VerdictList is a package's verdicts and the confirmation runs they
	// wait for.
	VerdictList = apiv1.VerdictList
	// Verdict is the judgement of one package version's tests against one
	// trigger set on one release and architecture.
	Verdict = apiv1.Verdict
	// VerdictBaseline is the run without triggers a verdict was judged
	// against.
	VerdictBaseline = apiv1.VerdictBaseline
	// VerdictRetry is a confirmation run a failure waits for.
	VerdictRetry = apiv1.VerdictRetry
	// Event is something a build system announced, with what the
	// coordinator's rules made of it.
	Event = apiv1.Event
	// EventRule is what one rule made of an event.
	EventRule = apiv1.EventRule
	// EventRequest is one test an event asked for.
	EventRequest = apiv1.EventRequest
	// EventPost is an event a build system posts.
	EventPost = apiv1.EventPost
)

// Test is the result of one test of a package.
type Test = dep8.Test

// Harness is the harness revision a result was produced with.
type Harness = dep8.Harness

// Account roles.
const (
	RoleVolunteer  = apiv1.RoleVolunteer
	RoleMaintainer = apiv1.RoleMaintainer
	RoleAdmin      = apiv1.RoleAdmin
)

// Agent states.
const (
	AgentPending  = apiv1.AgentPending
	AgentApproved = apiv1.AgentApproved
	AgentRejected = apiv1.AgentRejected
)

// Source kinds.
const (
	KindTree = apiv1.KindTree
	KindDsc  = apiv1.KindDsc
)

// Verdict statuses.
const (
	StatusPass       = apiv1.StatusPass
	StatusRegression = apiv1.StatusRegression
	StatusAlwaysFail = apiv1.StatusAlwaysFail
	StatusNeutral    = apiv1.StatusNeutral
	StatusRunning    = apiv1.StatusRunning
	StatusPending    = apiv1.StatusPending
)

// Job states.
const (
	StateQueued    = apiv1.StateQueued
	StateRunning   = apiv1.StateRunning
	StateHeld      = apiv1.StateHeld
	StateDone      = apiv1.StateDone
	StateCancelled = apiv1.StateCancelled
)

// JobsFilter selects jobs. Zero fields match everything; the coordinator
// caps the list when Limit is not positive.
type JobsFilter struct {
	Package string
	State   string
	Limit   int
}
