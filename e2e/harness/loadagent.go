package harness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/sign"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
	"github.com/sparegrid/sparegrid/shared/transport"
	"github.com/sparegrid/sparegrid/shared/version"
)

// LoadOptions configures synthetic agents. A zero field takes its default.
type LoadOptions struct {
	// Agents is how many synthetic agents StartLoad runs (default 4).
	Agents int
	// Name prefixes the agents' names (default "load").
	Name string
	// Owner names the account the agents are registered under and
	// OwnerToken is its API token, used to claim them. Both are required.
	Owner      string
	OwnerToken string
	// Arch and Releases are the capabilities sent with every lease
	// (default amd64 and bookworm).
	Arch     string
	Releases []string
	// MinLog and MaxLog bound the size of each job's random log (default
	// 4 KiB and 256 KiB).
	MinLog, MaxLog int
	// MaxRunTime bounds the pretend test time between lease and upload
	// (default 50ms; negative means none).
	MaxRunTime time.Duration
	// TmpfailRate is the fraction of results reported as tmpfail.
	TmpfailRate float64
	// LeaseWait is the wait asked for in each Lease call (default 2s).
	LeaseWait time.Duration
	// Seed makes the agents' choices repeatable.
	Seed uint64
}

func (o LoadOptions) withDefaults() LoadOptions {
	if o.Agents <= 0 {
		o.Agents = 4
	}
	if o.Name == "" {
		o.Name = "load"
	}
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	if len(o.Releases) == 0 {
		o.Releases = []string{"bookworm"}
	}
	if o.MinLog <= 0 {
		o.MinLog = 4 << 10
	}
	if o.MaxLog < o.MinLog {
		o.MaxLog = max(o.MinLog, 256<<10)
	}
	if o.MaxRunTime == 0 {
		o.MaxRunTime = 50 * time.Millisecond
	}
	if o.LeaseWait <= 0 {
		o.LeaseWait = 2 * time.Second
	}
	return o
}

// Timeouts of a synthetic agent. A killed coordinator answers nothing, so
// a session to it ends only when its idle timeout passes and a call to it
// only at its deadline: both are short, so that a result is re-sent well
// within a lease.
const (
	loadDialTimeout = 3 * time.Second
	loadCallTimeout = 5 * time.Second
	loadBackoffBase = 100 * time.Millisecond
	loadBackoffMax  = 2 * time.Second
	loadIdleTimeout = 4 * time.Second
	loadKeepAlive   = time.Second
)

// loadBackend names the synthetic agents' backend and autopkgtest.
const loadBackend = "synthetic"

// errLoadRefused wraps a refusal a synthetic agent did not expect.
var errLoadRefused = errors.New("harness: load agent refused")

// Ack is a result the coordinator acknowledged.
type Ack struct {
	Agent   string
	JobID   int64
	Attempt int
	// Key is the idempotency key sent with the result.
	Key      string
	Envelope []byte
	Verdict  dep8.Verdict
	Blobs    []sign.Blob
	// Sends counts how often the result was sent before it was
	// acknowledged; more than one means it was re-sent after a transport
	// failure.
	Sends int
	// Duplicate is the coordinator's word that it had stored the result
	// before.
	Duplicate bool
}

// Refusal is a result the coordinator refused as stale after it was sent
// at least once.
type Refusal struct {
	Agent   string
	JobID   int64
	Attempt int
	Key     string
	Sends   int
	Err     string
}

// LoadStats counts what one synthetic agent did.
type LoadStats struct {
	Name   string
	ID     int64
	Leased int
	Acked  int
	Resent int
	Stale  int
	// Dials counts sessions opened, the registration's included;
	// Redials counts sessions given up as broken.
	Dials   int
	Redials int
	// Pending is set while a result awaits its acknowledgement.
	Pending bool
	Errors  []string
}

func (s LoadStats) String() string {
	return fmt.Sprintf("%s (agent %d): leased %d, acked %d, resent %d, stale %d, dials %d (redials %d), pending %v, errors %d",
		s.Name, s.ID, s.Leased, s.Acked, s.Resent, s.Stale, s.Dials, s.Redials, s.Pending, len(s.Errors))
}

// LoadAgent is a synthetic agent: it enrols through the real protocol and
// CLI, then leases jobs and reports made-up but well-formed, signed results
// without running anything. It survives the coordinator going away: it
// redials with backoff and re-sends an unacknowledged result with the same
// idempotency key until it is acknowledged or refused as stale.
type LoadAgent struct {
	Name string
	ID   int64

	addr        string
	serverName  string
	fingerprint string
	key         ed25519.PrivateKey
	opts        LoadOptions
	rng         *rand.Rand

	mu      sync.Mutex
	tlsConf *tls.Config
	acks    []Ack
	refused []Refusal
	stats   LoadStats

	sess   transport.Session
	client *protocol.Client
	token  string

	// onAck, when set, is called after each acknowledgement.
	onAck func()
}

