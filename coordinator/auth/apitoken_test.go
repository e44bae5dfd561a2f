package auth

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"regexp"
	"strings"
	"testing"
)

var apiTokenShape = regexp.MustCompile(`^sgp_[a-z2-7]{8}_[a-z2-7]{52}$`)

func TestNewAPIToken(t *testing.T) {
	seen := make(map[string]bool)
	for range 50 {
		tok, prefix, hash, err := NewAPIToken()
		if err != nil {
			t.Fatalf("NewAPIToken() error = %v", err)
		}
		if !apiTokenShape.MatchString(tok) {
			t.Fatalf("NewAPIToken() token has the wrong shape: %d chars", len(tok))
		}
		if seen[tok] {
			t.Fatalf("NewAPIToken() repeated a token")
		}
		seen[tok] = true
		if want := tok[:12]; prefix != want {
			t.Errorf("NewAPIToken() prefix = %q, want %q", prefix, want)
		}
		if want := sha256.Sum256([]byte(tok)); !bytes.Equal(hash, want[:]) {
			t.Errorf("NewAPIToken() hash = %x, want sha256(token) = %x", hash, want)
		}
		got, err := HashAPIToken(tok)
		if err != nil || !bytes.Equal(got, hash) {
			t.Errorf("HashAPIToken(new token) = %x, %v, want %x, nil", got, err, hash)
		}
		p, err := TokenPrefix(tok)
		if err != nil || p != prefix {
			t.Errorf("TokenPrefix(new token) = %q, %v, want %q, nil", p, err, prefix)
		}
	}
}

func TestHashAPITokenMalformed(t *testing.T) {
	const id = "abcdefgh"
	secret := strings.Repeat("a", 51) + "q" // canonical: the last char's low 4 bits are zero
	valid := "sgp_" + id + "_" + secret
	if _, err := HashAPIToken(valid); err != nil {
		t.Fatalf("HashAPIToken(valid) error = %v", err)
	}
	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"scheme only", "sgp_"},
		{"wrong scheme", "sgx_" + id + "_" + secret},
		{"upper scheme", "SGP_" + id + "_" + secret},
		{"prefix only", "sgp_" + id},
		{"id too short", "sgp_abcdefg_" + secret + "a"},
		{"id too long", "sgp_abcdefghi_" + secret[1:]},
		{"id upper case", "sgp_ABCDEFGH_" + secret},
		{"id with 1", "sgp_abcdefg1_" + secret},
		{"id with dash", "sgp_abcd-fgh_" + secret},
		{"no separator", "sgp_" + id + "a" + secret},
		{"secret too short", "sgp_" + id + "_" + secret[1:]},
		{"secret too long", valid + "a"},
		{"secret upper case", "sgp_" + id + "_" + strings.ToUpper(secret)},
		{"secret with 8", "sgp_" + id + "_8" + secret[1:]},
		{"secret padded", "sgp_" + id + "_" + secret[:51] + "="},
		{"secret with newline", "sgp_" + id + "_" + secret[:25] + "\n" + secret[26:]},
		{"secret non-canonical tail", "sgp_" + id + "_" + secret[:51] + "b"},
		{"trailing newline", valid[:len(valid)-1] + "\n"},
		{"leading space", " " + valid[1:]},
		{"jwt", "eyJhbGciOiJFZERTQSJ9.e30.sig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash, err := HashAPIToken(tt.token)
			if hash != nil || !errors.Is(err, ErrMalformedToken) {
				t.Errorf("HashAPIToken(%q) = %x, %v, want nil, %v", tt.token, hash, err, ErrMalformedToken)
			}
			prefix, err := TokenPrefix(tt.token)
			if prefix != "" || !errors.Is(err, ErrMalformedToken) {
				t.Errorf("TokenPrefix(%q) = %q, %v, want \"\", %v", tt.token, prefix, err, ErrMalformedToken)
			}
		})
	}
}

func TestMalformedTokenErrorHidesSecret(t *testing.T) {
	secret := strings.Repeat("z", 52)
	_, err := HashAPIToken("sgp_ABCDEFGH_" + secret)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("HashAPIToken(bad id) error = %v, want an error that does not quote the secret", err)
	}
}

func TestEqualHash(t *testing.T) {
	a := sha256.Sum256([]byte("a"))
	b := sha256.Sum256([]byte("b"))
	tests := []struct {
		name string
		x, y []byte
		want bool
	}{
		{"same", a[:], bytes.Clone(a[:]), true},
		{"different", a[:], b[:], false},
		{"last byte differs", a[:], append(bytes.Clone(a[:31]), a[31]^1), false},
		{"prefix", a[:], a[:16], false},
		{"both empty", nil, []byte{}, false},
		{"both nil", nil, nil, false},
		{"same but short", a[:8], a[:8], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EqualHash(tt.x, tt.y); got != tt.want {
				t.Errorf("EqualHash(%x, %x) = %v, want %v", tt.x, tt.y, got, tt.want)
			}
		})
	}
}

func FuzzHashAPIToken(f *testing.F) {
	f.Add("sgp_abcdefgh_" + strings.Repeat("a", 51) + "q")
	f.Add("sgp_abcdefgh_" + strings.Repeat("a", 52))
	f.Add("")
	f.Add("sgp_")
	f.Add("sgp_abcdefgh_" + strings.Repeat("7", 51) + "=")
	f.Fuzz(func(t *testing.T, s string) {
		hash, err := HashAPIToken(s)
		prefix, perr := TokenPrefix(s)
		if (err == nil) != (perr == nil) {
			t.Fatalf("HashAPIToken(%q) error = %v but TokenPrefix error = %v; want both or neither", s, err, perr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedToken) || hash != nil {
				t.Errorf("HashAPIToken(%q) = %x, %v, want nil, %v", s, hash, err, ErrMalformedToken)
			}
			return
		}
		if !apiTokenShape.MatchString(s) {
			t.Errorf("HashAPIToken(%q) accepted a token of the wrong shape", s)
		}
		if want := sha256.Sum256([]byte(s)); !bytes.Equal(hash, want[:]) {
			t.Errorf("HashAPIToken(%q) = %x, want %x", s, hash, want)
		}
		if prefix != s[:12] {
			t.Errorf("TokenPrefix(%q) = %q, want %q", s, prefix, s[:12])
		}
	})
}
