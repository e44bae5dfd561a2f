package worker

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sparegrid/sparegrid/shared/protocol"
)

// fakeCoordinator is an in-memory protocol.Coordinator for one agent. The
// real coordinator lives in a package tree the agent must not import; the
// end-to-end tests run against it.
type fakeCoordinator struct {
	pub ed25519.PublicKey

	mu        sync.Mutex
	jobs      []*protocol.Job
	blobs     map[string][]byte // fetchable, by sha256
	uploads   []protocol.BlobHeader
	uploaded  map[string][]byte // by name
	results   []protocol.ResultRequest
	beats     []protocol.HeartbeatRequest
	tokens    int
	done      chan struct{}
	closeOnce sync.Once
	closes    int
	leases    []protocol.LeaseRequest

	// Hooks; nil means succeed.
	heartbeat func(protocol.HeartbeatRequest) (protocol.HeartbeatReply, error)
	result    func(n int) error // n counts Result calls from 1
	resultN   int
	upload    func(protocol.BlobHeader) error
	// silent makes every call but Hello, Challenge and Token wait for
	// its context, as a coordinator that died without closing the
	// session does.
	silent bool
	// duplicate makes Result acknowledge without storing, as for a
	// result stored before.
	duplicate bool
	// resulted is closed after the first stored result.
	resulted chan struct{}
}

func newFake(pub ed25519.PublicKey, jobs ...*protocol.Job) *fakeCoordinator {
	return &fakeCoordinator{
		pub:      pub,
		jobs:     jobs,
		blobs:    map[string][]byte{},
		uploaded: map[string][]byte{},
		done:     make(chan struct{}),
		resulted: make(chan struct{}),
	}
}

var _ Conn = (*fakeCoordinator)(nil)

func (f *fakeCoordinator) Done() <-chan struct{} { return f.done }

// Close counts closes but keeps the fake usable, so that a redial may
// return it again.
func (f *fakeCoordinator) Close() error {
	f.mu.Lock()
	f.closes++
	f.mu.Unlock()
	return nil
}

// kill ends the fake's session for good.
func (f *fakeCoordinator) kill() { f.closeOnce.Do(func() { close(f.done) }) }

func (f *fakeCoordinator) Hello(ctx context.Context, req protocol.Hello) (protocol.HelloReply, error) {
	return protocol.HelloReply{ProtocolVersion: req.ProtocolVersion}, nil
}

func (f *fakeCoordinator) Register(ctx context.Context, req protocol.RegisterRequest) (protocol.RegisterReply, error) {
	return protocol.RegisterReply{}, protocol.ErrForbidden
}

func (f *fakeCoordinator) Challenge(ctx context.Context, req protocol.ChallengeRequest) (protocol.ChallengeReply, error) {
	return protocol.ChallengeReply{Nonce: []byte("nonce")}, nil
}

func (f *fakeCoordinator) Token(ctx context.Context, req protocol.TokenRequest) (protocol.TokenReply, error) {
	if !ed25519.Verify(f.pub, protocol.ChallengeMessage(req.AgentID, req.Nonce), req.Signature) {
		return protocol.TokenReply{}, protocol.ErrBadSignature
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens++
	return protocol.TokenReply{Token: fmt.Sprintf("tok-%d", f.tokens), Expires: time.Now().Add(time.Hour)}, nil
}

func (f *fakeCoordinator) checkToken(token string) error {
	if token == "" {
		return protocol.ErrUnauthenticated
	}
	return nil
}

// Lease hands out the queued jobs, then waits for ctx.
func (f *fakeCoordinator) Lease(ctx context.Context, token string, req protocol.LeaseRequest) (protocol.LeaseReply, error) {
	if err := f.checkToken(token); err != nil {
		return protocol.LeaseReply{}, err
	}
	f.mu.Lock()
	f.leases = append(f.leases, req)
	if req.Paused != "" {
		f.mu.Unlock()
		return protocol.LeaseReply{}, nil
	}
	if len(f.jobs) > 0 {
		j := f.jobs[0]
		f.jobs = f.jobs[1:]
		f.mu.Unlock()
		return protocol.LeaseReply{Job: j}, nil
	}
	f.mu.Unlock()
	<-ctx.Done()
	return protocol.LeaseReply{}, ctx.Err()
}

func (f *fakeCoordinator) Heartbeat(ctx context.Context, token string, req protocol.HeartbeatRequest) (protocol.HeartbeatReply, error) {
	if err := f.checkToken(token); err != nil {
		return protocol.HeartbeatReply{}, err
	}
	f.mu.Lock()
	f.beats = append(f.beats, req)
	hook, silent := f.heartbeat, f.silent
	f.mu.Unlock()
	if silent {
		<-ctx.Done()
		return protocol.HeartbeatReply{}, ctx.Err()
	}
	if hook != nil {
		return hook(req)
	}
	return protocol.HeartbeatReply{}, nil
}

func (f *fakeCoordinator) UploadBlob(ctx context.Context, token string, hdr protocol.BlobHeader, r io.Reader) (protocol.BlobReceipt, error) {
	if err := f.checkToken(token); err != nil {
		return protocol.BlobReceipt{}, err
	}
	f.mu.Lock()
	hook := f.upload
	f.mu.Unlock()
	if hook != nil {
		if err := hook(hdr); err != nil {
			return protocol.BlobReceipt{}, err
		}
	}
	b, err := io.ReadAll(io.LimitReader(r, hdr.Size))
	if err != nil {
		return protocol.BlobReceipt{}, err
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != hdr.SHA256 || int64(len(b)) != hdr.Size {
		return protocol.BlobReceipt{}, protocol.ErrDigestMismatch
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploads = append(f.uploads, hdr)
	f.uploaded[hdr.Name] = b
	return protocol.BlobReceipt{SHA256: hdr.SHA256, Size: hdr.Size}, nil
}

func (f *fakeCoordinator) FetchBlob(ctx context.Context, token string, req protocol.FetchBlobRequest, w io.Writer) (protocol.BlobHeader, error) {
	if err := f.checkToken(token); err != nil {
		return protocol.BlobHeader{}, err
	}
	f.mu.Lock()
	b, ok := f.blobs[req.SHA256]
	f.mu.Unlock()
	if !ok {
		return protocol.BlobHeader{}, protocol.ErrNotFound
	}
	_, err := w.Write(b)
	return protocol.BlobHeader{JobID: req.JobID, Attempt: req.Attempt, SHA256: req.SHA256, Size: int64(len(b))}, err
}

func (f *fakeCoordinator) Result(ctx context.Context, token string, req protocol.ResultRequest) (protocol.ResultReply, error) {
	if err := f.checkToken(token); err != nil {
		return protocol.ResultReply{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resultN++
	if f.result != nil {
		if err := f.result(f.resultN); err != nil {
			return protocol.ResultReply{}, err
		}
	}
	if f.duplicate {
		return protocol.ResultReply{Verdict: "pass", Duplicate: true}, nil
	}
	f.results = append(f.results, req)
	if len(f.results) == 1 {
		close(f.resulted)
	}
	return protocol.ResultReply{Verdict: "pass"}, nil
}

func (f *fakeCoordinator) addBlob(b []byte) string {
	sum := sha256.Sum256(b)
	s := hex.EncodeToString(sum[:])
	f.mu.Lock()
	f.blobs[s] = b
	f.mu.Unlock()
	return s
}

// errTransport stands for a broken stream: not a *protocol.Error, so
// retryable.
var errTransport = errors.New("stream reset")
