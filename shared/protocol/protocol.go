// Package protocol owns the wire contract between sparegrid agents and the
// coordinator: the message types, the framing, the error codes and the
// Coordinator interface that both sides implement, one as a client over a
// transport session, the other as the gateway's handler.
//
// It must not know about QUIC, TCP, SQLite or autopkgtest: transports carry
// its streams, the coordinator stores what it says, the agent runs tests.
//
// # Streams and frames
//
// Every call is one bidirectional stream. The agent opens it, writes one
// Request frame, then (for UploadBlob only) exactly Size raw bytes, and
// closes its side. The coordinator answers with one Response frame, then
// (for FetchBlob only) exactly Size raw bytes, and closes the stream. A frame
// is a 4-byte big-endian length followed by that many bytes of JSON, at most
// MaxFrame.
//
// # Lifecycle
//
// The first call on a session is Hello; the coordinator refuses any other
// call until Hello succeeded and refuses Hello when the protocol versions
// differ. An unregistered agent then calls Register once and waits for its
// owner to claim it and an admin to approve it. An approved agent calls
// Challenge and Token to get a short-lived token, passes that token on every
// later call, and gets a new one before it expires. It then loops: Lease
// (long-poll for a job), Heartbeat every HeartbeatInterval while the test
// runs, UploadBlob for the log and each artifact, Result with the signed
// envelope.
//
// # Cancellation and errors
//
// Every method honours ctx: when ctx is done the client resets the stream and
// returns ctx's error; the coordinator then discards a partial upload and
// keeps nothing from the call. Methods return a *Error for every refusal the
// peer explains (match them with errors.Is against the Err* values below);
// any other error is a transport failure and the call may be retried.
//
// # Thread safety
//
// Implementations of Coordinator are safe for concurrent use: each call uses
// its own stream.
package protocol

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// ALPN is the TLS application protocol of the agent gateway.
const ALPN = "sparegrid/1"

// Coordinator is the set of calls an agent makes to the coordinator.
type Coordinator interface {
	// Hello compares protocol versions. It must be the first call.
	Hello(ctx context.Context, req Hello) (HelloReply, error)
	// Register records a new agent as pending and returns its id and the
	// claim code its owner confirms. It needs no token.
	Register(ctx context.Context, req RegisterRequest) (RegisterReply, error)
	// Challenge returns a fresh nonce for the agent to sign. It needs no
	// token, and refuses unknown, pending and rejected agents.
	Challenge(ctx context.Context, req ChallengeRequest) (ChallengeReply, error)
	// Token exchanges a signed challenge for a short-lived token.
	Token(ctx context.Context, req TokenRequest) (TokenReply, error)
	// Lease waits up to req.Wait for a job the agent can run. It returns a
	// reply with a nil Job when none came in time.
	Lease(ctx context.Context, token string, req LeaseRequest) (LeaseReply, error)
	// Heartbeat extends the lease of a running job. ErrStaleLease means the
	// agent no longer holds it and must abandon the job.
	Heartbeat(ctx context.Context, token string, req HeartbeatRequest) (HeartbeatReply, error)
	// UploadBlob sends hdr.Size bytes from r; the coordinator stores them
	// only when their sha256 matches hdr.SHA256.
	UploadBlob(ctx context.Context, token string, hdr BlobHeader, r io.Reader) (BlobReceipt, error)
	// FetchBlob writes a blob the job needs (an uploaded source package)
	// to w, after checking its sha256.
	FetchBlob(ctx context.Context, token string, req FetchBlobRequest, w io.Writer) (BlobHeader, error)
	// Result submits the signed result of an attempt. The coordinator
	// acknowledges only after the result is durably stored.
	Result(ctx context.Context, token string, req ResultRequest) (ResultReply, error)
}

// Op names a call on the wire.
type Op string

// Ops, one per Coordinator method.
const (
	OpHello     Op = "hello"
	OpRegister  Op = "register"
	OpChallenge Op = "challenge"
	OpToken     Op = "token"
	OpLease     Op = "lease"
	OpHeartbeat Op = "heartbeat"
	OpUpload    Op = "upload_blob"
	OpFetch     Op = "fetch_blob"
	OpResult    Op = "result"
)

