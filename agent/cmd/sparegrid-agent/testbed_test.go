package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestKernelHasOverlay(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    bool
	}{
		{"overlay listed", "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n", true},
		{"no overlay", "nodev\tsysfs\n\text4\n", false},
		{"overlay as a prefix only", "nodev\toverlayfs-ish\n", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "filesystems")
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := kernelHasOverlay(p); got != tt.want {
				t.Errorf("kernelHasOverlay(%q) = %v, want %v", tt.content, got, tt.want)
			}
		})
	}
	if kernelHasOverlay(filepath.Join(t.TempDir(), "missing")) {
		t.Errorf("kernelHasOverlay(missing file) = true, want false")
	}
}
