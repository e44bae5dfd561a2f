package archive

import (
	"errors"
	"os/exec"
	"testing"
)

// Cases from dpkg's scripts/t/Dpkg_Version.t and lib/dpkg/t/t-version.c,
// and the ordering examples of Debian Policy 5.6.12.
func versionCases() []struct {
	a, b string
	want int
} {
	return []struct {
		a, b string
		want int
	}{
		{"1.0-1", "2.0-2", -1},
		{"2.2~rc-4", "2.2-1", -1},
		{"2.2-1", "2.2~rc-4", 1},
		{"1.0000-1", "1.0-1", 0},
		{"1", "0:1", 0},
		{"0", "0:0-0", 0},
		{"2:2.5", "1:7.5", 1},
		{"1:0foo", "0foo", 1},
		{"0:0foo", "0foo", 0},
		{"0foo", "0foo", 0},
		{"0foo-", "0foo", 0},
		{"0foo-", "0foo-0", 0},
		{"0foo", "0fo", 1},
		{"0foo-", "0foo+", -1},
		{"0foo~1", "0foo", -1},
		{"0foo~foo+Bar", "0foo~foo+bar", -1},
		{"0foo~~", "0foo~", -1},
		{"1~", "1", -1},
		{"12345+that-really-is-some-ver-0", "12345+that-really-is-some-ver-10", -1},
		{"0foo-0", "0foo-01", -1},
		{"0foo.bar", "0foobar", 1},
		{"0foo.bar", "0foo1bar", 1},
		{"0foo.bar", "0foo0bar", 1},
		{"0foo1bar-1", "0foobar-1", -1},
		{"0foo2.0", "0foo2", 1},
		{"0foo2.0.0", "0foo2.10.0", -1},
		{"0foo2.0", "0foo2.0.0", -1},
		{"0foo2.0", "0foo2.10", -1},
		{"0foo2.1", "0foo2.10", -1},
		{"1.09", "1.9", 0},
		{"1.0.8+nmu1", "1.0.8", 1},
		{"3.11", "3.10+nmu1", 1},
		{"0.9j-20080306-4", "0.9i-20070324-2", 1},
		{"1.2.0~b7-1", "1.2.0~b6-1", 1},
		{"1.011-1", "1.06-2", 1},
		{"0.0.9+dfsg1-1", "0.0.8+dfsg1-3", 1},
		{"4.6.99+svn6582-1", "4.6.99+svn6496-1", 1},
		{"53", "52", 1},
		{"0.9.9~pre122-1", "0.9.9~pre111-1", 1},
		{"2:2.3.2-2+lenny2", "2:2.3.2-2", 1},
		{"1:3.8.1-1", "3.8.GA-1", 1},
		{"1.0.1+gpl-1", "1.0.1-2", 1},
		{"1a", "1000a", -1},
		{"0:0-00", "0:00-0", 0},
		{"1:2-3", "1:2-3", 0},
		{"0:a-0", "0:b-0", -1},
		{"0:0-a", "0:0-b", -1},
		{"1:0-0", "0:0-0", 1},
		// Debian Policy 5.6.12: "~~" < "~~a" < "~" < "" < "a".
		{"1~~", "1~~a", -1},
		{"1~~a", "1~", -1},
		{"1~", "1", -1},
		{"1", "1a", -1},
		// Real archive versions.
		{"1:1.2.13.dfsg-1", "1:1.3.dfsg+really1.3.1-1", -1},
		{"2.36-8", "2.36-9+deb12u14", -1},
		{"1.10.0-3", "1.11.1-1+deb13u2", -1},
		{"12.4+deb12u15", "12.4+deb12u9", 1},
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tt := range versionCases() {
		t.Run(tt.a+" vs "+tt.b, func(t *testing.T) {
			if got := CompareVersions(tt.a, tt.b); got != tt.want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := CompareVersions(tt.b, tt.a); got != -tt.want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
			}
		})
	}
}

func TestCompareVersionsAgainstDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed")
	}
	sample := []string{"1.0", "1.0-0", "1.0-1", "1.0~rc1-1", "1.0+b1", "1.0a", "1.0.1", "1:0.9", "2.2~rc-4",
		"0foo~foo+Bar", "0foo~foo+bar", "1~~", "1~~a", "1~", "1a", "1.09", "1.9", "3.10+nmu1", "3.11",
		"1:1.2.13.dfsg-1", "1:1.3.dfsg+really1.3.1-1", "2.36-9+deb12u14", "12.4+deb12u15", "12.4+deb12u9"}
	for i, a := range sample {
		for _, b := range sample[i:] {
			ours := CompareVersions(a, b)
			for op, want := range map[string]bool{"lt": ours < 0, "gt": ours > 0} {
				err := exec.Command("dpkg", "--compare-versions", "--", a, op, b).Run()
				var exit *exec.ExitError
				if err != nil && !errors.As(err, &exit) {
					t.Fatal(err)
				}
				if got := err == nil; got != want {
					t.Errorf("dpkg --compare-versions %s %s %s = %v, but CompareVersions = %d", a, op, b, got, ours)
				}
			}
		}
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    Version
		wantErr bool
	}{
		{in: "0", want: Version{0, "0", ""}},
		{in: "0:0", want: Version{0, "0", ""}},
		{in: "0:0-", want: Version{0, "0", ""}},
		{in: "0:0-0", want: Version{0, "0", "0"}},
		{in: "0:0.0-0.0", want: Version{0, "0.0", "0.0"}},
		{in: "1:0", want: Version{1, "0", ""}},
		{in: "5:1", want: Version{5, "1", ""}},
		{in: "0:0-0-0", want: Version{0, "0-0", "0"}},
		{in: "0--", want: Version{0, "0-", ""}},
		{in: "0:0-0-0-0", want: Version{0, "0-0-0", "0"}},
		{in: "0:0:0-0", want: Version{0, "0:0", "0"}},
		{in: "0:0:0:0-0", want: Version{0, "0:0:0", "0"}},
		{in: "0:0:0-0-0", want: Version{0, "0:0-0", "0"}},
		{in: "0:0-0:0-0", want: Version{0, "0-0:0", "0"}},
		{in: "0:09azAZ.-+~:-0", want: Version{0, "09azAZ.-+~:", "0"}},
		{in: "0:0-azAZ09.+~", want: Version{0, "0", "azAZ09.+~"}},
		{in: "  \t0:0-1", want: Version{0, "0", "1"}},
		{in: "0:0-1\t  ", want: Version{0, "0", "1"}},
		{in: "1:1.3.dfsg+really1.3.1-1", want: Version{1, "1.3.dfsg+really1.3.1", "1"}},
		{in: "", wantErr: true},
		{in: "  ", wantErr: true},
		{in: "0:", wantErr: true},
		{in: "0:0 0-1", wantErr: true},
		{in: "-1:0-1", wantErr: true},
		{in: "999999999999999999999999:0-1", wantErr: true},
		{in: "a:0-0", wantErr: true},
		{in: "A:0-0", wantErr: true},
		{in: "-0", wantErr: true},
		{in: "0:-0", wantErr: true},
		{in: "0:abc3-0", wantErr: true},
		{in: "0:0-0:0", wantErr: true},
		{in: "0:0!-0", wantErr: true},
		{in: "0:0_-0", wantErr: true},
		{in: "0:0-0_", wantErr: true},
		{in: "0:0-0/", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseVersion(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadVersion) {
					t.Errorf("ParseVersion(%q) = %v, %v, want ErrBadVersion", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseVersion(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
			}
			if back, err := ParseVersion(got.String()); err != nil || back != got {
				t.Errorf("ParseVersion(%q.String() = %q) = %+v, %v, want %+v", tt.in, got.String(), back, err, got)
			}
		})
	}
}

func FuzzCompareVersions(f *testing.F) {
	for _, c := range versionCases() {
		f.Add(c.a, c.b)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := CompareVersions(a, b), CompareVersions(b, a)
		if ab != -ba {
			t.Errorf("CompareVersions(%q, %q) = %d but reversed = %d", a, b, ab, ba)
		}
		if CompareVersions(a, a) != 0 {
			t.Errorf("CompareVersions(%q, itself) != 0", a)
		}
		if v, err := ParseVersion(a); err == nil {
			if got := CompareVersions(v.String(), a); got != 0 {
				t.Errorf("CompareVersions(String(ParseVersion(%q))=%q, %q) = %d, want 0", a, v.String(), a, got)
			}
		}
	})
}
