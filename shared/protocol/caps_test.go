package protocol

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

func TestCapabilitiesAgentCaps(t *testing.T) {
	overlay, err := dep8.BackendDefaults("overlay")
	if err != nil {
		t.Fatal(err)
	}
	overlay.ID, overlay.Arch, overlay.Labels = 7, "amd64", []string{"big", "gpu"}
	tests := []struct {
		name string
		caps Capabilities
		want dep8.AgentCaps
	}{
		{"backend defaults", Capabilities{Arch: "amd64", Backend: "overlay", Labels: []string{"gpu", "big"}}, overlay},
		{"unknown backend gets nothing", Capabilities{Arch: "arm64", Backend: "mystery"},
			dep8.AgentCaps{ID: 7, Arch: "arm64", Backend: "mystery", Isolation: dep8.IsolationNone}},
		{"claimed features", Capabilities{Arch: "amd64", Backend: "qemu", Isolation: "machine", Root: true, Reboot: true, MemoryMB: 2048},
			dep8.AgentCaps{ID: 7, Arch: "amd64", Backend: "qemu", Isolation: dep8.IsolationMachine, Root: true, Reboot: true, MemoryMB: 2048}},
		{"bad isolation is none", Capabilities{Arch: "amd64", Backend: "qemu", Isolation: "total", Internet: true},
			dep8.AgentCaps{ID: 7, Arch: "amd64", Backend: "qemu", Isolation: dep8.IsolationNone, Internet: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.caps.AgentCaps(7)); diff != "" {
				t.Errorf("AgentCaps(7) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidAptSource(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"deb http://deb.debian.org/debian bookworm main", true},
		{"deb [trusted=yes] http://127.0.0.1:8000/ ./", true},
		{"deb-src http://deb.debian.org/debian bookworm main contrib", true},
		{"deb http://x", false},
		{"rpm http://x a b", false},
		{"deb http://x bookworm main\ndeb http://evil bookworm main", false},
		{"deb http://x bookworm mäin", false},
		{"deb http://x bookworm " + strings.Repeat("a", MaxAptSource), false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidAptSource(tt.line); got != tt.want {
			t.Errorf("ValidAptSource(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}
