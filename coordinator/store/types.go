package store

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Role is what an account may do.
type Role string

// Account roles.
const (
	RoleVolunteer  Role = "volunteer"
	RoleMaintainer Role = "maintainer"
	RoleAdmin      Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleVolunteer, RoleMaintainer, RoleAdmin:
		return true
	}
	return false
}

// Account is a person, named the way Launchpad names people.
type Account struct {
	ID          int64
	Name        string
	DisplayName string
	Email       string
	Role        Role
	CreatedAt   time.Time
}

// ValidateAccountName reports, wrapping ErrInvalid, why name is not a valid
// account name: 2 to 32 characters from a-z, 0-9 and ".+-", starting with a
// letter or digit.
func ValidateAccountName(name string) error {
	if len(name) < 2 || len(name) > 32 {
		return fmt.Errorf("%w: account name %q must be 2 to 32 characters", ErrInvalid, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '+' || c == '-'):
		default:
			return fmt.Errorf("%w: account name %q: character %d must be one of a-z, 0-9 or, after the first, \".+-\"", ErrInvalid, name, i+1)
		}
	}
	return nil
}

// AgentState is where an agent is in its registration.
type AgentState string

// Agent states.
const (
	AgentPending  AgentState = "pending"
	AgentApproved AgentState = "approved"
	AgentRejected AgentState = "rejected"
)

// Agent is a machine that runs tests for the grid.
type Agent struct {
	ID      int64
	Name    string
	OwnerID int64
	// Owner is the owner's account name, filled when read.
	Owner     string
	PublicKey []byte
	State     AgentState
	// ClaimCode is the short code the agent shows so its owner can claim
	// it; unique among all agents.
	ClaimCode string
	// ClaimedAt is when the owner confirmed the claim code.
	ClaimedAt *time.Time
	Labels    []string
	// Capabilities is what the agent last advertised.
	Capabilities json.RawMessage
	// AutoApproved marks an agent approved without a claim (demo mode).
	AutoApproved bool
	CreatedAt    time.Time
	LastSeen     *time.Time
	// DecidedBy names the account that approved or rejected the agent.
	DecidedBy string
	DecidedAt *time.Time
	// Paused says why the agent paused itself (repeated infrastructure
	// failures, too little disk space); empty when it takes work.
	Paused   string
	PausedAt *time.Time
}

// JobState is where a job is in its life.
type JobState string

// Job states.
const (
	JobQueued    JobState = "queued"
	JobRunning   JobState = "running"
	JobHeld      JobState = "held" // reserved: its scope is on hold
	JobDone      JobState = "done"
	JobCancelled JobState = "cancelled"
)

// Source is an uploaded source package: a tar archive held as a blob.
type Source struct {
	SHA256 string
	Size   int64
	Kind   string
	// Entry is the path inside the archive to hand to autopkgtest.
	Entry string
}

// Job is one request to test a package on one release and architecture.
type Job struct {
	ID       int64
	Package  string
	Version  string
	Release  string
	Arch     string
	Triggers []string
	// Source is nil when the package comes from the archive.
	Source *Source
	State  JobState
	// Verdict is empty until the job is done or cancelled.
	Verdict dep8.Verdict
	// Attempt is 0 before the first lease and counts leases after.
	Attempt     int
	MaxAttempts int
	// AgentID is the agent holding, or last holding, the lease.
	AgentID *int64
	// Nonce is unique to the current attempt.
	Nonce        string
	LeaseExpires *time.Time
	// Stage is the stage of the last heartbeat.
	Stage string
	// Reason says why the job was retried or ended in error.
	Reason string
	// Transport is the transport of the last delivered result.
	Transport string
	// Forced records that the submitter asked for the job to run whatever
	// whole-job blocklist rules covered it at submission (and, with result
	// reuse, whatever earlier result could stand in for it).
	Forced bool
	// Priority runs from MinPriority to MaxPriority, higher first;
	// DefaultPriority when CreateJob is given 0.
	Priority int
	// Lane names the queue the job is served from; LaneDefault when
	// CreateJob is given none. See LeaseJob.
	Lane string
	// ReusedFrom, when set, names the earlier job whose result stands for
	// this one: the job was created done with that job's verdict instead
	// of being run again.
	ReusedFrom *int64
	// Tests, when not empty, are the only tests of the package to run
	// (autopkgtest's --test-name): the package's tests were split between
	// agents that can run them.
	Tests []string
	// Needs is what an agent must offer to take the job.
	Needs JobNeeds
	// AvoidAgents are agents that must not take the job, such as those
	// whose failure a confirmation run is to check.
	AvoidAgents []int64
	// AptSources are apt source lines the testbed adds before the tests,
	// such as the repository of the upload that triggered the job.
	AptSources  []string
	SubmittedBy string
	CreatedAt   time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
}

