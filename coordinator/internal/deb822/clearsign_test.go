package deb822

import (
	"errors"
	"testing"
)

func TestBody(t *testing.T) {
	const sig = "-----BEGIN PGP SIGNATURE-----\n\niQ==\n-----END PGP SIGNATURE-----\n"
	tests := []struct {
		name string
		msg  string
		want string
		err  error
	}{
		{"plain", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSource: hello\nVersion: 1\n" + sig, "Source: hello\nVersion: 1\n", nil},
		{"dash-escaped", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n- -not a signature\ntext\n" + sig, "-not a signature\ntext\n", nil},
		{"CRLF and leading blank lines", "\r\n-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nA: b\r\n" + sig, "A: b\n", nil},
		{"no armour headers", "-----BEGIN PGP SIGNED MESSAGE-----\n\nA: b\n" + sig, "A: b\n", nil},
		{"not signed", "Source: hello\n", "", ErrNotSigned},
		{"other armour header", "-----BEGIN PGP SIGNED MESSAGE-----\nComment: x\n\nA: b\n" + sig, "", ErrMalformed},
		{"unescaped dash", "-----BEGIN PGP SIGNED MESSAGE-----\n\n-A: b\n" + sig, "", ErrMalformed},
		{"no signature", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nA: b\n", "", ErrMalformed},
		{"armour only", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256", "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Body([]byte(tt.msg))
			if !errors.Is(err, tt.err) || (err == nil && string(got) != tt.want) {
				t.Errorf("Body(%q) = %q, %v; want %q, %v", tt.msg, got, err, tt.want, tt.err)
			}
		})
	}
}

func FuzzBody(f *testing.F) {
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nA: b\n-----BEGIN PGP SIGNATURE-----\n"))
	f.Add([]byte("A: b\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		body, err := Body(msg)
		if err == nil && len(body) > len(msg) {
			t.Errorf("Body returned %d bytes from %d", len(body), len(msg))
		}
		if err != nil && !errors.Is(err, ErrNotSigned) && !errors.Is(err, ErrMalformed) {
			t.Errorf("Body error %v wraps no sentinel", err)
		}
	})
}
