package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
)

func TestSigningKeyRoundTrip(t *testing.T) {
	priv, err := GenerateSigningKey()
	if err != nil {
		t.Fatalf("GenerateSigningKey() error = %v", err)
	}
	data, err := MarshalSigningKey(priv)
	if err != nil {
		t.Fatalf("MarshalSigningKey() error = %v", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("MarshalSigningKey() = %q, want a PRIVATE KEY PEM block", data)
	}
	got, err := ParseSigningKey(data)
	if err != nil {
		t.Fatalf("ParseSigningKey(MarshalSigningKey(k)) error = %v", err)
	}
	if !got.Equal(priv) {
		t.Errorf("ParseSigningKey(MarshalSigningKey(k)) gave another key")
	}
	if _, err := ParseSigningKey(append(data, "\n\n"...)); err != nil {
		t.Errorf("ParseSigningKey(key + blank lines) error = %v, want nil", err)
	}
}

func TestMarshalSigningKeyRefuses(t *testing.T) {
	priv, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []ed25519.PrivateKey{nil, priv[:32], append(priv, 0)} {
		if data, err := MarshalSigningKey(k); data != nil || !errors.Is(err, ErrBadSigningKey) {
			t.Errorf("MarshalSigningKey(%d bytes) = %q, %v, want nil, %v", len(k), data, err, ErrBadSigningKey)
		}
	}
}

func TestParseSigningKeyRefuses(t *testing.T) {
	priv, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	good, err := MarshalSigningKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(b *pem.Block) []byte { return pem.EncodeToMemory(b) }
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not pem", []byte("hello")},
		{"raw der", der},
		{"wrong block type", pemOf(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})},
		{"public key block", pemOf(&pem.Block{Type: "PUBLIC KEY", Bytes: der})},
		{"encrypted headers", pemOf(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: der})},
		{"garbage der", pemOf(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 1, 2, 3}})},
		{"ecdsa key", pemOf(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})},
		{"two keys", append(append([]byte{}, good...), good...)},
		{"trailing text", append(append([]byte{}, good...), "extra"...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseSigningKey(tt.data)
			if k != nil || !errors.Is(err, ErrBadSigningKey) {
				t.Errorf("ParseSigningKey(%q) = %x, %v, want nil, %v", tt.data, k, err, ErrBadSigningKey)
			}
		})
	}
}

func FuzzParseSigningKey(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	good, err := MarshalSigningKey(priv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseSigningKey(data)
		if err != nil {
			if k != nil || !errors.Is(err, ErrBadSigningKey) {
				t.Errorf("ParseSigningKey() = %x, %v, want nil, %v", k, err, ErrBadSigningKey)
			}
			return
		}
		if len(k) != ed25519.PrivateKeySize {
			t.Fatalf("ParseSigningKey() gave a %d-byte key", len(k))
		}
		again, err := MarshalSigningKey(k)
		if err != nil {
			t.Fatalf("MarshalSigningKey(parsed key) error = %v", err)
		}
		if k2, err := ParseSigningKey(again); err != nil || !k2.Equal(k) {
			t.Errorf("parsed key does not round-trip: %v", err)
		}
	})
}