// Job priorities and the default lane.
const (
	MinPriority     = 1
	MaxPriority     = 10
	DefaultPriority = 5
	LaneDefault     = "default"
)

// ValidLane reports whether s can name a lane: 1 to 32 characters from
// a-z, 0-9 and "-".
func ValidLane(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// JobNeeds is what an agent must offer to take a job: the requirements of
// the tests it runs, as read from the package's debian/tests/control, and
// what the request adds. The zero value needs nothing beyond the job's
// release and arch.
type JobNeeds struct {
	Tests    []dep8.Requirements `json:"tests,omitempty"`
	Labels   []string            `json:"labels,omitempty"`
	MemoryMB int64               `json:"memory_mb,omitempty"`
	DiskMB   int64               `json:"disk_mb,omitempty"`
}

// Request returns the needs the request adds, for dep8.Capable and
// dep8.Candidates, on the job's arch.
func (n JobNeeds) Request(arch string) dep8.RequestNeeds {
	return dep8.RequestNeeds{Arch: arch, Labels: n.Labels, MemoryMB: n.MemoryMB, DiskMB: n.DiskMB}
}

// Capable reports whether agent c can take a job on arch with these
// needs, and when it cannot, why (see dep8.Capable).
func (n JobNeeds) Capable(c dep8.AgentCaps, arch string) (bool, string) {
	extra := n.Request(arch)
	if len(n.Tests) == 0 {
		return dep8.Capable(c, dep8.Requirements{}, extra)
	}
	for _, req := range n.Tests {
		if ok, why := dep8.Capable(c, req, extra); !ok {
			return false, why
		}
	}
	return true, ""
}

// JobFilter selects jobs for ListJobs. Zero fields match everything.
type JobFilter struct {
	Package string
	State   JobState
	// Limit caps the number of jobs; DefaultListLimit when not positive.
	Limit int
}

// ReuseQuery asks ReuseCandidates for the finished jobs whose result could
// stand for a new request: same package, version, release, arch, trigger
// set (in any order) and test selection.
type ReuseQuery struct {
	Package  string
	Version  string
	Release  string
	Arch     string
	Triggers []string
	Tests    []string
	// Limit caps the number of candidates; 20 when not positive.
	Limit int
}

// LaneWindow is how far back LeaseJob counts each lane's leases when it
// shares the grid between lanes.
const LaneWindow = time.Hour

// LeaseParams asks LeaseJob for a job.
type LeaseParams struct {
	AgentID  int64
	Arch     string
	Releases []string
	TTL      time.Duration
	Now      time.Time
	// Nonce identifies the new attempt; the signed result must carry it.
	Nonce string
	// RetryElsewhere, when positive, leaves a job that was queued again
	// after an infrastructure failure on this agent, less than
	// RetryElsewhere ago, to other agents, as long as another approved,
	// unpaused agent that can run it has been seen since OnlineSince: its
	// last capabilities (see SeenAgent) are a JSON object whose "arch" is
	// the job's and whose "releases" list holds the job's release. With
	// no such agent the job is leased here at once.
	RetryElsewhere time.Duration
	OnlineSince    time.Time
	// Exclude, when set, is asked about each job LeaseJob could lease, in
	// the order it would take them; a job it returns true for is passed
	// over and stays queued for other agents. It runs inside the store's
	// write transaction, so the choice and the lease are one atomic step:
	// it must be quick and must not call the store.
	Exclude func(Job) bool
}

// LeaseRef names one attempt of a job as leased to one agent.
type LeaseRef struct {
	JobID   int64
	Attempt int
	AgentID int64
}

// BlobRef names a blob a result uploaded, such as its log or an artifact.
type BlobRef struct {
	Name   string
	SHA256 string
	Size   int64
}

// Result is what an agent reported for one attempt of a job.
type Result struct {
	JobID    int64
	Attempt  int
	AgentID  int64
	Verdict  dep8.Verdict
	ExitCode int
	Tests    []dep8.Test
	Harness  dep8.Harness
	// Envelope is the signed DSSE envelope exactly as received.
	Envelope  []byte
	Blobs     []BlobRef
	Transport string
	// IdempotencyKey identifies the result across retries (the hex sha256
	// of its envelope); unique among results when set.
	IdempotencyKey string
	CreatedAt      time.Time
}

// Ref returns the lease the result claims to be for.
func (r Result) Ref() LeaseRef {
	return LeaseRef{JobID: r.JobID, Attempt: r.Attempt, AgentID: r.AgentID}
}

// Blob is a content-addressed file held by the file store.
type Blob struct {
	SHA256    string
	Size      int64
	CreatedAt time.Time
}

// ValidSHA256 reports whether s is a lower-case hex sha256 sum.
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// InvalidError is an ErrInvalid whose Reason is written for the person who
// sent the input, so that callers may show it as it is.
type InvalidError struct {
	Reason string
}

func (e *InvalidError) Error() string { return ErrInvalid.Error() + ": " + e.Reason }

// Is makes errors.Is(e, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) error {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

// MaxBlockReason is the longest reason a blocklist rule may give, in bytes.
const MaxBlockReason = 500

// BlockRule is an admin's rule that keeps a source package, or one of its
// tests, off the grid. Empty fields match anything; a rule scoped to an
// agent or a label applies only to jobs going to that agent, or to an
// agent with that label.
type BlockRule struct {
	ID int64
	// Package is a shell glob (path.Match syntax) matched against the
	// source package name.
	Package string
	// Version, Release and Arch, when set, must equal the job's.
	Version string
	Release string
	Arch    string
	// Test, when set, names the one test the rule skips; otherwise the
	// rule blocks the whole job.
	Test string
	// AgentID (0 for any) and Label scope the rule; at most one is set.
	AgentID int64
	Label   string
	Reason  string
	// CreatedBy names the admin's account.
	CreatedBy string
	CreatedAt time.Time
	// ExpiresAt, when set, is the moment the rule stops matching.
	ExpiresAt *time.Time
}

// Active reports whether the rule still matches at now.
func (r BlockRule) Active(now time.Time) bool {
	return r.ExpiresAt == nil || now.Before(*r.ExpiresAt)
}

// Validate reports, as an *InvalidError, what makes r unfit to store as a
// new rule. It checks the fields on their own; that the agent exists and
// that ExpiresAt lies after CreatedAt are left to the store.
func (r BlockRule) Validate() error {
	if err := ValidateBlockPattern(r.Package); err != nil {
		return err
	}
	switch {
	case r.Version != "" && !dep8.ValidVersion(r.Version):
		return invalid("version %q is not a Debian version", r.Version)
	case r.Release != "" && !dep8.ValidSuite(r.Release):
		return invalid("release %q is not a release name such as trixie", r.Release)
	case r.Arch != "" && !dep8.ValidSuite(r.Arch):
		return invalid("arch %q is not an architecture name such as amd64", r.Arch)
	case r.Test != "" && !ValidTestName(r.Test):
		return invalid("test %q is not an autopkgtest test name (at most 100 printable characters, no space, comma or slash)", r.Test)
	case r.AgentID < 0:
		return invalid("agent %d is not an agent id", r.AgentID)
	case r.AgentID != 0 && r.Label != "":
		return invalid("a rule is scoped to an agent or to a label, not both")
	case r.Label != "" && !ValidLabel(r.Label):
		return invalid("label %q: use 1 to 64 characters from a-z, 0-9 and \"._:=-\", starting with a letter or digit", r.Label)
	case strings.TrimSpace(r.Reason) == "":
		return invalid("a rule needs a reason")
	case len(r.Reason) > MaxBlockReason:
		return invalid("reason is %d bytes; at most %d", len(r.Reason), MaxBlockReason)
	case !printable(r.Reason):
		return invalid("reason must be printable text on one line")
	case r.CreatedBy == "":
		return invalid("a rule needs the account that made it")
	}
	return nil
}

// ValidateBlockPattern reports, as an *InvalidError, why p is not a glob a
// blocklist rule may match source package names with: path.Match syntax
// over the characters of source package names (a-z, 0-9, "+-.") and the
// glob characters *, ?, [, ], ^ and \, at most 100 bytes.
func ValidateBlockPattern(p string) error {
	const hint = "use a source package name or a shell glob such as 'linux-*'"
	if p == "" {
		return invalid("a rule needs a package glob; %s", hint)
	}
	if len(p) > 100 {
		return invalid("package glob is %d bytes; at most 100", len(p))
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("+-.*?[]^\\", c) >= 0) {
			return invalid("package glob %q: character %d is not allowed; %s", p, i+1, hint)
		}
	}
	if _, err := path.Match(p, ""); err != nil {
		return invalid("package glob %q is malformed (an unclosed [ or a trailing \\); %s", p, hint)
	}
	return nil
}

// ValidTestName reports whether s can be an autopkgtest test name; see
// dep8.ValidTestName.
func ValidTestName(s string) bool { return dep8.ValidTestName(s) }

// ValidLabel reports whether s is acceptable as an agent label: 1 to 64
// characters from a-z, 0-9 and "._:=-", starting with a letter or digit.
func ValidLabel(s string) bool {
	if s == "" || len(s) > 64 || !lowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !lowerAlnum(c) && strings.IndexByte("._:=-", c) < 0 {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func lowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
