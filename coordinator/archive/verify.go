package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Verifier checks archive signatures. Implementations must be safe for
// concurrent use.
type Verifier interface {
	// Clearsigned verifies a cleartext signed message (InRelease) and
	// returns exactly the text the signature covers.
	Clearsigned(ctx context.Context, msg []byte) ([]byte, error)
	// Detached verifies sig (Release.gpg) over data (Release).
	Detached(ctx context.Context, data, sig []byte) error
}

// GPGV verifies with the real gpgv against one keyring.
type GPGV struct {
	// Keyring is a keyring file gpgv reads (binary OpenPGP or keybox).
	Keyring string
	// Program is the gpgv executable; empty means "gpgv" on PATH.
	Program string
}

var _ Verifier = GPGV{}

// Clearsigned runs gpgv on msg and returns the signed text gpgv wrote out,
// so nothing outside the signature can reach the parser.
func (g GPGV) Clearsigned(ctx context.Context, msg []byte) ([]byte, error) {
	if !isClearsigned(msg) {
		return nil, fmt.Errorf("%w: InRelease is not a cleartext signed message", ErrUnsigned)
	}
	dir, err := os.MkdirTemp("", "archive-gpgv-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "InRelease")
	out := filepath.Join(dir, "signed")
	if err := os.WriteFile(in, msg, 0o600); err != nil {
		return nil, err
	}
	if err := g.run(ctx, dir, "--output", out, in); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

// Detached runs gpgv on a Release file and its detached signature.
func (g GPGV) Detached(ctx context.Context, data, sig []byte) error {
	dir, err := os.MkdirTemp("", "archive-gpgv-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d := filepath.Join(dir, "Release")
	s := filepath.Join(dir, "Release.gpg")
	if err := os.WriteFile(d, data, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(s, sig, 0o600); err != nil {
		return err
	}
	return g.run(ctx, dir, s, d)
}

// run calls gpgv with its own empty home directory and our keyring, and
// succeeds only when its status lines show a valid signature.
func (g GPGV) run(ctx context.Context, home string, args ...string) error {
	keyring, err := filepath.Abs(g.Keyring)
	if err != nil {
		return err
	}
	if _, err := os.Stat(keyring); err != nil {
		return fmt.Errorf("%w: keyring: %w", ErrConfig, err)
	}
	prog := g.Program
	if prog == "" {
		prog = "gpgv"
	}
	full := append([]string{"--homedir", home, "--keyring", keyring, "--status-fd", "1"}, args...)
	cmd := exec.CommandContext(ctx, prog, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return fmt.Errorf("archive: running %s: %w", prog, err)
	}
	if !goodStatus(stdout.String()) {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000]
		}
		return fmt.Errorf("%w: gpgv: %s", ErrBadSignature, msg)
	}
	return nil
}

// goodStatus decides on gpgv's status lines as apt does: at least one valid
// signature and no bad one. A signature by a key missing from the keyring
// (gpgv then exits 2) does not spoil a good one by a key in it, so a
// keyring holding only one of the archive's signing keys works.
func goodStatus(status string) bool {
	valid := false
	for line := range strings.SplitSeq(status, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "[GNUPG:]" {
			continue
		}
		switch f[1] {
		case "VALIDSIG":
			valid = true
		case "BADSIG":
			return false
		}
	}
	return valid
}
