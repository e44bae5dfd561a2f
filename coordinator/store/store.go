// Package store owns the coordinator's durable state: accounts and their API
// tokens, agents and their registration, jobs and their leases, results and
// the rows naming content-addressed blobs, the admins' blocklist rules, and
// the events build systems post with what the rules made of them.
// It defines the Store interface, the domain types it speaks and the errors
// it returns; implementations live in sub-packages and are checked by the
// conformance suite in storetest.
//
// It must not hold the blob bytes themselves (the file store does), know
// about the wire protocol or transports, verify signatures, or decide who is
// allowed to do what beyond the ownership and state rules documented on each
// method: callers authenticate and authorise before they call. It stores
// blocklist rules but does not decide what they block (package blocklist
// does).
//
// # Time
//
// Every time a Store returns is in UTC. Methods that decide something by the
// clock (leases, expiry, completion) take the time as an argument so callers
// and tests control it, a zero time meaning the store's clock; methods that
// only stamp a row use the given CreatedAt when it is set and the store's
// clock otherwise.
//
// # Errors
//
// Methods return the Err* sentinels below, possibly wrapped; match them with
// errors.Is. Any other error is a failure of the underlying database, and
// nothing was written.
//
// # Thread safety
//
// Implementations are safe for concurrent use.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Errors returned by Store methods.
var (
	ErrNotFound     = errors.New("store: not found")
	ErrExists       = errors.New("store: already exists")
	ErrConflict     = errors.New("store: conflicting state")
	ErrForbidden    = errors.New("store: forbidden")
	ErrNotClaimed   = errors.New("store: agent not claimed by its owner")
	ErrStaleLease   = errors.New("store: stale lease")
	ErrUnknownBlob  = errors.New("store: unknown blob")
	ErrSchemaTooNew = errors.New("store: database schema is newer than this program")
	ErrInvalid      = errors.New("store: invalid input")
)

// DefaultMaxAttempts is a job's MaxAttempts when CreateJob is given none.
const DefaultMaxAttempts = 3

// DefaultListLimit is the number of jobs ListJobs returns when the filter
// sets no limit.
const DefaultListLimit = 100

