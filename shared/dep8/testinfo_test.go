package dep8

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// realTestinfo is what autopkgtest 5.28 writes with the unshare backend.
const realTestinfo = `{
  "virt_server": "autopkgtest-virt-unshare --release unstable",
  "kernel_version": "Linux version 6.12.38+deb13-amd64 (debian-kernel@lists.debian.org) (x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0, GNU ld (GNU Binutils for Debian) 2.44) #1 SMP PREEMPT_DYNAMIC Debian 6.12.38-1 (2025-07-16)",
  "test_kernel_versions": [
    "Linux version 6.12.38+deb13-amd64"
  ],
  "custom_environment": [
    "DEB_BUILD_OPTIONS=parallel=4"
  ],
  "nproc": "4",
  "cpu_model": "AMD EPYC 7B13",
  "cpu_flags": "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov"
}
`

func TestReadTestinfo(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Testinfo
	}{
		{
			name: "autopkgtest 5.28",
			in:   realTestinfo,
			want: Testinfo{
				VirtServer:    "autopkgtest-virt-unshare --release unstable",
				KernelVersion: "Linux version 6.12.38+deb13-amd64 (debian-kernel@lists.debian.org) (x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0, GNU ld (GNU Binutils for Debian) 2.44) #1 SMP PREEMPT_DYNAMIC Debian 6.12.38-1 (2025-07-16)",
				NProc:         "4",
				CPUModel:      "AMD EPYC 7B13",
				CPUFlags:      "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov",
			},
		},
		{
			name: "only virt server",
			in:   `{"virt_server": "autopkgtest-virt-null"}`,
			want: Testinfo{VirtServer: "autopkgtest-virt-null"},
		},
		{
			name: "nproc as a number",
			in:   `{"virt_server": "x", "nproc": 16}`,
			want: Testinfo{VirtServer: "x", NProc: "16"},
		},
		{
			name: "null fields",
			in:   `{"virt_server": null, "cpu_model": null}`,
			want: Testinfo{},
		},
		{
			name: "empty object",
			in:   `{}`,
			want: Testinfo{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadTestinfo(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ReadTestinfo(%q) error = %v, want nil", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadTestinfo(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestReadTestinfoErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"array", `["virt_server"]`},
		{"not JSON", "virt_server: null"},
		{"truncated", `{"virt_server": "x"`},
		{"trailing data", `{"virt_server": "x"} {}`},
		{"object value", `{"nproc": {"n": 4}}`},
		{"list value", `{"cpu_flags": ["fpu"]}`},
		{"bool value", `{"cpu_model": true}`},
		{"too large", `{"virt_server": "` + strings.Repeat("x", MaxTestinfoSize) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadTestinfo(strings.NewReader(tt.in))
			if !errors.Is(err, ErrBadTestinfo) {
				t.Errorf("ReadTestinfo(%.40q) error = %v, want %v", tt.in, err, ErrBadTestinfo)
			}
		})
	}
}

func FuzzReadTestinfo(f *testing.F) {
	for _, s := range []string{
		realTestinfo,
		`{"virt_server": "autopkgtest-virt-null"}`,
		`{"nproc": 16}`,
		`{"nproc": -1e400}`,
		`{"cpu_model": "\ud800"}`,
		`{} {}`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ti, err := ReadTestinfo(strings.NewReader(string(data)))
		if err != nil {
			if !errors.Is(err, ErrBadTestinfo) {
				t.Fatalf("ReadTestinfo() error = %v, want it to wrap %v", err, ErrBadTestinfo)
			}
			return
		}
		for _, s := range []string{ti.VirtServer, ti.KernelVersion, ti.NProc, ti.CPUModel, ti.CPUFlags} {
			if !utf8.ValidString(s) {
				t.Errorf("ReadTestinfo() field %q, want UTF-8", s)
			}
		}
	})
}