// Request is the first frame of every stream.
type Request struct {
	Op    Op     `json:"op"`
	Token string `json:"token,omitempty"`
	// Body is the op's request message.
	Body any `json:"body"`
}

// RawRequest is Request as the coordinator decodes it.
type RawRequest struct {
	Op    Op              `json:"op"`
	Token string          `json:"token,omitempty"`
	Body  json.RawMessage `json:"body"`
}

// Response is the coordinator's answer frame.
type Response struct {
	Error *Error `json:"error,omitempty"`
	Body  any    `json:"body,omitempty"`
}

// Hello opens a session.
type Hello struct {
	ProtocolVersion int    `json:"protocol_version"`
	AgentVersion    string `json:"agent_version"`
}

// HelloReply answers Hello.
type HelloReply struct {
	ProtocolVersion    int    `json:"protocol_version"`
	CoordinatorVersion string `json:"coordinator_version"`
}

// RegisterRequest asks to enrol a new agent under an owner's account.
type RegisterRequest struct {
	Owner string `json:"owner"`
	Name  string `json:"name"`
	// PublicKey is the agent's raw 32-byte Ed25519 public key.
	PublicKey []byte `json:"public_key"`
}

// RegisterReply answers RegisterRequest.
type RegisterReply struct {
	AgentID   int64  `json:"agent_id"`
	ClaimCode string `json:"claim_code"`
	// State is "pending", or "approved" on a demo coordinator.
	State string `json:"state"`
}

// ChallengeRequest asks for a nonce to sign.
type ChallengeRequest struct {
	AgentID int64 `json:"agent_id"`
}

// ChallengeReply carries the nonce.
type ChallengeReply struct {
	Nonce   []byte    `json:"nonce"`
	Expires time.Time `json:"expires"`
}

// TokenRequest proves possession of the agent's key.
type TokenRequest struct {
	AgentID int64  `json:"agent_id"`
	Nonce   []byte `json:"nonce"`
	// Signature is Ed25519 over ChallengeMessage(AgentID, Nonce).
	Signature []byte `json:"signature"`
}

// ChallengeMessage returns the bytes an agent signs to answer a challenge.
// The context string keeps the signature from meaning anything elsewhere.
func ChallengeMessage(agentID int64, nonce []byte) []byte {
	return append([]byte(fmt.Sprintf("sparegrid-token-challenge-v1\x00%d\x00", agentID)), nonce...)
}

// TokenReply carries a short-lived token.
type TokenReply struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// Capabilities is what an agent says it can do. The coordinator may
// override any of it.
type Capabilities struct {
	Arch               string   `json:"arch"`
	Releases           []string `json:"releases"`
	Backend            string   `json:"backend"`
	AutopkgtestVersion string   `json:"autopkgtest_version"`
	AgentVersion       string   `json:"agent_version"`
	// Isolation is what the backend's testbeds isolate: "none",
	// "container" or "machine" (dep8.Isolation). Empty means the
	// coordinator assumes the backend's defaults.
	Isolation string `json:"isolation,omitempty"`
	// Root, RevertFullSystem and Reboot are the virt server's
	// root-on-testbed, revert-full-system and reboot capabilities.
	Root             bool `json:"root,omitempty"`
	RevertFullSystem bool `json:"revert_full_system,omitempty"`
	Reboot           bool `json:"reboot,omitempty"`
	// Internet says whether tests may reach beyond the package archive.
	Internet bool `json:"internet,omitempty"`
	// Labels are names the volunteer gives the machine (such as "gpu");
	// admins' labels override them.
	Labels []string `json:"labels,omitempty"`
	// MemoryMB and DiskMB are what one testbed may use; 0 means unknown.
	MemoryMB int64 `json:"memory_mb,omitempty"`
	DiskMB   int64 `json:"disk_mb,omitempty"`
}