// NewLoadAgent registers a synthetic agent with c under opts.Owner, has
// the owner claim it and the admin approve it, and returns it ready to Run.
func NewLoadAgent(t testing.TB, c *Coordinator, name string, opts LoadOptions) *LoadAgent {
	t.Helper()
	opts = opts.withDefaults()
	if opts.Owner == "" || opts.OwnerToken == "" {
		t.Fatalf("harness: load agent %s needs an owner and the owner's token", name)
	}
	host, _, err := net.SplitHostPort(c.AgentsAddr)
	if err != nil {
		t.Fatalf("harness: coordinator agents address %q: %v", c.AgentsAddr, err)
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	seed := sha256.Sum256(append(fmt.Appendf(nil, "%d\x00", opts.Seed), name...))
	a := &LoadAgent{
		Name:        name,
		addr:        c.AgentsAddr,
		serverName:  host,
		key:         priv,
		opts:        opts,
		rng:         rand.New(rand.NewChaCha8(seed)),
		fingerprint: c.CASHA256,
		tlsConf:     tlsutil.PinnedClientConfig(c.CASHA256, host),
	}
	a.stats.Name = name

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := a.dial(ctx); err != nil {
		t.Fatalf("harness: load agent %s: %v", name, err)
	}
	reply, err := a.client.Register(ctx, protocol.RegisterRequest{Owner: opts.Owner, Name: name, PublicKey: pub})
	a.hangUp()
	if err != nil {
		t.Fatalf("harness: load agent %s: register: %v", name, err)
	}
	a.ID = reply.AgentID
	a.stats.ID = reply.AgentID
	if reply.State != "approved" {
		c.MustCLI(t, opts.OwnerToken, "agents", "claim", reply.ClaimCode)
		c.MustCLI(t, c.AdminToken, "agents", "approve", fmt.Sprint(reply.AgentID))
	}
	return a
}

// dial opens a session and says hello. The first dial pins the CA by its
// fingerprint and keeps the CA, as a registering agent does; later dials
// trust that CA alone.
func (a *LoadAgent) dial(ctx context.Context) error {
	a.mu.Lock()
	conf := a.tlsConf
	a.mu.Unlock()
	pinned := conf.RootCAs == nil
	dctx, cancel := context.WithTimeout(ctx, loadDialTimeout)
	defer cancel()
	sess, err := transport.DialQUIC(dctx, a.addr, conf, transport.Config{
		HandshakeTimeout: loadDialTimeout,
		IdleTimeout:      loadIdleTimeout,
		KeepAlive:        loadKeepAlive,
	})
	if err != nil {
		return err
	}
	if pinned {
		withCA, err := a.keepCA(sess)
		if err != nil {
			sess.Close("cannot keep the pinned CA")
			return err
		}
		a.mu.Lock()
		a.tlsConf = withCA
		a.mu.Unlock()
	}
	client := protocol.NewClient(sess)
	if _, err := client.Hello(dctx, protocol.Hello{ProtocolVersion: version.Protocol, AgentVersion: version.Version}); err != nil {
		sess.Close("hello failed")
		return fmt.Errorf("harness: hello: %w", err)
	}
	a.mu.Lock()
	a.sess, a.client, a.token = sess, client, ""
	a.stats.Dials++
	a.mu.Unlock()
	return nil
}

// keepCA takes the CA that the pinned handshake on sess verified and
// returns a TLS configuration that trusts it alone.
func (a *LoadAgent) keepCA(sess transport.Session) (*tls.Config, error) {
	cs, ok := transport.TLSConnectionState(sess)
	if !ok {
		return nil, fmt.Errorf("harness: session to %s exposes no TLS state", a.addr)
	}
	caPEM, err := tlsutil.CAFromConnectionState(cs, a.fingerprint)
	if err != nil {
		return nil, err
	}
	return tlsutil.ClientConfigWithCA(caPEM, a.serverName)
}

// hangUp closes the session, if any.
func (a *LoadAgent) hangUp() {
	a.mu.Lock()
	sess := a.sess
	a.sess, a.client, a.token = nil, nil, ""
	a.mu.Unlock()
	if sess != nil {
		sess.Close("load agent hangs up")
	}
}

// session returns the live client and a token, dialling and minting them
// as needed.
func (a *LoadAgent) session(ctx context.Context) (*protocol.Client, string, error) {
	a.mu.Lock()
	client, token := a.client, a.token
	a.mu.Unlock()
	if client != nil {
		select {
		case <-client.Session().Done():
			a.hangUp()
			a.mu.Lock()
			a.stats.Redials++
			a.mu.Unlock()
			client = nil
		default:
		}
	}
	if client == nil {
		if err := a.dial(ctx); err != nil {
			return nil, "", err
		}
		a.mu.Lock()
		client = a.client
		a.mu.Unlock()
	}
	if token == "" {
		cctx, cancel := context.WithTimeout(ctx, loadCallTimeout)
		defer cancel()
		ch, err := client.Challenge(cctx, protocol.ChallengeRequest{AgentID: a.ID})
		if err != nil {
			return nil, "", err
		}
		tr, err := client.Token(cctx, protocol.TokenRequest{
			AgentID:   a.ID,
			Nonce:     ch.Nonce,
			Signature: ed25519.Sign(a.key, protocol.ChallengeMessage(a.ID, ch.Nonce)),
		})
		if err != nil {
			return nil, "", err
		}
		token = tr.Token
		a.mu.Lock()
		if a.client == client {
			a.token = token
		}
		a.mu.Unlock()
	}
	return client, token, nil
}

// do runs call until it succeeds, the peer refuses it for good, or ctx
// ends. Transport failures (and calls that take longer than
// loadCallTimeout) close the session and try again on a new one after a
// backoff; an expired token is minted afresh; an internal error is retried.
func (a *LoadAgent) do(ctx context.Context, call func(ctx context.Context, c *protocol.Client, token string) error) error {
	delay := loadBackoffBase
	for {
		client, token, err := a.session(ctx)
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, loadCallTimeout)
			err = call(cctx, client, token)
			cancel()
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var pe *protocol.Error
		switch {
		case errors.Is(err, protocol.ErrUnauthenticated):
			a.mu.Lock()
			a.token = ""
			a.mu.Unlock()
		case errors.As(err, &pe) && protocol.Permanent(err):
			return err
		case errors.As(err, &pe):
			// The coordinator's own trouble: try again on the same session.
		default:
			a.hangUp()
			a.mu.Lock()
			a.stats.Redials++
			a.mu.Unlock()
		}
		d := delay/2 + time.Duration(a.jitter()*float64(delay/2))
		delay = min(2*delay, loadBackoffMax)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

func (a *LoadAgent) jitter() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rng.Float64()
}

func (a *LoadAgent) fail(format string, args ...any) {
	a.mu.Lock()
	a.stats.Errors = append(a.stats.Errors, fmt.Sprintf(format, args...))
	a.mu.Unlock()
}

// Run leases jobs and reports results until ctx ends; then it returns nil.
// Refusals it did not expect are recorded in its stats' Errors.
func (a *LoadAgent) Run(ctx context.Context) error {
	defer a.hangUp()
	for ctx.Err() == nil {
		var reply protocol.LeaseReply
		err := a.do(ctx, func(cctx context.Context, c *protocol.Client, token string) error {
			var err error
			reply, err = c.Lease(cctx, token, protocol.LeaseRequest{
				Capabilities: protocol.Capabilities{
					Arch:               a.opts.Arch,
					Releases:           a.opts.Releases,
					Backend:            loadBackend,
					AutopkgtestVersion: loadBackend,
					AgentVersion:       version.Version,
				},
				Wait: a.opts.LeaseWait,
			})
			return err
		})
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			a.fail("lease: %v", err)
			select {
			case <-ctx.Done():
			case <-time.After(loadBackoffMax):
			}
			continue
		case reply.Job == nil:
			continue
		}
		a.work(ctx, reply.Job)
	}
	return nil
}

