// Package gateway owns the coordinator's side of the agent protocol: it
// accepts agent sessions, authenticates agents, hands out leases (keeping
// each job from the agents the blocklist keeps it off, and naming the
// tests the blocklist skips), takes blobs and verifies signed results
// before the store commits them.
//
// It trusts nothing an agent says about itself: ownership, approval state
// and keys come from the store, and every lease-bound call is checked
// against the current attempt. It must not serve humans (see package api).
package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/auth"
	"github.com/sparegrid/sparegrid/coordinator/blobs"
	"github.com/sparegrid/sparegrid/coordinator/blocklist"
	"github.com/sparegrid/sparegrid/coordinator/intake"
	"github.com/sparegrid/sparegrid/coordinator/queue"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/sign"
	"github.com/sparegrid/sparegrid/shared/transport"
	"github.com/sparegrid/sparegrid/shared/version"
)

// Config holds what the gateway needs. Zero durations take defaults.
type Config struct {
	Store      store.Store
	Blobs      *blobs.Store
	Issuer     *auth.Issuer
	Challenges *auth.Challenges
	Jobs       *queue.Notifier
	// LeaseTTL is how long a lease lives without a heartbeat (default 90s).
	LeaseTTL time.Duration
	// MaxLeaseWait caps how long a Lease call is held open (default 30s).
	MaxLeaseWait time.Duration
	// MaxBlob caps one uploaded blob (default 1 GiB).
	MaxBlob int64
	// RetryElsewhere is how long a job queued again after an
	// infrastructure failure waits for an agent other than the one it
	// failed on, while another agent is online (default
	// DefaultRetryElsewhere; negative turns the preference off).
	RetryElsewhere time.Duration
	// Demo approves new agents at once and labels them so. Never set it
	// on a grid that strangers can reach.
	Demo bool
	// OnDone, when set, is called after a result ended a job (not after
	// one that queued it again). It runs on the agent's call, after the
	// result is stored: it must return quickly and must not fail the call.
	OnDone func(store.Job)
	// Metrics, when set, is told what the gateway did; nil counts nothing.
	Metrics Metrics
	Now     func() time.Time
	Log     *slog.Logger
}

// Metrics counts what the gateway does. Its methods are called on agents'
// calls and must return quickly.
type Metrics interface {
	// Session counts an agent session accepted on a transport.
	Session(transport string)
	// Leased counts a job leased over a transport.
	Leased(transport string)
	// Result counts a stored result: verdict is the job's verdict when
	// the result ended it, tmpfail when it queued the job again.
	Result(verdict dep8.Verdict, transport string)
	// Expired counts n leases that expired.
	Expired(n int)
}

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) Session(string)              {}
func (noMetrics) Leased(string)               {}
func (noMetrics) Result(dep8.Verdict, string) {}
func (noMetrics) Expired(int)                 {}

// DefaultRetryElsewhere is Config.RetryElsewhere when it is zero.
const DefaultRetryElsewhere = 10 * time.Minute

// onlineWindow is how recently an agent must have been heard from to count
// as online when a retry prefers another agent.
const onlineWindow = 2 * time.Minute

// maxPauseReason caps the pause reason an agent may report.
const maxPauseReason = 200

// DemoLabel marks agents approved automatically by a demo coordinator.
const DemoLabel = "demo-auto-approved"

// Gateway implements protocol.Handler.
type Gateway struct {
	cfg Config
	// polling counts the Lease calls waiting for work.
	polling atomic.Int64
}

var _ protocol.Handler = (*Gateway)(nil)

