// Package clienttest owns a small fake of the coordinator's HTTP API for
// tests of the client and the sparegrid CLI: a real HTTP server on
// loopback that keeps accounts, agents, jobs, blobs, blocklist rules,
// events and the verdicts tests give it in memory.
//
// It implements the API contract only as far as those tests need; it must
// not be used outside tests, and it is not the coordinator: the real
// server's behaviour is tested in coordinator/api.
package clienttest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/client"
)

// Server is a fake coordinator.
type Server struct {
	// URL is the base address to give client.New.
	URL string

	mu        sync.Mutex
	tokens    map[string]client.Account
	agents    map[int64]client.Agent
	claims    map[string]int64
	jobs      map[int64]client.Job
	scripts   map[int64][]func(*client.Job)
	logs      map[int64]string
	envelopes map[int64][]byte
	blobs     map[string][]byte
	sources   map[string][]byte
	submitted []client.SubmitRequest
	nextJob   int64
	rules     []client.BlockRule
	verdicts  map[string]client.VerdictList
	schedule  client.Schedule
	nextRule  int64
	events    []client.Event
	now       time.Time
}

// New starts a fake coordinator on loopback and stops it when the test
// ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		tokens:    map[string]client.Account{},
		agents:    map[int64]client.Agent{},
		claims:    map[string]int64{},
		jobs:      map[int64]client.Job{},
		scripts:   map[int64][]func(*client.Job){},
		logs:      map[int64]string{},
		envelopes: map[int64][]byte{},
		blobs:     map[string][]byte{},
		sources:   map[string][]byte{},
		verdicts:  map[string]client.VerdictList{},
		nextJob:   1,
		nextRule:  1,
		now:       time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
	}
	hs := httptest.NewServer(s.handler())
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// AddToken makes token authenticate as acct.
func (s *Server) AddToken(token string, acct client.Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = acct
}

// AddAgent adds or replaces an agent. A non-empty claimCode lets its owner
// claim it with that code.
func (s *Server) AddAgent(a client.Agent, claimCode string) {
	if len(a.Capabilities) == 0 {
		a.Capabilities = json.RawMessage("null")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agents[a.ID] = a
	if claimCode != "" {
		s.claims[claimCode] = a.ID
	}
}

// Agent returns an agent as the fake holds it.
func (s *Server) Agent(id int64) client.Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agents[id]
}

// PutJob adds or replaces a job.
func (s *Server) PutJob(j client.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[j.ID] = normalize(j)
	if j.ID >= s.nextJob {
		s.nextJob = j.ID + 1
	}
}

// Job returns a job as the fake holds it.
func (s *Server) Job(id int64) client.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[id]
}

// Script makes the next GET of job id apply steps[0] before it answers,
// the one after steps[1], and so on, so tests can walk a job through its
// states without clocks.
func (s *Server) Script(id int64, steps ...func(*client.Job)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[id] = append(s.scripts[id], steps...)
}

// SetLog sets the log of a job.
func (s *Server) SetLog(id int64, log string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs[id] = log
}

// SetEnvelope sets the signed envelope of a job.
func (s *Server) SetEnvelope(id int64, env []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.envelopes[id] = slices.Clone(env)
}

// PutBlob stores data under the given digest, which need not be its real
// sha256, so tests can serve tampered blobs. An empty digest means the real
// one. It returns the digest.
func (s *Server) PutBlob(digest string, data []byte) string {
	if digest == "" {
		sum := sha256.Sum256(data)
		digest = hex.EncodeToString(sum[:])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[digest] = slices.Clone(data)
	return digest
}

// Source returns an uploaded source archive.
func (s *Server) Source(sha string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.sources[sha]
	return b, ok
}

// Submitted returns every job submission received, oldest first.
func (s *Server) Submitted() []client.SubmitRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.submitted)
}

