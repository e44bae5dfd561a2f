package api

import (
	"cmp"
	"context"
	"errors"
	"html/template"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/intake"
	"github.com/sparegrid/sparegrid/coordinator/srcpkg"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

// logName is the blob name of autopkgtest's main log.
const logName = "log"

func (a *API) jobView(ctx context.Context, j store.Job) (apiv1.Job, error) {
	v := apiv1.Job{
		ID: j.ID, Package: j.Package, Version: j.Version, Release: j.Release, Arch: j.Arch,
		Triggers: j.Triggers, State: string(j.State), Verdict: j.Verdict, Attempt: j.Attempt,
		Agent: j.AgentID, Stage: j.Stage, Reason: j.Reason, Transport: j.Transport,
		SubmittedBy: j.SubmittedBy, CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt,
		Tests: []dep8.Test{}, Blobs: []apiv1.Blob{},
		Priority: j.Priority, Lane: j.Lane, ReusedFrom: j.ReusedFrom, OnlyTests: nonNil(j.Tests),
		AptSources: nonNil(j.AptSources), AvoidAgents: nonNil(j.AvoidAgents),
	}
	if v.Triggers == nil {
		v.Triggers = []string{}
	}
	if s := j.Source; s != nil {
		v.Source = &apiv1.Source{SHA256: s.SHA256, Size: s.Size, Kind: s.Kind, Entry: s.Entry}
	}
	if j.AgentID != nil {
		ag, err := a.cfg.Store.Agent(ctx, *j.AgentID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return v, err
		}
		v.AgentName, v.Owner = ag.Name, ag.Owner
	}
	resultOf := j.ID
	if j.ReusedFrom != nil {
		resultOf = *j.ReusedFrom
	}
	res, err := a.cfg.Store.LatestResult(ctx, resultOf)
	if errors.Is(err, store.ErrNotFound) {
		return v, nil
	}
	if err != nil {
		return v, err
	}
	v.ExitCode = &res.ExitCode
	if res.Tests != nil {
		v.Tests = res.Tests
	}
	v.Harness = &res.Harness
	for _, b := range res.Blobs {
		v.Blobs = append(v.Blobs, apiv1.Blob{Name: b.Name, SHA256: b.SHA256, Size: b.Size})
		if b.Name == logName {
			v.LogURL = "/api/v1/jobs/" + strconv.FormatInt(j.ID, 10) + "/log"
		}
	}
	if v.Transport == "" {
		v.Transport = res.Transport
	}
	return v, nil
}

func (a *API) validateSubmit(ctx context.Context, req *apiv1.SubmitRequest) error {
	if req.Arch == "" {
		req.Arch = a.cfg.DefaultArch
	}
	switch {
	case !dep8.ValidSource(req.Package):
		return badRequest("package %q is not a Debian source package name", req.Package)
	case !dep8.ValidSuite(req.Release):
		return badRequest("release %q is not a release name such as bookworm", req.Release)
	case !dep8.ValidSuite(req.Arch):
		return badRequest("arch %q is not an architecture name such as amd64", req.Arch)
	case req.Version != "" && !dep8.ValidVersion(req.Version):
		return badRequest("version %q is not a Debian version", req.Version)
	case len(req.Triggers) > 64:
		return badRequest("at most 64 triggers")
	case req.Priority < 0 || req.Priority > store.MaxPriority:
		return badRequest("priority %d: use %d to %d, higher first", req.Priority, store.MinPriority, store.MaxPriority)
	case req.MemoryMB < 0 || req.DiskMB < 0:
		return badRequest("memory and disk are sizes in MiB, not negative")
	case len(req.Labels) > 16:
		return badRequest("at most 16 labels")
	}
	for _, l := range req.Labels {
		if !dep8.ValidLabel(l) {
			return badRequest("label %q: lower-case letters, digits, \".\", \"_\", \":\" and \"-\", at most %d characters", l, dep8.MaxLabelLen)
		}
	}
	for _, t := range req.Triggers {
		if !dep8.ValidTrigger(t) {
			return badRequest("trigger %q: use SOURCE/VERSION, for example glibc/2.36-9", t)
		}
	}
	if s := req.Source; s != nil {
		if s.Kind != protocol.SourceTree && s.Kind != protocol.SourceDSC {
			return badRequest("source kind %q: use tree or dsc", s.Kind)
		}
		clean := path.Clean(strings.TrimSuffix(s.Entry, "/"))
		if s.Entry == "" || strings.HasPrefix(clean, "/") || strings.HasPrefix(clean, "..") || strings.Contains(clean, "/") {
			return badRequest("source entry %q must name a top-level directory or .dsc in the archive", s.Entry)
		}
		if s.Kind == protocol.SourceDSC && !strings.HasSuffix(clean, ".dsc") {
			return badRequest("source entry %q of kind dsc must be a .dsc file", s.Entry)
		}
		b, err := a.cfg.Store.Blob(ctx, s.SHA256)
		if errors.Is(err, store.ErrNotFound) {
			return badRequest("source %s was not uploaded: POST it to /api/v1/sources first", s.SHA256)
		}
		if err != nil {
			return err
		}
		s.Size = b.Size
	}
	return nil
}

func (a *API) submitJob(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.SubmitRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := a.validateSubmit(r.Context(), &req); err != nil {
		return err
	}
	ir := intake.Request{
		Package: req.Package, Version: req.Version, Release: req.Release, Arch: req.Arch, Triggers: req.Triggers,
		Labels: req.Labels, MemoryMB: req.MemoryMB, DiskMB: req.DiskMB,
		Priority: cmp.Or(req.Priority, apiv1.DefaultSubmitPriority), Lane: store.LaneDefault,
		SubmittedBy: caller(r).Name, Forced: req.Force, MaxAttempts: a.cfg.MaxAttempts,
	}
	if s := req.Source; s != nil {
		ir.Source = &store.Source{SHA256: s.SHA256, Size: s.Size, Kind: s.Kind, Entry: s.Entry}
		control, err := a.testsControl(*ir.Source)
		if err != nil {
			return err
		}
		ir.Control = control
	}
	out, err := a.cfg.Intake.Submit(r.Context(), ir)
	if errors.Is(err, intake.ErrBlocked) {
		return errf(http.StatusConflict, "conflict", "%v; submit with force (sparegrid submit --force) to run it anyway", err)
	}
	if err != nil {
		return err
	}
	if out.Blocked != nil {
		a.cfg.Log.Info("job forced past the blocklist", "package", req.Package, "rule", out.Blocked.ID, "by", caller(r).Name)
	}
	a.cfg.Jobs.Notify()
	main := out.Jobs[0]
	a.cfg.Log.Info("job submitted", "job", main.ID, "package", main.Package, "release", main.Release, "arch", main.Arch,
		"by", main.SubmittedBy, "jobs", len(out.Jobs), "reused_from", main.ReusedFrom)
	v, err := a.jobView(r.Context(), main)
	if err != nil {
		return err
	}
	v.Pending = out.Pending[main.ID]
	for _, j := range out.Jobs[1:] {
		v.SplitJobs = append(v.SplitJobs, j.ID)
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (a *API) jobList(ctx context.Context, f store.JobFilter) ([]apiv1.Job, error) {
	jobs, err := a.cfg.Store.ListJobs(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]apiv1.Job, 0, len(jobs))
	for _, j := range jobs {
		v, err := a.jobView(ctx, j)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func filterFrom(r *http.Request) (store.JobFilter, error) {
	q := r.URL.Query()
	f := store.JobFilter{Package: q.Get("package"), State: store.JobState(q.Get("state"))}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 || n > 1000 {
			return f, badRequest("limit %q: use 1 to 1000", l)
		}
		f.Limit = n
	}
	return f, nil
}

func (a *API) listJobs(w http.ResponseWriter, r *http.Request) {
	a.public(a.jobListHandler(nil))(w, r)
}

// results lists a package's finished jobs.
func (a *API) results(w http.ResponseWriter, r *http.Request) {
	a.public(a.jobListHandler(func(f *store.JobFilter) error {
		if f.Package == "" {
			return badRequest("query parameter package is required")
		}
		f.State = store.JobDone
		return nil
	}))(w, r)
}

// jobListHandler answers with the jobs the query selects, after narrow (if
// set) has adjusted or refused the filter.
func (a *API) jobListHandler(narrow func(*store.JobFilter) error) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		f, err := filterFrom(r)
		if err != nil {
			return err
		}
		if narrow != nil {
			if err := narrow(&f); err != nil {
				return err
			}
		}
		jobs, err := a.jobList(r.Context(), f)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, apiv1.JobList{Jobs: jobs})
		return nil
	}
}