// work pretends to run job, uploads a random log and reports a signed
// result, re-sending it until it is acknowledged or refused as stale.
func (a *LoadAgent) work(ctx context.Context, job *protocol.Job) {
	a.mu.Lock()
	a.stats.Leased++
	size := a.opts.MinLog + a.rng.IntN(a.opts.MaxLog-a.opts.MinLog+1)
	log := make([]byte, size)
	for i := range log {
		log[i] = byte(a.rng.Uint32())
	}
	roll := a.rng.Float64()
	var run time.Duration
	if a.opts.MaxRunTime > 0 {
		run = time.Duration(a.rng.Int64N(int64(a.opts.MaxRunTime)))
	}
	a.mu.Unlock()

	started := time.Now().UTC()
	select {
	case <-ctx.Done():
		return
	case <-time.After(run):
	}
	sum := sha256.Sum256(log)
	blob := sign.Blob{Name: "log", SHA256: hex.EncodeToString(sum[:]), Size: int64(size)}
	err := a.do(ctx, func(cctx context.Context, c *protocol.Client, token string) error {
		_, err := c.UploadBlob(cctx, token, protocol.BlobHeader{
			JobID: job.ID, Attempt: job.Attempt, Name: blob.Name, Size: blob.Size, SHA256: blob.SHA256,
		}, bytes.NewReader(log))
		return err
	})
	switch {
	case ctx.Err() != nil:
		return
	case errors.Is(err, protocol.ErrStaleLease):
		a.mu.Lock()
		a.stats.Stale++
		a.mu.Unlock()
		return
	case err != nil:
		a.fail("job %d attempt %d: upload: %v", job.ID, job.Attempt, err)
		return
	}

	tr := a.result(job, roll, blob, started)
	env, err := sign.SignResult(a.key, tr)
	if err != nil {
		a.fail("job %d attempt %d: sign: %v", job.ID, job.Attempt, err)
		return
	}
	envelope, err := env.Marshal()
	if err != nil {
		a.fail("job %d attempt %d: envelope: %v", job.ID, job.Attempt, err)
		return
	}
	req := protocol.ResultRequest{JobID: job.ID, Attempt: job.Attempt, Envelope: envelope, IdempotencyKey: protocol.ResultKey(envelope)}
	a.report(ctx, req, tr)
}