// normalize fills what the API always sends as a list, never null.
func normalize(j client.Job) client.Job {
	if j.Tests == nil {
		j.Tests = []client.Test{}
	}
	if j.Blobs == nil {
		j.Blobs = []client.Blob{}
	}
	if j.Triggers == nil {
		j.Triggers = []string{}
	}
	return j
}

type apiError struct {
	status        int
	code, message string
}

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) (any, int, *apiError)

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, h handlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			v, status, aerr := h(w, r)
			if aerr != nil {
				writeJSON(w, aerr.status, map[string]any{"error": map[string]string{"code": aerr.code, "message": aerr.message}})
				return
			}
			if v != nil {
				writeJSON(w, status, v)
			}
		})
	}
	route("GET /api/v1/version", func(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
		return map[string]any{"version": "fake", "protocol": 1}, http.StatusOK, nil
	})
	route("POST /api/v1/accounts", s.createAccount)
	route("GET /api/v1/whoami", func(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
		acct, aerr := s.auth(r, "")
		return acct, http.StatusOK, aerr
	})
	route("GET /api/v1/agents", func(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := []client.Agent{}
		for _, a := range s.agents {
			out = append(out, a)
		}
		slices.SortFunc(out, func(a, b client.Agent) int { return int(a.ID - b.ID) })
		return map[string]any{"agents": out}, http.StatusOK, nil
	})
	route("GET /api/v1/agents/{id}", func(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
		s.mu.Lock()
		defer s.mu.Unlock()
		a, aerr := s.agentLocked(r)
		return a, http.StatusOK, aerr
	})
	route("POST /api/v1/agents/claim", s.claimAgent)
	route("POST /api/v1/agents/{id}/approve", func(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
		return s.decide(r, client.AgentApproved)
	})
	route("POST /api/v1/agents/{id}/reject", func(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
		return s.decide(r, client.AgentRejected)
	})
	route("POST /api/v1/sources", s.uploadSource)
	route("POST /api/v1/jobs", s.submitJob)
	route("GET /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
		return s.listJobs(r.URL.Query().Get("package"), r.URL.Query().Get("state"), r.URL.Query().Get("limit"))
	})
	route("GET /api/v1/results", func(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
		return s.listJobs(r.URL.Query().Get("package"), client.StateDone, "")
	})
	route("GET /api/v1/jobs/{id}", s.getJob)
	route("GET /api/v1/verdicts", s.listVerdicts)
	route("GET /api/v1/schedule", s.getSchedule)
	route("POST /api/v1/blocklist", s.addBlockRule)
	route("GET /api/v1/blocklist", s.listBlockRules)
	route("DELETE /api/v1/blocklist/{id}", s.removeBlockRule)
	route("POST /api/v1/events", s.postEvent)
	route("GET /api/v1/events", s.listEvents)
	route("GET /api/v1/events/{id}", s.getEvent)
	route("POST /api/v1/jobs/{id}/cancel", s.cancelJob)
	route("GET /api/v1/jobs/{id}/log", func(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
		id, aerr := pathID(r)
		if aerr != nil {
			return nil, 0, aerr
		}
		s.mu.Lock()
		log, ok := s.logs[id]
		s.mu.Unlock()
		if !ok {
			return nil, 0, errorf(http.StatusNotFound, "not_found", "job %d has no log", id)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, log)
		return nil, 0, nil
	})
	route("GET /api/v1/jobs/{id}/envelope", func(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
		id, aerr := pathID(r)
		if aerr != nil {
			return nil, 0, aerr
		}
		s.mu.Lock()
		env, ok := s.envelopes[id]
		s.mu.Unlock()
		if !ok {
			return nil, 0, errorf(http.StatusNotFound, "not_found", "job %d has no signed result", id)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(env)
		return nil, 0, nil
	})
	route("GET /api/v1/blobs/{sha}", func(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
		s.mu.Lock()
		b, ok := s.blobs[r.PathValue("sha")]
		s.mu.Unlock()
		if !ok {
			return nil, 0, errorf(http.StatusNotFound, "not_found", "no blob %s", r.PathValue("sha"))
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
		return nil, 0, nil
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func pathID(r *http.Request) (int64, *apiError) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "bad_request", "bad id %q", r.PathValue("id"))
	}
	return id, nil
}

// auth returns the caller's account; role, when set, is required.
func (s *Server) auth(r *http.Request, role string) (client.Account, *apiError) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return client.Account{}, errorf(http.StatusUnauthorized, "unauthenticated", "this needs an API token")
	}
	s.mu.Lock()
	acct, ok := s.tokens[tok]
	s.mu.Unlock()
	if !ok {
		return client.Account{}, errorf(http.StatusUnauthorized, "unauthenticated", "unknown API token")
	}
	if role != "" && acct.Role != role {
		return client.Account{}, errorf(http.StatusForbidden, "forbidden", "only an %s may do this", role)
	}
	return acct, nil
}

