package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sparegrid/sparegrid/coordinator/auth"
	"github.com/sparegrid/sparegrid/coordinator/blobs"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/sign"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
	"github.com/sparegrid/sparegrid/shared/transport"
	"github.com/sparegrid/sparegrid/shared/version"
)

const (
	testIssuer   = "test-coordinator"
	testAudience = "test-gateway"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a gateway on a real QUIC listener on loopback, backed by a real
// SQLite file.
type env struct {
	t      *testing.T
	db     *sqlite.DB
	clock  *clock
	jwtKey ed25519.PrivateKey
	addr   string
	fp     string
	admin  store.Account
	gw     *Gateway
}

func newEnv(t *testing.T, maxBlob int64) *env {
	t.Helper()
	return newEnvMetrics(t, maxBlob, nil)
}

// newEnvMetrics is newEnv with a gateway that reports to m.
func newEnvMetrics(t *testing.T, maxBlob int64, m Metrics) *env {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bs, err := blobs.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now().UTC()}
	jwtKey, err := auth.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	gw := New(Config{
		Store:      db,
		Blobs:      bs,
		Issuer:     auth.NewIssuer(jwtKey, testIssuer, testAudience, 10*time.Minute, clk.Now),
		Challenges: auth.NewChallenges(time.Minute, clk.Now),
		LeaseTTL:   time.Minute,
		MaxBlob:    maxBlob,
		Metrics:    m,
		Now:        clk.Now,
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	caCert, caKey, err := tlsutil.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := tlsutil.NewServerCert(caCert, caKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := tlsutil.FingerprintPEM(caCert)
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := tlsutil.ServerConfig(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := transport.ListenQUIC("127.0.0.1:0", tlsConf, transport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		gw.Serve(sctx, l)
	}()
	t.Cleanup(func() {
		cancel()
		l.Close()
		<-served
	})
	admin, err := db.CreateAccount(ctx, store.Account{Name: "admin", Email: "a@example.org", Role: store.RoleAdmin, CreatedAt: clk.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: db, clock: clk, jwtKey: jwtKey, addr: l.Addr().String(), fp: fp, admin: admin, gw: gw}
}

// dial returns a client whose session said hello.
func (e *env) dial() *protocol.Client {
	e.t.Helper()
	c := e.dialNoHello()
	if _, err := c.Hello(e.t.Context(), protocol.Hello{ProtocolVersion: version.Protocol, AgentVersion: "test"}); err != nil {
		e.t.Fatalf("Hello = %v", err)
	}
	return c
}

func (e *env) dialNoHello() *protocol.Client {
	e.t.Helper()
	sess, err := transport.DialQUIC(e.t.Context(), e.addr, tlsutil.PinnedClientConfig(e.fp, "127.0.0.1"), transport.Config{})
	if err != nil {
		e.t.Fatalf("DialQUIC = %v", err)
	}
	e.t.Cleanup(func() { sess.Close("test done") })
	return protocol.NewClient(sess)
}

type testAgent struct {
	id    int64
	code  string
	owner store.Account
	key   ed25519.PrivateKey
}

func (e *env) account(name string) store.Account {
	e.t.Helper()
	a, err := e.db.CreateAccount(e.t.Context(), store.Account{Name: name, Email: name + "@example.org", Role: store.RoleVolunteer, CreatedAt: e.clock.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) register(c *protocol.Client, owner store.Account) testAgent {
	e.t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := c.Register(e.t.Context(), protocol.RegisterRequest{Owner: owner.Name, Name: "box-" + owner.Name, PublicKey: pub})
	if err != nil {
		e.t.Fatalf("Register = %v", err)
	}
	if r.State != string(store.AgentPending) {
		e.t.Fatalf("Register state = %q, want pending", r.State)
	}
	return testAgent{id: r.AgentID, code: r.ClaimCode, owner: owner, key: priv}
}

func (e *env) approve(a testAgent) {
	e.t.Helper()
	if _, err := e.db.ClaimAgent(e.t.Context(), a.code, a.owner.ID); err != nil {
		e.t.Fatalf("ClaimAgent = %v", err)
	}
	if _, err := e.db.DecideAgent(e.t.Context(), a.id, store.AgentApproved, "admin"); err != nil {
		e.t.Fatalf("DecideAgent = %v", err)
	}
}

func getToken(ctx context.Context, c *protocol.Client, a testAgent) (string, error) {
	ch, err := c.Challenge(ctx, protocol.ChallengeRequest{AgentID: a.id})
	if err != nil {
		return "", err
	}
	sig := ed25519.Sign(a.key, protocol.ChallengeMessage(a.id, ch.Nonce))
	tr, err := c.Token(ctx, protocol.TokenRequest{AgentID: a.id, Nonce: ch.Nonce, Signature: sig})
	return tr.Token, err
}

func (e *env) token(c *protocol.Client, a testAgent) string {
	e.t.Helper()
	tok, err := getToken(e.t.Context(), c, a)
	if err != nil {
		e.t.Fatalf("token for agent %d: %v", a.id, err)
	}
	return tok
}

func (e *env) approvedAgent(c *protocol.Client, name string) (testAgent, string) {
	a := e.register(c, e.account(name))
	e.approve(a)
	return a, e.token(c, a)
}

var caps = protocol.Capabilities{Arch: "amd64", Releases: []string{"bookworm"}, Backend: "unshare", AutopkgtestVersion: "5.28", AgentVersion: "test"}

func (e *env) submit(pkg string) store.Job {
	e.t.Helper()
	j, err := e.db.CreateJob(e.t.Context(), store.Job{Package: pkg, Release: "bookworm", Arch: "amd64", State: store.JobQueued, MaxAttempts: 3, SubmittedBy: "admin", CreatedAt: e.clock.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

func (e *env) lease(c *protocol.Client, tok string) *protocol.Job {
	e.t.Helper()
	r, err := c.Lease(e.t.Context(), tok, protocol.LeaseRequest{Capabilities: caps})
	if err != nil {
		e.t.Fatalf("Lease = %v", err)
	}
	if r.Job == nil {
		e.t.Fatalf("Lease returned no job")
	}
	return r.Job
}

func (e *env) upload(c *protocol.Client, tok string, j *protocol.Job, name, content string) sign.Blob {
	e.t.Helper()
	sum := sha256.Sum256([]byte(content))
	hdr := protocol.BlobHeader{JobID: j.ID, Attempt: j.Attempt, Name: name, Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}
	if _, err := c.UploadBlob(e.t.Context(), tok, hdr, strings.NewReader(content)); err != nil {
		e.t.Fatalf("UploadBlob = %v", err)
	}
	return sign.Blob{Name: name, SHA256: hdr.SHA256, Size: hdr.Size}
}

func testResult(j *protocol.Job, a testAgent, blobs ...sign.Blob) sign.TestResult {
	return sign.TestResult{
		JobID: j.ID, Attempt: j.Attempt, Nonce: j.Nonce, Package: j.Package, Release: j.Release, Arch: j.Arch,
		ExitCode: 0, Verdict: dep8.VerdictPass,
		Tests:   []dep8.Test{{Name: "smoke", Result: dep8.Pass}},
		Harness: dep8.Harness{AgentVersion: "test", AutopkgtestVersion: "5.28", Backend: "unshare", ImageDigest: "sha256:" + strings.Repeat("a", 64)},
		Agent:   sign.AgentRef{ID: a.id, KeyID: sign.KeyID(a.key.Public().(ed25519.PublicKey))},
		Blobs:   blobs,
	}
}

func signed(t *testing.T, key ed25519.PrivateKey, tr sign.TestResult) []byte {
	t.Helper()
	env, err := sign.SignResult(key, tr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHelloFirst(t *testing.T) {
	e := newEnv(t, 0)
	c := e.dialNoHello()
	_, err := c.Register(t.Context(), protocol.RegisterRequest{Owner: "admin", Name: "x", PublicKey: make([]byte, 32)})
	if !errors.Is(err, protocol.ErrBadRequest) {
		t.Errorf("Register before Hello = %v, want %v", err, protocol.ErrBadRequest)
	}
	_, err = c.Hello(t.Context(), protocol.Hello{ProtocolVersion: version.Protocol + 1, AgentVersion: "future"})
	if !errors.Is(err, protocol.ErrVersion) || !strings.Contains(err.Error(), fmt.Sprint(version.Protocol)) {
		t.Errorf("Hello(protocol %d) = %v, want %v naming protocol %d", version.Protocol+1, err, protocol.ErrVersion, version.Protocol)
	}
	if _, err := c.Register(t.Context(), protocol.RegisterRequest{Owner: "admin", Name: "x", PublicKey: make([]byte, 32)}); !errors.Is(err, protocol.ErrBadRequest) {
		t.Errorf("Register after failed Hello = %v, want %v", err, protocol.ErrBadRequest)
	}
}

func TestRegisterRefusals(t *testing.T) {
	e := newEnv(t, 0)
	c := e.dial()
	key := make([]byte, ed25519.PublicKeySize)
	tests := []struct {
		name string
		req  protocol.RegisterRequest
		want error
	}{
		{"unknown owner", protocol.RegisterRequest{Owner: "nobody", Name: "box", PublicKey: key}, protocol.ErrNotFound},
		{"short key", protocol.RegisterRequest{Owner: "admin", Name: "box", PublicKey: key[:5]}, protocol.ErrBadRequest},
		{"bad name", protocol.RegisterRequest{Owner: "admin", Name: "../etc", PublicKey: key}, protocol.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Register(t.Context(), tt.req); !errors.Is(err, tt.want) {
				t.Errorf("Register(%+v) = %v, want %v", tt.req, err, tt.want)
			}
		})
	}
}

func TestTokenOnlyForApprovedAgents(t *testing.T) {
	e := newEnv(t, 0)
	c := e.dial()
	alice := e.account("alice")
	a := e.register(c, alice)

	if _, err := getToken(t.Context(), c, a); !errors.Is(err, protocol.ErrPending) || !strings.Contains(err.Error(), "claim") {
		t.Errorf("token for an unclaimed agent = %v, want %v telling the owner to claim it", err, protocol.ErrPending)
	}
	if _, err := e.db.ClaimAgent(t.Context(), a.code, alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := getToken(t.Context(), c, a); !errors.Is(err, protocol.ErrPending) || !strings.Contains(err.Error(), "approve") {
		t.Errorf("token for a claimed agent = %v, want %v asking an admin to approve", err, protocol.ErrPending)
	}
	if _, err := getToken(t.Context(), c, testAgent{id: 999, key: a.key}); !errors.Is(err, protocol.ErrUnknownAgent) {
		t.Errorf("token for an unknown agent = %v, want %v", err, protocol.ErrUnknownAgent)
	}

	b := e.register(c, alice)
	if _, err := e.db.DecideAgent(t.Context(), b.id, store.AgentRejected, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := getToken(t.Context(), c, b); !errors.Is(err, protocol.ErrRejected) {
		t.Errorf("token for a rejected agent = %v, want %v", err, protocol.ErrRejected)
	}

	if _, err := e.db.DecideAgent(t.Context(), a.id, store.AgentApproved, "admin"); err != nil {
		t.Fatal(err)
	}
	// The right agent id and nonce, signed by a key that is not the agent's.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := getToken(t.Context(), c, testAgent{id: a.id, key: other}); !errors.Is(err, protocol.ErrBadSignature) {
		t.Errorf("token with another key's signature = %v, want %v", err, protocol.ErrBadSignature)
	}
	tok, err := getToken(t.Context(), c, a)
	if err != nil || tok == "" {
		t.Fatalf("token for an approved agent = %q, %v", tok, err)
	}
	// A challenge is single use.
	ch, _ := c.Challenge(t.Context(), protocol.ChallengeRequest{AgentID: a.id})
	sig := ed25519.Sign(a.key, protocol.ChallengeMessage(a.id, ch.Nonce))
	if _, err := c.Token(t.Context(), protocol.TokenRequest{AgentID: a.id, Nonce: ch.Nonce, Signature: sig}); err != nil {
		t.Fatalf("first Token = %v", err)
	}
	if _, err := c.Token(t.Context(), protocol.TokenRequest{AgentID: a.id, Nonce: ch.Nonce, Signature: sig}); !errors.Is(err, protocol.ErrUnauthenticated) {
		t.Errorf("replayed Token = %v, want %v", err, protocol.ErrUnauthenticated)
	}
}

func TestForgedAgentTokens(t *testing.T) {
	e := newEnv(t, 0)
	c := e.dial()
	a, good := e.approvedAgent(c, "alice")
	now := e.clock.Now()
	claims := func(exp time.Time) jwt.MapClaims {
		return jwt.MapClaims{"sub": fmt.Sprintf("agent:%d", a.id), "iss": testIssuer, "aud": testAudience, "iat": now.Unix(), "exp": exp.Unix()}
	}
	forge := func(m jwt.SigningMethod, key any, cl jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, cl).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	pub := e.jwtKey.Public().(ed25519.PublicKey)
	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not.a.jwt"},
		{"alg none", forge(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(now.Add(time.Hour)))},
		{"HS256 keyed with the public key", forge(jwt.SigningMethodHS256, []byte(pub), claims(now.Add(time.Hour)))},
		{"signed by another key", forge(jwt.SigningMethodEdDSA, otherKey, claims(now.Add(time.Hour)))},
		{"expired", forge(jwt.SigningMethodEdDSA, e.jwtKey, claims(now.Add(-time.Hour)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Lease(t.Context(), tt.token, protocol.LeaseRequest{Capabilities: caps})
			if !errors.Is(err, protocol.ErrUnauthenticated) {
				t.Errorf("Lease with %s token = %v, want %v", tt.name, err, protocol.ErrUnauthenticated)
			}
		})
	}
	if _, err := c.Lease(t.Context(), good, protocol.LeaseRequest{Capabilities: caps}); err != nil {
		t.Errorf("Lease with a minted token = %v, want nil", err)
	}
	// Approval revoked: the still-valid token stops working at once.
	if _, err := e.db.DecideAgent(t.Context(), a.id, store.AgentRejected, "admin"); err == nil {
		if _, err := c.Lease(t.Context(), good, protocol.LeaseRequest{Capabilities: caps}); !errors.Is(err, protocol.ErrRejected) {
			t.Errorf("Lease after rejection = %v, want %v", err, protocol.ErrRejected)
		}
	}
}

func TestResultRefusals(t *testing.T) {
	e := newEnv(t, 0)
	c := e.dial()
	a, tokA := e.approvedAgent(c, "alice")
	b, tokB := e.approvedAgent(c, "bob")
	e.submit("hello")
	j := e.lease(c, tokA)
	if j.Attempt != 1 || j.Nonce == "" || j.HeartbeatInterval <= 0 {
		t.Fatalf("leased job = %+v, want attempt 1 with a nonce and heartbeat interval", j)
	}
	log := e.upload(c, tokA, j, "log", "hello: all good\n")

	submit := func(tok string, jobID int64, attempt int, envelope []byte) error {
		_, err := c.Result(t.Context(), tok, protocol.ResultRequest{JobID: jobID, Attempt: attempt, Envelope: envelope})
		return err
	}
	good := testResult(j, a, log)
	wrongNonce := good
	wrongNonce.Nonce = "0000"
	unknownBlob := testResult(j, a, sign.Blob{Name: "artifact", SHA256: strings.Repeat("b", 64), Size: 3})
	agentVerdict := good
	noHarness := good
	noHarness.Harness = dep8.Harness{}
	byB := good
	byB.Agent = sign.AgentRef{ID: b.id, KeyID: sign.KeyID(b.key.Public().(ed25519.PublicKey))}
	agentVerdict.Verdict = dep8.VerdictError
	tampered := signed(t, a.key, good)
	tampered = bytes.Replace(tampered, []byte(`"payload":"`), []byte(`"payload":"A`), 1)

	tests := []struct {
		name     string
		token    string
		attempt  int
		envelope []byte
		want     error
	}{
		{"signed by another agent", tokA, 1, signed(t, b.key, byB), protocol.ErrBadSignature},
		{"tampered payload", tokA, 1, tampered, protocol.ErrBadRequest},
		{"lease held by another agent", tokB, 1, signed(t, b.key, byB), protocol.ErrStaleLease},
		{"attempt not leased", tokA, 2, signed(t, a.key, good), protocol.ErrStaleLease},
		{"another attempt's nonce", tokA, 1, signed(t, a.key, wrongNonce), protocol.ErrStaleLease},
		{"blob never uploaded", tokA, 1, signed(t, a.key, unknownBlob), protocol.ErrBadRequest},
		{"verdict reserved to the coordinator", tokA, 1, signed(t, a.key, agentVerdict), protocol.ErrBadRequest},
		{"not an envelope", tokA, 1, []byte(`{"hello":1}`), protocol.ErrBadRequest},
		{"pass without harness revision", tokA, 1, signed(t, a.key, noHarness), protocol.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := submit(tt.token, j.ID, tt.attempt, tt.envelope); !errors.Is(err, tt.want) {
				t.Errorf("Result = %v, want %v", err, tt.want)
			}
			if res, err := e.db.Results(t.Context(), j.ID); err != nil || len(res) != 0 {
				t.Errorf("after a refused result the store holds %d results (err %v), want 0", len(res), err)
			}
		})
	}

	// The lease expires; the next lease is attempt 2 and attempt 1 is stale.
	e.clock.Advance(2 * time.Minute)
	if _, err := e.db.ExpireLeases(t.Context(), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	tokA = e.token(c, a)
	j2 := e.lease(c, tokA)
	if j2.ID != j.ID || j2.Attempt != 2 {
		t.Fatalf("re-leased job = %d attempt %d, want %d attempt 2", j2.ID, j2.Attempt, j.ID)
	}
	if err := submit(tokA, j.ID, 1, signed(t, a.key, good)); !errors.Is(err, protocol.ErrStaleLease) {
		t.Errorf("Result for the stale attempt = %v, want %v", err, protocol.ErrStaleLease)
	}
	if _, err := c.Heartbeat(t.Context(), tokA, protocol.HeartbeatRequest{JobID: j.ID, Attempt: 1}); !errors.Is(err, protocol.ErrStaleLease) {
		t.Errorf("Heartbeat for the stale attempt = %v, want %v", err, protocol.ErrStaleLease)
	}
	if _, err := c.Heartbeat(t.Context(), tokA, protocol.HeartbeatRequest{JobID: j.ID, Attempt: 2, Stage: "testing"}); err != nil {
		t.Errorf("Heartbeat for the current attempt = %v", err)
	}
	log2 := e.upload(c, tokA, j2, "log", "hello: attempt two\n")
	env2 := signed(t, a.key, testResult(j2, a, log2))
	if err := submit(tokA, j.ID, 2, env2); err != nil {
		t.Fatalf("Result for the current attempt = %v", err)
	}
	// The same result again (a lost acknowledgement, an agent restart) is
	// acknowledged as a duplicate and stored once; a wrong key or another
	// agent sending it is refused.
	for _, key := range []string{"", protocol.ResultKey(env2)} {
		r, err := c.Result(t.Context(), tokA, protocol.ResultRequest{JobID: j.ID, Attempt: 2, Envelope: env2, IdempotencyKey: key})
		if err != nil || !r.Duplicate || r.Verdict != dep8.VerdictPass {
			t.Errorf("duplicate Result (key %q) = %+v, %v; want a duplicate pass", key, r, err)
		}
	}
	if _, err := c.Result(t.Context(), tokA, protocol.ResultRequest{JobID: j.ID, Attempt: 2, Envelope: env2, IdempotencyKey: strings.Repeat("0", 64)}); !errors.Is(err, protocol.ErrBadRequest) {
		t.Errorf("Result with a wrong idempotency key = %v, want %v", err, protocol.ErrBadRequest)
	}
	if _, err := c.Result(t.Context(), tokB, protocol.ResultRequest{JobID: j.ID, Attempt: 2, Envelope: env2}); !errors.Is(err, protocol.ErrStaleLease) {
		t.Errorf("another agent's copy of the result = %v, want %v", err, protocol.ErrStaleLease)
	}
	res, err := e.db.Results(t.Context(), j.ID)
	if err != nil || len(res) != 1 || res[0].Attempt != 2 || res[0].Transport != transport.QUIC || !bytes.Equal(res[0].Envelope, env2) {
		t.Errorf("stored results = %+v (err %v), want exactly attempt 2 over quic with the envelope as sent", res, err)
	}
	job, err := e.db.Job(t.Context(), j.ID)
	if err != nil || job.State != store.JobDone || job.Verdict != dep8.VerdictPass {
		t.Errorf("job = %s/%s (err %v), want done/pass", job.State, job.Verdict, err)
	}
}

func TestUploadRefusals(t *testing.T) {
	e := newEnv(t, 64)
	c := e.dial()
	a, tok := e.approvedAgent(c, "alice")
	_ = a
	e.submit("hello")
	j := e.lease(c, tok)
	content := "log line\n"
	sum := sha256.Sum256([]byte(content))
	good := protocol.BlobHeader{JobID: j.ID, Attempt: j.Attempt, Name: "log", Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}
	with := func(edit func(*protocol.BlobHeader)) protocol.BlobHeader {
		h := good
		edit(&h)
		return h
	}
	tests := []struct {
		name string
		hdr  protocol.BlobHeader
		body string
		want error
	}{
		{"wrong digest", with(func(h *protocol.BlobHeader) { h.SHA256 = strings.Repeat("0", 64) }), content, protocol.ErrDigestMismatch},
		{"over the cap", with(func(h *protocol.BlobHeader) { h.Size = 65 }), strings.Repeat("x", 65), protocol.ErrTooLarge},
		{"escaping name", with(func(h *protocol.BlobHeader) { h.Name = "../../etc/passwd" }), content, protocol.ErrBadRequest},
		{"not leased", with(func(h *protocol.BlobHeader) { h.Attempt = 7 }), content, protocol.ErrStaleLease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.UploadBlob(t.Context(), tok, tt.hdr, strings.NewReader(tt.body)); !errors.Is(err, tt.want) {
				t.Errorf("UploadBlob = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := c.UploadBlob(t.Context(), tok, good, strings.NewReader(content)); err != nil {
		t.Errorf("UploadBlob(good) = %v", err)
	}
}

func TestLeaseWaitsForWork(t *testing.T) {
	e := newEnv(t, 0)
	c := e.dial()
	_, tok := e.approvedAgent(c, "alice")
	r, err := c.Lease(t.Context(), tok, protocol.LeaseRequest{Capabilities: caps, Wait: 10 * time.Millisecond})
	if err != nil || r.Job != nil {
		t.Fatalf("Lease on an empty queue = %+v, %v; want no job", r, err)
	}
	other := caps
	other.Releases = []string{"trixie"}
	e.submit("hello")
	if r, err := c.Lease(t.Context(), tok, protocol.LeaseRequest{Capabilities: other, Wait: 10 * time.Millisecond}); err != nil || r.Job != nil {
		t.Errorf("Lease for another release = %+v, %v; want no job", r, err)
	}
	if j := e.lease(c, tok); j.Package != "hello" {
		t.Errorf("leased %q, want hello", j.Package)
	}
}

// TestTmpfailRequeues checks that an infrastructure failure, even one
// reported before any testbed existed, is stored and sends the job back to
// the queue for another attempt rather than ending it.
func TestTmpfailRequeues(t *testing.T) {
	e := newEnv(t, 0)
	c := e.dial()
	a, tok := e.approvedAgent(c, "alice")
	e.submit("hello")
	j := e.lease(c, tok)
	log := e.upload(c, tok, j, "log", "sparegrid-agent: no testbed image\n")
	tr := testResult(j, a, log)
	tr.Verdict, tr.ExitCode, tr.Tests = dep8.VerdictTmpfail, 20, nil
	tr.Harness = dep8.Harness{AgentVersion: "test", AutopkgtestVersion: "5.28"}
	if _, err := c.Result(t.Context(), tok, protocol.ResultRequest{JobID: j.ID, Attempt: 1, Envelope: signed(t, a.key, tr)}); err != nil {
		t.Fatalf("Result(tmpfail) = %v", err)
	}
	job, err := e.db.Job(t.Context(), j.ID)
	if err != nil || job.State != store.JobQueued || job.Verdict != "" || job.Reason == "" {
		t.Fatalf("job after tmpfail = %s/%q reason %q (err %v), want queued with a reason", job.State, job.Verdict, job.Reason, err)
	}
	if j2 := e.lease(c, tok); j2.Attempt != 2 {
		t.Errorf("next lease attempt = %d, want 2", j2.Attempt)
	}
}

// TestTmpfailPrefersAnotherAgent checks that a job that failed on one
// agent's infrastructure goes to another online agent next.
func TestTmpfailPrefersAnotherAgent(t *testing.T) {
	e := newEnv(t, 0)
	c := e.dial()
	a, tokA := e.approvedAgent(c, "alice")
	_, tokB := e.approvedAgent(c, "bob")
	e.submit("hello")
	j := e.lease(c, tokA)
	// bob is online and could run the job, but alice holds it.
	if r, err := c.Lease(t.Context(), tokB, protocol.LeaseRequest{Capabilities: caps}); err != nil || r.Job != nil {
		t.Fatalf("Lease by bob while alice runs the only job = %+v, %v; want none", r.Job, err)
	}
	tr := testResult(j, a)
	tr.Verdict, tr.ExitCode, tr.Tests = dep8.VerdictTmpfail, 16, nil
	if _, err := c.Result(t.Context(), tokA, protocol.ResultRequest{JobID: j.ID, Attempt: 1, Envelope: signed(t, a.key, tr)}); err != nil {
		t.Fatalf("Result(tmpfail) = %v", err)
	}
	if r, err := c.Lease(t.Context(), tokA, protocol.LeaseRequest{Capabilities: caps}); err != nil || r.Job != nil {
		t.Fatalf("Lease by alice after her tmpfail = %+v, %v; want none while bob is online", r.Job, err)
	}
	if j2 := e.lease(c, tokB); j2.ID != j.ID || j2.Attempt != 2 {
		t.Errorf("Lease by bob = job %d attempt %d, want %d attempt 2", j2.ID, j2.Attempt, j.ID)
	}
}

// TestAgentPauses checks that an agent that reports a pause is shown as
// paused and gets no job until it reports none.
func TestAgentPauses(t *testing.T) {
	e := newEnv(t, 0)
	c := e.dial()
	a, tok := e.approvedAgent(c, "alice")
	j := e.submit("hello")
	reason := "paused: 3 infrastructure failures in a row\x1b[31m"
	r, err := c.Lease(t.Context(), tok, protocol.LeaseRequest{Capabilities: caps, Wait: 5 * time.Second, Paused: reason})
	if err != nil || r.Job != nil {
		t.Fatalf("Lease while paused = %+v, %v; want no job", r.Job, err)
	}
	got, err := e.db.Agent(t.Context(), a.id)
	if err != nil || got.Paused != "paused: 3 infrastructure failures in a row [31m" || got.PausedAt == nil {
		t.Errorf("agent after a paused Lease: paused %q since %v (err %v); want the reason without control characters", got.Paused, got.PausedAt, err)
	}
	if l := e.lease(c, tok); l.ID != j.ID {
		t.Errorf("Lease after resuming = job %d, want %d", l.ID, j.ID)
	}
	if got, err := e.db.Agent(t.Context(), a.id); err != nil || got.Paused != "" || got.PausedAt != nil {
		t.Errorf("agent after resuming: paused %q since %v (err %v); want not paused", got.Paused, got.PausedAt, err)
	}
}

// TestAbandonedLeaseTakesNoJob checks that a Lease call its agent gave up
// on (a draining agent cancels its long poll) stops waiting at once, so a
// job submitted afterwards goes to an agent that is still asking.
func TestAbandonedLeaseTakesNoJob(t *testing.T) {
	e := newEnv(t, 0)
	c := e.dial()
	_, tokA := e.approvedAgent(c, "alice")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err := c.Lease(ctx, tokA, protocol.LeaseRequest{Capabilities: caps, Wait: 20 * time.Second})
	cancel()
	if err == nil {
		t.Fatalf("Lease on an empty queue returned before its caller gave up")
	}
	// The reset reaches the coordinator a packet later.
	deadline := time.Now().Add(10 * time.Second)
	for e.gw.polling.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned Lease call still waits 10s after its caller gave up")
		}
		time.Sleep(time.Millisecond)
	}
	j := e.submit("hello")
	e.gw.cfg.Jobs.Notify()

	c2 := e.dial()
	_, tokB := e.approvedAgent(c2, "bob")
	r, err := c2.Lease(t.Context(), tokB, protocol.LeaseRequest{Capabilities: caps, Wait: 5 * time.Second})
	if err != nil || r.Job == nil || r.Job.ID != j.ID || r.Job.Attempt != 1 {
		got, _ := e.db.Job(t.Context(), j.ID)
		t.Fatalf("Lease by a waiting agent = %+v, %v; want job %d attempt 1 (job is %s, attempt %d, agent %v)", r.Job, err, j.ID, got.State, got.Attempt, got.AgentID)
	}
}

// TestVanishedAgentRequeuedInThreeHeartbeats checks the lease arithmetic:
// a lease survives two lost heartbeats, and the job of an agent that
// vanished is queued again, reaping delay included, no later than three
// heartbeat intervals after its last sign of life.
func TestVanishedAgentRequeuedInThreeHeartbeats(t *testing.T) {
	e := newEnv(t, 0)
	c := e.dial()
	_, tok := e.approvedAgent(c, "alice")
	e.submit("hello")
	hb := e.gw.HeartbeatInterval()
	check := func(what string, last, expires time.Time) {
		t.Helper()
		if worst := expires.Add(e.gw.reapEvery()); worst.After(last.Add(3 * hb)) {
			t.Errorf("%s at %v: lease expires %v, requeued by %v, later than three heartbeat intervals (%v)", what, last, expires, worst, 3*hb)
		}
		if !expires.After(last.Add(2 * hb)) {
			t.Errorf("%s at %v: lease expires %v, before two lost heartbeats", what, last, expires)
		}
	}
	leasedAt := e.clock.Now()
	j := e.lease(c, tok)
	if j.HeartbeatInterval != hb {
		t.Errorf("job heartbeat interval = %v, want %v", j.HeartbeatInterval, hb)
	}
	check("lease", leasedAt, j.LeaseExpires)

	e.clock.Advance(hb)
	beatAt := e.clock.Now()
	r, err := c.Heartbeat(t.Context(), tok, protocol.HeartbeatRequest{JobID: j.ID, Attempt: j.Attempt})
	if err != nil {
		t.Fatalf("Heartbeat = %v", err)
	}
	check("heartbeat", beatAt, r.LeaseExpires)

	// The agent vanishes: the reaper, running late by one period, finds
	// the lease expired within three intervals of the last heartbeat.
	ids, err := e.db.ExpireLeases(t.Context(), r.LeaseExpires)
	if err != nil || len(ids) != 1 || ids[0] != j.ID {
		t.Fatalf("ExpireLeases at the lease's end = %v, %v; want [%d]", ids, err, j.ID)
	}
	job, err := e.db.Job(t.Context(), j.ID)
	if err != nil || job.State != store.JobQueued || !strings.Contains(job.Reason, "lease expired") {
		t.Errorf("job after expiry = %s, reason %q (err %v); want queued, saying the lease expired", job.State, job.Reason, err)
	}
}
