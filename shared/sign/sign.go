// Package sign owns the signed form of a test result: DSSE envelopes
// (https://github.com/secure-systems-lab/dsse, protocol v1) over in-toto
// Statements (v1) whose predicate is a sparegrid test result, signed with an
// agent's Ed25519 key. The agent signs; the coordinator and anyone holding
// the agent's public key verify, offline if they like.
//
// It signs and checks bytes only: it must not read keys from disk, talk to
// the network, or decide whether a verified result belongs to a job (the
// coordinator compares job, attempt and nonce with its lease). Ed25519 is
// the only algorithm.
package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Media and type URIs of a sparegrid result.
const (
	PayloadType         = "application/vnd.in-toto+json"
	StatementType       = "https://in-toto.io/Statement/v1"
	PredicateTestResult = "https://sparegrid.github.io/predicates/test-result/v1"
)

// Limits on an envelope read from untrusted bytes.
const (
	MaxEnvelopeSize = 16 << 20
	MaxSignatures   = 4
)

// Errors of this package. Match them with errors.Is.
var (
	// ErrMalformed: the envelope is not well-formed DSSE JSON within limits.
	ErrMalformed = errors.New("sign: malformed envelope")
	// ErrBadSignature: a signature names the key but does not verify.
	ErrBadSignature = errors.New("sign: bad signature")
	// ErrWrongKey: no signature names the key it was checked against.
	ErrWrongKey = errors.New("sign: not signed by this key")
	// ErrPayloadType: the envelope carries something other than an in-toto
	// statement.
	ErrPayloadType = errors.New("sign: unexpected payload type")
	// ErrBadKey: a key has the wrong length.
	ErrBadKey = errors.New("sign: bad key")
	// ErrStatement: the signed statement is not a valid test result.
	ErrStatement = errors.New("sign: bad statement")
	// ErrBlobMismatch: a blob's bytes differ from the signed size or digest.
	ErrBlobMismatch = errors.New("sign: blob does not match")
)

// Envelope is a DSSE envelope. Its JSON form is the DSSE one; encoding/json
// writes the []byte fields in standard base64.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     []byte      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one signature in an envelope. Sig is Ed25519 over
// PAE(PayloadType, Payload).
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   []byte `json:"sig"`
}

// PAE is DSSE's pre-authentication encoding, the bytes that are signed:
//
//	"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
//
// with LEN the length in bytes as ASCII decimal.
func PAE(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, len("DSSEv1")+len(payloadType)+len(payload)+48)
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// KeyID names an Ed25519 public key: "sha256:" and the hex sha256 of the
// key's 32 bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// SignEnvelope signs payload as payloadType with priv.
func SignEnvelope(priv ed25519.PrivateKey, payloadType string, payload []byte) (*Envelope, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key is %d bytes, want %d", ErrBadKey, len(priv), ed25519.PrivateKeySize)
	}
	if payloadType == "" || len(payload) == 0 {
		return nil, fmt.Errorf("%w: empty payload or payload type", ErrMalformed)
	}
	pub := priv.Public().(ed25519.PublicKey)
	return &Envelope{
		PayloadType: payloadType,
		Payload:     bytes.Clone(payload),
		Signatures: []Signature{{
			KeyID: KeyID(pub),
			Sig:   ed25519.Sign(priv, PAE(payloadType, payload)),
		}},
	}, nil
}

// VerifyEnvelope checks that env carries an in-toto statement (PayloadType)
// and that a signature named by KeyID(pub) verifies with pub, and returns
// the payload. Signatures by other keys are ignored. It fails with
// ErrPayloadType, ErrWrongKey when no signature names pub, ErrBadSignature
// when those that do fail to verify, ErrMalformed, or ErrBadKey.
func VerifyEnvelope(env *Envelope, pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key is %d bytes, want %d", ErrBadKey, len(pub), ed25519.PublicKeySize)
	}
	if err := env.check(); err != nil {
		return nil, err
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("%w: %q, want %q", ErrPayloadType, env.PayloadType, PayloadType)
	}
	id := KeyID(pub)
	named := false
	msg := PAE(env.PayloadType, env.Payload)
	for _, s := range env.Signatures {
		if s.KeyID != id {
			continue
		}
		named = true
		if ed25519.Verify(pub, msg, s.Sig) {
			return env.Payload, nil
		}
	}
	if !named {
		return nil, fmt.Errorf("%w: no signature by %s", ErrWrongKey, id)
	}
	return nil, fmt.Errorf("%w: by %s", ErrBadSignature, id)
}

// check reports an envelope that ParseEnvelope would refuse.
func (env *Envelope) check() error {
	switch {
	case env == nil:
		return fmt.Errorf("%w: no envelope", ErrMalformed)
	case env.PayloadType == "":
		return fmt.Errorf("%w: empty payload type", ErrMalformed)
	case len(env.Payload) == 0:
		return fmt.Errorf("%w: empty payload", ErrMalformed)
	case len(env.Signatures) == 0 || len(env.Signatures) > MaxSignatures:
		return fmt.Errorf("%w: %d signatures, want 1 to %d", ErrMalformed, len(env.Signatures), MaxSignatures)
	}
	for i, s := range env.Signatures {
		if s.KeyID == "" {
			return fmt.Errorf("%w: signature %d has no keyid", ErrMalformed, i)
		}
		if len(s.Sig) != ed25519.SignatureSize {
			return fmt.Errorf("%w: signature %d is %d bytes, want %d", ErrMalformed, i, len(s.Sig), ed25519.SignatureSize)
		}
	}
	return nil
}

// ParseEnvelope decodes an envelope from JSON strictly: one object of at
// most MaxEnvelopeSize bytes, no unknown or repeated fields, nothing after
// it, a non-empty payload and payload type, and 1 to MaxSignatures
// signatures, each with a keyid and an Ed25519-sized sig. It does not verify
// anything; errors wrap ErrMalformed.
func ParseEnvelope(data []byte) (*Envelope, error) {
	if len(data) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: %d bytes, want at most %d", ErrMalformed, len(data), MaxEnvelopeSize)
	}
	var env Envelope
	if err := decodeStrict(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := env.check(); err != nil {
		return nil, err
	}
	return &env, nil
}

// Marshal returns the envelope's JSON form.
func (env *Envelope) Marshal() ([]byte, error) {
	if err := env.check(); err != nil {
		return nil, err
	}
	return json.Marshal(env)
}
