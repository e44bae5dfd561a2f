package archive

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseRelease(t *testing.T) {
	head := readTestdata(t, "bookworm-Release-head")
	sum := strings.Repeat("ab", 32)
	text := head + "MD5Sum:\n 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all\nSHA256:\n " + sum + " 9491888 main/source/Sources.xz\n " + sum + "      12 main/i18n/Index\n"
	got, err := ParseRelease([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := Release{
		Origin: "Debian", Label: "Debian", Suite: "oldstable", Codename: "bookworm",
		Date:          time.Date(2026, 7, 11, 10, 16, 37, 0, time.UTC),
		Components:    []string{"main", "contrib", "non-free-firmware", "non-free"},
		Architectures: []string{"all", "amd64", "arm64", "armel", "armhf", "i386", "mips64el", "mipsel", "ppc64el", "s390x"},
		AcquireByHash: true,
		SHA256: map[string]FileHash{
			"main/source/Sources.xz": {Size: 9491888, SHA256: sum},
			"main/i18n/Index":        {Size: 12, SHA256: sum},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseRelease (-want +got):\n%s", diff)
	}
	for _, s := range []string{"bookworm", "oldstable"} {
		if !got.MatchesSuite(s) {
			t.Errorf("MatchesSuite(%q) = false, want true", s)
		}
	}
	if got.MatchesSuite("trixie") {
		t.Error("MatchesSuite(trixie) = true, want false")
	}
}

func TestParseReleaseErrors(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrBadRelease},
		{"no SHA256", "Origin: x\nMD5Sum:\n 00 1 a\n", ErrNoSHA256},
		{"empty SHA256", "SHA256:\n", ErrNoSHA256},
		{"short digest", "SHA256:\n abcd 1 a\n", ErrBadRelease},
		{"bad size", "SHA256:\n " + sum + " -1 a\n", ErrBadRelease},
		{"two fields", "SHA256:\n " + sum + " 1\n", ErrBadRelease},
		{"absolute path", "SHA256:\n " + sum + " 1 /etc/passwd\n", ErrBadRelease},
		{"dot dot path", "SHA256:\n " + sum + " 1 main/../../x\n", ErrBadRelease},
		{"bad date", "Date: yesterday\nSHA256:\n " + sum + " 1 a\n", ErrBadRelease},
		{"bad valid-until", "Valid-Until: soon\nSHA256:\n " + sum + " 1 a\n", ErrBadRelease},
		{"two paragraphs", "A: 1\n\nSHA256:\n " + sum + " 1 a\n", ErrBadRelease},
		{"syntax", " x\n", ErrBadRelease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseRelease([]byte(tt.in)); !errors.Is(err, tt.want) {
				t.Errorf("ParseRelease(%q) error = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestClearsignedBody(t *testing.T) {
	sig := signatureBegin + "\n\nxx\n-----END PGP SIGNATURE-----\n"
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{"plain", clearsignBegin + "\nHash: SHA256\n\nA: 1\nB: 2\n" + sig, "A: 1\nB: 2\n", nil},
		{"crlf", strings.ReplaceAll(clearsignBegin+"\nHash: SHA256\n\nA: 1\n"+sig, "\n", "\r\n"), "A: 1\n", nil},
		{"dash escaped", clearsignBegin + "\nHash: SHA256\n\n- -x\nA: 1\n" + sig, "-x\nA: 1\n", nil},
		{"not signed", "A: 1\n", "", ErrUnsigned},
		{"no signature", clearsignBegin + "\nHash: SHA256\n\nA: 1\n", "", ErrBadSignature},
		{"odd header", clearsignBegin + "\nComment: x\n\nA: 1\n" + sig, "", ErrBadSignature},
		{"unescaped dash", clearsignBegin + "\nHash: SHA256\n\n-x\n" + sig, "", ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := clearsignedBody([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) || string(got) != tt.want {
				t.Errorf("clearsignedBody(%q) = %q, %v, want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestGoodStatus(t *testing.T) {
	tests := []struct {
		name   string
		status string
		want   bool
	}{
		{"valid", "[GNUPG:] GOODSIG X n\n[GNUPG:] VALIDSIG F 2026\n", true},
		{"valid and unknown key", "[GNUPG:] ERRSIG A\n[GNUPG:] NO_PUBKEY A\n[GNUPG:] VALIDSIG F 2026\n", true},
		{"unknown key only", "[GNUPG:] ERRSIG A\n[GNUPG:] NO_PUBKEY A\n", false},
		{"bad and valid", "[GNUPG:] BADSIG A\n[GNUPG:] VALIDSIG F 2026\n", false},
		{"nothing", "", false},
		{"not a status line", "VALIDSIG F\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := goodStatus(tt.status); got != tt.want {
				t.Errorf("goodStatus(%q) = %v, want %v", tt.status, got, tt.want)
			}
		})
	}
}

func FuzzParseRelease(f *testing.F) {
	f.Add("Suite: x\nSHA256:\n " + strings.Repeat("ab", 32) + " 1 main/source/Sources.xz\n")
	f.Add("Date: Sat, 11 Jul 2026 10:16:37 UTC\nSHA256:\n")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ParseRelease([]byte(in))
		if err != nil {
			return
		}
		for p, fh := range r.SHA256 {
			if strings.HasPrefix(p, "/") || fh.Size < 0 || len(fh.SHA256) != 64 {
				t.Errorf("accepted entry %q %+v", p, fh)
			}
		}
	})
}

func FuzzClearsignedBody(f *testing.F) {
	f.Add(clearsignBegin + "\nHash: SHA256\n\n- -x\nA: 1\n" + signatureBegin + "\n")
	f.Fuzz(func(t *testing.T, in string) {
		body, err := clearsignedBody([]byte(in))
		if err == nil && strings.Contains(string(body), signatureBegin) {
			t.Errorf("body %q holds the signature marker", body)
		}
	})
}

// The armour lines of a cleartext signed message, for building fixtures.
const (
	clearsignBegin = "-----BEGIN PGP SIGNED MESSAGE-----"
	signatureBegin = "-----BEGIN PGP SIGNATURE-----"
)