// New returns a Gateway.
func New(cfg Config) *Gateway {
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 90 * time.Second
	}
	if cfg.MaxLeaseWait <= 0 {
		cfg.MaxLeaseWait = 30 * time.Second
	}
	if cfg.MaxBlob <= 0 {
		cfg.MaxBlob = 1 << 30
	}
	if cfg.RetryElsewhere == 0 {
		cfg.RetryElsewhere = DefaultRetryElsewhere
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Jobs == nil {
		cfg.Jobs = queue.NewNotifier()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	return &Gateway{cfg: cfg}
}

// Serve accepts sessions from every listener until ctx is done, and
// requeues expired leases every few seconds. It returns nil when ctx ends,
// or the first accept error of any listener once all have stopped.
func (g *Gateway) Serve(ctx context.Context, listeners ...transport.Listener) error {
	srv := &protocol.Server{Handler: g, MaxBlob: g.cfg.MaxBlob, Log: g.cfg.Log}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { g.reapLeases(actx) })
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		wg.Go(func() {
			err := g.accept(ctx, actx, srv, l)
			if err != nil {
				cancel()
			}
			errc <- err
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return err
		}
	}
	return nil
}

// accept hands l's sessions to srv until actx ends; sessions live on ctx.
func (g *Gateway) accept(ctx, actx context.Context, srv *protocol.Server, l transport.Listener) error {
	for {
		sess, err := l.Accept(actx)
		if err != nil {
			if actx.Err() != nil {
				return nil
			}
			return fmt.Errorf("gateway: accept on %s: %w", l.Addr(), err)
		}
		g.cfg.Log.Debug("agent session", "remote", sess.RemoteAddr(), "transport", sess.Transport())
		g.cfg.Metrics.Session(sess.Transport())
		go srv.ServeSession(ctx, sess)
	}
}

func (g *Gateway) reapLeases(ctx context.Context) {
	t := time.NewTicker(g.reapEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids, err := g.cfg.Store.ExpireLeases(ctx, g.cfg.Now())
		if err != nil {
			g.cfg.Log.Error("expire leases", "err", err)
			continue
		}
		if len(ids) > 0 {
			g.cfg.Log.Info("leases expired; jobs requeued", "jobs", ids)
			g.cfg.Metrics.Expired(len(ids))
			g.cfg.Jobs.Notify()
		}
	}
}

// HeartbeatInterval is a third of the lease TTL, so two heartbeats may be
// lost before a lease expires.
func (g *Gateway) HeartbeatInterval() time.Duration { return g.cfg.LeaseTTL / 3 }

// reapEvery is how often expired leases are looked for: a tenth of a
// heartbeat interval, at least 100ms.
func (g *Gateway) reapEvery() time.Duration {
	return max(g.HeartbeatInterval()/10, 100*time.Millisecond)
}

// leaseLife is how long a lease or heartbeat keeps a job: the TTL less one
// reaping period, so a job whose agent vanished is queued again at most
// three heartbeat intervals after its last heartbeat (or its lease).
func (g *Gateway) leaseLife() time.Duration { return g.cfg.LeaseTTL - g.reapEvery() }

// Hello implements protocol.Handler.
func (g *Gateway) Hello(ctx context.Context, req protocol.Hello) (protocol.HelloReply, error) {
	reply := protocol.HelloReply{ProtocolVersion: version.Protocol, CoordinatorVersion: version.Version}
	if req.ProtocolVersion != version.Protocol {
		return reply, protocol.Errorf(protocol.ErrVersion,
			"agent %s speaks protocol %d but this coordinator (%s) speaks %d: install the sparegrid-agent that matches the coordinator",
			req.AgentVersion, req.ProtocolVersion, version.Version, version.Protocol)
	}
	return reply, nil
}

var agentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Register implements protocol.Handler.
func (g *Gateway) Register(ctx context.Context, req protocol.RegisterRequest) (protocol.RegisterReply, error) {
	if len(req.PublicKey) != ed25519.PublicKeySize {
		return protocol.RegisterReply{}, protocol.Errorf(protocol.ErrBadRequest, "public key must be %d bytes of Ed25519, got %d", ed25519.PublicKeySize, len(req.PublicKey))
	}
	if !agentName.MatchString(req.Name) {
		return protocol.RegisterReply{}, protocol.Errorf(protocol.ErrBadRequest, "agent name %q: use letters, digits, '.', '_' and '-', at most 63", req.Name)
	}
	owner, err := g.cfg.Store.AccountByName(ctx, strings.TrimPrefix(req.Owner, "~"))
	if errors.Is(err, store.ErrNotFound) {
		return protocol.RegisterReply{}, protocol.Errorf(protocol.ErrNotFound, "no account %q on this coordinator: ask an admin to create it", req.Owner)
	}
	if err != nil {
		return protocol.RegisterReply{}, err
	}
	code, err := claimCode()
	if err != nil {
		return protocol.RegisterReply{}, err
	}
	a := store.Agent{Name: req.Name, OwnerID: owner.ID, PublicKey: req.PublicKey, State: store.AgentPending, ClaimCode: code}
	if g.cfg.Demo {
		a.State = store.AgentApproved
		a.AutoApproved = true
		a.Labels = []string{DemoLabel}
		a.DecidedBy = "demo mode"
	}
	a, err = g.cfg.Store.CreateAgent(ctx, a)
	if err != nil {
		return protocol.RegisterReply{}, err
	}
	g.cfg.Log.Info("agent registered", "agent", a.ID, "name", a.Name, "owner", owner.Name, "state", a.State)
	return protocol.RegisterReply{AgentID: a.ID, ClaimCode: a.ClaimCode, State: string(a.State)}, nil
}

// claimCode returns a short code that is easy to read aloud: eight
// characters from an alphabet without 0/O and 1/I/L.
func claimCode() (string, error) {
	const alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:4]) + "-" + string(b[4:]), nil
}

// approvedAgent returns the agent if it may work, or the refusal that
// tells its owner what to do.
func (g *Gateway) approvedAgent(ctx context.Context, id int64) (store.Agent, error) {
	a, err := g.cfg.Store.Agent(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return a, protocol.Errorf(protocol.ErrUnknownAgent, "no agent %d on this coordinator: register again", id)
	}
	if err != nil {
		return a, err
	}
	switch a.State {
	case store.AgentApproved:
		return a, nil
	case store.AgentRejected:
		return a, protocol.Errorf(protocol.ErrRejected, "agent %d was rejected by %s", id, a.DecidedBy)
	}
	if a.ClaimedAt == nil {
		return a, protocol.Errorf(protocol.ErrPending, "agent %d is not approved yet: its owner %s must claim it (sparegrid agents claim CODE), then an admin must approve it", id, a.Owner)
	}
	return a, protocol.Errorf(protocol.ErrPending, "agent %d is claimed by %s and waits for an admin to approve it (sparegrid agents approve %d)", id, a.Owner, id)
}

// Challenge implements protocol.Handler.
func (g *Gateway) Challenge(ctx context.Context, req protocol.ChallengeRequest) (protocol.ChallengeReply, error) {
	if _, err := g.approvedAgent(ctx, req.AgentID); err != nil {
		return protocol.ChallengeReply{}, err
	}
	nonce, exp := g.cfg.Challenges.Issue(req.AgentID)
	return protocol.ChallengeReply{Nonce: nonce, Expires: exp}, nil
}

// Token implements protocol.Handler.
func (g *Gateway) Token(ctx context.Context, req protocol.TokenRequest) (protocol.TokenReply, error) {
	a, err := g.approvedAgent(ctx, req.AgentID)
	if err != nil {
		return protocol.TokenReply{}, err
	}
	if err := g.cfg.Challenges.Redeem(req.AgentID, req.Nonce); err != nil {
		return protocol.TokenReply{}, protocol.Errorf(protocol.ErrUnauthenticated, "challenge: %v; ask for a new one", err)
	}
	if len(a.PublicKey) != ed25519.PublicKeySize || !ed25519.Verify(a.PublicKey, protocol.ChallengeMessage(req.AgentID, req.Nonce), req.Signature) {
		return protocol.TokenReply{}, protocol.Errorf(protocol.ErrBadSignature, "challenge signature does not match agent %d's registered key", req.AgentID)
	}
	tok, exp, err := g.cfg.Issuer.Mint(req.AgentID)
	if err != nil {
		return protocol.TokenReply{}, err
	}
	return protocol.TokenReply{Token: tok, Expires: exp}, nil
}