func decodeBody(r *http.Request, v any) *apiError {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "bad_request", "bad request body: %v", err)
	}
	return nil
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	if _, aerr := s.auth(r, client.RoleAdmin); aerr != nil {
		return nil, 0, aerr
	}
	var req client.CreateAccountRequest
	if aerr := decodeBody(r, &req); aerr != nil {
		return nil, 0, aerr
	}
	switch req.Role {
	case client.RoleVolunteer, client.RoleMaintainer, client.RoleAdmin:
	default:
		return nil, 0, errorf(http.StatusBadRequest, "bad_request", "unknown role %q", req.Role)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.tokens {
		if a.Name == req.Name {
			return nil, 0, errorf(http.StatusConflict, "conflict", "account ~%s exists", req.Name)
		}
	}
	acct := client.Account{Name: req.Name, DisplayName: req.DisplayName, Email: req.Email, Role: req.Role, CreatedAt: s.now}
	tok := fmt.Sprintf("sgp_%08d_secret", len(s.tokens)+1)
	s.tokens[tok] = acct
	return map[string]any{"account": acct, "token": tok}, http.StatusCreated, nil
}

func (s *Server) agentLocked(r *http.Request) (client.Agent, *apiError) {
	id, aerr := pathID(r)
	if aerr != nil {
		return client.Agent{}, aerr
	}
	a, ok := s.agents[id]
	if !ok {
		return client.Agent{}, errorf(http.StatusNotFound, "not_found", "no agent %d", id)
	}
	return a, nil
}