// AgentCaps returns what the capabilities claim for agent id in dep8's
// terms. An empty Isolation takes the backend's defaults
// (dep8.BackendDefaults), or none at all for an unknown backend, so an
// agent that advertises no features is not trusted with more than its
// backend gives.
func (c Capabilities) AgentCaps(id int64) dep8.AgentCaps {
	out := dep8.AgentCaps{ID: id, Arch: c.Arch, Backend: c.Backend, Isolation: dep8.IsolationNone}
	if c.Isolation == "" {
		if d, err := dep8.BackendDefaults(c.Backend); err == nil {
			d.ID, d.Arch = id, c.Arch
			out = d
		}
	} else {
		switch i := dep8.Isolation(c.Isolation); i {
		case dep8.IsolationContainer, dep8.IsolationMachine:
			out.Isolation = i
		}
		out.Root, out.RevertFullSystem, out.Reboot, out.Internet = c.Root, c.RevertFullSystem, c.Reboot, c.Internet
	}
	out.Labels = slices.Sorted(slices.Values(c.Labels))
	out.MemoryMB, out.DiskMB = c.MemoryMB, c.DiskMB
	return out
}

// LeaseRequest asks for a job.
type LeaseRequest struct {
	Capabilities Capabilities `json:"capabilities"`
	// Wait is how long the coordinator may hold the call open.
	Wait time.Duration `json:"wait"`
	// Paused, when set, says why the agent has paused itself (repeated
	// infrastructure failures, too little disk space). The coordinator
	// records it, shows it to admins and leases nothing; an empty Paused
	// clears an earlier pause.
	Paused string `json:"paused,omitempty"`
}

// LeaseReply carries a job, or none.
type LeaseReply struct {
	Job *Job `json:"job,omitempty"`
}

// Job is one attempt at a package test, leased to one agent.
type Job struct {
	ID      int64 `json:"id"`
	Attempt int   `json:"attempt"`
	// Nonce is unique to this attempt; the signed result must carry it.
	Nonce    string   `json:"nonce"`
	Package  string   `json:"package"`
	Version  string   `json:"version,omitempty"`
	Release  string   `json:"release"`
	Arch     string   `json:"arch"`
	Triggers []string `json:"triggers,omitempty"`
	// Source is set when the package was uploaded rather than taken from
	// the archive.
	Source *Source `json:"source,omitempty"`
	// LeaseExpires is when the coordinator requeues the job unless a
	// heartbeat extends it.
	LeaseExpires time.Time `json:"lease_expires"`
	// HeartbeatInterval is how often to call Heartbeat (add jitter).
	HeartbeatInterval time.Duration `json:"heartbeat_interval"`
	// SkipTests are tests the coordinator's blocklist keeps out of this
	// run; the agent passes each to autopkgtest as --skip-test.
	SkipTests []string `json:"skip_tests,omitempty"`
	// SkipReasons are one-line sentences saying why, one per skipped
	// test, such as "skipping test smoke: blocklist rule 4 (~admin):
	// times out on slow disks"; the agent appends them to the run's log.
	SkipReasons []string `json:"skip_reasons,omitempty"`
	// Tests, when not empty, are the only tests to run (autopkgtest's
	// --test-name, once per name): the coordinator split the package's
	// tests between agents that can run them.
	Tests []string `json:"tests,omitempty"`
	// AptSources are one-line apt sources ("deb URL SUITE COMPONENT...",
	// "deb-src ...") to add to the testbed before the tests, such as the
	// repository holding the upload that triggered the job; each passes
	// ValidAptSource.
	AptSources []string `json:"apt_sources,omitempty"`
}

// MaxAptSource bounds one apt source line.
const MaxAptSource = 1024

// ValidAptSource reports whether s is one line of sources.list that
// sparegrid passes on: "deb " or "deb-src " then printable ASCII, at most
// MaxAptSource bytes.
func ValidAptSource(s string) bool {
	if len(s) > MaxAptSource || !(strings.HasPrefix(s, "deb ") || strings.HasPrefix(s, "deb-src ")) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return len(strings.Fields(s)) >= 3
}