// authenticate checks an agent token and that its agent may still work.
func (g *Gateway) authenticate(ctx context.Context, token string) (store.Agent, error) {
	if token == "" {
		return store.Agent{}, protocol.Errorf(protocol.ErrUnauthenticated, "this call needs an agent token")
	}
	id, err := g.cfg.Issuer.Verify(token)
	if err != nil {
		return store.Agent{}, protocol.Errorf(protocol.ErrUnauthenticated, "agent token refused: %v", err)
	}
	return g.approvedAgent(ctx, id)
}

// Lease implements protocol.Handler.
func (g *Gateway) Lease(ctx context.Context, token string, req protocol.LeaseRequest) (protocol.LeaseReply, error) {
	a, err := g.authenticate(ctx, token)
	if err != nil {
		return protocol.LeaseReply{}, err
	}
	caps := req.Capabilities
	if !dep8.ValidSuite(caps.Arch) {
		return protocol.LeaseReply{}, protocol.Errorf(protocol.ErrBadRequest, "capabilities: bad arch %q", caps.Arch)
	}
	for _, r := range caps.Releases {
		if !dep8.ValidSuite(r) {
			return protocol.LeaseReply{}, protocol.Errorf(protocol.ErrBadRequest, "capabilities: bad release %q", r)
		}
	}
	if err := g.cfg.Store.SeenAgent(ctx, a.ID, g.cfg.Now(), mustJSON(caps)); err != nil {
		return protocol.LeaseReply{}, err
	}
	paused := pauseReason(req.Paused)
	if paused != a.Paused {
		if err := g.cfg.Store.PauseAgent(ctx, a.ID, paused, g.cfg.Now()); err != nil {
			return protocol.LeaseReply{}, err
		}
		if paused != "" {
			g.cfg.Log.Warn("agent paused itself", "agent", a.ID, "reason", paused)
		} else {
			g.cfg.Log.Info("agent takes work again", "agent", a.ID, "was", a.Paused)
		}
	}
	if paused != "" {
		return protocol.LeaseReply{}, nil
	}
	wait := min(max(req.Wait, 0), g.cfg.MaxLeaseWait)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	g.polling.Add(1)
	defer g.polling.Add(-1)
	for {
		woken := g.cfg.Jobs.Wait()
		// A caller that gave up while this call waited gets nothing, even
		// when work arrived at the same moment (select would pick either).
		if err := ctx.Err(); err != nil {
			return protocol.LeaseReply{}, err
		}
		job, err := g.lease(ctx, a, caps)
		if err != nil || job != nil {
			return protocol.LeaseReply{Job: job}, err
		}
		select {
		case <-ctx.Done():
			return protocol.LeaseReply{}, ctx.Err()
		case <-deadline.C:
			return protocol.LeaseReply{}, nil
		case <-woken:
		case <-time.After(5 * time.Second):
		}
	}
}

// pauseReason makes an agent's pause reason safe to store and show: one
// line of printable text, at most maxPauseReason bytes.
func pauseReason(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > maxPauseReason {
		s = strings.ToValidUTF8(s[:maxPauseReason], "")
	}
	return s
}

