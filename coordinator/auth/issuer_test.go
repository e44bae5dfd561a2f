package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "sparegrid-coordinator"
	testAudience = "sparegrid-agent-gateway"
	testTTL      = 15 * time.Minute
)

// t0 is when every test token is minted.
func t0() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) }

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func newTestIssuer(t *testing.T) (*Issuer, ed25519.PrivateKey, *fakeClock) {
	t.Helper()
	priv, err := GenerateSigningKey()
	if err != nil {
		t.Fatalf("GenerateSigningKey() error = %v", err)
	}
	clock := &fakeClock{now: t0()}
	return NewIssuer(priv, testIssuer, testAudience, testTTL, clock.Now), priv, clock
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("SignedString(%s) error = %v", method.Alg(), err)
	}
	return s
}

// goodClaims are what Mint would write for agent 42 at t0.
func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer,
		"aud": []string{testAudience},
		"sub": "agent:42",
		"iat": t0().Unix(),
		"nbf": t0().Unix(),
		"exp": t0().Add(testTTL).Unix(),
		"jti": "test",
	}
}

func with(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := goodClaims()
	edit(c)
	return c
}

func b64json(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// flipTrailingBit changes the last character of unpadded base64url text in a
// bit that decoding drops, so lax decoders read the same bytes.
func flipTrailingBit(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last^1])
}

func TestMintVerifyRoundTrip(t *testing.T) {
	iss, _, clock := newTestIssuer(t)
	for _, id := range []int64{1, 42, 1 << 62} {
		tok, exp, err := iss.Mint(id)
		if err != nil {
			t.Fatalf("Mint(%d) error = %v", id, err)
		}
		if want := t0().Add(testTTL); !exp.Equal(want) {
			t.Errorf("Mint(%d) expires = %v, want %v", id, exp, want)
		}
		got, err := iss.Verify(tok)
		if err != nil || got != id {
			t.Errorf("Verify(Mint(%d)) = %d, %v, want %d, nil", id, got, err, id)
		}
	}

	a, _, _ := iss.Mint(7)
	b, _, _ := iss.Mint(7)
	if a == b {
		t.Errorf("Mint(7) twice gave the same token; want a fresh jti each time")
	}

	clock.now = t0().Add(testTTL - time.Second)
	if _, err := iss.Verify(a); err != nil {
		t.Errorf("Verify one second before expiry: %v, want nil", err)
	}
}

