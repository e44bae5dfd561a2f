package state

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestInitMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "state")
	if err := Init(dir); err != nil {
		t.Fatalf("Init(%s) = %v", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), fs.FileMode(0o700); got != want {
		t.Errorf("Init: mode = %v, want %v", got, want)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateKey = %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), fs.FileMode(0o600); got != want {
		t.Errorf("key mode = %v, want %v", got, want)
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateKey again = %v", err)
	}
	if !k1.Equal(k2) {
		t.Errorf("LoadOrCreateKey again returned a different key")
	}
}

func TestLoadOrCreateKeyRace(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	keys := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := LoadOrCreateKey(dir)
			if err != nil {
				t.Errorf("LoadOrCreateKey = %v", err)
				return
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("racing LoadOrCreateKey calls returned different keys")
		}
	}
}

func TestLoadKeyRefusesOpenMode(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateKey(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(dir); !errors.Is(err, ErrKeyMode) {
		t.Errorf("LoadKey(mode 0644) = %v, want %v", err, ErrKeyMode)
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"not pem", "hello"},
		{"wrong block", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
		{"garbage der", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseKey([]byte(tt.in)); !errors.Is(err, ErrBadKey) {
				t.Errorf("ParseKey(%q) = %v, want %v", tt.in, err, ErrBadKey)
			}
		})
	}
}

func TestLoadNotRegistered(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	if !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("Load(empty) = %v, want %v", err, ErrNotRegistered)
	}
	want := "state: no agent registered in " + dir + ": run sparegrid-agent register first"
	if err.Error() != want {
		t.Errorf("Load(empty) message = %q, want %q", err.Error(), want)
	}
	if ok, err := Registered(dir); ok || err != nil {
		t.Errorf("Registered(empty) = %v, %v, want false, nil", ok, err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	key, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := Agent{
		AgentID:      7,
		Name:         "box",
		Owner:        "alice",
		Coordinator:  "grid.example.org:7443",
		CASHA256:     "ab12",
		RegisteredAt: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
	}
	if err := SaveAgent(dir, a); err != nil {
		t.Fatal(err)
	}
	ca := []byte("-----BEGIN CERTIFICATE-----\n")
	if err := SaveCA(dir, ca); err != nil {
		t.Fatal(err)
	}
	st, err := Load(dir)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if diff := cmp.Diff(a, st.Agent); diff != "" {
		t.Errorf("Load().Agent mismatch (-want +got):\n%s", diff)
	}
	if !st.Key.Equal(key) || !bytes.Equal(st.CAPEM, ca) {
		t.Errorf("Load() key or CA differ from what was saved")
	}
	for _, name := range []string{AgentFile, CAFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode = %v, want 0600", name, got)
		}
	}
	if ok, err := Registered(dir); !ok || err != nil {
		t.Errorf("Registered = %v, %v, want true, nil", ok, err)
	}
}

func TestWriteFileAtomicLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, AgentFile)
	for _, content := range []string{"first\n", "second\n"} {
		if err := WriteFileAtomic(name, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("after WriteFileAtomic(%q) file = %q", content, got)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only %s", names, AgentFile)
	}
}

func TestWriteFileAtomicFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, AgentFile)
	if err := WriteFileAtomic(name, []byte("old")); err != nil {
		t.Fatal(err)
	}
	// A directory in the way of the rename makes the write fail after the
	// temporary file was written.
	blocked := filepath.Join(dir, "blocked")
	if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(blocked, []byte("new")); err == nil {
		t.Fatalf("WriteFileAtomic over a non-empty directory succeeded")
	}
	got, _ := os.ReadFile(name)
	if string(got) != "old" {
		t.Errorf("unrelated file = %q, want old", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("failed write left %d entries, want 2", len(entries))
	}
}

func TestLoadAgentBadRecord(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"not json", "{"},
		{"no id", `{"coordinator":"h:1"}`},
		{"no coordinator", `{"agent_id":3}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, AgentFile), []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadAgent(dir); !errors.Is(err, ErrBadRecord) {
				t.Errorf("LoadAgent(%s) = %v, want %v", tt.body, err, ErrBadRecord)
			}
		})
	}
}
