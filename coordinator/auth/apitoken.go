package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// ErrMalformedToken means a string is not a sparegrid API token.
var ErrMalformedToken = errors.New("auth: malformed API token")

// An API token reads "sgp_" + id + "_" + secret: the id is 8 characters of
// lowercase base32 (5 random bytes) and the secret is 32 random bytes in
// lowercase base32 without padding (52 characters).
const (
	apiTokenScheme    = "sgp_"
	apiTokenIDLen     = 8
	apiTokenSecretLen = 52
	apiTokenSecretRaw = 32
	apiTokenPrefixLen = len(apiTokenScheme) + apiTokenIDLen
	apiTokenLen       = apiTokenPrefixLen + 1 + apiTokenSecretLen
	apiTokenAlphabet  = "abcdefghijklmnopqrstuvwxyz234567"
)

func apiTokenEncoding() *base32.Encoding {
	return base32.NewEncoding(apiTokenAlphabet).WithPadding(base32.NoPadding)
}

// NewAPIToken makes a fresh API token for a human. The token is shown to its
// owner once and never stored; prefix ("sgp_" + id) is safe to store and
// show, and hash (sha256 of the token) is what the store keeps and looks up.
func NewAPIToken() (token, prefix string, hash []byte, err error) {
	var id [5]byte
	var secret [apiTokenSecretRaw]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", "", nil, fmt.Errorf("auth: new API token: %w", err)
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", "", nil, fmt.Errorf("auth: new API token: %w", err)
	}
	enc := apiTokenEncoding()
	prefix = apiTokenScheme + enc.EncodeToString(id[:])
	token = prefix + "_" + enc.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(token))
	return token, prefix, sum[:], nil
}

// HashAPIToken checks that token is well formed and returns its sha256, the
// key to look it up by in the store.
func HashAPIToken(token string) ([]byte, error) {
	if err := checkAPIToken(token); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(token))
	return sum[:], nil
}

// TokenPrefix returns the public part of a well-formed token, "sgp_" + id.
func TokenPrefix(token string) (string, error) {
	if err := checkAPIToken(token); err != nil {
		return "", err
	}
	return token[:apiTokenPrefixLen], nil
}

// EqualHash reports whether a and b are the same sha256 hash, in time that
// does not depend on where they differ.
func EqualHash(a, b []byte) bool {
	if len(a) != sha256.Size || len(b) != sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(a, b) == 1
}

// checkAPIToken never puts the token in its errors: it may be a real secret
// pasted into the wrong place.
func checkAPIToken(token string) error {
	if !strings.HasPrefix(token, apiTokenScheme) {
		return fmt.Errorf("%w: it must start with %q", ErrMalformedToken, apiTokenScheme)
	}
	if len(token) != apiTokenLen {
		return fmt.Errorf("%w: it has %d characters, want %d", ErrMalformedToken, len(token), apiTokenLen)
	}
	id := token[len(apiTokenScheme):apiTokenPrefixLen]
	if strings.Trim(id, apiTokenAlphabet) != "" {
		return fmt.Errorf("%w: its id may only hold the characters a-z and 2-7", ErrMalformedToken)
	}
	if token[apiTokenPrefixLen] != '_' {
		return fmt.Errorf("%w: want '_' after the id", ErrMalformedToken)
	}
	secret := token[apiTokenPrefixLen+1:]
	// Re-encoding refuses what the decoder forgives: line breaks and
	// non-zero trailing bits, which would give one token several spellings.
	enc := apiTokenEncoding()
	raw, err := enc.DecodeString(secret)
	if err != nil || len(raw) != apiTokenSecretRaw || enc.EncodeToString(raw) != secret {
		return fmt.Errorf("%w: its secret is not %d bytes of lowercase base32", ErrMalformedToken, apiTokenSecretRaw)
	}
	return nil
}
