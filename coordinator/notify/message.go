package notify

import (
	_ "embed"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/verdict"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// DefaultRateRuns is how many of a package's latest runs its failure rate
// counts.
const DefaultRateRuns = 20

// Message is what one mail says, before it is written with the template.
type Message struct {
	Kind Kind
	// Summary is what happened, in one or two sentences.
	Summary string
	// Package, Version, Release, Arch and Triggers name what was tested;
	// Package is empty for mail about an agent or a check.
	Package  string
	Version  string
	Release  string
	Arch     string
	Triggers []string
	// Status is the verdict the mail reports, for a verdict change.
	Status verdict.Status
	// Tests are the per-test results of the run the mail is about.
	Tests []dep8.Test
	// FailedTest names the test the excerpt is taken around.
	FailedTest string
	Excerpt    Excerpt
	HarnessRev string
	Rate       Rate
	// JobID is the job the mail is about; zero when none.
	JobID int64
	// Agent names the agent involved, Check the health check.
	Agent string
	Check string
	// Reason is the grid's own explanation: the job's error, the agent's
	// pause reason, the check's output.
	Reason string
	At     time.Time
	// Held lists the subjects a digest carries.
	Held []string
}

// Rate is how many of a package's latest finished runs failed.
type Rate struct {
	Failed int
	Runs   int
}

// FailureRate counts, among the newest DefaultRateRuns of runs on release
// and arch that ended in pass, fail or neutral, those that failed.
// Infrastructure outcomes are not the package's and are not counted.
func FailureRate(runs []store.PackageRun, release, arch string) Rate {
	sorted := slices.Clone(runs)
	slices.SortStableFunc(sorted, func(a, b store.PackageRun) int { return b.Finished.Compare(a.Finished) })
	var r Rate
	for _, run := range sorted {
		if r.Runs == DefaultRateRuns {
			break
		}
		if run.Release != release || run.Arch != arch {
			continue
		}
		switch run.Verdict {
		case dep8.VerdictFail:
			r.Failed++
			r.Runs++
		case dep8.VerdictPass, dep8.VerdictNeutral:
			r.Runs++
		}
	}
	return r
}

func (r Rate) String() string {
	if r.Runs == 0 {
		return "no finished runs yet"
	}
	return fmt.Sprintf("%d of the last %d runs failed (%d%%)", r.Failed, r.Runs, r.Failed*100/r.Runs)
}

// FirstFailure returns the name of the first test that failed, or "".
func FirstFailure(tests []dep8.Test) string {
	for _, t := range tests {
		if t.Result == dep8.Fail {
			return t.Name
		}
	}
	return ""
}

// VerdictMessage describes a verdict change of kind k: v is the new
// verdict, job and res the run it rests on, log that run's log text and
// runs the package's latest runs, for its failure rate.
func VerdictMessage(k Kind, v verdict.Verdict, job store.Job, res store.Result, log string, runs []store.PackageRun) Message {
	m := Message{
		Kind: k, Status: v.Status, Package: v.Package, Version: v.Version, Release: v.Release, Arch: v.Arch,
		Triggers: v.Triggers, Tests: res.Tests,
		Rate: FailureRate(runs, v.Release, v.Arch), JobID: job.ID, At: res.CreatedAt,
	}
	if res.Harness != (dep8.Harness{}) {
		m.HarnessRev = res.Harness.Rev()
	}
	if job.FinishedAt != nil {
		m.At = *job.FinishedAt
	}
	switch k {
	case Regression:
		m.Summary = fmt.Sprintf("The tests of %s now fail where they passed before: %s", v.Package, v.Reason)
		m.FailedTest = FirstFailure(res.Tests)
		m.Excerpt = LogExcerpt(log, m.FailedTest)
	case Fixed:
		m.Summary = fmt.Sprintf("The tests of %s pass again: %s", v.Package, v.Reason)
	}
	return m
}

// JobErrorMessage describes a job that ended in error.
func JobErrorMessage(job store.Job) Message {
	m := Message{
		Kind: JobError, Package: job.Package, Version: job.Version, Release: job.Release, Arch: job.Arch,
		Triggers: job.Triggers, JobID: job.ID, Reason: job.Reason,
		Summary: fmt.Sprintf("Job %d ended in error after %d attempts; its package was not blamed.", job.ID, job.Attempt),
	}
	if job.FinishedAt != nil {
		m.At = *job.FinishedAt
	}
	if job.AgentID != nil {
		m.Agent = "agent " + strconv.FormatInt(*job.AgentID, 10)
	}
	return m
}

// AgentPausedMessage describes an agent that paused itself.
func AgentPausedMessage(a store.Agent, reason string, at time.Time) Message {
	return Message{
		Kind: AgentPaused, Agent: fmt.Sprintf("%s (agent %d)", a.Name, a.ID), Reason: reason, At: at,
		Summary: fmt.Sprintf("Agent %s paused itself and takes no work until it recovers.", a.Name),
	}
}

// CheckFailedMessage describes a health check that failed and holds its
// scope.
func CheckFailedMessage(check, scope, output string, at time.Time) Message {
	return Message{
		Kind: CheckFailed, Check: check, Reason: output, At: at,
		Summary: fmt.Sprintf("Health check %s failed; %s is on hold, and its jobs wait in the queue.", check, scope),
	}
}

// Subject returns the mail's subject line.
func (m Message) Subject() string {
	var s string
	switch m.Kind {
	case Regression:
		s = fmt.Sprintf("REGRESSION: %s %s on %s/%s", m.Package, m.Version, m.Release, m.Arch)
	case Fixed:
		s = fmt.Sprintf("fixed: %s %s on %s/%s passes again", m.Package, m.Version, m.Release, m.Arch)
	case JobError:
		s = fmt.Sprintf("job %d (%s on %s/%s) ended in error", m.JobID, m.Package, m.Release, m.Arch)
	case AgentPaused:
		s = fmt.Sprintf("agent %s paused itself", m.Agent)
	case CheckFailed:
		s = fmt.Sprintf("health check %s failed", m.Check)
	default:
		s = fmt.Sprintf("%d held-back mails", len(m.Held))
		if len(m.Held) == 1 {
			s = "1 held-back mail"
		}
	}
	s = strings.Join(strings.Fields("[sparegrid] "+s), " ")
	if len(s) > store.MaxMailSubject {
		s = clean(s[:store.MaxMailSubject-3])
	}
	return s
}

// maxReason bounds the Reason a mail quotes, in bytes.
const maxReason = 4 << 10

// Links are where a mail points its reader.
type Links struct {
	Job string
	Log string
}

func links(base string, job int64) Links {
	if base == "" || job == 0 {
		return Links{}
	}
	u, err := url.Parse(base)
	if err != nil {
		return Links{}
	}
	id := strconv.FormatInt(job, 10)
	return Links{Job: u.JoinPath("jobs", id).String(), Log: u.JoinPath("api", "v1", "jobs", id, "log").String()}
}

//go:embed mail.tmpl
var mailText string

// mailTemplate parses the template; it is a function so that no parsed
// template is shared between callers.
func mailTemplate() *template.Template {
	return template.Must(template.New("mail").Funcs(template.FuncMap{
		"join":  strings.Join,
		"clean": clean,
		"lines": func(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") },
		"time":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"add":   func(a, b int) int { return a + b },
	}).Parse(mailText))
}

// Render writes m with the template. baseURL, when set, is where the
// dashboard is served, for the links.
func Render(m Message, baseURL string) (string, error) {
	if len(m.Reason) > maxReason {
		m.Reason = m.Reason[:maxReason] + "\n[cut at " + strconv.Itoa(maxReason) + " bytes]"
	}
	var b strings.Builder
	data := struct {
		Message
		Links Links
	}{m, links(baseURL, m.JobID)}
	if err := mailTemplate().Execute(&b, data); err != nil {
		return "", fmt.Errorf("notify: render %s mail: %w", m.Kind, err)
	}
	return b.String(), nil
}
