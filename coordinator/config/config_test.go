package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const archiveBlock = `
[[archive]]
name = "debian"
url = "http://deb.debian.org/debian"
suites = ["bookworm"]
components = ["main"]
architectures = ["amd64"]
poll_interval = "15m"
`

const ruleBlock = `
[[rule]]
name = "reverse-deps"
when = 'event.type == "upload"'
packages = "triggered(event.source)"
releases = ["unstable"]
arches = ["amd64"]
`

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr string // empty: valid
	}{
		{name: "empty"},
		{name: "archive and rule", doc: archiveBlock + ruleBlock},
		{name: "unknown top-level key", doc: "lease_ttl = 3\n" + archiveBlock, wantErr: "unknown keys: lease_ttl"},
		{name: "unknown archive key", doc: strings.Replace(archiveBlock, "suites", "suits", 1), wantErr: "unknown keys: archive.suits"},
		{name: "archive without a URL", doc: strings.Replace(archiveBlock, `url = "http://deb.debian.org/debian"`, "", 1), wantErr: `archive 1 ("debian")`},
		{name: "same archive twice", doc: archiveBlock + archiveBlock, wantErr: `the name "debian" is used twice`},
		{name: "rule that does not compile", doc: strings.Replace(ruleBlock, `event.type == "upload"`, `event.tpye == "upload"`, 1), wantErr: "reverse-deps"},
		{name: "not TOML", doc: "[[archive]\n", wantErr: "config"},
		{name: "schedule", doc: "[schedule]\npolicy = [\"/usr/local/bin/policy\", \"--fast\"]\npolicy_timeout = \"1m\"\nfanout_limit = 20\nsweep = false\nsweep_every = \"30m\"\nharness_revision = \"autopkgtest=5.28;backend=overlay\"\n"},
		{name: "relative policy program", doc: "[schedule]\npolicy = [\"policy.py\"]\n", wantErr: "absolute path"},
		{name: "sweep too often", doc: "[schedule]\nsweep_every = \"10s\"\n", wantErr: "sweep_every"},
		{name: "negative fanout", doc: "[schedule]\nfanout_limit = -1\n", wantErr: "fanout_limit"},
		{name: "policy timeout too long", doc: "[schedule]\npolicy_timeout = \"1h\"\n", wantErr: "policy_timeout"},
		{name: "bad harness revision", doc: "[schedule]\nharness_revision = \"autopkgtest\"\n", wantErr: "harness_revision"},
		{name: "unknown harness field", doc: "[schedule]\nharness_revision = \"kernel=6.1\"\n", wantErr: "unknown field"},
		{name: "unknown schedule key", doc: "[schedule]\nsweep_evry = \"1h\"\n", wantErr: "schedule.sweep_evry"},
		{name: "checks and hold", doc: "[[check]]\nname = \"mirror\"\nhttp = \"http://deb.example.org/debian/\"\nscope = \"release:trixie\"\ninterval = \"30s\"\ntimeout = \"5s\"\n" +
			"[[check]]\nname = \"dns\"\ncommand = [\"/usr/bin/host\", \"deb.debian.org\"]\n[hold]\nmax_hold = \"12h\"\n"},
		{name: "check with both probes", doc: "[[check]]\nname = \"x\"\nhttp = \"http://h/\"\ncommand = [\"/bin/true\"]\n", wantErr: "not both"},
		{name: "check with a relative program", doc: "[[check]]\nname = \"x\"\ncommand = [\"true\"]\n", wantErr: "absolute path"},
		{name: "check too often", doc: "[[check]]\nname = \"x\"\nhttp = \"http://h/\"\ninterval = \"1s\"\n", wantErr: "interval 1s"},
		{name: "check with a bad scope", doc: "[[check]]\nname = \"x\"\nhttp = \"http://h/\"\nscope = \"everything\"\n", wantErr: `scope "everything"`},
		{name: "same check twice", doc: "[[check]]\nname = \"x\"\nhttp = \"http://h/\"\n[[check]]\nname = \"x\"\nhttp = \"http://h/\"\n", wantErr: "used twice"},
		{name: "unknown check key", doc: "[[check]]\nname = \"x\"\nurl = \"http://h/\"\n", wantErr: "check.url"},
		{name: "max_hold too short", doc: "[hold]\nmax_hold = \"10m\"\n", wantErr: "max_hold"},
		{name: "too large", doc: "# " + strings.Repeat("x", maxFile), wantErr: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse = %v, want no error", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse = %+v, %v; want an ErrConfig saying %q", c, err, tt.wantErr)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.toml")
	if err := os.WriteFile(path, []byte(archiveBlock+ruleBlock), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if len(c.Archives) != 1 || c.Archives[0].PollInterval != 15*time.Minute || len(c.Rules) != 1 || c.Rules[0].Name != "reverse-deps" {
		t.Errorf("Load = %+v, want one archive polled every 15m and one rule", c)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml")); !errors.Is(err, ErrConfig) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrConfig wrapping not-exist", err)
	}
}

// TestExampleConfig keeps the shipped example valid.
func TestExampleConfig(t *testing.T) {
	if _, err := Load(filepath.Join("..", "..", "installer", "coordinator.toml.example")); err != nil {
		t.Fatalf("installer/coordinator.toml.example: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(archiveBlock + ruleBlock))
	f.Add([]byte("[[archive]]\nname = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Parse(data); err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("Parse error %v does not wrap ErrConfig", err)
		}
	})
}