// result makes up a well-formed result for job: roll picks the verdict.
func (a *LoadAgent) result(job *protocol.Job, roll float64, log sign.Blob, started time.Time) sign.TestResult {
	tr := sign.TestResult{
		JobID: job.ID, Attempt: job.Attempt, Nonce: job.Nonce,
		Package: job.Package, Version: job.Version, Release: job.Release, Arch: job.Arch, Triggers: job.Triggers,
		Harness: dep8.Harness{
			AgentVersion:       version.Version,
			AutopkgtestVersion: loadBackend,
			Backend:            loadBackend,
			ImageDigest:        "sha256:" + strings.Repeat("0", 64),
		},
		Agent:      sign.AgentRef{ID: a.ID, KeyID: sign.KeyID(a.key.Public().(ed25519.PublicKey))},
		Blobs:      []sign.Blob{log},
		StartedAt:  started,
		FinishedAt: time.Now().UTC(),
	}
	switch {
	case roll < a.opts.TmpfailRate:
		tr.Verdict, tr.ExitCode = dep8.VerdictTmpfail, 16
	case roll < a.opts.TmpfailRate+(1-a.opts.TmpfailRate)/2:
		tr.Verdict, tr.ExitCode = dep8.VerdictPass, 0
		tr.Tests = []dep8.Test{{Name: "smoke", Result: dep8.Pass}, {Name: "upstream", Result: dep8.Pass}}
	default:
		tr.Verdict, tr.ExitCode = dep8.VerdictFail, 4
		tr.Tests = []dep8.Test{{Name: "smoke", Result: dep8.Pass}, {Name: "upstream", Result: dep8.Fail, Detail: "non-zero exit status 1"}}
	}
	return tr
}

// report sends req until it is acknowledged or refused, and records the
// outcome.
func (a *LoadAgent) report(ctx context.Context, req protocol.ResultRequest, tr sign.TestResult) {
	a.mu.Lock()
	a.stats.Pending = true
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.stats.Pending = false
		a.mu.Unlock()
	}()
	sends := 0
	var reply protocol.ResultReply
	err := a.do(ctx, func(cctx context.Context, c *protocol.Client, token string) error {
		sends++
		var err error
		reply, err = c.Result(cctx, token, req)
		return err
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil && a.onAck != nil {
		defer a.onAck()
	}
	if sends > 1 {
		a.stats.Resent++
	}
	switch {
	case err == nil:
		a.stats.Acked++
		a.acks = append(a.acks, Ack{
			Agent: a.Name, JobID: req.JobID, Attempt: req.Attempt, Key: req.IdempotencyKey,
			Envelope: req.Envelope, Verdict: tr.Verdict, Blobs: tr.Blobs, Sends: sends, Duplicate: reply.Duplicate,
		})
	case ctx.Err() != nil:
	case errors.Is(err, protocol.ErrStaleLease):
		a.stats.Stale++
		a.refused = append(a.refused, Refusal{
			Agent: a.Name, JobID: req.JobID, Attempt: req.Attempt, Key: req.IdempotencyKey, Sends: sends, Err: err.Error(),
		})
	default:
		a.stats.Errors = append(a.stats.Errors, fmt.Sprintf("job %d attempt %d: result: %v", req.JobID, req.Attempt, fmt.Errorf("%w: %w", errLoadRefused, err)))
	}
}

// Resend sends an acknowledged result again with its idempotency key, as
// an agent that lost the acknowledgement would, and returns the answer.
func (a *LoadAgent) Resend(ctx context.Context, ack Ack) (protocol.ResultReply, error) {
	var reply protocol.ResultReply
	err := a.do(ctx, func(cctx context.Context, c *protocol.Client, token string) error {
		var err error
		reply, err = c.Result(cctx, token, protocol.ResultRequest{
			JobID: ack.JobID, Attempt: ack.Attempt, Envelope: ack.Envelope, IdempotencyKey: ack.Key,
		})
		return err
	})
	return reply, err
}

// Stats returns what the agent has done so far.
func (a *LoadAgent) Stats() LoadStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Errors = append([]string(nil), s.Errors...)
	return s
}