// Source kinds.
const (
	SourceTree = "tree" // an unpacked source tree
	SourceDSC  = "dsc"  // a .dsc with the files it names
)

// Source describes an uploaded source package: a tar archive held as a blob.
type Source struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Kind   string `json:"kind"`
	// Entry is the path inside the archive to hand to autopkgtest: the
	// tree's directory, or the .dsc file.
	Entry string `json:"entry"`
}

// HeartbeatRequest extends a lease.
type HeartbeatRequest struct {
	JobID   int64 `json:"job_id"`
	Attempt int   `json:"attempt"`
	// Stage is a short word for progress ("testbed", "testing",
	// "uploading").
	Stage string `json:"stage,omitempty"`
}

// HeartbeatReply answers a heartbeat.
type HeartbeatReply struct {
	LeaseExpires time.Time `json:"lease_expires"`
	// Cancel asks the agent to stop the job and tear its testbed down.
	Cancel bool `json:"cancel,omitempty"`
}

// BlobHeader announces bulk bytes on a stream.
type BlobHeader struct {
	JobID   int64  `json:"job_id"`
	Attempt int    `json:"attempt"`
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
}

// BlobReceipt acknowledges a stored blob.
type BlobReceipt struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// FetchBlobRequest asks for a blob a leased job needs.
type FetchBlobRequest struct {
	JobID   int64  `json:"job_id"`
	Attempt int    `json:"attempt"`
	SHA256  string `json:"sha256"`
}

// ResultRequest submits a signed result.
type ResultRequest struct {
	JobID   int64 `json:"job_id"`
	Attempt int   `json:"attempt"`
	// Envelope is the DSSE envelope as JSON (see package sign).
	Envelope []byte `json:"envelope"`
	// IdempotencyKey is ResultKey(Envelope). Sending the same result
	// again (after a lost acknowledgement or an agent restart) with the
	// same key is acknowledged without storing it twice. Empty means the
	// coordinator computes it.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// ResultKey returns the idempotency key of a result: the lower-case hex
// sha256 of its envelope.
func ResultKey(envelope []byte) string {
	sum := sha256.Sum256(envelope)
	return hex.EncodeToString(sum[:])
}

// ResultReply acknowledges a durably stored result.
type ResultReply struct {
	Verdict dep8.Verdict `json:"verdict"`
	// Duplicate is true when the result had been stored before, by an
	// earlier call with the same idempotency key.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Error is a refusal the peer explains.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "coordinator: " + e.Code
	}
	return e.Message
}

// Is matches errors by code, so errors.Is(err, ErrPending) works on errors
// decoded from the wire.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// Errorf returns an *Error with the code of kind and a formatted message.
func Errorf(kind *Error, format string, args ...any) *Error {
	return &Error{Code: kind.Code, Message: fmt.Sprintf(format, args...)}
}

// Error codes. Compare with errors.Is.
var (
	ErrVersion         = &Error{Code: "version_mismatch"}
	ErrBadRequest      = &Error{Code: "bad_request"}
	ErrUnauthenticated = &Error{Code: "unauthenticated"}
	ErrForbidden       = &Error{Code: "forbidden"}
	ErrUnknownAgent    = &Error{Code: "unknown_agent"}
	ErrPending         = &Error{Code: "agent_pending"}
	ErrRejected        = &Error{Code: "agent_rejected"}
	ErrNotFound        = &Error{Code: "not_found"}
	ErrStaleLease      = &Error{Code: "stale_lease"}
	ErrBadSignature    = &Error{Code: "bad_signature"}
	ErrDigestMismatch  = &Error{Code: "digest_mismatch"}
	ErrTooLarge        = &Error{Code: "too_large"}
	ErrInternal        = &Error{Code: "internal"}
)

// Permanent reports whether retrying the same call cannot succeed. It is the
// one place that decides retryable against permanent for agent calls.
func Permanent(err error) bool {
	var pe *Error
	if !errors.As(err, &pe) {
		return false // transport trouble: retry
	}
	switch pe.Code {
	case ErrInternal.Code:
		return false
	}
	return true
}
