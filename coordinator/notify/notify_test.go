package notify

import (
	"testing"

	"github.com/sparegrid/sparegrid/coordinator/verdict"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

func TestVerdictChange(t *testing.T) {
	tests := []struct {
		name       string
		prev, next verdict.Status
		want       Kind
		wantOK     bool
	}{
		{"new regression after a pass", verdict.Pass, verdict.Regression, Regression, true},
		{"first verdict is a regression", "", verdict.Regression, Regression, true},
		{"regression after running", verdict.Running, verdict.Regression, Regression, true},
		{"regression after pending", verdict.Pending, verdict.Regression, Regression, true},
		{"regression after neutral", verdict.Neutral, verdict.Regression, Regression, true},
		{"regression after alwaysfail", verdict.AlwaysFail, verdict.Regression, Regression, true},
		{"still a regression", verdict.Regression, verdict.Regression, "", false},
		{"regression fixed", verdict.Regression, verdict.Pass, Fixed, true},
		{"alwaysfail fixed", verdict.AlwaysFail, verdict.Pass, Fixed, true},
		{"still passing", verdict.Pass, verdict.Pass, "", false},
		{"first verdict is a pass", "", verdict.Pass, "", false},
		{"pass after running", verdict.Running, verdict.Pass, "", false},
		{"alwaysfail is no news", verdict.Pass, verdict.AlwaysFail, "", false},
		{"first verdict alwaysfail", "", verdict.AlwaysFail, "", false},
		{"regression becomes alwaysfail", verdict.Regression, verdict.AlwaysFail, "", false},
		{"neutral", verdict.Pass, verdict.Neutral, "", false},
		{"rerun of a regression", verdict.Regression, verdict.Running, "", false},
		{"pending is the grid's trouble", verdict.Pass, verdict.Pending, "", false},
		{"pending after a regression", verdict.Regression, verdict.Pending, "", false},
		{"unknown status", verdict.Pass, "BOGUS", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := VerdictChange(tt.prev, tt.next)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("VerdictChange(%q, %q) = %q, %v, want %q, %v", tt.prev, tt.next, got, ok, tt.want, tt.wantOK)
			}
			if ok && got.Audience() != Maintainer {
				t.Errorf("%q.Audience() = %v, want Maintainer", got, got.Audience())
			}
		})
	}
}

func TestJobEnded(t *testing.T) {
	tests := []struct {
		v      dep8.Verdict
		want   Kind
		wantOK bool
	}{
		{dep8.VerdictError, JobError, true},
		{dep8.VerdictTmpfail, "", false},
		{dep8.VerdictPass, "", false},
		{dep8.VerdictFail, "", false},
		{dep8.VerdictNeutral, "", false},
		{dep8.VerdictCancelled, "", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.v), func(t *testing.T) {
			got, ok := JobEnded(tt.v)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("JobEnded(%q) = %q, %v, want %q, %v", tt.v, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestAudience(t *testing.T) {
	tests := []struct {
		k    Kind
		want Audience
	}{
		{Regression, Maintainer},
		{Fixed, Maintainer},
		{JobError, Admins},
		{AgentPaused, Admins},
		{CheckFailed, Admins},
	}
	for _, tt := range tests {
		if got := tt.k.Audience(); got != tt.want {
			t.Errorf("%q.Audience() = %v, want %v", tt.k, got, tt.want)
		}
	}
}
