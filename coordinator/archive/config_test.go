package archive

import (
	"errors"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
)

func TestConfigFromTOML(t *testing.T) {
	const doc = `
[[archive]]
name = "debian"
url = "http://deb.debian.org/debian"
suites = ["bookworm", "trixie"]
components = ["main", "contrib"]
architectures = ["amd64", "arm64"]
keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
poll_interval = "15m"
`
	var got struct {
		Archive []Config `toml:"archive"`
	}
	if _, err := toml.Decode(doc, &got); err != nil {
		t.Fatal(err)
	}
	want := []Config{{
		Name: "debian", URL: "http://deb.debian.org/debian",
		Suites: []string{"bookworm", "trixie"}, Components: []string{"main", "contrib"},
		Architectures: []string{"amd64", "arm64"},
		Keyring:       "/usr/share/keyrings/debian-archive-keyring.gpg",
		PollInterval:  15 * time.Minute,
	}}
	if diff := cmp.Diff(want, got.Archive); diff != "" {
		t.Errorf("decoded config (-want +got):\n%s", diff)
	}
	if err := got.Archive[0].Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Name: "debian", URL: "https://deb.debian.org/debian", Suites: []string{"bookworm"}, Components: []string{"main"}}
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"good", func(*Config) {}, true},
		{"security suite", func(c *Config) { c.Suites = []string{"bookworm-security"} }, true},
		{"no name", func(c *Config) { c.Name = "" }, false},
		{"upper-case name", func(c *Config) { c.Name = "Debian" }, false},
		{"ftp url", func(c *Config) { c.URL = "ftp://x/debian" }, false},
		{"url with query", func(c *Config) { c.URL = "http://x/debian?a=b" }, false},
		{"no suites", func(c *Config) { c.Suites = nil }, false},
		{"no components", func(c *Config) { c.Components = nil }, false},
		{"suite with dot dot", func(c *Config) { c.Suites = []string{"../etc"} }, false},
		{"suite twice", func(c *Config) { c.Suites = []string{"sid", "sid"} }, false},
		{"component with space", func(c *Config) { c.Components = []string{"ma in"} }, false},
		{"bad architecture", func(c *Config) { c.Architectures = []string{"amd64;"} }, false},
		{"poll too often", func(c *Config) { c.PollInterval = time.Second }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			err := c.Validate()
			if tt.ok && err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrConfig) {
				t.Errorf("Validate() = %v, want ErrConfig", err)
			}
		})
	}
}

func TestAptSources(t *testing.T) {
	base := Config{Name: "local", URL: "http://127.0.0.1:8000/debian/", Suites: []string{"bookworm", "trixie"}, Components: []string{"main", "contrib"}}
	signed := base
	signed.Keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
	tests := []struct {
		name  string
		cfg   Config
		on    bool
		suite string
		want  []string
	}{
		{"off", base, false, "bookworm", nil},
		{"unsigned", base, true, "bookworm", []string{
			"deb [trusted=yes] http://127.0.0.1:8000/debian/ bookworm main contrib",
			"deb-src [trusted=yes] http://127.0.0.1:8000/debian/ bookworm main contrib"}},
		{"signed", signed, true, "trixie", []string{
			"deb http://127.0.0.1:8000/debian/ trixie main contrib",
			"deb-src http://127.0.0.1:8000/debian/ trixie main contrib"}},
		{"other suite", base, true, "sid", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.TestbedSource = tt.on
			if diff := cmp.Diff(tt.want, c.AptSources(tt.suite)); diff != "" {
				t.Errorf("AptSources(%q) mismatch (-want +got):\n%s", tt.suite, diff)
			}
		})
	}
}