func (g *Gateway) lease(ctx context.Context, a store.Agent, caps protocol.Capabilities) (*protocol.Job, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	now := g.cfg.Now()
	rules, err := g.cfg.Store.BlockRules(ctx, now, false)
	if err != nil {
		return nil, err
	}
	holds, err := g.cfg.Store.Holds(ctx)
	if err != nil {
		return nil, err
	}
	p := store.LeaseParams{
		AgentID:        a.ID,
		Arch:           caps.Arch,
		Releases:       caps.Releases,
		TTL:            g.leaseLife(),
		Now:            now,
		Nonce:          hex.EncodeToString(nonce),
		RetryElsewhere: max(g.cfg.RetryElsewhere, 0),
		OnlineSince:    now.Add(-onlineWindow),
	}
	var passed []passedOver
	scoped := scopedBlocks(rules)
	agentCaps := intake.WithAdminLabels(caps.AgentCaps(a.ID), a.Labels)
	p.Exclude = func(j store.Job) bool {
		if h := store.HeldBy(holds, j.Release, j.Arch, agentCaps.Labels); h != nil {
			passed = append(passed, passedOver{job: j.ID, why: fmt.Sprintf("%s is on hold by %s: %s", h.Scope, h.By, h.Reason)})
			return true
		}
		if ok, why := j.Needs.Capable(agentCaps, j.Arch); !ok {
			passed = append(passed, passedOver{job: j.ID, why: "cannot run it: " + why})
			return true
		}
		if len(scoped) == 0 {
			return false
		}
		r := blocklist.Decide(scoped, target(j, agentCaps), now).Blocked
		if r != nil {
			passed = append(passed, passedOver{job: j.ID, why: "blocked on this agent: " + blocklist.Explain(*r)})
		}
		return r != nil
	}
	j, err := g.cfg.Store.LeaseJob(ctx, p)
	for _, po := range passed {
		g.cfg.Log.Debug("job passed over", "job", po.job, "agent", a.ID, "why", po.why)
	}
	if err != nil || j == nil {
		return nil, err
	}
	g.cfg.Log.Info("job leased", "job", j.ID, "attempt", j.Attempt, "agent", a.ID, "package", j.Package)
	si, _ := protocol.SessionFromContext(ctx)
	g.cfg.Metrics.Leased(si.Transport)
	pj := &protocol.Job{
		ID:                j.ID,
		Attempt:           j.Attempt,
		Nonce:             j.Nonce,
		Package:           j.Package,
		Version:           j.Version,
		Release:           j.Release,
		Arch:              j.Arch,
		Triggers:          j.Triggers,
		Tests:             j.Tests,
		AptSources:        j.AptSources,
		HeartbeatInterval: g.HeartbeatInterval(),
	}
	if j.LeaseExpires != nil {
		pj.LeaseExpires = *j.LeaseExpires
	}
	if s := j.Source; s != nil {
		pj.Source = &protocol.Source{SHA256: s.SHA256, Size: s.Size, Kind: s.Kind, Entry: s.Entry}
	}
	for _, sk := range blocklist.Decide(rules, target(*j, agentCaps), now).Skips {
		why := fmt.Sprintf("skipping test %s: %s", sk.Test, blocklist.Explain(sk.Rule))
		g.cfg.Log.Info(fmt.Sprintf("job %d attempt %d: %s", j.ID, j.Attempt, why), "agent", a.ID)
		pj.SkipTests = append(pj.SkipTests, sk.Test)
		pj.SkipReasons = append(pj.SkipReasons, why)
	}
	return pj, nil
}

// passedOver is a queued job kept from an agent, and why.
type passedOver struct {
	job int64
	why string
}

// scopedBlocks returns the whole-job rules scoped to an agent or a label:
// the only ones that can keep a queued job from an agent. Unscoped rules
// are applied when a job is submitted, where force may override them, so
// a job in the queue already passed them.
func scopedBlocks(rules []store.BlockRule) []store.BlockRule {
	var out []store.BlockRule
	for _, r := range rules {
		if r.Test == "" && (r.AgentID != 0 || r.Label != "") {
			out = append(out, r)
		}
	}
	return out
}

// target is job j on agent a, with the labels the coordinator records for
// a.
// target is what blocklist rules match a job on an agent against: the
// agent's labels are those routing sees (what it claims, with the admin's
// labels applied), not the admin's label settings as written.
func target(j store.Job, a dep8.AgentCaps) blocklist.Target {
	return blocklist.Target{Package: j.Package, Version: j.Version, Release: j.Release, Arch: j.Arch, AgentID: a.ID, Labels: a.Labels}
}

