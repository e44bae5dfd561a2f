package dep8

import (
	"errors"
	"testing"
)

func TestVerdictForExit(t *testing.T) {
	tests := []struct {
		name    string
		code    int
		want    Verdict
		wantErr bool
	}{
		{"pass", 0, VerdictPass, false},
		{"pass with skips or flaky failures", 2, VerdictPass, false},
		{"fail", 4, VerdictFail, false},
		{"fail with skips", 6, VerdictFail, false},
		{"no tests ran", 8, VerdictNeutral, false},
		{"erroneous package", 12, VerdictFail, false},
		{"erroneous package with skips", 14, VerdictFail, false},
		{"testbed failure", 16, VerdictTmpfail, false},
		{"runner failure", 20, VerdictTmpfail, false},
		{"python crash", 1, VerdictTmpfail, true},
		{"killed by signal", -1, VerdictTmpfail, true},
		{"impossible combination", 10, VerdictTmpfail, true},
		{"255", 255, VerdictTmpfail, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VerdictForExit(tt.code)
			if got != tt.want {
				t.Errorf("VerdictForExit(%d) = %q, want %q", tt.code, got, tt.want)
			}
			if gotErr := errors.Is(err, ErrUnknownExit); gotErr != tt.wantErr || (err != nil) != tt.wantErr {
				t.Errorf("VerdictForExit(%d) error = %v, want error %v", tt.code, err, tt.wantErr)
			}
		})
	}
}
