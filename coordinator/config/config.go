// Package config owns the coordinator's configuration file: one TOML
// document, decoded strictly (a key sparegrid does not know is an error,
// not a silent typo), and checked as a whole before the coordinator starts:
// archives to watch and event rules, each validated by the package that
// uses it.
//
// It must not start anything: it only reads and checks. Command-line flags
// stay the way to set listening addresses and the data directory.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/sparegrid/sparegrid/coordinator/archive"
	"github.com/sparegrid/sparegrid/coordinator/rules"
)

// ErrConfig wraps every problem with a configuration file.
var ErrConfig = errors.New("config")

// maxFile caps the size of a configuration file.
const maxFile = 1 << 20

// Config is the coordinator's configuration file.
type Config struct {
	// Archives are the archives whose new uploads the coordinator
	// watches ([[archive]] tables).
	Archives []archive.Config `toml:"archive"`
	// Rules expand events from build systems into test requests
	// ([[rule]] tables).
	Rules []rules.Rule `toml:"rule"`
}

// Load reads and checks the configuration file at path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and checks a configuration document.
func Parse(data []byte) (Config, error) {
	if len(data) > maxFile {
		return Config{}, fmt.Errorf("%w: file is larger than %d bytes", ErrConfig, maxFile)
	}
	var c Config
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("%w: unknown keys: %s", ErrConfig, strings.Join(keys, ", "))
	}
	return c, c.Check()
}

// Check validates every part of c, reporting all problems at once.
func (c Config) Check() error {
	var errs []error
	names := map[string]bool{}
	for i, a := range c.Archives {
		if err := a.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("archive %d (%q): %w", i+1, a.Name, err))
		}
		if names[a.Name] {
			errs = append(errs, fmt.Errorf("archive %d: the name %q is used twice", i+1, a.Name))
		}
		names[a.Name] = true
	}
	if err := rules.Check(c.Rules); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}
