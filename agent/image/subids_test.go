package image

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestEnsureSubordinateIDs(t *testing.T) {
	tests := []struct {
		name   string
		before *string // nil: the file does not exist
		want   string
	}{
		{"missing file", nil, "builder:100000:65536\n"},
		{"empty file", ptr(""), "builder:100000:65536\n"},
		{
			"existing ranges",
			ptr("alice:100000:65536\nbob:165536:65536\n"),
			"alice:100000:65536\nbob:165536:65536\nbuilder:231072:65536\n",
		},
		{
			"unsorted ranges and a comment",
			ptr("# comment\nbob:1000000:65536\nalice:100000:65536\n"),
			"# comment\nbob:1000000:65536\nalice:100000:65536\nbuilder:1065536:65536\n",
		},
		{
			"low range below the minimum",
			ptr("alice:1000:100\n"),
			"alice:1000:100\nbuilder:100000:65536\n",
		},
		{
			"no final newline",
			ptr("alice:100000:65536"),
			"alice:100000:65536\nbuilder:165536:65536\n",
		},
		{
			"malformed lines ignored",
			ptr("garbage\nalice:x:y\nalice:200000:10\n"),
			"garbage\nalice:x:y\nalice:200000:10\nbuilder:200010:65536\n",
		},
		{
			"already present",
			ptr("alice:100000:65536\nbuilder:500000:1000\n"),
			"alice:100000:65536\nbuilder:500000:1000\n",
		},
		{
			"prefix of another name is not a match",
			ptr("builder2:100000:65536\n"),
			"builder2:100000:65536\nbuilder:165536:65536\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			uid := filepath.Join(dir, "subuid")
			gid := filepath.Join(dir, "subgid")
			if tt.before != nil {
				for _, f := range []string{uid, gid} {
					if err := os.WriteFile(f, []byte(*tt.before), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			for round := range 2 {
				if err := EnsureSubordinateIDs("builder", uid, gid); err != nil {
					t.Fatalf("EnsureSubordinateIDs round %d: %v", round, err)
				}
				for _, f := range []string{uid, gid} {
					got, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					if string(got) != tt.want {
						t.Errorf("round %d: %s = %q, want %q", round, filepath.Base(f), got, tt.want)
					}
				}
			}
		})
	}
}

func TestEnsureSubordinateIDsMatchesUID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subuid")
	if err := os.WriteFile(path, []byte("0:100000:65536\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := EnsureSubordinateIDs("root", path); err != nil {
		t.Fatalf("EnsureSubordinateIDs: %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "0:100000:65536\n"; string(got) != want {
		t.Errorf("subuid = %q, want %q", got, want)
	}
}

func TestEnsureSubordinateIDsRejects(t *testing.T) {
	tests := []struct {
		name     string
		user     string
		contents string
		want     error
	}{
		{"empty user", "", "", ErrBadUser},
		{"colon in user", "a:b", "", ErrBadUser},
		{"newline in user", "a\nroot:0:1", "", ErrBadUser},
		{"no room left", "builder", "alice:4294967000:100\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "subuid")
			if err := os.WriteFile(path, []byte(tt.contents), 0o644); err != nil {
				t.Fatal(err)
			}
			err := EnsureSubordinateIDs(tt.user, path)
			if err == nil {
				t.Fatalf("EnsureSubordinateIDs(%q) = nil, want an error", tt.user)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("EnsureSubordinateIDs(%q) error = %v, want %v", tt.user, err, tt.want)
			}
			got, _ := os.ReadFile(path)
			if string(got) != tt.contents {
				t.Errorf("file changed to %q, want %q", got, tt.contents)
			}
		})
	}
}

// FuzzPlanSubIDs checks that a planned range never overlaps a range
// already in the file.
func FuzzPlanSubIDs(f *testing.F) {
	f.Add("alice:100000:65536\nbob:165536:65536\n")
	f.Add("root:1000000:65536\n")
	f.Add("# c\n\nx:1:2:3\n")
	f.Add("alice:4294967295:1\n")
	f.Fuzz(func(t *testing.T, data string) {
		present, start, err := planSubIDs([]byte(data), []string{"builder"})
		if err != nil || present {
			return
		}
		if start < SubIDMinStart {
			t.Fatalf("start = %d, want >= %d", start, SubIDMinStart)
		}
		for _, line := range strings.Split(data, "\n") {
			fields := strings.Split(strings.TrimSpace(line), ":")
			if len(fields) != 3 || strings.HasPrefix(fields[0], "#") {
				continue
			}
			first, err1 := strconv.ParseUint(fields[1], 10, 32)
			count, err2 := strconv.ParseUint(fields[2], 10, 32)
			if err1 != nil || err2 != nil {
				continue
			}
			if first < start+SubIDCount && start < first+count {
				t.Fatalf("new range %d+%d overlaps %q", start, SubIDCount, line)
			}
		}
	})
}

func ptr(s string) *string { return &s }
