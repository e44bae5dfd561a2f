package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	// ErrTokenExpired means an agent token was genuine but is past its
	// expiry. Agents fetch a new token on their own; this is routine.
	ErrTokenExpired = errors.New("auth: agent token expired")
	// ErrTokenInvalid means an agent token was not minted by this
	// coordinator for this audience, or was tampered with, or is not a
	// token at all. The agent must get a new one.
	ErrTokenInvalid = errors.New("auth: agent token invalid")
	// ErrNotAgent means a subject does not name an agent ("agent:<id>",
	// id a positive integer).
	ErrNotAgent = errors.New("auth: subject is not an agent")
	// ErrIssuerConfig means an Issuer was built with a bad key or TTL.
	ErrIssuerConfig = errors.New("auth: issuer misconfigured")

	errNotEdDSA = errors.New("auth: signing method is not EdDSA")
)

const (
	// MaxAgentTokenLen bounds the agent tokens Verify will parse. Minted
	// tokens are a few hundred bytes.
	MaxAgentTokenLen = 4096

	// clockLeeway forgives small clock differences between the coordinator
	// that mints and the one that verifies.
	clockLeeway = 5 * time.Second

	agentSubjectPrefix = "agent:"
)

// Issuer mints and verifies the short-lived EdDSA JWTs that approved agents
// present on every call. It is safe for concurrent use.
type Issuer struct {
	priv     ed25519.PrivateKey
	pub      ed25519.PublicKey
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
}

// NewIssuer returns an Issuer that signs with priv, names itself issuer,
// addresses its tokens to audience, and makes them last ttl by the clock now
// (time.Now when nil). A bad key or ttl surfaces as an error from Mint.
func NewIssuer(priv ed25519.PrivateKey, issuer, audience string, ttl time.Duration, now func() time.Time) *Issuer {
	if now == nil {
		now = time.Now
	}
	i := &Issuer{priv: priv, issuer: issuer, audience: audience, ttl: ttl, now: now}
	if len(priv) == ed25519.PrivateKeySize {
		i.pub = priv.Public().(ed25519.PublicKey)
	}
	return i
}

// Mint makes a token for agentID and says when it expires. The caller must
// already have checked that the agent is approved and proved its identity.
func (i *Issuer) Mint(agentID int64) (token string, expires time.Time, err error) {
	if i.pub == nil {
		return "", time.Time{}, fmt.Errorf("%w: signing key is %d bytes, want %d", ErrIssuerConfig, len(i.priv), ed25519.PrivateKeySize)
	}
	if i.ttl <= 0 {
		return "", time.Time{}, fmt.Errorf("%w: token lifetime %s is not positive", ErrIssuerConfig, i.ttl)
	}
	if agentID <= 0 {
		return "", time.Time{}, fmt.Errorf("%w: agent id %d is not positive", ErrNotAgent, agentID)
	}
	now := i.now()
	claims := jwt.RegisteredClaims{
		Issuer:    i.issuer,
		Subject:   agentSubjectPrefix + strconv.FormatInt(agentID, 10),
		Audience:  jwt.ClaimStrings{i.audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
		ID:        rand.Text(),
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(i.priv)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: mint token for agent %d: %w", agentID, err)
	}
	return token, claims.ExpiresAt.Time, nil
}

// Verify checks a token minted by Mint and returns the agent it names.
// Errors wrap ErrTokenExpired or ErrTokenInvalid, and jwt's own error.
// Verify says nothing about whether the agent is still approved; the caller
// checks that against the store.
func (i *Issuer) Verify(token string) (agentID int64, err error) {
	if len(token) > MaxAgentTokenLen {
		return 0, fmt.Errorf("%w: it is %d bytes, more than the %d allowed", ErrTokenInvalid, len(token), MaxAgentTokenLen)
	}
	var claims jwt.RegisteredClaims
	_, err = jwt.ParseWithClaims(token, &claims, i.keyFunc,
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(i.issuer),
		jwt.WithAudience(i.audience),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(i.now),
		jwt.WithLeeway(clockLeeway),
		jwt.WithStrictDecoding(),
	)
	if err != nil {
		return 0, i.explain(err, &claims)
	}
	id, err := parseAgentSubject(claims.Subject)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	return id, nil
}

// keyFunc hands jwt the issuer's public key and nothing else, and only for
// EdDSA, so no header field can pick the key or the algorithm.
func (i *Issuer) keyFunc(t *jwt.Token) (any, error) {
	if _, ok := t.Method.(*jwt.SigningMethodEd25519); !ok {
		return nil, fmt.Errorf("%w: got %q", errNotEdDSA, t.Header["alg"])
	}
	if i.pub == nil {
		return nil, fmt.Errorf("%w: no public key", ErrIssuerConfig)
	}
	return i.pub, nil
}

// explain turns a jwt failure into one of our sentinels with a hint a person
// can act on. Claims are only filled in once the signature has been checked,
// so an expiry is reported only for a genuine token, and only when nothing
// else is wrong with it.
func (i *Issuer) explain(err error, claims *jwt.RegisteredClaims) error {
	var hint string
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		hint = "not a well-formed JWT"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		hint = "not signed with EdDSA by this coordinator's key (was the key replaced?); the agent must get a new token"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidAudience):
		hint = fmt.Sprintf("issued for another coordinator (want issuer %q, audience %q)", i.issuer, i.audience)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		hint = "a required claim is missing"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		hint = "not valid yet; check that the agent's and the coordinator's clocks agree"
	case errors.Is(err, jwt.ErrTokenExpired) && claims.ExpiresAt != nil:
		return fmt.Errorf("%w at %s; the agent fetches a new one automatically: %w",
			ErrTokenExpired, claims.ExpiresAt.UTC().Format(time.RFC3339), err)
	default:
		hint = "it could not be verified"
	}
	return fmt.Errorf("%w: %s: %w", ErrTokenInvalid, hint, err)
}

// parseAgentSubject reads "agent:<id>" with id a positive decimal integer
// written without sign or leading zeros, so each agent has one subject.
func parseAgentSubject(sub string) (int64, error) {
	digits, ok := strings.CutPrefix(sub, agentSubjectPrefix)
	if !ok {
		return 0, fmt.Errorf("%w: subject %q does not start with %q", ErrNotAgent, sub, agentSubjectPrefix)
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != digits {
		return 0, fmt.Errorf("%w: subject %q does not end in a positive agent id", ErrNotAgent, sub)
	}
	return id, nil
}