func TestMintRefuses(t *testing.T) {
	good, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		priv    ed25519.PrivateKey
		ttl     time.Duration
		agentID int64
		want    error
	}{
		{"zero agent", good, testTTL, 0, ErrNotAgent},
		{"negative agent", good, testTTL, -3, ErrNotAgent},
		{"no key", nil, testTTL, 1, ErrIssuerConfig},
		{"short key", good[:31], testTTL, 1, ErrIssuerConfig},
		{"zero ttl", good, 0, 1, ErrIssuerConfig},
		{"negative ttl", good, -time.Minute, 1, ErrIssuerConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := NewIssuer(tt.priv, testIssuer, testAudience, tt.ttl, nil)
			tok, _, err := iss.Mint(tt.agentID)
			if !errors.Is(err, tt.want) || tok != "" {
				t.Errorf("Mint(%d) = %q, %v, want \"\", %v", tt.agentID, tok, err, tt.want)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	iss, priv, _ := newTestIssuer(t)
	pub := priv.Public().(ed25519.PublicKey)
	otherPriv, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	noneHeader := b64json(t, map[string]string{"alg": "none", "typ": "JWT"})
	good := sign(t, jwt.SigningMethodEdDSA, priv, goodClaims())
	goodParts := strings.Split(good, ".")

	tests := []struct {
		name  string
		token string
		// want is our sentinel; cause, when set, is the jwt error that
		// shows which check refused the token.
		want  error
		cause error
	}{
		{
			name:  "alg none by hand",
			token: noneHeader + "." + b64json(t, goodClaims()) + ".",
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:  "alg none by library",
			token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims()),
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:  "alg none with the real signature",
			token: noneHeader + "." + goodParts[1] + "." + goodParts[2],
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:  "HS256 keyed with the public key",
			token: sign(t, jwt.SigningMethodHS256, []byte(pub), goodClaims()),
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:  "HS512 keyed with the private key",
			token: sign(t, jwt.SigningMethodHS512, []byte(priv), goodClaims()),
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:  "another Ed25519 key",
			token: sign(t, jwt.SigningMethodEdDSA, otherPriv, goodClaims()),
			want:  ErrTokenInvalid,
			cause: jwt.ErrEd25519Verification,
		},
		{
			name:  "claims changed after signing",
			token: goodParts[0] + "." + b64json(t, with(func(c jwt.MapClaims) { c["sub"] = "agent:1" })) + "." + goodParts[2],
			want:  ErrTokenInvalid,
			cause: jwt.ErrEd25519Verification,
		},
		{
			name:  "signature stripped",
			token: goodParts[0] + "." + goodParts[1] + ".",
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:  "expired",
			token: sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["exp"] = t0().Add(-time.Minute).Unix() })),
			want:  ErrTokenExpired,
			cause: jwt.ErrTokenExpired,
		},
		{
			name: "expired and for another audience",
			token: sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) {
				c["exp"] = t0().Add(-time.Minute).Unix()
				c["aud"] = "someone-else"
			})),
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenInvalidAudience,
		},
		{
			name:  "no exp",
			token: sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { delete(c, "exp") })),
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenRequiredClaimMissing,
		},
		{
			name:  "wrong audience",
			token: sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["aud"] = []string{"other-grid"} })),
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenInvalidAudience,
		},
		{
			name:  "no audience",
			token: sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { delete(c, "aud") })),
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenRequiredClaimMissing,
		},
		{
			name:  "wrong issuer",
			token: sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["iss"] = "evil" })),
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenInvalidIssuer,
		},
		{
			name:  "no issuer",
			token: sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { delete(c, "iss") })),
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenRequiredClaimMissing,
		},
		{
			name: "issued in the future",
			token: sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) {
				delete(c, "nbf")
				c["iat"] = t0().Add(time.Hour).Unix()
			})),
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenUsedBeforeIssued,
		},
		{
			name:  "not valid yet",
			token: sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["nbf"] = t0().Add(time.Hour).Unix() })),
			want:  ErrTokenInvalid,
			cause: jwt.ErrTokenNotValidYet,
		},
		{"empty", "", ErrTokenInvalid, jwt.ErrTokenMalformed},
		{"words", "not a token", ErrTokenInvalid, jwt.ErrTokenMalformed},
		{"dots", "..", ErrTokenInvalid, jwt.ErrTokenMalformed},
		{"four parts", good + ".x", ErrTokenInvalid, jwt.ErrTokenMalformed},
		{"header not json", base64.RawURLEncoding.EncodeToString([]byte("{")) + "." + goodParts[1] + "." + goodParts[2], ErrTokenInvalid, jwt.ErrTokenMalformed},
		{"padded base64", goodParts[0] + "=." + goodParts[1] + "." + goodParts[2], ErrTokenInvalid, jwt.ErrTokenMalformed},
		{"signature with non-canonical base64", goodParts[0] + "." + goodParts[1] + "." + flipTrailingBit(goodParts[2]), ErrTokenInvalid, jwt.ErrTokenMalformed},
		{"api token", "sgp_abcdefgh_" + strings.Repeat("a", 52), ErrTokenInvalid, jwt.ErrTokenMalformed},
		{"too long but genuine", sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["jti"] = strings.Repeat("x", MaxAgentTokenLen) })), ErrTokenInvalid, nil},
		{"sub a user", sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["sub"] = "user:42" })), ErrTokenInvalid, ErrNotAgent},
		{"sub missing", sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { delete(c, "sub") })), ErrTokenInvalid, ErrNotAgent},
		{"sub bare number", sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["sub"] = "42" })), ErrTokenInvalid, ErrNotAgent},
		{"sub agent zero", sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["sub"] = "agent:0" })), ErrTokenInvalid, ErrNotAgent},
		{"sub agent negative", sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["sub"] = "agent:-4" })), ErrTokenInvalid, ErrNotAgent},
		{"sub agent plus", sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["sub"] = "agent:+4" })), ErrTokenInvalid, ErrNotAgent},
		{"sub agent leading zero", sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["sub"] = "agent:042" })), ErrTokenInvalid, ErrNotAgent},
		{"sub agent empty", sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["sub"] = "agent:" })), ErrTokenInvalid, ErrNotAgent},
		{"sub agent overflow", sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["sub"] = "agent:9223372036854775808" })), ErrTokenInvalid, ErrNotAgent},
		{"sub agent suffix", sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["sub"] = "agent:4 " })), ErrTokenInvalid, ErrNotAgent},
		{"sub not a string", sign(t, jwt.SigningMethodEdDSA, priv, with(func(c jwt.MapClaims) { c["sub"] = 42 })), ErrTokenInvalid, jwt.ErrTokenMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := iss.Verify(tt.token)
			if id != 0 || !errors.Is(err, tt.want) {
				t.Fatalf("Verify() = %d, %v, want 0, %v", id, err, tt.want)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("Verify() error = %v, want it to wrap %v", err, tt.cause)
			}
			other := ErrTokenExpired
			if tt.want == ErrTokenExpired {
				other = ErrTokenInvalid
			}
			if errors.Is(err, other) {
				t.Errorf("Verify() error = %v, want it not to wrap %v", err, other)
			}
		})
	}
}

