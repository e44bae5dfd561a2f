package intake

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// ErrBadPin means a harness pin is not well formed.
var ErrBadPin = errors.New("intake: bad harness revision")

// Pin is a harness revision to match: values of some or all of the fields
// of dep8.Harness.Rev, by key ("agent", "autopkgtest", "backend",
// "image"). A result matches when its harness has every value the pin
// names; fields the pin leaves out match anything.
type Pin map[string]string

// pinKeys are the keys of dep8.Harness.Rev.
var pinKeys = []string{"agent", "autopkgtest", "backend", "image"}

// ParsePin reads a pin written as dep8.Harness.Rev writes a revision, all
// fields or some: "agent=1.4.0;autopkgtest=5.28". The empty string is
// the empty pin.
func ParsePin(s string) (Pin, error) {
	p := Pin{}
	if strings.TrimSpace(s) == "" {
		return p, nil
	}
	for _, f := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		switch {
		case !ok || v == "":
			return nil, fmt.Errorf("%w %q: each field is KEY=VALUE, such as autopkgtest=5.28", ErrBadPin, s)
		case !slices.Contains(pinKeys, k):
			return nil, fmt.Errorf("%w %q: unknown field %q (use %s)", ErrBadPin, s, k, strings.Join(pinKeys, ", "))
		case p[k] != "":
			return nil, fmt.Errorf("%w %q: field %q twice", ErrBadPin, s, k)
		}
		p[k] = v
	}
	return p, nil
}

// PinOf returns the pin that matches exactly h's revision.
func PinOf(h dep8.Harness) Pin {
	return Pin{"agent": h.AgentVersion, "autopkgtest": h.AutopkgtestVersion, "backend": h.Backend, "image": h.ImageDigest}
}

// Match reports whether h has every value p names.
func (p Pin) Match(h dep8.Harness) bool {
	have := PinOf(h)
	for k, v := range p {
		if have[k] != v {
			return false
		}
	}
	return true
}

// String writes p the way ParsePin reads it, fields in Rev's order.
func (p Pin) String() string {
	var out []string
	for _, k := range pinKeys {
		if v, ok := p[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p)) {
		if !slices.Contains(pinKeys, k) {
			out = append(out, k+"="+p[k])
		}
	}
	return strings.Join(out, ";")
}
