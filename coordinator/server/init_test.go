package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sparegrid/sparegrid/shared/tlsutil"
)

func TestInit(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(dir string)
		want    error
	}{
		{"new directory", func(string) {}, nil},
		{"existing empty directory", func(dir string) { os.Mkdir(dir, 0o755) }, nil},
		{"directory in use", func(dir string) {
			os.Mkdir(dir, 0o755)
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
		}, ErrExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			tt.prepare(dir)
			res, err := Init(t.Context(), dir, []string{"grid.example.org", "192.0.2.7"})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Init = %v, want %v", err, tt.want)
			}
			siblings, _ := os.ReadDir(filepath.Dir(dir))
			if len(siblings) != 1 {
				t.Errorf("Init left %d entries beside the data directory, want only it", len(siblings))
			}
			if tt.want != nil {
				if b, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(b) != "mine" {
					t.Errorf("a refused Init changed the directory")
				}
				return
			}
			modes := map[string]os.FileMode{
				DBFile: 0, CACertFile: 0o644, CAKeyFile: 0o600, ServerCertFile: 0o644, ServerKeyFile: 0o600,
				JWTKeyFile: 0o600, AdminTokenFile: 0o600, CAHashFile: 0o644,
			}
			for name, mode := range modes {
				fi, err := os.Stat(filepath.Join(dir, name))
				if err != nil {
					t.Errorf("Init did not write %s: %v", name, err)
					continue
				}
				if mode != 0 && fi.Mode().Perm() != mode {
					t.Errorf("%s mode = %v, want %v", name, fi.Mode().Perm(), mode)
				}
			}
			tok, _ := os.ReadFile(filepath.Join(dir, AdminTokenFile))
			if strings.TrimSpace(string(tok)) != res.AdminToken || !strings.HasPrefix(res.AdminToken, "sgp_") {
				t.Errorf("admin.token = %q, Init returned %q", tok, res.AdminToken)
			}
			ca, _ := os.ReadFile(filepath.Join(dir, CACertFile))
			fp, err := tlsutil.FingerprintPEM(ca)
			if err != nil || fp != res.CAFingerprint {
				t.Errorf("CA fingerprint = %q (%v), Init returned %q", fp, err, res.CAFingerprint)
			}
			if _, err := Init(t.Context(), dir, nil); !errors.Is(err, ErrExists) {
				t.Errorf("second Init = %v, want %v", err, ErrExists)
			}
		})
	}
}
