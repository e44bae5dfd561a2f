// Package api owns the coordinator's HTTP surface for humans and scripts:
// the JSON API under /api/v1/ (documented in docs/api.md) and the minimal
// HTML page of recent jobs.
//
// Reads are public; every write needs an API token, and admin actions need
// an admin's. Build systems post events with a maintainer's token. It must not speak the agent protocol (see package gateway).
package api

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/auth"
	"github.com/sparegrid/sparegrid/coordinator/blobs"
	"github.com/sparegrid/sparegrid/coordinator/intake"
	"github.com/sparegrid/sparegrid/coordinator/queue"
	"github.com/sparegrid/sparegrid/coordinator/rules"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/sign"
	"github.com/sparegrid/sparegrid/shared/version"
)

// Config holds what the API needs.
type Config struct {
	Store store.Store
	Blobs *blobs.Store
	Jobs  *queue.Notifier
	// DefaultArch is the architecture of a job submitted without one.
	DefaultArch string
	// MaxSource caps an uploaded source package (default 256 MiB).
	MaxSource int64
	// MaxAttempts is how many attempts a new job gets before an
	// infrastructure failure ends it with verdict error (default
	// store.DefaultMaxAttempts).
	MaxAttempts int
	// Events expands posted events into jobs; nil means an engine with
	// no rules (events are stored, nothing matches), whose targets are
	// AgentTargets(Store).
	Events *rules.Engine
	// Intake turns submissions and events into jobs; nil means one over
	// Store and its agents, with no harness pin.
	Intake *intake.Intake
	// Schedule reports what the coordinator's selection policy did last;
	// nil means it runs none.
	Schedule func() apiv1.Schedule
	// Metrics serves GET /metrics; nil answers 404 there.
	Metrics http.Handler
	Now     func() time.Time
	Log     *slog.Logger
}

// API serves HTTP.
type API struct {
	cfg Config
	mux *http.ServeMux
}

// New returns the API handler.
func New(cfg Config) *API {
	if cfg.DefaultArch == "" {
		cfg.DefaultArch = "amd64"
	}
	if cfg.MaxSource <= 0 {
		cfg.MaxSource = 256 << 20
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = store.DefaultMaxAttempts
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Intake == nil {
		cfg.Intake = intake.New(intake.Config{Store: cfg.Store, Agents: intake.StoreAgents(cfg.Store), Now: cfg.Now})
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Jobs == nil {
		cfg.Jobs = queue.NewNotifier()
	}
	if cfg.Events == nil {
		cfg.Events = noRules(cfg.Store)
	}
	a := &API{cfg: cfg, mux: http.NewServeMux()}
	a.routes()
	return a
}

func (a *API) routes() {
	m := a.mux
	m.HandleFunc("GET /api/v1/version", a.version)
	m.HandleFunc("POST /api/v1/accounts", a.admin(a.createAccount))
	m.HandleFunc("GET /api/v1/whoami", a.authed(a.whoami))
	m.HandleFunc("GET /api/v1/agents", a.listAgents)
	m.HandleFunc("GET /api/v1/agents/{id}", a.getAgent)
	m.HandleFunc("POST /api/v1/agents/claim", a.authed(a.claimAgent))
	m.HandleFunc("POST /api/v1/agents/{id}/approve", a.admin(a.decideAgent(store.AgentApproved)))
	m.HandleFunc("POST /api/v1/agents/{id}/reject", a.admin(a.decideAgent(store.AgentRejected)))
	m.HandleFunc("PUT /api/v1/agents/{id}/labels", a.admin(a.setAgentLabels))
	m.HandleFunc("POST /api/v1/sources", a.submitter(a.uploadSource))
	m.HandleFunc("POST /api/v1/jobs", a.submitter(a.submitJob))
	m.HandleFunc("GET /api/v1/jobs", a.listJobs)
	m.HandleFunc("GET /api/v1/jobs/{id}", a.getJob)
	m.HandleFunc("POST /api/v1/jobs/{id}/cancel", a.submitter(a.cancelJob))
	m.HandleFunc("GET /api/v1/jobs/{id}/log", a.jobLog)
	m.HandleFunc("GET /api/v1/jobs/{id}/envelope", a.jobEnvelope)
	m.HandleFunc("GET /api/v1/blobs/{sha}", a.getBlob)
	m.HandleFunc("GET /api/v1/results", a.results)
	m.HandleFunc("GET /api/v1/verdicts", a.verdicts)
	m.HandleFunc("GET /api/v1/schedule", a.schedule)
	m.HandleFunc("POST /api/v1/blocklist", a.admin(a.addBlockRule))
	m.HandleFunc("GET /api/v1/blocklist", a.listBlockRules)
	m.HandleFunc("DELETE /api/v1/blocklist/{id}", a.admin(a.removeBlockRule))
	m.HandleFunc("POST /api/v1/events", a.submitter(a.postEvent))
	m.HandleFunc("GET /api/v1/events", a.listEvents)
	m.HandleFunc("GET /api/v1/events/{id}", a.getEvent)
	m.HandleFunc("POST /api/v1/grid/hold", a.admin(a.holdGrid))
	m.HandleFunc("POST /api/v1/grid/resume", a.admin(a.resumeGrid))
	m.HandleFunc("GET /api/v1/grid/holds", a.listHolds)
	m.HandleFunc("GET /api/v1/downtime", a.downtime)
	m.HandleFunc("GET /{$}", a.index)
	if a.cfg.Metrics != nil {
		m.Handle("GET /metrics", a.cfg.Metrics)
	}
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'")
	a.mux.ServeHTTP(w, r)
}

// apiError is a refusal: the status and the apiv1.Error body to answer
// with.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errf(http.StatusBadRequest, "bad_request", format, args...)
}

func notFound(format string, args ...any) *apiError {
	return errf(http.StatusNotFound, "not_found", format, args...)
}

// fail writes err as JSON, mapping store errors to statuses.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var invalid *store.InvalidError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &invalid):
		ae = badRequest("%s", invalid.Reason)
	case errors.Is(err, store.ErrNotFound):
		ae = notFound("%v", err)
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotClaimed):
		ae = errf(http.StatusConflict, "conflict", "%v", err)
	case errors.Is(err, store.ErrForbidden):
		ae = errf(http.StatusForbidden, "forbidden", "%v", err)
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrUnknownBlob):
		ae = badRequest("%v", err)
	default:
		a.cfg.Log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = errf(http.StatusInternalServerError, "internal", "internal error; the coordinator log has details")
	}
	writeJSON(w, ae.Status, apiv1.ErrorResponse{Error: apiv1.Error{Code: ae.Code, Message: ae.Message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// decodeBody decodes a small JSON request body strictly.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: %v", err)
	}
	return nil
}

type accountKey struct{}

// caller returns the account that authenticated the request.
func caller(r *http.Request) store.Account {
	acc, _ := r.Context().Value(accountKey{}).(store.Account)
	return acc
}

func (a *API) authenticate(r *http.Request) (store.Account, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return store.Account{}, errf(http.StatusUnauthorized, "unauthenticated", "this request needs an API token (--token or SPAREGRID_TOKEN)")
	}
	hash, err := auth.HashAPIToken(strings.TrimSpace(tok))
	if err != nil {
		return store.Account{}, errf(http.StatusUnauthorized, "unauthenticated", "API token: %v", err)
	}
	acc, err := a.cfg.Store.AccountByTokenHash(r.Context(), hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.Account{}, errf(http.StatusUnauthorized, "unauthenticated", "API token is not known to this coordinator")
	}
	return acc, err
}