// leaseError turns the store's stale-lease refusal into the agent's.
func leaseError(err error, jobID int64, attempt int) error {
	if errors.Is(err, store.ErrStaleLease) || errors.Is(err, store.ErrNotFound) {
		return protocol.Errorf(protocol.ErrStaleLease, "job %d attempt %d is not leased to this agent (expired, cancelled, or superseded by a later attempt)", jobID, attempt)
	}
	return err
}

// Heartbeat implements protocol.Handler.
func (g *Gateway) Heartbeat(ctx context.Context, token string, req protocol.HeartbeatRequest) (protocol.HeartbeatReply, error) {
	a, err := g.authenticate(ctx, token)
	if err != nil {
		return protocol.HeartbeatReply{}, err
	}
	now := g.cfg.Now()
	until := now.Add(g.leaseLife())
	stage := req.Stage
	if len(stage) > 32 {
		stage = stage[:32]
	}
	ref := store.LeaseRef{JobID: req.JobID, Attempt: req.Attempt, AgentID: a.ID}
	if _, err := g.cfg.Store.ExtendLease(ctx, ref, now, until, stage); err != nil {
		return protocol.HeartbeatReply{}, leaseError(err, req.JobID, req.Attempt)
	}
	if err := g.cfg.Store.SeenAgent(ctx, a.ID, now, nil); err != nil {
		return protocol.HeartbeatReply{}, err
	}
	return protocol.HeartbeatReply{LeaseExpires: until}, nil
}

