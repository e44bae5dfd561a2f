package archive

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Config describes one archive to watch. It decodes from TOML:
//
//	[[archive]]
//	name = "debian"
//	url = "http://deb.debian.org/debian"
//	suites = ["bookworm", "trixie"]
//	components = ["main", "contrib"]
//	architectures = ["amd64", "arm64"]
//	keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
//	poll_interval = "10m"
type Config struct {
	// Name identifies the archive in Changes, Snapshots and saved state.
	Name string `toml:"name" json:"name"`
	// URL is the archive root, the directory holding dists/.
	URL string `toml:"url" json:"url"`
	// Suites are names under dists/ (codenames or suite names).
	Suites []string `toml:"suites" json:"suites"`
	// Components are the components to read in every suite.
	Components []string `toml:"components" json:"components"`
	// Architectures keep only sources that build on at least one of them
	// ("all" always matches). Empty keeps every source.
	Architectures []string `toml:"architectures" json:"architectures"`
	// Keyring is an OpenPGP keyring file in the format gpgv reads (a binary
	// .gpg keyring, not an armored one). Empty means indices are not
	// verified.
	Keyring string `toml:"keyring" json:"keyring"`
	// PollInterval is the pause between rounds of Run (default 10m, at least
	// 1m). TOML takes a duration string such as "15m".
	PollInterval time.Duration `toml:"poll_interval" json:"poll_interval"`
	// TestbedSource adds the archive to the testbed of every job for one
	// of its suites (autopkgtest --add-apt-source, deb and deb-src), for
	// an archive the testbed images do not already list. Without a
	// Keyring the lines say [trusted=yes]; with one, the images must
	// already trust the archive's key.
	TestbedSource bool `toml:"testbed_source" json:"testbed_source"`
}

// AptSources returns the sources.list lines for suite that TestbedSource
// asks for, nil when it is off or suite is not one of c's.
func (c Config) AptSources(suite string) []string {
	if !c.TestbedSource || !slices.Contains(c.Suites, suite) {
		return nil
	}
	opts := ""
	if c.Keyring == "" {
		opts = "[trusted=yes] "
	}
	rest := opts + strings.TrimRight(c.URL, "/") + "/ " + suite + " " + strings.Join(c.Components, " ")
	return []string{"deb " + rest, "deb-src " + rest}
}

// DefaultPollInterval is used when Config.PollInterval is zero.
const DefaultPollInterval = 10 * time.Minute

// MinPollInterval is the shortest PollInterval Validate accepts.
const MinPollInterval = time.Minute

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	partRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*(/[A-Za-z0-9][A-Za-z0-9._+-]*)*$`)
)

// Validate reports the first problem with c, wrapping ErrConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: archive %q: %s", ErrConfig, c.Name, fmt.Sprintf(format, args...))
	}
	if !nameRE.MatchString(c.Name) {
		return bad("name must match %s", nameRE)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return bad("url %q must be an http or https URL without query", c.URL)
	}
	for _, list := range []struct {
		key    string
		values []string
		empty  bool
	}{
		{"suites", c.Suites, false},
		{"components", c.Components, false},
		{"architectures", c.Architectures, true},
	} {
		if len(list.values) == 0 && !list.empty {
			return bad("%s is empty", list.key)
		}
		for i, v := range list.values {
			if !partRE.MatchString(v) || strings.Contains(v, "..") {
				return bad("%s has a bad entry %q", list.key, v)
			}
			if slices.Contains(list.values[:i], v) {
				return bad("%s lists %q twice", list.key, v)
			}
		}
	}
	if c.PollInterval != 0 && c.PollInterval < MinPollInterval {
		return bad("poll_interval %s is shorter than %s", c.PollInterval, MinPollInterval)
	}
	return nil
}

func (c Config) interval() time.Duration {
	if c.PollInterval == 0 {
		return DefaultPollInterval
	}
	return c.PollInterval
}

func (c Config) suiteURL(suite string) string {
	return strings.TrimRight(c.URL, "/") + "/dists/" + suite + "/"
}
