package archive

import (
	"slices"
	"strings"
	"time"
)

// Key names one Sources index: an archive, a suite and a component.
type Key struct {
	Archive   string `json:"archive"`
	Suite     string `json:"suite"`
	Component string `json:"component"`
}

func (k Key) String() string { return k.Archive + "/" + k.Suite + "/" + k.Component }

// Snapshot is one Sources index as parsed at one time. It is immutable and
// safe to share; its zero value is an empty snapshot.
type Snapshot struct {
	Key
	// ReleaseDate is the Date of the Release the index came from.
	ReleaseDate time.Time
	// FetchedAt is when the index was read (the watcher's clock).
	FetchedAt time.Time
	// Verified reports whether the Release was checked with gpgv.
	Verified bool
	// SourcesPath and SourcesSHA256 name the file the snapshot was read
	// from, relative to the suite, as listed in the Release.
	SourcesPath   string
	SourcesSHA256 string
	// Rejected counts paragraphs skipped for a bad Package or Version.
	Rejected int

	idx *index
}

// index is the immutable lookup structure behind a Snapshot.
type index struct {
	sources  map[string]Source
	names    []string            // sorted source names
	binSrc   map[string]string   // binary → source building it
	triggers map[string][]string // binary → testable sources it triggers (sorted)
	testable int
}

// NewSnapshot builds a Snapshot of key from sources (a later duplicate of a
// name wins only when its version is newer) and indexes its triggers.
func NewSnapshot(key Key, sources []Source) Snapshot {
	ix := &index{
		sources:  make(map[string]Source, len(sources)),
		binSrc:   make(map[string]string),
		triggers: make(map[string][]string),
	}
	for _, s := range sources {
		if old, ok := ix.sources[s.Package]; ok && CompareVersions(s.Version, old.Version) <= 0 {
			continue
		}
		ix.sources[s.Package] = s
	}
	for name, s := range ix.sources {
		ix.names = append(ix.names, name)
		for _, b := range s.Binaries {
			// Two sources claiming one binary: keep the one that sorts
			// first so the result does not depend on map order.
			if cur, ok := ix.binSrc[b]; !ok || name < cur {
				ix.binSrc[b] = name
			}
		}
	}
	slices.Sort(ix.names)
	for _, name := range ix.names {
		s := ix.sources[name]
		if !s.Testable() {
			continue
		}
		ix.testable++
		for _, t := range s.TestsuiteTriggers {
			if strings.HasPrefix(t, "@") {
				continue
			}
			ix.triggers[t] = append(ix.triggers[t], name)
		}
	}
	for b, ts := range ix.triggers {
		ix.triggers[b] = slices.Compact(ts)
	}
	return Snapshot{Key: key, idx: ix}
}

// Len is the number of sources.
func (s Snapshot) Len() int {
	if s.idx == nil {
		return 0
	}
	return len(s.idx.names)
}

// TestableCount is the number of sources with an autopkgtest.
func (s Snapshot) TestableCount() int {
	if s.idx == nil {
		return 0
	}
	return s.idx.testable
}

// Source returns the source called name.
func (s Snapshot) Source(name string) (Source, bool) {
	if s.idx == nil {
		return Source{}, false
	}
	src, ok := s.idx.sources[name]
	return src, ok
}

// Sources returns every source, sorted by name.
func (s Snapshot) Sources() []Source {
	out := make([]Source, 0, s.Len())
	for _, name := range s.names() {
		out = append(out, s.idx.sources[name])
	}
	return out
}

func (s Snapshot) names() []string {
	if s.idx == nil {
		return nil
	}
	return s.idx.names
}

// SourceOfBinary returns the source that builds binary.
func (s Snapshot) SourceOfBinary(binary string) (string, bool) {
	if s.idx == nil {
		return "", false
	}
	src, ok := s.idx.binSrc[binary]
	return src, ok
}

