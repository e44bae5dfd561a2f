package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sparegrid/sparegrid/coordinator/client"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/sign"
)

// deterministicKey returns an Ed25519 key from a fixed seed.
func deterministicKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes32(seed))
}

func bytes32(b byte) []byte {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = b
	}
	return s
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type verifyFixture struct {
	job       client.Job
	tr        sign.TestResult
	blobs     map[string][]byte
	agentKey  ed25519.PrivateKey
	signKey   ed25519.PrivateKey
	reportJob func(*client.Job)
	serve     map[string][]byte // digest -> bytes served, overriding blobs
}

// setUp stores a signed result of job 5, run by agent 3, in the fake.
func setUpVerify(t *testing.T, c *cli, edit func(*verifyFixture)) {
	t.Helper()
	agent := int64(3)
	logData := []byte("autopkgtest log\nsmoke PASS\n")
	artifact := []byte("artifact\x00bytes")
	f := verifyFixture{
		blobs:    map[string][]byte{"log": logData, "artifacts/out.txt": artifact},
		agentKey: deterministicKey(1),
		serve:    map[string][]byte{},
	}
	f.signKey = f.agentKey
	tests := []dep8.Test{{Name: "smoke", Result: dep8.Pass}, {Name: "unit", Result: dep8.Skip, Detail: "all tests skipped"}}
	harness := dep8.Harness{AgentVersion: "v1", AutopkgtestVersion: "5.40", Backend: "overlay", ImageDigest: "sha256:" + strings.Repeat("c", 64)}
	f.tr = sign.TestResult{
		JobID: 5, Attempt: 1, Nonce: "n0nce", Package: "hello", Version: "2.10-3", Release: "trixie", Arch: "amd64",
		ExitCode: 2, Verdict: dep8.VerdictPass, Tests: tests, Harness: harness,
		Agent: sign.AgentRef{ID: agent},
		Blobs: []sign.Blob{
			{Name: "log", SHA256: digest(logData), Size: int64(len(logData))},
			{Name: "artifacts/out.txt", SHA256: digest(artifact), Size: int64(len(artifact))},
		},
	}
	f.job = client.Job{
		ID: 5, Package: "hello", Version: "2.10-3", Release: "trixie", Arch: "amd64", State: client.StateDone,
		Verdict: dep8.VerdictPass, Attempt: 1, Agent: &agent, AgentName: "box", Tests: tests, Harness: &harness,
		Blobs: []client.Blob{
			{Name: "log", SHA256: digest(logData), Size: int64(len(logData))},
			{Name: "artifacts/out.txt", SHA256: digest(artifact), Size: int64(len(artifact))},
		},
	}
	if edit != nil {
		edit(&f)
	}
	env, err := sign.SignResult(f.signKey, f.tr)
	if err != nil {
		t.Fatalf("SignResult() error: %v", err)
	}
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	pub := f.agentKey.Public().(ed25519.PublicKey)
	c.fake.AddAgent(client.Agent{ID: agent, Name: "box", Owner: "maint", State: client.AgentApproved,
		PublicKey: pub, KeyID: sign.KeyID(pub)}, "")
	c.fake.PutJob(f.job)
	c.fake.SetEnvelope(5, data)
	for _, b := range f.tr.Blobs {
		if _, ok := f.serve[b.SHA256]; !ok {
			c.fake.PutBlob(b.SHA256, f.blobs[b.Name])
		}
	}
	for d, b := range f.serve {
		c.fake.PutBlob(d, b)
	}
}

