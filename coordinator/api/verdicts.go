package api

import (
	"context"
	"net/http"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/intake"
	"github.com/sparegrid/sparegrid/coordinator/verdict"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// verdicts answers with the verdicts of a package, of one version when
// the query names it.
func (a *API) verdicts(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		pkg, version := q.Get("package"), q.Get("version")
		switch {
		case pkg == "":
			return badRequest("query parameter package is required")
		case !dep8.ValidSource(pkg):
			return badRequest("package %q is not a Debian source package name", pkg)
		case version != "" && !dep8.ValidVersion(version):
			return badRequest("version %q is not a Debian version", version)
		}
		out, err := a.packageVerdicts(r.Context(), pkg)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, verdictList(out, pkg, version))
		return nil
	})(w, r)
}

// packageVerdicts judges the runs and active jobs of pkg the store holds,
// routing queued jobs over the agents as they are now.
func (a *API) packageVerdicts(ctx context.Context, pkg string) (verdict.Output, error) {
	rt, err := a.cfg.Intake.Router(ctx)
	if err != nil {
		return verdict.Output{}, err
	}
	return intake.Judge(ctx, a.cfg.Store, rt, pkg)
}

func verdictList(out verdict.Output, pkg, version string) apiv1.VerdictList {
	l := apiv1.VerdictList{Package: pkg, Verdicts: []apiv1.Verdict{}, Retries: []apiv1.VerdictRetry{}}
	for _, v := range verdict.ForPackage(out, pkg, version) {
		av := apiv1.Verdict{
			Package: v.Package, Version: v.Version, Triggers: nonNil(v.Triggers), Release: v.Release, Arch: v.Arch,
			OnlyTests: nonNil(v.Tests), Status: string(v.Status), Reason: v.Reason, Jobs: nonNil(v.Jobs), HarnessRevisions: nonNil(v.HarnessRevs),
			FailedOn: nonNil(v.FailedOn), Unconfirmed: v.Unconfirmed, Flaky: v.Flaky,
		}
		if b := v.Baseline; b != nil {
			av.Baseline = &apiv1.VerdictBaseline{JobID: b.JobID, Result: b.Result, Version: b.Version, Finished: b.Finished}
		}
		l.Verdicts = append(l.Verdicts, av)
	}
	for _, rr := range out.Retries {
		if rr.Package != pkg || (version != "" && rr.Version != version) {
			continue
		}
		l.Retries = append(l.Retries, apiv1.VerdictRetry{
			Package: rr.Package, Version: rr.Version, Triggers: nonNil(rr.Triggers), Release: rr.Release, Arch: rr.Arch,
			OnlyTests: nonNil(rr.Tests), AvoidAgents: nonNil(rr.AvoidAgents), Reason: rr.Reason,
		})
	}
	return l
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// schedule answers with what the selection policy did last.
func (a *API) schedule(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		var s apiv1.Schedule
		if a.cfg.Schedule != nil {
			s = a.cfg.Schedule()
		}
		writeJSON(w, http.StatusOK, s)
		return nil
	})(w, r)
}
