package store

import (
	"errors"
	"regexp"
	"strings"
	"testing"
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