// validBlobName accepts relative slash paths inside an output directory.
func validBlobName(name string) bool {
	if name == "" || len(name) > 255 || strings.HasPrefix(name, "/") || path.Clean(name) != name || name == "." {
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return false
		}
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// UploadBlob implements protocol.Handler.
func (g *Gateway) UploadBlob(ctx context.Context, token string, hdr protocol.BlobHeader, r io.Reader) (protocol.BlobReceipt, error) {
	a, err := g.authenticate(ctx, token)
	if err != nil {
		return protocol.BlobReceipt{}, err
	}
	if !validBlobName(hdr.Name) {
		return protocol.BlobReceipt{}, protocol.Errorf(protocol.ErrBadRequest, "blob name %q is not a clean relative path", hdr.Name)
	}
	if !blobs.ValidDigest(hdr.SHA256) {
		return protocol.BlobReceipt{}, protocol.Errorf(protocol.ErrBadRequest, "blob %q: sha256 %q is not 64 lowercase hex digits", hdr.Name, hdr.SHA256)
	}
	ref := store.LeaseRef{JobID: hdr.JobID, Attempt: hdr.Attempt, AgentID: a.ID}
	if _, err := g.cfg.Store.CheckLease(ctx, ref, g.cfg.Now()); err != nil {
		return protocol.BlobReceipt{}, leaseError(err, hdr.JobID, hdr.Attempt)
	}
	if err := g.cfg.Blobs.Put(r, hdr.SHA256, hdr.Size); err != nil {
		if errors.Is(err, blobs.ErrDigestMismatch) || errors.Is(err, blobs.ErrSizeMismatch) {
			return protocol.BlobReceipt{}, protocol.Errorf(protocol.ErrDigestMismatch, "blob %q: %v", hdr.Name, err)
		}
		return protocol.BlobReceipt{}, err
	}
	if err := g.cfg.Store.AddBlob(ctx, store.Blob{SHA256: hdr.SHA256, Size: hdr.Size, CreatedAt: g.cfg.Now()}); err != nil {
		return protocol.BlobReceipt{}, err
	}
	return protocol.BlobReceipt{SHA256: hdr.SHA256, Size: hdr.Size}, nil
}

// OpenBlob implements protocol.Handler: an agent may fetch only the source
// package of a job it holds.
func (g *Gateway) OpenBlob(ctx context.Context, token string, req protocol.FetchBlobRequest) (protocol.BlobHeader, io.ReadCloser, error) {
	a, err := g.authenticate(ctx, token)
	if err != nil {
		return protocol.BlobHeader{}, nil, err
	}
	j, err := g.cfg.Store.CheckLease(ctx, store.LeaseRef{JobID: req.JobID, Attempt: req.Attempt, AgentID: a.ID}, g.cfg.Now())
	if err != nil {
		return protocol.BlobHeader{}, nil, leaseError(err, req.JobID, req.Attempt)
	}
	if j.Source == nil || j.Source.SHA256 != req.SHA256 {
		return protocol.BlobHeader{}, nil, protocol.Errorf(protocol.ErrForbidden, "blob %s is not the source of job %d", req.SHA256, req.JobID)
	}
	rc, size, err := g.cfg.Blobs.Open(req.SHA256)
	if err != nil {
		return protocol.BlobHeader{}, nil, err
	}
	return protocol.BlobHeader{JobID: j.ID, Attempt: j.Attempt, Name: "source.tar", Size: size, SHA256: req.SHA256}, rc, nil
}

// Result implements protocol.Handler. It verifies the envelope against the
// agent's registered key and the job's current lease before anything is
// stored, and answers only after the store has committed.
func (g *Gateway) Result(ctx context.Context, token string, req protocol.ResultRequest) (protocol.ResultReply, error) {
	a, err := g.authenticate(ctx, token)
	if err != nil {
		return protocol.ResultReply{}, err
	}
	key := protocol.ResultKey(req.Envelope)
	if req.IdempotencyKey != "" && req.IdempotencyKey != key {
		return protocol.ResultReply{}, protocol.Errorf(protocol.ErrBadRequest, "result for job %d: idempotency key is not the sha256 of the envelope", req.JobID)
	}
	ref := store.LeaseRef{JobID: req.JobID, Attempt: req.Attempt, AgentID: a.ID}
	j, err := g.cfg.Store.CheckLease(ctx, ref, g.cfg.Now())
	if err != nil {
		return g.duplicate(ctx, err, ref, key)
	}
	env, err := sign.ParseEnvelope(req.Envelope)
	if err != nil {
		return protocol.ResultReply{}, protocol.Errorf(protocol.ErrBadRequest, "result envelope: %v", err)
	}
	tr, err := sign.VerifyResult(env, ed25519.PublicKey(a.PublicKey))
	if err != nil {
		if errors.Is(err, sign.ErrWrongKey) || errors.Is(err, sign.ErrBadSignature) {
			return protocol.ResultReply{}, protocol.Errorf(protocol.ErrBadSignature, "result for job %d is not signed by agent %d's registered key", req.JobID, a.ID)
		}
		return protocol.ResultReply{}, protocol.Errorf(protocol.ErrBadRequest, "result statement: %v", err)
	}
	if err := checkStatement(tr, j, req); err != nil {
		return protocol.ResultReply{}, err
	}
	refs := make([]store.BlobRef, 0, len(tr.Blobs))
	for _, b := range tr.Blobs {
		if _, err := g.cfg.Store.Blob(ctx, b.SHA256); err != nil {
			return protocol.ResultReply{}, protocol.Errorf(protocol.ErrBadRequest, "result names blob %q (%s) that was never uploaded", b.Name, b.SHA256)
		}
		refs = append(refs, store.BlobRef{Name: b.Name, SHA256: b.SHA256, Size: b.Size})
	}
	si, _ := protocol.SessionFromContext(ctx)
	done, err := g.cfg.Store.CompleteJob(ctx, store.Result{
		JobID:          req.JobID,
		Attempt:        req.Attempt,
		AgentID:        a.ID,
		Verdict:        tr.Verdict,
		ExitCode:       tr.ExitCode,
		Tests:          tr.Tests,
		Harness:        tr.Harness,
		Envelope:       req.Envelope,
		Blobs:          refs,
		Transport:      si.Transport,
		IdempotencyKey: key,
		CreatedAt:      g.cfg.Now(),
	}, g.cfg.Now())
	if err != nil {
		return g.duplicate(ctx, err, ref, key)
	}
	g.cfg.Log.Info("result stored", "job", done.ID, "attempt", req.Attempt, "agent", a.ID, "verdict", tr.Verdict, "job_state", done.State)
	if done.State == store.JobQueued {
		g.cfg.Metrics.Result(dep8.VerdictTmpfail, si.Transport)
		g.cfg.Jobs.Notify()
	} else {
		g.cfg.Metrics.Result(done.Verdict, si.Transport)
	}
	if done.State == store.JobDone && g.cfg.OnDone != nil {
		g.cfg.OnDone(done)
	}
	return protocol.ResultReply{Verdict: tr.Verdict}, nil
}

// duplicate answers a result the store refused with err: when the same
// result (by key) was stored before for the same attempt and agent, it is
// acknowledged again, so an agent that lost the first acknowledgement can
// forget it; otherwise the refusal stands.
func (g *Gateway) duplicate(ctx context.Context, err error, ref store.LeaseRef, key string) (protocol.ResultReply, error) {
	if errors.Is(err, store.ErrStaleLease) || errors.Is(err, store.ErrNotFound) {
		prev, perr := g.cfg.Store.ResultByKey(ctx, key)
		if perr == nil && prev.Ref() == ref {
			g.cfg.Log.Info("duplicate result acknowledged", "job", ref.JobID, "attempt", ref.Attempt, "agent", ref.AgentID)
			return protocol.ResultReply{Verdict: prev.Verdict, Duplicate: true}, nil
		}
		if perr != nil && !errors.Is(perr, store.ErrNotFound) {
			return protocol.ResultReply{}, perr
		}
	}
	return protocol.ResultReply{}, leaseError(err, ref.JobID, ref.Attempt)
}

// checkStatement makes sure the signed statement is about this attempt of
// this job and is internally consistent.
func checkStatement(tr sign.TestResult, j store.Job, req protocol.ResultRequest) error {
	bad := func(format string, args ...any) error {
		return protocol.Errorf(protocol.ErrBadRequest, "result for job %d: "+format, append([]any{req.JobID}, args...)...)
	}
	switch {
	case tr.JobID != req.JobID || tr.Attempt != req.Attempt:
		return protocol.Errorf(protocol.ErrStaleLease, "signed statement is for job %d attempt %d, not job %d attempt %d", tr.JobID, tr.Attempt, req.JobID, req.Attempt)
	case tr.Nonce != j.Nonce:
		return protocol.Errorf(protocol.ErrStaleLease, "signed statement carries another attempt's nonce")
	case tr.Package != j.Package || tr.Release != j.Release || tr.Arch != j.Arch:
		return bad("statement is about %s on %s/%s, the job is %s on %s/%s", tr.Package, tr.Release, tr.Arch, j.Package, j.Release, j.Arch)
	}
	switch tr.Verdict {
	case dep8.VerdictPass, dep8.VerdictFail, dep8.VerdictNeutral, dep8.VerdictTmpfail:
	default:
		return bad("an agent may not report verdict %q", tr.Verdict)
	}
	if tr.ExitCode < math.MinInt16 || tr.ExitCode > math.MaxInt16 {
		return bad("exit code %d out of range", tr.ExitCode)
	}
	// A tmpfail may come from an agent that never got as far as a testbed
	// (no image, a failed fetch), so only real verdicts need the whole
	// harness revision.
	if err := tr.Harness.Validate(); err != nil && tr.Verdict != dep8.VerdictTmpfail {
		return bad("%v", err)
	}
	for _, t := range tr.Tests {
		if !t.Result.Valid() || t.Name == "" {
			return bad("test %q has result %q", t.Name, t.Result)
		}
	}
	return nil
}