// Store is the coordinator's durable state.
type Store interface {
	HealthStore
	CountStore
	MailStore

	// CreateAccount stores a new account and returns it with its ID and
	// CreatedAt set. ErrInvalid when the name or role is invalid, ErrExists
	// when the name is taken.
	CreateAccount(ctx context.Context, a Account) (Account, error)
	// AccountByName returns the account called name, or ErrNotFound.
	AccountByName(ctx context.Context, name string) (Account, error)
	// ListAccounts returns every account, oldest first.
	ListAccounts(ctx context.Context) ([]Account, error)
	// AddAPIToken records the sha256 hash of a new API token for an
	// account; prefix is the token's public, displayable start. ErrInvalid
	// when prefix is empty or hash is not a sha256 sum, ErrNotFound when the
	// account does not exist, ErrExists when the hash is already recorded.
	AddAPIToken(ctx context.Context, accountID int64, prefix string, hash []byte) error
	// AccountByTokenHash returns the account owning the token whose sha256
	// hash is given and records that the token was used. ErrNotFound when
	// no token has that hash.
	AccountByTokenHash(ctx context.Context, hash []byte) (Account, error)

	// CreateAgent stores a new agent and returns it with its ID, Owner and
	// CreatedAt set. An empty State means AgentPending; AgentApproved is
	// accepted only together with AutoApproved. ErrInvalid for a missing
	// name, public key or claim code or another state, ErrNotFound when
	// the owner does not exist, ErrExists when the claim code is taken.
	CreateAgent(ctx context.Context, a Agent) (Agent, error)
	// Agent returns the agent with the given id, or ErrNotFound.
	Agent(ctx context.Context, id int64) (Agent, error)
	// ListAgents returns every agent, oldest first.
	ListAgents(ctx context.Context) ([]Agent, error)
	// ClaimAgent records that the owner of the agent showing code has
	// confirmed it. ErrNotFound for an unknown code, ErrForbidden when
	// accountID is not the agent's owner, ErrConflict when the agent is not
	// pending or already claimed.
	ClaimAgent(ctx context.Context, code string, accountID int64) (Agent, error)
	// DecideAgent approves or rejects a pending agent on behalf of the
	// admin named by. ErrInvalid when state is neither AgentApproved nor
	// AgentRejected or by is empty, ErrNotFound for an unknown id,
	// ErrConflict when the agent is not pending, ErrNotClaimed when
	// approving an agent its owner has not claimed, unless it is
	// AutoApproved.
	DecideAgent(ctx context.Context, id int64, state AgentState, by string) (Agent, error)
	// SeenAgent records that the agent was heard from at the given time
	// and, when caps is not empty, the capabilities it advertised.
	// ErrInvalid when caps is not JSON, ErrNotFound for an unknown id.
	SeenAgent(ctx context.Context, id int64, at time.Time, caps json.RawMessage) error
	// PauseAgent records that the agent paused itself for reason at the
	// given time; an empty reason records that it takes work again.
	// Recording the reason it already has keeps the earlier time.
	// ErrNotFound for an unknown id.
	PauseAgent(ctx context.Context, id int64, reason string, at time.Time) error
	// SetAgentLabels replaces the labels an admin set for the agent with
	// labels, sorted and without duplicates (see NormalizeAgentLabels),
	// and returns the agent; no labels clears them. ErrInvalid (an
	// *InvalidError) when NormalizeAgentLabels refuses them, ErrNotFound
	// for an unknown id.
	SetAgentLabels(ctx context.Context, id int64, labels []string) (Agent, error)

	// AddBlob records a blob held by the file store. Adding the same blob
	// again is a no-op. ErrInvalid when the sum is not lower-case hex
	// sha256 or the size is negative, ErrConflict when the sum is recorded
	// with another size.
	AddBlob(ctx context.Context, b Blob) error
	// Blob returns the blob with the given sha256, or ErrNotFound.
	Blob(ctx context.Context, sha256 string) (Blob, error)

	// CreateJob queues a new job and returns it with its ID, State,
	// MaxAttempts, Priority, Lane and CreatedAt set; its Reason, Forced,
	// Tests, Needs and AvoidAgents are stored as given. With ReusedFrom
	// set the job is instead created done, finished at once, with the
	// verdict of that job (or of the job it reused in turn, which
	// ReusedFrom then names). ErrInvalid when package, release or arch is
	// empty, the state is set to anything but JobQueued, the source is
	// incomplete or does not match its blob, MaxAttempts is negative, the
	// priority is not 0 or MinPriority to MaxPriority, the lane is not
	// ValidLane, a test name is not valid, or ReusedFrom names a job that
	// is not done with a pass, fail or neutral verdict; ErrNotFound when
	// ReusedFrom names no job; ErrUnknownBlob when the source blob is not
	// recorded.
	CreateJob(ctx context.Context, j Job) (Job, error)
	// Job returns the job with the given id, or ErrNotFound.
	Job(ctx context.Context, id int64) (Job, error)
	// ListJobs returns the jobs matching f, newest first.
	ListJobs(ctx context.Context, f JobFilter) ([]Job, error)
	// LeaseJob atomically leases a queued job for p.Arch and one of
	// p.Releases to agent p.AgentID, passing over jobs that avoid the
	// agent (Job.AvoidAgents), jobs p.RetryElsewhere leaves to other
	// agents and jobs p.Exclude refuses: the job becomes running with the
	// next attempt number, p.Nonce and a lease until p.Now+p.TTL.
	//
	// Which job: lanes share the grid in proportion to the priority of
	// their next job, so a job is ranked by (leases its lane got in the
	// last LaneWindow + 1) / its priority, lowest first, then by priority,
	// then oldest first. Within a lane that is priority order; across
	// lanes with work, a lane whose next job has priority 8 gets about
	// twice the leases of one whose next job has priority 4, and no lane
	// with work is starved.
	//
	// It returns nil and no error when no job matches. No two calls ever
	// lease the same attempt. It does not check that the agent is
	// approved or may run the job: the caller decides that from its own
	// view of the agent. ErrInvalid when the agent id, arch, nonce or TTL
	// is missing, ErrNotFound when the agent does not exist.
	LeaseJob(ctx context.Context, p LeaseParams) (*Job, error)
	// ExtendLease moves the lease of a running job to until and records
	// the stage, when not empty. ErrNotFound for an unknown job,
	// ErrStaleLease unless ref is the job's current attempt and agent and
	// the lease has not expired at now, ErrInvalid when until is not
	// after now.
	ExtendLease(ctx context.Context, ref LeaseRef, now, until time.Time, stage string) (Job, error)
	// CheckLease returns the job when ref holds its lease at now, with
	// the same errors as ExtendLease.
	CheckLease(ctx context.Context, ref LeaseRef, now time.Time) (Job, error)
	// ExpireLeases ends every lease that expired at or before now: the
	// job is queued again for another attempt, preferably on another agent
	// (see LeaseParams.RetryElsewhere), or is done with VerdictError when
	// it has used all its attempts. It returns the ids of the jobs it
	// changed.
	ExpireLeases(ctx context.Context, now time.Time) ([]int64, error)
	// CompleteJob stores the result of the current attempt of a running
	// job, in one durable transaction. A tmpfail result queues the job
	// again while attempts remain, preferably for another agent, and
	// otherwise ends it with VerdictError; any other verdict ends it with
	// that verdict. The
	// lease's expiry time is not checked: a result that arrives before the
	// lease is expired by ExpireLeases is accepted. ErrInvalid for a
	// verdict other than pass, fail, neutral or tmpfail, or an empty
	// envelope; ErrNotFound for an unknown job; ErrStaleLease unless the
	// result is for the job's current attempt and agent and none was
	// stored for it yet; ErrUnknownBlob when a blob ref names an
	// unrecorded blob. A result whose IdempotencyKey is already stored is
	// refused with ErrStaleLease too (look it up with ResultByKey).
	// Nothing is written when an error is returned.
	CompleteJob(ctx context.Context, r Result, now time.Time) (Job, error)
	// CancelJob cancels a queued, held or running job. ErrNotFound for an
	// unknown job, ErrConflict when it is already done or cancelled.
	CancelJob(ctx context.Context, id int64, now time.Time) (Job, error)

	// Results returns the results of every attempt of a job, oldest first.
	// ErrNotFound for an unknown job.
	Results(ctx context.Context, jobID int64) ([]Result, error)
	// LatestResult returns the result of the job's latest attempt that
	// produced one, or ErrNotFound.
	LatestResult(ctx context.Context, jobID int64) (Result, error)
	// ResultByKey returns the result stored with the given idempotency
	// key, or ErrNotFound (also for an empty key).
	ResultByKey(ctx context.Context, key string) (Result, error)

	// AddBlockRule stores a new blocklist rule and returns it with its ID
	// and CreatedAt set. ErrInvalid (an *InvalidError) when
	// BlockRule.Validate refuses it or ExpiresAt is not after CreatedAt,
	// ErrNotFound when AgentID names no agent.
	AddBlockRule(ctx context.Context, r BlockRule) (BlockRule, error)
	// BlockRules returns the rules active at now (see BlockRule.Active),
	// or every rule when all is set, oldest first.
	BlockRules(ctx context.Context, now time.Time, all bool) ([]BlockRule, error)
	// RemoveBlockRule deletes a rule, active or expired. ErrNotFound for
	// an unknown id.
	RemoveBlockRule(ctx context.Context, id int64) error

	// ReuseCandidates returns the done jobs with a pass, fail or neutral
	// verdict that ran (not reused) what q describes, newest first, each
	// with its latest result's agent, harness and tests. Triggers and
	// tests match as sets.
	ReuseCandidates(ctx context.Context, q ReuseQuery) ([]PackageRun, error)
	// LatestHarness returns the harness of the newest result on the
	// release and arch that is not a tmpfail, or ErrNotFound when there
	// is none.
	LatestHarness(ctx context.Context, release, arch string) (dep8.Harness, error)
	// TargetResults returns, for every package, release and arch with a
	// job without triggers that ran to a pass, fail or neutral verdict
	// (not reused), when the newest such job finished, sorted by
	// package, release and arch.
	TargetResults(ctx context.Context) ([]TargetResult, error)

	// PackageRuns reads, in one snapshot, the PackageRunsLimit newest jobs
	// of the source package pkg that are done, queued, held or running,
	// and returns the done ones as runs and the others as active jobs,
	// each oldest first. Cancelled jobs are left out. An unknown package
	// has neither.
	PackageRuns(ctx context.Context, pkg string) ([]PackageRun, []ActiveJob, error)

	// AddEvent stores a new event, without its expansion, and returns it
	// with its ID set; a zero Received means the store's clock.
	// ErrInvalid (an *InvalidError) when ValidateNewEvent refuses it.
	AddEvent(ctx context.Context, e Event) (Event, error)
	// SetEventExpansion stores, replacing any earlier one, what the rules
	// made of an event. ErrNotFound for an unknown id.
	SetEventExpansion(ctx context.Context, id int64, rules []EventRule, requests []EventRequest) (Event, error)
	// Event returns the event with the given id, or ErrNotFound.
	Event(ctx context.Context, id int64) (Event, error)
	// ListEvents returns the newest events, newest first, at most limit
	// of them (DefaultEventLimit when limit is not positive).
	ListEvents(ctx context.Context, limit int) ([]Event, error)
}

