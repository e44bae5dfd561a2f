package intake

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

func TestParsePin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Pin
		err  error
	}{
		{name: "empty", in: "", want: Pin{}},
		{name: "blank", in: " \t", want: Pin{}},
		{name: "one field", in: "autopkgtest=5.28", want: Pin{"autopkgtest": "5.28"}},
		{name: "some fields", in: "agent=1.4.0;autopkgtest=5.28", want: Pin{"agent": "1.4.0", "autopkgtest": "5.28"}},
		{
			name: "a full revision",
			in:   dep8.Harness{AgentVersion: "1.4.0", AutopkgtestVersion: "5.28", Backend: "overlay", ImageDigest: "sha256:ab"}.Rev(),
			want: Pin{"agent": "1.4.0", "autopkgtest": "5.28", "backend": "overlay", "image": "sha256:ab"},
		},
		{name: "any order", in: "image=sha256:ab;backend=qemu", want: Pin{"backend": "qemu", "image": "sha256:ab"}},
		{name: "spaces around fields", in: " backend=overlay ; agent=2 ", want: Pin{"backend": "overlay", "agent": "2"}},
		{name: "value with =", in: "image=sha256=ab", want: Pin{"image": "sha256=ab"}},
		{name: "unknown field", in: "agent=1;kernel=6.12", err: ErrBadPin},
		{name: "field names are case sensitive", in: "Agent=1", err: ErrBadPin},
		{name: "missing =", in: "autopkgtest", err: ErrBadPin},
		{name: "empty value", in: "autopkgtest=", err: ErrBadPin},
		{name: "empty key", in: "=5.28", err: ErrBadPin},
		{name: "duplicate", in: "agent=1;agent=2", err: ErrBadPin},
		{name: "duplicate with the same value", in: "agent=1;agent=1", err: ErrBadPin},
		{name: "empty field", in: "agent=1;;backend=overlay", err: ErrBadPin},
		{name: "trailing separator", in: "agent=1;", err: ErrBadPin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePin(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("ParsePin(%q) = %v, want %v", tt.in, err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePin(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestPinString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pin  Pin
		want string
	}{
		{name: "empty", pin: Pin{}, want: ""},
		{name: "nil", pin: nil, want: ""},
		{name: "one field", pin: Pin{"backend": "overlay"}, want: "backend=overlay"},
		{name: "Rev order", pin: Pin{"image": "sha256:ab", "agent": "1.4.0", "backend": "qemu"}, want: "agent=1.4.0;backend=qemu;image=sha256:ab"},
		{
			name: "full pin writes Rev",
			pin:  PinOf(dep8.Harness{AgentVersion: "1", AutopkgtestVersion: "5.28", Backend: "overlay", ImageDigest: "sha256:ab"}),
			want: dep8.Harness{AgentVersion: "1", AutopkgtestVersion: "5.28", Backend: "overlay", ImageDigest: "sha256:ab"}.Rev(),
		},
		{name: "unknown keys last, sorted", pin: Pin{"zz": "1", "aa": "2", "agent": "3"}, want: "agent=3;aa=2;zz=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pin.String(); got != tt.want {
				t.Errorf("%#v.String() = %q, want %q", tt.pin, got, tt.want)
			}
		})
	}
}

func TestPinRoundTrip(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"",
		"agent=1.4.0",
		"backend=overlay;agent=1.4.0",
		"agent=1;autopkgtest=5.28;backend=overlay;image=sha256:ab",
	} {
		p, err := ParsePin(in)
		if err != nil {
			t.Fatalf("ParsePin(%q) = %v", in, err)
		}
		back, err := ParsePin(p.String())
		if err != nil {
			t.Fatalf("ParsePin(%q) = %v, want the pin parsed from %q", p.String(), err, in)
		}
		if diff := cmp.Diff(p, back); diff != "" {
			t.Errorf("ParsePin(ParsePin(%q).String()) mismatch (-want +got):\n%s", in, diff)
		}
	}
}

func TestPinMatch(t *testing.T) {
	t.Parallel()
	h := dep8.Harness{AgentVersion: "1.4.0", AutopkgtestVersion: "5.28", Backend: "overlay", ImageDigest: "sha256:ab"}
	tests := []struct {
		name string
		pin  Pin
		h    dep8.Harness
		want bool
	}{
		{name: "empty pin matches anything", pin: Pin{}, h: h, want: true},
		{name: "empty pin matches an empty harness", pin: Pin{}, h: dep8.Harness{}, want: true},
		{name: "one field", pin: Pin{"backend": "overlay"}, h: h, want: true},
		{name: "one field differs", pin: Pin{"backend": "qemu"}, h: h, want: false},
		{name: "two fields", pin: Pin{"agent": "1.4.0", "autopkgtest": "5.28"}, h: h, want: true},
		{name: "one of two differs", pin: Pin{"agent": "1.4.0", "autopkgtest": "5.29"}, h: h, want: false},
		{name: "full", pin: PinOf(h), h: h, want: true},
		{name: "full, image differs", pin: PinOf(h), h: dep8.Harness{AgentVersion: "1.4.0", AutopkgtestVersion: "5.28", Backend: "overlay", ImageDigest: "sha256:cd"}, want: false},
		{name: "field the harness lacks", pin: Pin{"image": "sha256:ab"}, h: dep8.Harness{AgentVersion: "1.4.0"}, want: false},
		{name: "unknown key", pin: Pin{"kernel": "6.12"}, h: h, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pin.Match(tt.h); got != tt.want {
				t.Errorf("%v.Match(%s) = %v, want %v", tt.pin, tt.h.Rev(), got, tt.want)
			}
		})
	}
}

func TestPinOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    dep8.Harness
		want Pin
	}{
		{
			name: "full",
			h:    dep8.Harness{AgentVersion: "1.4.0", AutopkgtestVersion: "5.28", Backend: "overlay", ImageDigest: "sha256:ab"},
			want: Pin{"agent": "1.4.0", "autopkgtest": "5.28", "backend": "overlay", "image": "sha256:ab"},
		},
		{name: "empty", h: dep8.Harness{}, want: Pin{"agent": "", "autopkgtest": "", "backend": "", "image": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PinOf(tt.h)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("PinOf(%s) mismatch (-want +got):\n%s", tt.h.Rev(), diff)
			}
			if !got.Match(tt.h) {
				t.Errorf("PinOf(%s).Match(itself) = false, want true", tt.h.Rev())
			}
		})
	}
}

func FuzzParsePin(f *testing.F) {
	for _, s := range []string{
		"",
		"agent=1.4.0;autopkgtest=5.28",
		"agent=1;autopkgtest=5.28;backend=overlay;image=sha256:ab",
		" backend = overlay ",
		"image=a=b",
		"agent=1;agent=2",
		"kernel=6",
		";",
		"agent=\u00a0x\u00a0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePin(s)
		if err != nil {
			if !errors.Is(err, ErrBadPin) {
				t.Fatalf("ParsePin(%q) = %v, want an ErrBadPin", s, err)
			}
			return
		}
		back, err := ParsePin(p.String())
		if err != nil {
			t.Fatalf("ParsePin(%q) = %v, want the pin parsed from %q", p.String(), err, s)
		}
		if diff := cmp.Diff(p, back); diff != "" {
			t.Fatalf("ParsePin(ParsePin(%q).String()) mismatch (-want +got):\n%s", s, diff)
		}
	})
}
