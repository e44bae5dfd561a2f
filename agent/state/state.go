// Package state owns the agent's state directory: its Ed25519 key, the
// registration record, the grid CA it pinned, and the places where testbed
// images and per-job scratch space live.
//
// It must not talk to the coordinator or run tests: it only reads and writes
// files, always with owner-only permissions and atomic replacement.
package state

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Names inside the state directory.
const (
	KeyFile   = "agent.key"
	AgentFile = "agent.json"
	CAFile    = "ca.pem"
	ImagesDir = "images"
	WorkDir   = "work"
	// OutboxDir holds finished results until the coordinator acknowledges
	// them; see package worker.
	OutboxDir = "outbox"
)

// Errors returned by this package; match them with errors.Is.
var (
	ErrNotRegistered = errors.New("state: no agent registered")
	ErrRegistered    = errors.New("state: an agent is already registered")
	ErrBadKey        = errors.New("state: bad agent key")
	ErrKeyMode       = errors.New("state: agent key is readable by others")
	ErrBadRecord     = errors.New("state: bad agent record")
)

// Agent is the registration record kept in agent.json.
type Agent struct {
	AgentID int64  `json:"agent_id"`
	Name    string `json:"name"`
	Owner   string `json:"owner"`
	// Coordinator is the gateway's "host:port".
	Coordinator string `json:"coordinator"`
	// CASHA256 is the fingerprint of the grid CA pinned at registration.
	CASHA256     string    `json:"ca_sha256"`
	RegisteredAt time.Time `json:"registered_at"`
}

// State is everything a registered agent loads at start.
type State struct {
	Dir   string
	Agent Agent
	Key   ed25519.PrivateKey
	// CAPEM is the grid CA certificate saved at registration.
	CAPEM []byte
}

// WorkPath returns the directory for per-job scratch space.
func (s *State) WorkPath() string { return filepath.Join(s.Dir, WorkDir) }

// Init creates dir (and its parents) with mode 0700 and tightens an existing
// dir to 0700.
func Init(dir string) error {
	if dir == "" {
		return errors.New("state: no state directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state: create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Load reads the state of a registered agent from dir.
func Load(dir string) (*State, error) {
	a, err := LoadAgent(dir)
	if err != nil {
		return nil, err
	}
	key, err := LoadKey(dir)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("state: read pinned CA: %w", err)
	}
	return &State{Dir: dir, Agent: a, Key: key, CAPEM: ca}, nil
}

// Registered reports whether dir holds a registration record.
func Registered(dir string) (bool, error) {
	_, err := os.Lstat(filepath.Join(dir, AgentFile))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("state: %w", err)
}

// LoadAgent reads agent.json from dir.
func LoadAgent(dir string) (Agent, error) {
	b, err := os.ReadFile(filepath.Join(dir, AgentFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Agent{}, fmt.Errorf("%w in %s: run sparegrid-agent register first", ErrNotRegistered, dir)
	}
	if err != nil {
		return Agent{}, fmt.Errorf("state: %w", err)
	}
	var a Agent
	if err := json.Unmarshal(b, &a); err != nil {
		return Agent{}, fmt.Errorf("%w: %s: %w", ErrBadRecord, AgentFile, err)
	}
	if a.AgentID <= 0 || a.Coordinator == "" {
		return Agent{}, fmt.Errorf("%w: %s lacks agent_id or coordinator", ErrBadRecord, filepath.Join(dir, AgentFile))
	}
	return a, nil
}

// SaveAgent writes agent.json atomically with mode 0600.
func SaveAgent(dir string, a Agent) error {
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return fmt.Errorf("state: encode agent record: %w", err)
	}
	return WriteFileAtomic(filepath.Join(dir, AgentFile), append(b, '\n'))
}

// SaveCA writes the pinned CA certificate atomically with mode 0600.
func SaveCA(dir string, caPEM []byte) error {
	return WriteFileAtomic(filepath.Join(dir, CAFile), caPEM)
}

// LoadKey reads the agent's private key. It refuses a key file that group
// or others may read.
func LoadKey(dir string) (ed25519.PrivateKey, error) {
	name := filepath.Join(dir, KeyFile)
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v: chmod 600 it", ErrKeyMode, name, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("state: read %s: %w", name, err)
	}
	return ParseKey(b)
}

// ParseKey decodes a PKCS #8 PEM Ed25519 private key.
func ParseKey(pemBytes []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(pemBytes)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: no PRIVATE KEY block", ErrBadKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an Ed25519 key", ErrBadKey)
	}
	return priv, nil
}

// LoadOrCreateKey returns the agent's key, generating it first when dir has
// none. The key file (mode 0600) appears complete or not at all, and only
// once, so two racing callers end up with the same key.
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	key, err := LoadKey(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("state: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("state: encode key: %w", err)
	}
	// Write the whole key to a temporary file, then hard-link it into
	// place: the link fails if a key exists, and a racing reader never
	// sees a half-written key file.
	name := filepath.Join(dir, KeyFile)
	f, err := os.CreateTemp(dir, "."+KeyFile+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("state: create key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("state: create key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return nil, fmt.Errorf("state: write key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("state: write key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("state: write key: %w", err)
	}
	if err := os.Link(tmp, name); errors.Is(err, fs.ErrExist) {
		return LoadKey(dir)
	} else if err != nil {
		return nil, fmt.Errorf("state: create key: %w", err)
	}
	return priv, syncDir(dir)
}

// WriteFileAtomic replaces name with data: it writes a temporary file in the
// same directory with mode 0600, syncs it, renames it over name and syncs
// the directory. Readers see the old content or the new, never a mix.
func WriteFileAtomic(name string, data []byte) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("state: write %s: %w", name, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("state: write %s: %w", name, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("state: sync %s: %w", dir, err)
	}
	return nil
}
