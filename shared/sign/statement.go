package sign

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Statement is an in-toto Statement v1 whose predicate is a test result.
// Its subjects are the result's blobs, in the same order.
type Statement struct {
	Type          string     `json:"_type"`
	Subject       []Subject  `json:"subject"`
	PredicateType string     `json:"predicateType"`
	Predicate     TestResult `json:"predicate"`
}

// Subject is an in-toto resource descriptor naming one blob by its sha256.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// TestResult is the predicate: what an agent claims about one attempt at a
// job, and the logs and artifacts it uploaded for it.
type TestResult struct {
	JobID   int64  `json:"job_id"`
	Attempt int    `json:"attempt"`
	Nonce   string `json:"nonce"`

	Package  string   `json:"package"`
	Version  string   `json:"version"`
	Release  string   `json:"release"`
	Arch     string   `json:"arch"`
	Triggers []string `json:"triggers"`

	// ExitCode is autopkgtest's exit code; Verdict is derived from it.
	ExitCode int          `json:"exit_code"`
	Verdict  dep8.Verdict `json:"verdict"`
	Tests    []dep8.Test  `json:"tests"`
	Harness  dep8.Harness `json:"harness"`
	Agent    AgentRef     `json:"agent"`
	Blobs    []Blob       `json:"blobs"`

	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// AgentRef names the agent that ran the test and the key it signed with.
type AgentRef struct {
	ID    int64  `json:"id"`
	KeyID string `json:"key_id"`
}

// Blob is one uploaded log or artifact: its name within the result and the
// size and lowercase hex sha256 of its bytes.
type Blob struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// NewStatement wraps tr in a statement with one subject per blob.
func NewStatement(tr TestResult) Statement {
	subjects := make([]Subject, 0, len(tr.Blobs))
	for _, b := range tr.Blobs {
		subjects = append(subjects, Subject{Name: b.Name, Digest: map[string]string{"sha256": b.SHA256}})
	}
	return Statement{
		Type:          StatementType,
		Subject:       subjects,
		PredicateType: PredicateTestResult,
		Predicate:     tr,
	}
}

// Validate reports, wrapping ErrStatement, a verdict or test result that is
// not one of dep8's words, a test without a name, or a blob without a name,
// with a repeated name, a negative size, or a sha256 that is not 64
// lowercase hex digits.
func (tr TestResult) Validate() error {
	if !tr.Verdict.Valid() {
		return fmt.Errorf("%w: verdict %q", ErrStatement, tr.Verdict)
	}
	for i, t := range tr.Tests {
		if t.Name == "" {
			return fmt.Errorf("%w: test %d has no name", ErrStatement, i)
		}
		if !t.Result.Valid() {
			return fmt.Errorf("%w: test %q result %q", ErrStatement, t.Name, t.Result)
		}
	}
	names := make(map[string]struct{}, len(tr.Blobs))
	for i, b := range tr.Blobs {
		if b.Name == "" {
			return fmt.Errorf("%w: blob %d has no name", ErrStatement, i)
		}
		if _, dup := names[b.Name]; dup {
			return fmt.Errorf("%w: blob %q repeats", ErrStatement, b.Name)
		}
		names[b.Name] = struct{}{}
		if !isSHA256Hex(b.SHA256) {
			return fmt.Errorf("%w: blob %q sha256 %q is not 64 lowercase hex digits", ErrStatement, b.Name, b.SHA256)
		}
		if b.Size < 0 {
			return fmt.Errorf("%w: blob %q size %d", ErrStatement, b.Name, b.Size)
		}
	}
	return nil
}

// SignResult validates tr and signs its statement with priv. It fills
// tr.Agent.KeyID from priv when empty and refuses a different one.
func SignResult(priv ed25519.PrivateKey, tr TestResult) (*Envelope, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key is %d bytes, want %d", ErrBadKey, len(priv), ed25519.PrivateKeySize)
	}
	id := KeyID(priv.Public().(ed25519.PublicKey))
	switch tr.Agent.KeyID {
	case "":
		tr.Agent.KeyID = id
	case id:
	default:
		return nil, fmt.Errorf("%w: agent key_id %q, signing with %s", ErrStatement, tr.Agent.KeyID, id)
	}
	if err := tr.Validate(); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(NewStatement(tr))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStatement, err)
	}
	return SignEnvelope(priv, PayloadType, payload)
}

// VerifyResult verifies env with pub (see VerifyEnvelope) and returns the
// test result it carries. The statement must decode strictly (see
// ParseEnvelope), have the in-toto and sparegrid type URIs, name pub as the
// agent's key, pass Validate, and have exactly one subject per blob, in the
// blobs' order, with the blob's name and only its sha256 digest; otherwise
// the error wraps ErrStatement.
func VerifyResult(env *Envelope, pub ed25519.PublicKey) (TestResult, error) {
	payload, err := VerifyEnvelope(env, pub)
	if err != nil {
		return TestResult{}, err
	}
	var st Statement
	if err := decodeStrict(payload, &st); err != nil {
		return TestResult{}, fmt.Errorf("%w: %w", ErrStatement, err)
	}
	if st.Type != StatementType {
		return TestResult{}, fmt.Errorf("%w: _type %q, want %q", ErrStatement, st.Type, StatementType)
	}
	if st.PredicateType != PredicateTestResult {
		return TestResult{}, fmt.Errorf("%w: predicateType %q, want %q", ErrStatement, st.PredicateType, PredicateTestResult)
	}
	tr := st.Predicate
	if id := KeyID(pub); tr.Agent.KeyID != id {
		return TestResult{}, fmt.Errorf("%w: agent key_id %q, signed by %s", ErrStatement, tr.Agent.KeyID, id)
	}
	if err := tr.Validate(); err != nil {
		return TestResult{}, err
	}
	if len(st.Subject) != len(tr.Blobs) {
		return TestResult{}, fmt.Errorf("%w: %d subjects for %d blobs", ErrStatement, len(st.Subject), len(tr.Blobs))
	}
	for i, s := range st.Subject {
		b := tr.Blobs[i]
		if s.Name != b.Name || len(s.Digest) != 1 || s.Digest["sha256"] != b.SHA256 {
			return TestResult{}, fmt.Errorf("%w: subject %d (%q) does not match blob %q", ErrStatement, i, s.Name, b.Name)
		}
	}
	return tr, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
