package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestServeRefusesBadSettings(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no data", []string{"serve"}, "--data is required"},
		{"zero attempts", []string{"serve", "--data", "x", "--max-attempts", "0"}, "at least 1 attempt"},
		{"not a data dir", []string{"serve", "--data", "/nonexistent/sparegrid"}, "not a coordinator data directory"},
		{"missing config", []string{"serve", "--data", "x", "--config", "/nonexistent/coordinator.toml"}, "config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SPAREGRID_DATA", "")
			t.Setenv("SPAREGRID_CONFIG", "")
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("run(%q) = %d, stderr %q; want a failure saying %q", tt.args, code, stderr.String(), tt.want)
			}
		})
	}
}