func (a *API) getJob(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		j, err := a.cfg.Store.Job(r.Context(), id)
		if err != nil {
			return err
		}
		v, err := a.jobView(r.Context(), j)
		if err != nil {
			return err
		}
		if j.State == store.JobQueued {
			rt, err := a.cfg.Intake.Router(r.Context())
			if err != nil {
				return err
			}
			v.Pending = rt.Unroutable(j.Release, j.Arch, j.Needs, j.AvoidAgents)
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	})(w, r)
}

func (a *API) latest(r *http.Request) (store.Result, error) {
	id, err := pathID(r)
	if err != nil {
		return store.Result{}, err
	}
	// A reused job's results are those of the job it reused.
	if j, err := a.cfg.Store.Job(r.Context(), id); err == nil && j.ReusedFrom != nil {
		id = *j.ReusedFrom
	}
	res, err := a.cfg.Store.LatestResult(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return res, notFound("job %d has no result yet", id)
	}
	return res, err
}

func (a *API) jobLog(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		res, err := a.latest(r)
		if err != nil {
			return err
		}
		for _, b := range res.Blobs {
			if b.Name == logName {
				return a.sendBlob(w, b.SHA256, "text/plain; charset=utf-8")
			}
		}
		return notFound("job %d's result has no log", res.JobID)
	})(w, r)
}