// The key function is a second lock behind WithValidMethods; test it alone
// so that removing it fails a test even while the first lock holds.
func TestKeyFuncOnlyEdDSA(t *testing.T) {
	iss, priv, _ := newTestIssuer(t)
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodNone, jwt.SigningMethodHS256, jwt.SigningMethodRS256, jwt.SigningMethodES256, jwt.SigningMethodPS256} {
		key, err := iss.keyFunc(jwt.New(m))
		if key != nil || !errors.Is(err, errNotEdDSA) {
			t.Errorf("keyFunc(%s) = %v, %v, want nil, %v", m.Alg(), key, err, errNotEdDSA)
		}
	}
	key, err := iss.keyFunc(jwt.New(jwt.SigningMethodEdDSA))
	pub := priv.Public().(ed25519.PublicKey)
	if k, ok := key.(ed25519.PublicKey); err != nil || !ok || !k.Equal(pub) {
		t.Errorf("keyFunc(EdDSA) = %v, %v, want the issuer's public key", key, err)
	}
}

func TestVerifyClock(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		want    error
	}{
		{"fresh", 0, nil},
		{"just before expiry", testTTL - time.Second, nil},
		{"within leeway after expiry", testTTL + clockLeeway - time.Second, nil},
		{"past leeway", testTTL + clockLeeway, ErrTokenExpired},
		{"a day later", 24 * time.Hour, ErrTokenExpired},
		{"clock behind within leeway", -clockLeeway + time.Second, nil},
		{"clock behind past leeway", -clockLeeway - time.Second, ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, _, clock := newTestIssuer(t)
			tok, _, err := iss.Mint(9)
			if err != nil {
				t.Fatal(err)
			}
			clock.now = t0().Add(tt.advance)
			_, err = iss.Verify(tok)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Verify() at mint%+v = %v, want %v", tt.advance, err, tt.want)
			}
		})
	}
}

func TestVerifyOtherIssuerConfig(t *testing.T) {
	iss, priv, _ := newTestIssuer(t)
	tok, _, err := iss.Mint(5)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return t0() }
	tests := []struct {
		name string
		v    *Issuer
	}{
		{"other audience", NewIssuer(priv, testIssuer, "other-gateway", testTTL, clock)},
		{"other issuer", NewIssuer(priv, "other-coordinator", testAudience, testTTL, clock)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if id, err := tt.v.Verify(tok); id != 0 || !errors.Is(err, ErrTokenInvalid) {
				t.Errorf("Verify() = %d, %v, want 0, %v", id, err, ErrTokenInvalid)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	clock := func() time.Time { return t0() }
	iss := NewIssuer(priv, testIssuer, testAudience, testTTL, clock)
	tok, _, err := iss.Mint(42)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	f.Add(tok)
	f.Add("")
	f.Add("..")
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".e30." + parts[2])
	f.Add("sgp_abcdefgh_" + strings.Repeat("a", 52))
	f.Fuzz(func(t *testing.T, s string) {
		id, err := iss.Verify(s)
		if err != nil {
			if id != 0 {
				t.Errorf("Verify(%q) = %d, %v, want 0 with an error", s, id, err)
			}
			if !errors.Is(err, ErrTokenInvalid) && !errors.Is(err, ErrTokenExpired) {
				t.Errorf("Verify(%q) error = %v, want %v or %v", s, err, ErrTokenInvalid, ErrTokenExpired)
			}
			return
		}
		if id <= 0 {
			t.Errorf("Verify(%q) = %d, nil, want a positive agent id", s, id)
		}
	})
}