type handler func(w http.ResponseWriter, r *http.Request) error

func (a *API) serve(h handler, roles ...store.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		acc, err := a.authenticate(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if len(roles) > 0 && !hasRole(acc.Role, roles) {
			a.fail(w, r, errf(http.StatusForbidden, "forbidden", "~%s is a %s; this needs the role %s", acc.Name, acc.Role, roles[0]))
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), accountKey{}, acc))
		if err := h(w, r); err != nil {
			a.fail(w, r, err)
		}
	}
}

func hasRole(r store.Role, roles []store.Role) bool {
	for _, want := range roles {
		if r == want {
			return true
		}
	}
	return false
}

func (a *API) authed(h handler) http.HandlerFunc { return a.serve(h) }
func (a *API) admin(h handler) http.HandlerFunc  { return a.serve(h, store.RoleAdmin) }
func (a *API) submitter(h handler) http.HandlerFunc {
	return a.serve(h, store.RoleMaintainer, store.RoleAdmin)
}

// public wraps a handler that needs no token.
func (a *API) public(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.fail(w, r, err)
		}
	}
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("%q is not an id", r.PathValue("id"))
	}
	return id, nil
}

func (a *API) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, apiv1.VersionInfo{Version: version.Version, Protocol: version.Protocol})
}

func accountView(a store.Account) apiv1.Account {
	return apiv1.Account{Name: a.Name, DisplayName: a.DisplayName, Email: a.Email, Role: string(a.Role), CreatedAt: a.CreatedAt}
}

var emailRe = regexp.MustCompile(`^[^@\s<>]+@[^@\s<>]+$`)