func (s *Server) claimAgent(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	acct, aerr := s.auth(r, "")
	if aerr != nil {
		return nil, 0, aerr
	}
	var req struct {
		Code string `json:"code"`
	}
	if aerr := decodeBody(r, &req); aerr != nil {
		return nil, 0, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.claims[req.Code]
	if !ok {
		return nil, 0, errorf(http.StatusNotFound, "not_found", "no agent shows code %q", req.Code)
	}
	a := s.agents[id]
	if a.Owner != acct.Name {
		return nil, 0, errorf(http.StatusForbidden, "forbidden", "agent %d belongs to ~%s", id, a.Owner)
	}
	a.Claimed = true
	s.agents[id] = a
	delete(s.claims, req.Code)
	return a, http.StatusOK, nil
}

func (s *Server) decide(r *http.Request, state string) (any, int, *apiError) {
	acct, aerr := s.auth(r, client.RoleAdmin)
	if aerr != nil {
		return nil, 0, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, aerr := s.agentLocked(r)
	if aerr != nil {
		return nil, 0, aerr
	}
	a.State, a.DecidedBy = state, acct.Name
	now := s.now
	a.DecidedAt = &now
	s.agents[a.ID] = a
	return a, http.StatusOK, nil
}

func (s *Server) uploadSource(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	if _, aerr := s.auth(r, ""); aerr != nil {
		return nil, 0, aerr
	}
	want := r.URL.Query().Get("sha256")
	if ct := r.Header.Get("Content-Type"); ct != "application/x-tar" {
		return nil, 0, errorf(http.StatusBadRequest, "bad_request", "content type %q, want application/x-tar", ct)
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, 0, errorf(http.StatusBadRequest, "bad_request", "read body: %v", err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != want {
		return nil, 0, errorf(http.StatusBadRequest, "bad_request", "body has sha256 %s, not %s", got, want)
	}
	s.mu.Lock()
	s.sources[want] = data
	s.mu.Unlock()
	return client.SourceRef{SHA256: want, Size: int64(len(data))}, http.StatusCreated, nil
}

func (s *Server) submitJob(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	acct, aerr := s.auth(r, "")
	if aerr != nil {
		return nil, 0, aerr
	}
	var req client.SubmitRequest
	if aerr := decodeBody(r, &req); aerr != nil {
		return nil, 0, aerr
	}
	if req.Package == "" || req.Release == "" {
		return nil, 0, errorf(http.StatusBadRequest, "bad_request", "package and release are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Source != nil {
		if _, ok := s.sources[req.Source.SHA256]; !ok {
			return nil, 0, errorf(http.StatusBadRequest, "bad_request", "no uploaded source %s", req.Source.SHA256)
		}
	}
	s.submitted = append(s.submitted, req)
	if req.Arch == "" {
		req.Arch = "amd64"
	}
	j := normalize(client.Job{
		ID: s.nextJob, Package: req.Package, Version: req.Version, Release: req.Release, Arch: req.Arch,
		Triggers: req.Triggers, Source: req.Source, State: client.StateQueued,
		SubmittedBy: acct.Name, CreatedAt: s.now,
	})
	if rule := s.blockingLocked(j); rule != nil {
		if !req.Force {
			return nil, 0, errorf(http.StatusConflict, "conflict", "%s on %s/%s is blocked by %s; submit with force (sparegrid submit --force) to run it anyway",
				j.Package, j.Release, j.Arch, rule.Explanation)
		}
		j.Reason = fmt.Sprintf("submitted despite blocklist rule %d", rule.ID)
	}
	s.nextJob++
	s.jobs[j.ID] = j
	return j, http.StatusCreated, nil
}

func (s *Server) listJobs(pkg, state, limitText string) (any, int, *apiError) {
	limit := 0
	if limitText != "" {
		n, err := strconv.Atoi(limitText)
		if err != nil || n < 0 {
			return nil, 0, errorf(http.StatusBadRequest, "bad_request", "bad limit %q", limitText)
		}
		limit = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []client.Job{}
	for _, j := range s.jobs {
		if (pkg == "" || j.Package == pkg) && (state == "" || j.State == state) {
			out = append(out, j)
		}
	}
	slices.SortFunc(out, func(a, b client.Job) int { return int(b.ID - a.ID) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return map[string]any{"jobs": out}, http.StatusOK, nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	id, aerr := pathID(r)
	if aerr != nil {
		return nil, 0, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return nil, 0, errorf(http.StatusNotFound, "not_found", "no job %d", id)
	}
	if steps := s.scripts[id]; len(steps) > 0 {
		steps[0](&j)
		s.scripts[id] = steps[1:]
		j = normalize(j)
		s.jobs[id] = j
	}
	return j, http.StatusOK, nil
}

// cancelJob cancels a queued or running job, as the real coordinator does.
func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	if _, aerr := s.auth(r, ""); aerr != nil {
		return nil, 0, aerr
	}
	id, aerr := pathID(r)
	if aerr != nil {
		return nil, 0, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return nil, 0, errorf(http.StatusNotFound, "not_found", "no job %d", id)
	}
	if j.State != client.StateQueued && j.State != client.StateRunning {
		return nil, 0, errorf(http.StatusConflict, "conflict", "job %d is %s", id, j.State)
	}
	j.State, j.Verdict = client.StateCancelled, "cancelled"
	s.jobs[id] = j
	return j, http.StatusOK, nil
}

// BlockRules returns the blocklist rules as the fake holds them, oldest
// first.
func (s *Server) BlockRules() []client.BlockRule {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rules)
}

// PutBlockRule adds or replaces a blocklist rule as it is, so tests can
// hold rules that expired before the fake's clock.
func (s *Server) PutBlockRule(r client.BlockRule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.rules, func(old client.BlockRule) bool { return old.ID == r.ID }); i >= 0 {
		s.rules[i] = r
	} else {
		s.rules = append(s.rules, r)
		slices.SortFunc(s.rules, func(a, b client.BlockRule) int { return int(a.ID - b.ID) })
	}
	if r.ID >= s.nextRule {
		s.nextRule = r.ID + 1
	}
}

// blockingLocked returns the first active whole-job rule without agent or
// label scope that covers j: what the real coordinator refuses a
// submission for.
func (s *Server) blockingLocked(j client.Job) *client.BlockRule {
	for _, r := range s.rules {
		if r.Test != "" || r.Agent != nil || r.Label != "" || (r.ExpiresAt != nil && !s.now.Before(*r.ExpiresAt)) {
			continue
		}
		if ok, _ := path.Match(r.Package, j.Package); !ok ||
			r.Version != "" && r.Version != j.Version || r.Release != "" && r.Release != j.Release || r.Arch != "" && r.Arch != j.Arch {
			continue
		}
		return &r
	}
	return nil
}

func (s *Server) addBlockRule(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	acct, aerr := s.auth(r, client.RoleAdmin)
	if aerr != nil {
		return nil, 0, aerr
	}
	var req client.BlockRuleRequest
	if aerr := decodeBody(r, &req); aerr != nil {
		return nil, 0, aerr
	}
	if _, err := path.Match(req.Package, ""); err != nil || req.Package == "" {
		return nil, 0, errorf(http.StatusBadRequest, "bad_request", "package glob %q is malformed", req.Package)
	}
	if strings.TrimSpace(req.Reason) == "" {
		return nil, 0, errorf(http.StatusBadRequest, "bad_request", "a rule needs a reason")
	}
	if req.Agent != nil && req.Label != "" {
		return nil, 0, errorf(http.StatusBadRequest, "bad_request", "a rule is scoped to an agent or to a label, not both")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Expires != nil && !req.Expires.After(s.now) {
		return nil, 0, errorf(http.StatusBadRequest, "bad_request", "expires %s is not in the future", req.Expires.Format(time.RFC3339))
	}
	if req.Agent != nil {
		if _, ok := s.agents[*req.Agent]; !ok {
			return nil, 0, errorf(http.StatusBadRequest, "bad_request", "there is no agent %d", *req.Agent)
		}
	}
	rule := client.BlockRule{
		ID: s.nextRule, Package: req.Package, Version: req.Version, Release: req.Release, Arch: req.Arch, Test: req.Test,
		Agent: req.Agent, Label: req.Label, Reason: strings.TrimSpace(req.Reason), CreatedBy: acct.Name, CreatedAt: s.now,
		ExpiresAt: req.Expires,
	}
	until := ""
	if e := rule.ExpiresAt; e != nil && e.UTC().Equal(e.UTC().Truncate(24*time.Hour)) {
		until = ", until " + e.UTC().Format(time.DateOnly)
	} else if e != nil {
		until = ", until " + e.UTC().Format("2006-01-02 15:04 UTC")
	}
	rule.Explanation = fmt.Sprintf("blocklist rule %d (~%s%s): %s", rule.ID, rule.CreatedBy, until, rule.Reason)
	s.nextRule++
	s.rules = append(s.rules, rule)
	return rule, http.StatusCreated, nil
}

func (s *Server) listBlockRules(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	all := r.URL.Query().Get("all") == "true"
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []client.BlockRule{}
	for _, rule := range s.rules {
		rule.Expired = rule.ExpiresAt != nil && !s.now.Before(*rule.ExpiresAt)
		if all || !rule.Expired {
			out = append(out, rule)
		}
	}
	return map[string]any{"rules": out}, http.StatusOK, nil
}

func (s *Server) removeBlockRule(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	if _, aerr := s.auth(r, client.RoleAdmin); aerr != nil {
		return nil, 0, aerr
	}
	id, aerr := pathID(r)
	if aerr != nil {
		return nil, 0, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.rules, func(rule client.BlockRule) bool { return rule.ID == id })
	if i < 0 {
		return nil, 0, errorf(http.StatusNotFound, "not_found", "no blocklist rule %d", id)
	}
	s.rules = slices.Delete(s.rules, i, i+1)
	w.WriteHeader(http.StatusNoContent)
	return nil, 0, nil
}

// PutSchedule sets what the fake answers GET /api/v1/schedule with.
func (s *Server) PutSchedule(sc client.Schedule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.schedule = sc
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.schedule, http.StatusOK, nil
}

// PutVerdicts sets the verdicts the fake answers with for l.Package; it
// does not compute them.
func (s *Server) PutVerdicts(l client.VerdictList) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.verdicts[l.Package] = l
}

func (s *Server) listVerdicts(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	pkg, version := r.URL.Query().Get("package"), r.URL.Query().Get("version")
	if pkg == "" {
		return nil, 0, errorf(http.StatusBadRequest, "bad_request", "query parameter package is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.verdicts[pkg]
	out := client.VerdictList{Package: pkg, Verdicts: []client.Verdict{}, Retries: []client.VerdictRetry{}}
	for _, v := range l.Verdicts {
		if version == "" || v.Version == version {
			out.Verdicts = append(out.Verdicts, v)
		}
	}
	for _, rr := range l.Retries {
		if version == "" || rr.Version == version {
			out.Retries = append(out.Retries, rr)
		}
	}
	return out, http.StatusOK, nil
}

// PutEvent adds or replaces an event as it is, so tests can give it an
// expansion; the fake itself expands nothing.
func (s *Server) PutEvent(e client.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.events, func(old client.Event) bool { return old.ID == e.ID }); i >= 0 {
		s.events[i] = e
		return
	}
	s.events = append(s.events, e)
	slices.SortFunc(s.events, func(a, b client.Event) int { return int(a.ID - b.ID) })
}

// Events returns the events as the fake holds them, oldest first.
func (s *Server) Events() []client.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

func (s *Server) postEvent(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	acct, aerr := s.auth(r, "")
	if aerr != nil {
		return nil, 0, aerr
	}
	if acct.Role != client.RoleMaintainer && acct.Role != client.RoleAdmin {
		return nil, 0, errorf(http.StatusForbidden, "forbidden", "only a maintainer or an admin may post events")
	}
	var req client.EventPost
	if aerr := decodeBody(r, &req); aerr != nil {
		return nil, 0, aerr
	}
	if req.Type == "" {
		return nil, 0, errorf(http.StatusBadRequest, "bad_request", "rules: invalid event: type is missing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := client.Event{
		ID: int64(len(s.events)) + 1, Type: req.Type, Source: req.Source, Version: req.Version, ArtifactURL: req.ArtifactURL,
		BuildID: req.BuildID, Metadata: req.Metadata, Producer: acct.Name, Received: s.now,
		Rules: []client.EventRule{}, Requests: []client.EventRequest{}, Jobs: []int64{},
	}
	if len(s.events) > 0 {
		e.ID = s.events[len(s.events)-1].ID + 1
	}
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	s.events = append(s.events, e)
	return e, http.StatusCreated, nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	limit := 50
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return nil, 0, errorf(http.StatusBadRequest, "bad_request", "limit %q: want a positive number", l)
		}
		limit = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []client.Event{}
	for i := len(s.events) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, s.events[i])
	}
	return map[string]any{"events": out}, http.StatusOK, nil
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) (any, int, *apiError) {
	id, aerr := pathID(r)
	if aerr != nil {
		return nil, 0, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.events, func(e client.Event) bool { return e.ID == id })
	if i < 0 {
		return nil, 0, errorf(http.StatusNotFound, "not_found", "no event %d", id)
	}
	return s.events[i], http.StatusOK, nil
}
