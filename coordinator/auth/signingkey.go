package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ErrBadSigningKey means a signing key file does not hold exactly one
// PKCS#8 Ed25519 private key.
var ErrBadSigningKey = errors.New("auth: bad signing key")

const pemPrivateKey = "PRIVATE KEY"

// GenerateSigningKey makes a new Ed25519 key for minting agent tokens.
func GenerateSigningKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: generate signing key: %w", err)
	}
	return priv, nil
}

// MarshalSigningKey encodes priv as a PKCS#8 "PRIVATE KEY" PEM block.
func MarshalSigningKey(priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: it is %d bytes, want %d", ErrBadSigningKey, len(priv), ed25519.PrivateKeySize)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSigningKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// ParseSigningKey decodes what MarshalSigningKey wrote. Anything after the
// PEM block other than white space is refused, so a file that holds two keys
// is an error rather than a guess.
func ParseSigningKey(data []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block found", ErrBadSigningKey)
	}
	if block.Type != pemPrivateKey {
		return nil, fmt.Errorf("%w: PEM block is %q, want %q", ErrBadSigningKey, block.Type, pemPrivateKey)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("%w: PEM block has headers; encrypted keys are not supported", ErrBadSigningKey)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: unexpected data after the key", ErrBadSigningKey)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSigningKey, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: key is %T, want Ed25519", ErrBadSigningKey, key)
	}
	return priv, nil
}