// Triggered returns the testable sources whose tests an upload of source
// should run, sorted and without duplicates: source itself when it is
// testable, and every testable source whose Testsuite-Triggers name one of
// source's binaries. It is nil for a source the snapshot does not hold.
func (s Snapshot) Triggered(source string) []string {
	src, ok := s.Source(source)
	if !ok {
		return nil
	}
	var out []string
	if src.Testable() {
		out = append(out, source)
	}
	for _, b := range src.Binaries {
		out = append(out, s.idx.triggers[b]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TriggeredByBinary returns the testable sources a new version of the
// binary package should test: those whose Testsuite-Triggers name it, and
// the source building it when that source is testable. Names no source
// builds (virtual packages, say) still match Testsuite-Triggers.
func (s Snapshot) TriggeredByBinary(binary string) []string {
	if s.idx == nil {
		return nil
	}
	out := slices.Clone(s.idx.triggers[binary])
	if src, ok := s.idx.binSrc[binary]; ok && s.idx.sources[src].Testable() {
		out = append(out, src)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Change is one source whose newest version differs between two snapshots.
type Change struct {
	Archive    string `json:"archive"`
	Suite      string `json:"suite"`
	Component  string `json:"component"`
	Source     string `json:"source"`
	OldVersion string `json:"old_version,omitempty"` // empty for a new source
	NewVersion string `json:"new_version,omitempty"` // empty for a removed source
	// Testable is whether the source has an autopkgtest in the newer
	// snapshot (in the older one for a removed source).
	Testable bool `json:"testable"`
}

// Diff lists, sorted by source, the sources added, removed or given another
// version between old and new. The key comes from new (from old when new is
// the zero Snapshot).
func Diff(old, new Snapshot) []Change {
	key := new.Key
	if new.idx == nil {
		key = old.Key
	}
	var out []Change
	mk := func(name string) Change {
		return Change{Archive: key.Archive, Suite: key.Suite, Component: key.Component, Source: name}
	}
	for _, name := range new.names() {
		n := new.idx.sources[name]
		o, had := old.Source(name)
		if had && o.Version == n.Version {
			continue
		}
		c := mk(name)
		c.OldVersion, c.NewVersion, c.Testable = o.Version, n.Version, n.Testable()
		out = append(out, c)
	}
	for _, name := range old.names() {
		if _, ok := new.Source(name); ok {
			continue
		}
		o := old.idx.sources[name]
		c := mk(name)
		c.OldVersion, c.Testable = o.Version, o.Testable()
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Source, b.Source) })
	return out
}

// BuildsOn reports whether a source with the given Architecture field
// builds for the Debian architecture arch: "any" and "all" match everything,
// "linux-any" (and other OS-any) matches by system, "any-CPU" by CPU.
// Architecture tuples are simplified: CPU names are Debian's (armel and
// armhf both count as "arm").
func BuildsOn(field []string, arch string) bool {
	os, cpu := splitArch(arch)
	for _, f := range field {
		switch {
		case f == "any" || f == "all" || f == arch:
			return true
		case strings.HasSuffix(f, "-any"):
			if strings.TrimSuffix(f, "-any") == os {
				return true
			}
		case strings.HasPrefix(f, "any-"):
			if strings.TrimPrefix(f, "any-") == cpu {
				return true
			}
		}
	}
	return false
}

// splitArch returns the system and CPU of a Debian architecture name.
func splitArch(arch string) (os, cpu string) {
	os, cpu = "linux", arch
	for _, prefix := range []string{"kfreebsd-", "hurd-", "musl-linux-"} {
		if strings.HasPrefix(arch, prefix) {
			os, cpu = strings.TrimSuffix(prefix, "-"), strings.TrimPrefix(arch, prefix)
		}
	}
	if os == "musl-linux" {
		os = "linux"
	}
	switch cpu {
	case "armel", "armhf":
		cpu = "arm"
	case "x32":
		cpu = "amd64"
	}
	return os, cpu
}