// MaxAgentLabels is how many labels an admin may set for one agent.
const MaxAgentLabels = 32

// NormalizeAgentLabels returns the labels an admin sets for an agent
// sorted and without duplicates, or, as an *InvalidError, why they cannot
// be set: a label that is not one of the forms dep8.ApplyAdminLabels
// takes, more than MaxAgentLabels of them, or two that contradict each
// other (isolation=container and isolation=machine, gpu and -gpu), whose
// outcome would depend on their order.
func NormalizeAgentLabels(labels []string) ([]string, error) {
	out := slices.Compact(slices.Sorted(slices.Values(labels)))
	if len(out) > MaxAgentLabels {
		return nil, invalid("%d agent labels; at most %d may be set", len(out), MaxAgentLabels)
	}
	type subject struct {
		capability bool
		name       string
	}
	seen := make(map[subject]string, len(out))
	for _, l := range out {
		if _, err := dep8.ApplyAdminLabels(dep8.AgentCaps{}, []string{l}); err != nil {
			return nil, invalid("agent label %q: %s", l, labelProblem(err))
		}
		s := subject{name: strings.TrimPrefix(l, "-")}
		if key, _, ok := strings.Cut(l, "="); ok {
			s = subject{capability: true, name: key}
		}
		if other, ok := seen[s]; ok {
			return nil, invalid("agent labels %q and %q contradict each other; keep one", other, l)
		}
		seen[s] = l
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// labelProblem says what is wrong with the one label ApplyAdminLabels
// refused with err.
func labelProblem(err error) string {
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := multi.Unwrap(); len(errs) > 1 {
			return errs[len(errs)-1].Error()
		}
	}
	return fmt.Sprintf("want CAPABILITY=VALUE, -NAME or NAME, where NAME is 1 to %d characters from a-z, 0-9 and \"._:-\" starting with a letter or digit", dep8.MaxLabelLen)
}
