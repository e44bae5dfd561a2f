package archive

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiff(t *testing.T) {
	key := Key{"debian", "sid", "main"}
	src := func(name, version string, testable bool) Source {
		s := Source{Package: name, Version: version}
		if testable {
			s.Testsuite = []string{"autopkgtest"}
		}
		return s
	}
	change := func(name, old, new string, testable bool) Change {
		return Change{Archive: "debian", Suite: "sid", Component: "main", Source: name, OldVersion: old, NewVersion: new, Testable: testable}
	}
	tests := []struct {
		name     string
		old, new []Source
		want     []Change
	}{
		{"both empty", nil, nil, nil},
		{"same", []Source{src("a", "1", true)}, []Source{src("a", "1", true)}, nil},
		{"new source", nil, []Source{src("a", "1", true)}, []Change{change("a", "", "1", true)}},
		{"removed source", []Source{src("a", "1", true)}, nil, []Change{change("a", "1", "", true)}},
		{"upgrade gains tests", []Source{src("a", "1", false)}, []Source{src("a", "2", true)}, []Change{change("a", "1", "2", true)}},
		{"downgrade", []Source{src("a", "2", true)}, []Source{src("a", "1", false)}, []Change{change("a", "2", "1", false)}},
		{
			"sorted",
			[]Source{src("c", "1", false), src("b", "1", false)},
			[]Source{src("a", "1", false), src("c", "2", false)},
			[]Change{change("a", "", "1", false), change("b", "1", "", false), change("c", "1", "2", false)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new := NewSnapshot(key, tt.old), NewSnapshot(key, tt.new)
			if tt.new == nil {
				new = Snapshot{}
			}
			if diff := cmp.Diff(tt.want, Diff(old, new)); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewSnapshotKeepsNewestVersion(t *testing.T) {
	s := NewSnapshot(Key{}, []Source{{Package: "a", Version: "1.0-2"}, {Package: "a", Version: "1.0~rc1-1"}, {Package: "a", Version: "1:0.1"}})
	if got, _ := s.Source("a"); got.Version != "1:0.1" {
		t.Errorf("Source(a).Version = %q, want 1:0.1", got.Version)
	}
}

func TestBuildsOn(t *testing.T) {
	tests := []struct {
		field []string
		arch  string
		want  bool
	}{
		{[]string{"any"}, "amd64", true},
		{[]string{"all"}, "s390x", true},
		{[]string{"amd64", "i386"}, "i386", true},
		{[]string{"amd64", "i386"}, "arm64", false},
		{[]string{"linux-any"}, "arm64", true},
		{[]string{"linux-any"}, "hurd-i386", false},
		{[]string{"hurd-any"}, "hurd-i386", true},
		{[]string{"kfreebsd-any"}, "amd64", false},
		{[]string{"any-i386"}, "hurd-i386", true},
		{[]string{"any-arm"}, "armhf", true},
		{[]string{"any-amd64"}, "arm64", false},
		{nil, "amd64", false},
	}
	for _, tt := range tests {
		if got := BuildsOn(tt.field, tt.arch); got != tt.want {
			t.Errorf("BuildsOn(%v, %s) = %v, want %v", tt.field, tt.arch, got, tt.want)
		}
	}
}