func writeKeyFile(t *testing.T, key ed25519.PrivateKey) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "agent.pub")
	pub := key.Public().(ed25519.PublicKey)
	if err := os.WriteFile(file, []byte(base64.StdEncoding.EncodeToString(pub)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestVerify(t *testing.T) {
	logDigest := func(f *verifyFixture) string { return f.tr.Blobs[0].SHA256 }
	tests := []struct {
		name     string
		edit     func(*verifyFixture)
		keyFile  ed25519.PrivateKey // non-nil: pass --key with this key's public half
		wantCode int
		want     []string // lines in stderr
	}{
		{
			name: "good",
			want: []string{
				"signature: ok (agent 3, key " + sign.KeyID(deterministicKey(1).Public().(ed25519.PublicKey)) + ", from the coordinator)",
				"job id: ok", "package: ok", "release: ok", "arch: ok", "verdict: ok", "tests: ok", "blob list: ok",
				"blob log: ok (", "blob artifacts/out.txt: ok (",
				"job 5: verified: hello 2.10-3 on trixie/amd64, pass, attempt 1",
			},
		},
		{
			name:    "good with key file",
			keyFile: deterministicKey(1),
			want:    []string{"signature: ok (agent 3, key sha256:", "/agent.pub)", "job 5: verified"},
		},
		{
			name:     "tampered blob",
			edit:     func(f *verifyFixture) { f.serve[logDigest(f)] = []byte("autopkgtest log\nsmoke FAIL\n") },
			wantCode: 1,
			want:     []string{"signature: ok", "blob log: FAILED: sign: blob does not match", "blob artifacts/out.txt: ok", "sparegrid: job 5: 1 of the checks failed"},
		},
		{
			name:     "truncated blob",
			edit:     func(f *verifyFixture) { f.serve[logDigest(f)] = []byte("autopkgtest") },
			wantCode: 1,
			want:     []string{"blob log: FAILED: sign: blob does not match"},
		},
		{
			name:     "signed by another key",
			edit:     func(f *verifyFixture) { f.signKey = deterministicKey(2) },
			wantCode: 1,
			want:     []string{"signature: FAILED: sign: not signed by this key", "sparegrid: job 5: the result is not signed by key"},
		},
		{
			name:     "key file of another agent",
			keyFile:  deterministicKey(9),
			wantCode: 1,
			want:     []string{"signature: FAILED", "/agent.pub)"},
		},
		{
			name: "coordinator reports another verdict",
			edit: func(f *verifyFixture) {
				f.job.Verdict = dep8.VerdictFail
				f.job.Tests = []client.Test{{Name: "smoke", Result: dep8.Fail}}
			},
			wantCode: 1,
			want: []string{
				`verdict: MISMATCH: signed "pass", coordinator reports "fail"`,
				"tests: MISMATCH: signed [smoke PASS, unit SKIP], coordinator reports [smoke FAIL]",
				"sparegrid: job 5: 2 of the checks failed",
			},
		},
		{
			name:     "result of another job",
			edit:     func(f *verifyFixture) { f.tr.JobID = 4 },
			wantCode: 1,
			want:     []string{"job id: MISMATCH: signed 4, coordinator reports 5"},
		},
		{
			name:     "another package",
			edit:     func(f *verifyFixture) { f.tr.Package, f.tr.Arch = "evil", "arm64" },
			wantCode: 1,
			want:     []string{`package: MISMATCH: signed "evil", coordinator reports "hello"`, `arch: MISMATCH: signed "arm64"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			setUpVerify(t, c, tt.edit)
			args := []string{"verify", "5"}
			if tt.keyFile != nil {
				args = append(args, "--key", writeKeyFile(t, tt.keyFile))
			}
			r := c.run(args...)
			t.Logf("stderr:\n%s", r.stderr)
			if r.code != tt.wantCode {
				t.Errorf("verify 5 exited %d, want %d", r.code, tt.wantCode)
			}
			if r.stdout != "" {
				t.Errorf("verify 5 printed %q on stdout, want nothing", r.stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("verify 5 stderr lacks %q; stderr:\n%s", w, r.stderr)
				}
			}
		})
	}
}

func TestVerifyWithoutResult(t *testing.T) {
	c := newCLI(t)
	c.fake.PutJob(client.Job{ID: 6, Package: "hello", State: client.StateQueued})
	r := c.run("verify", "6")
	if want := "sparegrid: job 6 has no signed result yet (state queued)\n"; r.code != 1 || r.stderr != want {
		t.Errorf("verify 6 = %d, %q; want 1, %q", r.code, r.stderr, want)
	}
}