func (a *API) jobEnvelope(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		res, err := a.latest(r)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		_, err = w.Write(res.Envelope)
		return err
	})(w, r)
}

func (a *API) getBlob(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		return a.sendBlob(w, r.PathValue("sha"), "application/octet-stream")
	})(w, r)
}

func (a *API) sendBlob(w http.ResponseWriter, sha, contentType string) error {
	if _, err := a.cfg.Store.Blob(context.Background(), sha); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("no blob %s", sha)
		}
		return err
	}
	rc, size, err := a.cfg.Blobs.Open(sha)
	if err != nil {
		return notFound("blob %s: %v", sha, err)
	}
	defer rc.Close()
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	_, err = io.Copy(w, rc)
	return err
}

var indexTmpl = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sparegrid: recent jobs</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}
.pass{color:#070}.fail{color:#b00}.tmpfail,.error{color:#a60}</style></head>
<body><h1>sparegrid: recent jobs</h1>
<p>{{len .}} most recent jobs. The JSON API is under <a href="/api/v1/jobs">/api/v1/jobs</a>.</p>
<table><tr><th>job</th><th>package</th><th>version</th><th>release/arch</th><th>state</th><th>verdict</th><th>tests</th><th>agent</th><th>log</th></tr>
{{range .}}<tr><td><a href="/api/v1/jobs/{{.ID}}">{{.ID}}</a></td><td>{{.Package}}</td><td>{{.Version}}</td><td>{{.Release}}/{{.Arch}}</td><td>{{.State}}</td>
<td class="{{.Verdict}}">{{.Verdict}}</td><td>{{range .Tests}}{{.Name}}: {{.Result}}<br>{{end}}</td><td>{{.AgentName}}{{if .Owner}} (~{{.Owner}}){{end}}</td>
<td>{{if .LogURL}}<a href="{{.LogURL}}">log</a>{{end}}</td></tr>
{{end}}</table></body></html>
`))

func (a *API) index(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		jobs, err := a.jobList(r.Context(), store.JobFilter{Limit: 50})
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		return indexTmpl.Execute(w, jobs)
	})(w, r)
}

// cancelJob cancels a queued or running job. The agent running it learns
// at its next heartbeat, which the coordinator then refuses, and tears its
// testbed down; a maintainer may cancel only jobs they submitted.
func (a *API) cancelJob(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	j, err := a.cfg.Store.Job(r.Context(), id)
	if err != nil {
		return err
	}
	who := caller(r)
	if who.Role != store.RoleAdmin && j.SubmittedBy != who.Name {
		return errf(http.StatusForbidden, "forbidden", "job %d was submitted by ~%s; only they or an admin may cancel it", id, j.SubmittedBy)
	}
	j, err = a.cfg.Store.CancelJob(r.Context(), id, a.cfg.Now())
	if err != nil {
		return err
	}
	a.cfg.Log.Info("job cancelled", "job", id, "by", who.Name)
	v, err := a.jobView(r.Context(), j)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// testsControl reads the tests of an uploaded source package. A package
// without debian/tests/control has none to route (autodep8 tests run
// anywhere); a control file autopkgtest would refuse is refused here, with
// the line it stumbles on.
func (a *API) testsControl(src store.Source) ([]dep8.TestStanza, error) {
	f, _, err := a.cfg.Blobs.Open(src.SHA256)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := srcpkg.TestsControl(f, src.Kind, src.Entry, srcpkg.Limits{})
	if err != nil {
		return nil, badRequest("source %s: %v", src.SHA256, err)
	}
	tests, err := c.Tests()
	if err != nil {
		return nil, badRequest("source %s: %s: %v", src.SHA256, c.Path, err)
	}
	return tests, nil
}
