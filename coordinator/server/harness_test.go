package server

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/intake"
)

func TestHarnessPin(t *testing.T) {
	tests := []struct {
		name       string
		env        *string
		configured string
		want       intake.Pin
		err        error
	}{
		{name: "neither", want: intake.Pin{}},
		{name: "configuration", configured: "autopkgtest=5.28", want: intake.Pin{"autopkgtest": "5.28"}},
		{name: "environment wins", env: ptr("backend=overlay;image=sha256:ab"), configured: "autopkgtest=5.28",
			want: intake.Pin{"backend": "overlay", "image": "sha256:ab"}},
		{name: "empty environment pins nothing", env: ptr(""), configured: "autopkgtest=5.28", want: intake.Pin{}},
		{name: "bad environment", env: ptr("kernel=6.1"), err: intake.ErrBadPin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(HarnessRevEnv, "")
			if tt.env != nil {
				t.Setenv(HarnessRevEnv, *tt.env)
			} else if err := os.Unsetenv(HarnessRevEnv); err != nil {
				t.Fatal(err)
			}
			got, err := harnessPin(tt.configured)
			if !errors.Is(err, tt.err) {
				t.Fatalf("harnessPin(%q) error = %v, want %v", tt.configured, err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); err == nil && diff != "" {
				t.Errorf("harnessPin(%q) mismatch (-want +got):\n%s", tt.configured, diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
