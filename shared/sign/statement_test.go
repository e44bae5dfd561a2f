package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func sampleResult(priv ed25519.PrivateKey) TestResult {
	return TestResult{
		JobID:    42,
		Attempt:  2,
		Nonce:    "5c1f0b4e9d7a4b8e",
		Package:  "hello",
		Version:  "2.10-3",
		Release:  "unstable",
		Arch:     "amd64",
		Triggers: []string{"gcc-14/14.2.0-19"},
		ExitCode: 4,
		Verdict:  dep8.VerdictFail,
		Tests: []dep8.Test{
			{Name: "command1", Result: dep8.Pass},
			{Name: "upstream-tests", Result: dep8.Fail, Detail: "non-zero exit status 1"},
			{Name: "flaky-test", Result: dep8.Flaky, Detail: "non-zero exit status 1"},
		},
		Harness: dep8.Harness{
			AgentVersion:       "v0.1.0",
			AutopkgtestVersion: "5.28",
			Backend:            "overlay",
			ImageDigest:        "sha256:" + sha256Hex("image"),
		},
		Agent: AgentRef{ID: 7, KeyID: KeyID(pubOf(priv))},
		Blobs: []Blob{
			{Name: "log", SHA256: sha256Hex("log text"), Size: 8},
			{Name: "artifacts/test-suite.log", SHA256: sha256Hex("artifact"), Size: 8},
		},
		StartedAt:  time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		FinishedAt: time.Date(2026, 11, 21, 10, 4, 31, 500, time.UTC),
	}
}