func (a *API) createAccount(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.CreateAccountRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if !emailRe.MatchString(req.Email) {
		return badRequest("email %q is not an address", req.Email)
	}
	if !store.Role(req.Role).Valid() {
		return badRequest("role %q: use volunteer, maintainer or admin", req.Role)
	}
	acc, tok, err := CreateAccount(r.Context(), a.cfg.Store, store.Account{
		Name: strings.TrimPrefix(req.Name, "~"), Email: req.Email, Role: store.Role(req.Role),
		DisplayName: req.DisplayName, CreatedAt: a.cfg.Now(),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, apiv1.CreateAccountResponse{Account: accountView(acc), Token: tok})
	return nil
}

// CreateAccount stores an account with a fresh API token and returns the
// token, which is never stored in the clear.
func CreateAccount(ctx context.Context, s store.Store, acc store.Account) (store.Account, string, error) {
	if acc.DisplayName == "" {
		acc.DisplayName = acc.Name
	}
	acc, err := s.CreateAccount(ctx, acc)
	if err != nil {
		return acc, "", err
	}
	tok, prefix, hash, err := auth.NewAPIToken()
	if err != nil {
		return acc, "", err
	}
	if err := s.AddAPIToken(ctx, acc.ID, prefix, hash); err != nil {
		return acc, "", err
	}
	return acc, tok, nil
}

func (a *API) whoami(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, accountView(caller(r)))
	return nil
}

func agentView(ag store.Agent) apiv1.Agent {
	v := apiv1.Agent{
		ID: ag.ID, Name: ag.Name, Owner: ag.Owner, State: string(ag.State), Claimed: ag.ClaimedAt != nil,
		AutoApproved: ag.AutoApproved, Labels: ag.Labels, Capabilities: ag.Capabilities, Effective: effectiveCaps(ag),
		PublicKey: ag.PublicKey, CreatedAt: ag.CreatedAt, LastSeen: ag.LastSeen,
		DecidedBy: ag.DecidedBy, DecidedAt: ag.DecidedAt, Paused: ag.Paused, PausedAt: ag.PausedAt,
	}
	if v.Labels == nil {
		v.Labels = []string{}
	}
	if len(v.Capabilities) == 0 {
		v.Capabilities = json.RawMessage("null")
	}
	if len(ag.PublicKey) == ed25519.PublicKeySize {
		v.KeyID = sign.KeyID(ed25519.PublicKey(ag.PublicKey))
	}
	return v
}

func (a *API) listAgents(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		ags, err := a.cfg.Store.ListAgents(r.Context())
		if err != nil {
			return err
		}
		out := apiv1.AgentList{Agents: make([]apiv1.Agent, 0, len(ags))}
		for _, ag := range ags {
			out.Agents = append(out.Agents, agentView(ag))
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})(w, r)
}

func (a *API) getAgent(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		ag, err := a.cfg.Store.Agent(r.Context(), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, agentView(ag))
		return nil
	})(w, r)
}

func (a *API) claimAgent(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.ClaimRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	code := strings.ToUpper(strings.TrimSpace(req.Code))
	ag, err := a.cfg.Store.ClaimAgent(r.Context(), code, caller(r).ID)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no agent waits for claim code %q", code)
	}
	if errors.Is(err, store.ErrForbidden) {
		return errf(http.StatusForbidden, "forbidden", "claim code %q belongs to an agent registered under another account", code)
	}
	if err != nil {
		return err
	}
	a.cfg.Log.Info("agent claimed", "agent", ag.ID, "owner", caller(r).Name)
	writeJSON(w, http.StatusOK, agentView(ag))
	return nil
}

func (a *API) decideAgent(state store.AgentState) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		ag, err := a.cfg.Store.DecideAgent(r.Context(), id, state, caller(r).Name)
		if errors.Is(err, store.ErrNotClaimed) {
			return errf(http.StatusConflict, "conflict", "agent %d has not been claimed by its owner yet: they must run `sparegrid agents claim CODE` first", id)
		}
		if err != nil {
			return err
		}
		a.cfg.Log.Info("agent decided", "agent", id, "state", state, "by", caller(r).Name)
		writeJSON(w, http.StatusOK, agentView(ag))
		return nil
	}
}

func (a *API) uploadSource(w http.ResponseWriter, r *http.Request) error {
	sha := r.URL.Query().Get("sha256")
	if !blobs.ValidDigest(sha) {
		return badRequest("query parameter sha256 must be 64 lowercase hex digits")
	}
	if r.ContentLength < 0 {
		return errf(http.StatusLengthRequired, "bad_request", "send a Content-Length")
	}
	if r.ContentLength > a.cfg.MaxSource {
		return errf(http.StatusRequestEntityTooLarge, "too_large", "source package is %d bytes; this coordinator accepts at most %d", r.ContentLength, a.cfg.MaxSource)
	}
	if err := a.cfg.Blobs.Put(r.Body, sha, r.ContentLength); err != nil {
		if errors.Is(err, blobs.ErrDigestMismatch) || errors.Is(err, blobs.ErrSizeMismatch) {
			return badRequest("%v", err)
		}
		return err
	}
	if err := a.cfg.Store.AddBlob(r.Context(), store.Blob{SHA256: sha, Size: r.ContentLength, CreatedAt: a.cfg.Now()}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, apiv1.SourceRef{SHA256: sha, Size: r.ContentLength})
	return nil
}
