package store

import (
	"errors"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"
)

var accountNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]{1,31}$`)

func TestValidateAccountName(t *testing.T) {
	tests := []struct {
		name  string
		input string
		ok    bool
	}{
		{"simple", "alice", true},
		{"digits", "42", true},
		{"punctuation", "a.b+c-d", true},
		{"leading digit", "0day", true},
		{"shortest", "ab", true},
		{"longest", strings.Repeat("a", 32), true},
		{"empty", "", false},
		{"one character", "a", false},
		{"too long", strings.Repeat("a", 33), false},
		{"upper case", "Alice", false},
		{"leading dash", "-alice", false},
		{"leading dot", ".alice", false},
		{"tilde", "~alice", false},
		{"space", "al ice", false},
		{"underscore", "al_ice", false},
		{"non-ascii", "alicé", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateAccountName(tt.input)
			if got := err == nil; got != tt.ok {
				t.Errorf("ValidateAccountName(%q) = %v, want ok %v", tt.input, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("ValidateAccountName(%q) = %v, want ErrInvalid", tt.input, err)
			}
		})
	}
}

func FuzzValidateAccountName(f *testing.F) {
	for _, s := range []string{"alice", "a", "-a", "a.b+c-d", "Alice", strings.Repeat("z", 33), "\xff\xfe", "ab\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ValidateAccountName(s) == nil
		if want := accountNameRE.MatchString(s); got != want {
			t.Errorf("ValidateAccountName(%q) ok = %v, want %v", s, got, want)
		}
	})
}

func TestValidSHA256(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  bool
	}{
		{"sum", strings.Repeat("0123456789abcdef", 4), true},
		{"upper case", strings.Repeat("0123456789ABCDEF", 4), false},
		{"short", strings.Repeat("a", 63), false},
		{"long", strings.Repeat("a", 65), false},
		{"not hex", strings.Repeat("g", 64), false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidSHA256(tt.input); got != tt.want {
				t.Errorf("ValidSHA256(%q) = %v, want %v", tt.input, got, tt.want)
			}
		})
	}
}

func TestRoleValid(t *testing.T) {
	tests := []struct {
		role Role
		want bool
	}{
		{RoleVolunteer, true},
		{RoleMaintainer, true},
		{RoleAdmin, true},
		{"", false},
		{"root", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.role), func(t *testing.T) {
			if got := tt.role.Valid(); got != tt.want {
				t.Errorf("Role(%q).Valid() = %v, want %v", tt.role, got, tt.want)
			}
		})
	}
}

func TestValidateBlockPattern(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		ok      bool
	}{
		{"name", "hello", true},
		{"star", "linux-*", true},
		{"question mark", "gcc-1?", true},
		{"class", "python3.1[0-3]", true},
		{"negated class", "lib[^x]*", true},
		{"escape", "g\\+\\+", true},
		{"only star", "*", true},
		{"longest", strings.Repeat("a", 100), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", 101), false},
		{"unclosed class", "linux-[", false},
		{"trailing escape", "linux\\", false},
		{"bad range", "a[z-]", false},
		{"upper case", "Linux", false},
		{"slash", "a/b", false},
		{"space", "a b", false},
		{"control", "a\x1b", false},
		{"non-ascii", "pâte", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateBlockPattern(tt.pattern)
			if got := err == nil; got != tt.ok {
				t.Errorf("ValidateBlockPattern(%q) = %v, want ok %v", tt.pattern, err, tt.ok)
			}
			var ie *InvalidError
			if err != nil && (!errors.Is(err, ErrInvalid) || !errors.As(err, &ie) || ie.Reason == "") {
				t.Errorf("ValidateBlockPattern(%q) = %#v, want an *InvalidError matching ErrInvalid", tt.pattern, err)
			}
		})
	}
}

func FuzzValidateBlockPattern(f *testing.F) {
	for _, s := range []string{"hello", "linux-*", "[a-", "a[^b]c", "\\", "x\\*", "*?*", "[]]", "[^]", "Ab"} {
		f.Add(s, "linux-image")
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if ValidateBlockPattern(pattern) != nil {
			return
		}
		// An accepted glob never fails to match, whatever the name.
		if _, err := path.Match(pattern, name); err != nil {
			t.Errorf("ValidateBlockPattern(%q) accepted a pattern path.Match(_, %q) refuses: %v", pattern, name, err)
		}
		if strings.ContainsAny(pattern, "/ \t\n") {
			t.Errorf("ValidateBlockPattern(%q) accepted a slash or a space", pattern)
		}
	})
}

func TestBlockRuleValidate(t *testing.T) {
	good := BlockRule{Package: "hello", Reason: "flaky on arm64 builders", CreatedBy: "admin"}
	tests := []struct {
		name   string
		change func(*BlockRule)
		ok     bool
	}{
		{"minimal", func(*BlockRule) {}, true},
		{"full", func(r *BlockRule) {
			r.Version, r.Release, r.Arch, r.Test, r.AgentID = "1:2.10-3~bpo12+1", "trixie", "arm64", "command1", 4
		}, true},
		{"label", func(r *BlockRule) { r.Label = "arch:arm64" }, true},
		{"unicode reason", func(r *BlockRule) { r.Reason = "stürzt ab – siehe #123" }, true},
		{"longest reason", func(r *BlockRule) { r.Reason = strings.Repeat("x", MaxBlockReason) }, true},
		{"bad glob", func(r *BlockRule) { r.Package = "[" }, false},
		{"bad version", func(r *BlockRule) { r.Version = "v1" }, false},
		{"bad release", func(r *BlockRule) { r.Release = "Trixie" }, false},
		{"bad arch", func(r *BlockRule) { r.Arch = "-amd64" }, false},
		{"test with slash", func(r *BlockRule) { r.Test = "a/b" }, false},
		{"test with comma", func(r *BlockRule) { r.Test = "a,b" }, false},
		{"agent and label", func(r *BlockRule) { r.AgentID, r.Label = 1, "x1" }, false},
		{"negative agent", func(r *BlockRule) { r.AgentID = -3 }, false},
		{"label upper case", func(r *BlockRule) { r.Label = "Fast" }, false},
		{"no reason", func(r *BlockRule) { r.Reason = "" }, false},
		{"blank reason", func(r *BlockRule) { r.Reason = " \t" }, false},
		{"reason too long", func(r *BlockRule) { r.Reason = strings.Repeat("x", MaxBlockReason+1) }, false},
		{"reason with escape", func(r *BlockRule) { r.Reason = "a\x1b[2Jb" }, false},
		{"reason not utf-8", func(r *BlockRule) { r.Reason = "a\xffb" }, false},
		{"no creator", func(r *BlockRule) { r.CreatedBy = "" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.change(&r)
			err := r.Validate()
			if got := err == nil; got != tt.ok {
				t.Errorf("%+v.Validate() = %v, want ok %v", r, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v.Validate() = %v, want ErrInvalid", r, err)
			}
		})
	}
}

func TestBlockRuleActive(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		expires *time.Time
		want    bool
	}{
		{"no expiry", nil, true},
		{"later", ptr(now.Add(time.Second)), true},
		{"now", ptr(now), false},
		{"earlier", ptr(now.Add(-time.Second)), false},
	}
	for _, tt := range tests {
		if got := (BlockRule{ExpiresAt: tt.expires}).Active(now); got != tt.want {
			t.Errorf("%s: Active(%v) = %v, want %v", tt.name, now, got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
