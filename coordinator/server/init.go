// Package server owns the assembly of a coordinator: creating its data
// directory (database, grid CA, server certificate, signing key, admin
// account) and running the agent gateway and the HTTP API on it.
//
// It wires packages together and holds no logic of its own beyond that.
package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/api"
	"github.com/sparegrid/sparegrid/coordinator/auth"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
)

// Files in a coordinator's data directory.
const (
	DBFile         = "sparegrid.db"
	CACertFile     = "ca.pem"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.pem"
	ServerKeyFile  = "server.key"
	JWTKeyFile     = "jwt.key"
	AdminTokenFile = "admin.token"
	CAHashFile     = "ca.sha256"
	BlobDir        = "blobs"
)

// ErrExists means init was pointed at a directory that is already in use.
var ErrExists = errors.New("server: data directory exists and is not empty")

// InitResult is what init reports.
type InitResult struct {
	AdminToken    string
	CAFingerprint string
}

// Init creates a coordinator data directory at dir. It refuses a directory
// that exists with anything in it, and builds everything in a sibling
// temporary directory that it renames into place at the end, so a failure
// leaves nothing behind.
func Init(ctx context.Context, dir string, names []string) (InitResult, error) {
	var res InitResult
	dir = filepath.Clean(dir)
	if entries, err := os.ReadDir(dir); err == nil {
		if len(entries) > 0 {
			return res, fmt.Errorf("%w: %s (refusing to touch it)", ErrExists, dir)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("server: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".init-*")
	if err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o750); err != nil {
		return res, fmt.Errorf("server: %w", err)
	}

	caCert, caKey, err := tlsutil.NewCA("sparegrid grid CA")
	if err != nil {
		return res, err
	}
	srvCert, srvKey, err := tlsutil.NewServerCert(caCert, caKey, names)
	if err != nil {
		return res, err
	}
	fp, err := tlsutil.FingerprintPEM(caCert)
	if err != nil {
		return res, err
	}
	jwtKey, err := auth.GenerateSigningKey()
	if err != nil {
		return res, err
	}
	jwtPEM, err := auth.MarshalSigningKey(jwtKey)
	if err != nil {
		return res, err
	}

	db, err := sqlite.Open(ctx, filepath.Join(tmp, DBFile))
	if err != nil {
		return res, err
	}
	_, tok, err := api.CreateAccount(ctx, db, store.Account{
		Name: "admin", DisplayName: "Grid administrator", Email: "admin@localhost",
		Role: store.RoleAdmin, CreatedAt: time.Now().UTC(),
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, err
	}

	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{CACertFile, caCert, 0o644},
		{CAKeyFile, caKey, 0o600},
		{ServerCertFile, srvCert, 0o644},
		{ServerKeyFile, srvKey, 0o600},
		{JWTKeyFile, jwtPEM, 0o600},
		{AdminTokenFile, []byte(tok + "\n"), 0o600},
		{CAHashFile, []byte(fp + "\n"), 0o644},
	}
	for _, f := range files {
		if err := writeFileSync(filepath.Join(tmp, f.name), f.data, f.mode); err != nil {
			return res, err
		}
	}
	if err := os.Mkdir(filepath.Join(tmp, BlobDir), 0o750); err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	// An empty directory that already exists is replaced; anything else
	// was refused above.
	os.Remove(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return res, fmt.Errorf("server: %w", err)
	}
	return InitResult{AdminToken: tok, CAFingerprint: fp}, nil
}

func writeFileSync(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("server: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("server: sync %s: %w", path, err)
	}
	return f.Close()
}