// Acks returns the results the coordinator acknowledged, in order.
func (a *LoadAgent) Acks() []Ack {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Ack(nil), a.acks...)
}

// Refusals returns the results refused as stale.
func (a *LoadAgent) Refusals() []Refusal {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Refusal(nil), a.refused...)
}

// Load is a fleet of synthetic agents running until Stop.
type Load struct {
	Agents []*LoadAgent
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	acked int
	// more is closed and replaced at every acknowledgement.
	more chan struct{}
}

// StartLoad registers opts.Agents synthetic agents with c (named
// opts.Name-1, -2, ...) and runs them until Stop or the end of the test.
func StartLoad(t testing.TB, c *Coordinator, opts LoadOptions) *Load {
	t.Helper()
	opts = opts.withDefaults()
	l := &Load{more: make(chan struct{})}
	for i := range opts.Agents {
		a := NewLoadAgent(t, c, fmt.Sprintf("%s-%d", opts.Name, i+1), opts)
		a.onAck = l.noteAck
		l.Agents = append(l.Agents, a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for _, a := range l.Agents {
		l.wg.Go(func() { a.Run(ctx) })
	}
	t.Cleanup(l.Stop)
	return l
}

// Stop ends every agent's Run and waits for them. It is idempotent.
func (l *Load) Stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *Load) noteAck() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked++
	close(l.more)
	l.more = make(chan struct{})
}

// WaitAcked waits until the agents together have had at least n results
// acknowledged, or ctx ends.
func (l *Load) WaitAcked(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		acked, more := l.acked, l.more
		l.mu.Unlock()
		if acked >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("harness: %d of %d results acknowledged: %w", acked, n, ctx.Err())
		case <-more:
		}
	}
}

// Acks returns every agent's acknowledged results.
func (l *Load) Acks() []Ack {
	var out []Ack
	for _, a := range l.Agents {
		out = append(out, a.Acks()...)
	}
	return out
}

// Refusals returns every agent's results refused as stale.
func (l *Load) Refusals() []Refusal {
	var out []Refusal
	for _, a := range l.Agents {
		out = append(out, a.Refusals()...)
	}
	return out
}

// Stats returns every agent's stats.
func (l *Load) Stats() []LoadStats {
	var out []LoadStats
	for _, a := range l.Agents {
		out = append(out, a.Stats())
	}
	return out
}

// Summary describes the fleet, one agent a line.
func (l *Load) Summary() string {
	var b strings.Builder
	for _, s := range l.Stats() {
		fmt.Fprintln(&b, s)
		for _, e := range s.Errors {
			fmt.Fprintf(&b, "    error: %s\n", e)
		}
	}
	return b.String()
}

// SubmitJobs queues one archive job per package for release through the
// HTTP API, as `sparegrid submit PACKAGE --release RELEASE` does, and
// returns their ids.
func SubmitJobs(t testing.TB, c *Coordinator, token, release string, packages []string) []int64 {
	t.Helper()
	ids := make([]int64, 0, len(packages))
	for _, p := range packages {
		body, _ := json.Marshal(map[string]string{"package": p, "release": release})
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, c.URL()+"/api/v1/jobs", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("harness: submit %s: %v", p, err)
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("harness: submit %s: status %d, %v: %s", p, resp.StatusCode, err, out)
		}
		var j struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(out, &j); err != nil || j.ID == 0 {
			t.Fatalf("harness: submit %s answered %s (%v)", p, out, err)
		}
		ids = append(ids, j.ID)
	}
	return ids
}