func TestResultRoundTrip(t *testing.T) {
	priv := testKey(1)
	tests := []struct {
		name   string
		modify func(*TestResult)
	}{
		{"full", func(*TestResult) {}},
		{"key id filled in", func(tr *TestResult) { tr.Agent.KeyID = "" }},
		{"no blobs, tests or triggers", func(tr *TestResult) {
			tr.Blobs, tr.Tests, tr.Triggers = nil, nil, nil
			tr.Verdict = dep8.VerdictTmpfail
		}},
		{"time zone", func(tr *TestResult) {
			tr.StartedAt = tr.StartedAt.In(time.FixedZone("", 3600))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := sampleResult(priv)
			tt.modify(&tr)
			env, err := SignResult(priv, tr)
			if err != nil {
				t.Fatalf("SignResult() error = %v", err)
			}
			data, err := env.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := ParseEnvelope(data)
			if err != nil {
				t.Fatalf("ParseEnvelope() error = %v", err)
			}
			got, err := VerifyResult(parsed, pubOf(priv))
			if err != nil {
				t.Fatalf("VerifyResult() error = %v", err)
			}
			want := tr
			want.Agent.KeyID = KeyID(pubOf(priv))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("VerifyResult(SignResult(tr)) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewStatement(t *testing.T) {
	tr := sampleResult(testKey(1))
	got := NewStatement(tr)
	want := Statement{
		Type: StatementType,
		Subject: []Subject{
			{Name: "log", Digest: map[string]string{"sha256": sha256Hex("log text")}},
			{Name: "artifacts/test-suite.log", Digest: map[string]string{"sha256": sha256Hex("artifact")}},
		},
		PredicateType: PredicateTestResult,
		Predicate:     tr,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NewStatement() mismatch (-want +got):\n%s", diff)
	}
	if s := NewStatement(TestResult{}); s.Subject == nil {
		t.Errorf("NewStatement(no blobs).Subject = nil, want empty")
	}
}

func TestVerifyResultErrors(t *testing.T) {
	priv := testKey(1)
	pub := pubOf(priv)
	stmt := func(modify func(*Statement)) []byte {
		st := NewStatement(sampleResult(priv))
		modify(&st)
		data, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	good := stmt(func(*Statement) {})
	replace := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("statement %s does not contain %q", good, old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	tests := []struct {
		name    string
		payload []byte
	}{
		{"extra subject", stmt(func(s *Statement) {
			s.Subject = append(s.Subject, Subject{Name: "extra", Digest: map[string]string{"sha256": sha256Hex("x")}})
		})},
		{"dropped subject", stmt(func(s *Statement) { s.Subject = s.Subject[:1] })},
		{"extra blob", stmt(func(s *Statement) {
			s.Predicate.Blobs = append(s.Predicate.Blobs, Blob{Name: "extra", SHA256: sha256Hex("x"), Size: 1})
		})},
		{"subjects reordered", stmt(func(s *Statement) { s.Subject[0], s.Subject[1] = s.Subject[1], s.Subject[0] })},
		{"subject digest differs", stmt(func(s *Statement) { s.Subject[0].Digest["sha256"] = sha256Hex("other") })},
		{"subject name differs", stmt(func(s *Statement) { s.Subject[0].Name = "log2" })},
		{"subject has a second digest", stmt(func(s *Statement) { s.Subject[0].Digest["sha512"] = "00" })},
		{"wrong statement type", stmt(func(s *Statement) { s.Type = "https://in-toto.io/Statement/v0.1" })},
		{"wrong predicate type", stmt(func(s *Statement) { s.PredicateType = "https://slsa.dev/provenance/v1" })},
		{"bad verdict", stmt(func(s *Statement) { s.Predicate.Verdict = "great" })},
		{"bad test result", stmt(func(s *Statement) { s.Predicate.Tests[0].Result = "BROKEN" })},
		{"test without name", stmt(func(s *Statement) { s.Predicate.Tests[0].Name = "" })},
		{"upper-case blob digest", stmt(func(s *Statement) {
			d := strings.ToUpper(sha256Hex("log text"))
			s.Predicate.Blobs[0].SHA256 = d
			s.Subject[0].Digest["sha256"] = d
		})},
		{"short blob digest", stmt(func(s *Statement) {
			s.Predicate.Blobs[0].SHA256 = "abc"
			s.Subject[0].Digest["sha256"] = "abc"
		})},
		{"repeated blob name", stmt(func(s *Statement) {
			s.Predicate.Blobs[1].Name = "log"
			s.Subject[1].Name = "log"
		})},
		{"negative blob size", stmt(func(s *Statement) { s.Predicate.Blobs[0].Size = -1 })},
		{"agent names another key", stmt(func(s *Statement) { s.Predicate.Agent.KeyID = KeyID(pubOf(testKey(2))) })},
		{"unknown field", replace(`"_type":`, `"extra":true,"_type":`)},
		{"unknown predicate field", replace(`"job_id":`, `"retries":3,"job_id":`)},
		{"repeated field", replace(`"verdict":"fail"`, `"verdict":"fail","verdict":"pass"`)},
		{"repeated field in other case", replace(`"verdict":"fail"`, `"verdict":"fail","Verdict":"pass"`)},
		{"field in other case", replace(`"verdict":"fail"`, `"VERDICT":"fail"`)},
		{"non-ASCII key", replace(`"verdict":"fail"`, `"verdict":"fail","\u017f":1`)},
		{"trailing data", append(bytes.Clone(good), []byte(` {}`)...)},
		{"not an object", []byte(`null`)},
		{"array", append(append([]byte("["), good...), ']')},
		{"not JSON", []byte("hello")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := SignEnvelope(priv, PayloadType, tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			got, err := VerifyResult(env, pub)
			if !errors.Is(err, ErrStatement) {
				t.Errorf("VerifyResult(%s) = %+v, %v, want error %v", tt.payload, got, err, ErrStatement)
			}
		})
	}
	t.Run("good statement", func(t *testing.T) {
		env, err := SignEnvelope(priv, PayloadType, good)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyResult(env, pub); err != nil {
			t.Errorf("VerifyResult(good) error = %v, want nil", err)
		}
	})
}

func TestVerifyResultSignatureErrors(t *testing.T) {
	priv := testKey(1)
	env, err := SignResult(priv, sampleResult(priv))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyResult(env, pubOf(testKey(2))); !errors.Is(err, ErrWrongKey) {
		t.Errorf("VerifyResult(other key) error = %v, want %v", err, ErrWrongKey)
	}
	env.Payload[len(env.Payload)/2] ^= 0x20
	if _, err := VerifyResult(env, pubOf(priv)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyResult(tampered) error = %v, want %v", err, ErrBadSignature)
	}
}

func TestSignResultErrors(t *testing.T) {
	priv := testKey(1)
	tests := []struct {
		name   string
		priv   ed25519.PrivateKey
		modify func(*TestResult)
		want   error
	}{
		{"bad verdict", priv, func(tr *TestResult) { tr.Verdict = "" }, ErrStatement},
		{"bad test result", priv, func(tr *TestResult) { tr.Tests[1].Result = "fail" }, ErrStatement},
		{"bad blob digest", priv, func(tr *TestResult) { tr.Blobs[0].SHA256 = "sha256:" + sha256Hex("x") }, ErrStatement},
		{"another agent key", priv, func(tr *TestResult) { tr.Agent.KeyID = KeyID(pubOf(testKey(2))) }, ErrStatement},
		{"short key", priv[:10], func(*TestResult) {}, ErrBadKey},
		{"time out of range", priv, func(tr *TestResult) { tr.FinishedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, ErrStatement},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := sampleResult(priv)
			tt.modify(&tr)
			if _, err := SignResult(tt.priv, tr); !errors.Is(err, tt.want) {
				t.Errorf("SignResult() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzVerifyResult(f *testing.F) {
	priv := testKey(1)
	good, err := json.Marshal(NewStatement(sampleResult(priv)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"verdict":"fail"`), []byte(`"verdict":"fail","Verdict":"pass"`), 1))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://sparegrid.github.io/predicates/test-result/v1","predicate":{"verdict":"pass","agent":{"key_id":"` + KeyID(pubOf(priv)) + `"}}}`))
	f.Add([]byte(`{"_type":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) == 0 {
			return
		}
		env, err := SignEnvelope(priv, PayloadType, payload)
		if err != nil {
			t.Fatalf("SignEnvelope() error = %v", err)
		}
		tr, err := VerifyResult(env, pubOf(priv))
		if err != nil {
			if !errors.Is(err, ErrStatement) {
				t.Fatalf("VerifyResult() error = %v, want it to wrap %v", err, ErrStatement)
			}
			return
		}
		if err := tr.Validate(); err != nil {
			t.Fatalf("Validate(VerifyResult()) error = %v", err)
		}
		again, err := SignResult(priv, tr)
		if err != nil {
			t.Fatalf("SignResult(VerifyResult()) error = %v", err)
		}
		tr2, err := VerifyResult(again, pubOf(priv))
		if err != nil {
			t.Fatalf("VerifyResult(SignResult(VerifyResult())) error = %v", err)
		}
		if diff := cmp.Diff(tr, tr2); diff != "" {
			t.Errorf("re-signed result mismatch (-want +got):\n%s", diff)
		}
	})
}
