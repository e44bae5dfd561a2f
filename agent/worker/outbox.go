package worker

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/agent/recovery"
	"github.com/sparegrid/sparegrid/agent/runner"
	"github.com/sparegrid/sparegrid/agent/state"
	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/sign"
)

// The outbox keeps every finished result, with the files it names, on
// disk from the moment it is signed until the coordinator acknowledges it,
// so that neither a lost connection nor an agent restart loses a result.
// Each entry is a directory outbox/job-ID-ATTEMPT holding entry.json and
// files/; it is assembled under a ".new-" name and renamed into place, so
// an entry either exists whole or not at all. Results the coordinator
// refuses for good are moved to outbox/refused for the volunteer to look
// at, keeping the newest maxRefused.
const (
	outboxEntryFile = "entry.json"
	outboxFilesDir  = "files"
	outboxNewPrefix = ".new-"
	outboxRefused   = "refused"
	maxRefused      = 50
	// outboxFlushTimeout bounds one pass over the outbox between jobs.
	outboxFlushTimeout = 2 * time.Minute
)

// ErrBadOutboxEntry means an outbox entry on disk cannot be read.
var ErrBadOutboxEntry = errors.New("worker: bad outbox entry")

// outboxEntry is a signed result waiting for the coordinator.
type outboxEntry struct {
	JobID   int64  `json:"job_id"`
	Attempt int    `json:"attempt"`
	Package string `json:"package"`
	// Envelope is the signed DSSE envelope, exactly as sent.
	Envelope []byte `json:"envelope"`
	// Key is protocol.ResultKey(Envelope).
	Key string `json:"idempotency_key"`
	// Blobs are the files the envelope names, under files/.
	Blobs   []sign.Blob `json:"blobs"`
	Created time.Time   `json:"created"`

	// dir is the entry's directory; files is where its blobs are read
	// from (dir/files, or the work directory when it could not be kept).
	dir, files string
}

func (w *Worker) outboxPath() string { return filepath.Join(w.StateDir, state.OutboxDir) }

func entryName(jobID int64, attempt int) string { return fmt.Sprintf("job-%d-%d", jobID, attempt) }

// prepareResult signs the result of a run and keeps it, with the files in
// out, in the outbox. When the outbox cannot take it (a full disk), the
// entry is returned unkept, reading its files from out, so that sending
// can still be tried.
func (w *Worker) prepareResult(j *jobRun, ex execution, out string) (*outboxEntry, error) {
	if len(ex.infraNotes) > 0 {
		if err := appendNotes(out, ex.infraNotes); err != nil {
			j.log.Warn("cannot record notes in the log", "err", err)
		}
	}
	blobs, err := w.hashAll(j, out)
	if err != nil {
		return nil, err
	}
	job := j.job
	tr := sign.TestResult{
		JobID:      job.ID,
		Attempt:    job.Attempt,
		Nonce:      job.Nonce,
		Package:    job.Package,
		Version:    job.Version,
		Release:    job.Release,
		Arch:       job.Arch,
		Triggers:   job.Triggers,
		ExitCode:   ex.outcome.ExitCode,
		Verdict:    ex.outcome.Verdict,
		Tests:      ex.outcome.Tests,
		Harness:    ex.harness,
		Agent:      sign.AgentRef{ID: w.AgentID, KeyID: sign.KeyID(w.Key.Public().(ed25519.PublicKey))},
		Blobs:      blobs,
		StartedAt:  ex.started.UTC(),
		FinishedAt: ex.finished.UTC(),
	}
	env, err := sign.SignResult(w.Key, tr)
	if err != nil {
		return nil, fmt.Errorf("worker: sign result: %w", err)
	}
	body, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("worker: encode envelope: %w", err)
	}
	e := &outboxEntry{
		JobID: job.ID, Attempt: job.Attempt, Package: job.Package,
		Envelope: body, Key: protocol.ResultKey(body), Blobs: blobs, Created: w.Now().UTC(),
		files: out,
	}
	if err := w.keep(e, out); err != nil {
		j.log.Warn("cannot keep the result in the outbox; sending it without a copy", "err", err)
		e.dir, e.files = "", out
	}
	return e, nil
}

// hashAll lists the files the run left in out, the log first, and hashes
// them as the result will name them.
func (w *Worker) hashAll(j *jobRun, out string) ([]sign.Blob, error) {
	files, err := w.Artifacts(out)
	if errors.Is(err, fs.ErrNotExist) {
		files, err = nil, nil
	}
	if err != nil {
		// Too many or too large files: send the log alone, so that the
		// result still arrives and says what happened.
		j.log.Warn("cannot list all artifacts, sending the log alone", "err", err)
		files = nil
		if fi, serr := os.Stat(filepath.Join(out, logName)); serr == nil && fi.Mode().IsRegular() && fi.Size() <= runner.MaxArtifactSize {
			files = []runner.File{{Name: logName, Size: fi.Size()}}
		}
	}
	sort.SliceStable(files, func(a, b int) bool {
		return files[a].Name == logName && files[b].Name != logName
	})
	blobs := make([]sign.Blob, 0, len(files))
	for _, f := range files {
		sum, size, err := hashFile(filepath.Join(out, filepath.FromSlash(f.Name)), true)
		if err != nil {
			return nil, fmt.Errorf("worker: hash %s: %w", f.Name, err)
		}
		blobs = append(blobs, sign.Blob{Name: f.Name, SHA256: sum, Size: size})
	}
	return blobs, nil
}

// keep moves out into a new outbox entry for e and makes it durable.
func (w *Worker) keep(e *outboxEntry, out string) error {
	box := w.outboxPath()
	if err := os.MkdirAll(box, 0o700); err != nil {
		return err
	}
	name := entryName(e.JobID, e.Attempt)
	tmp := filepath.Join(box, outboxNewPrefix+name)
	if err := recovery.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	files := filepath.Join(tmp, outboxFilesDir)
	err := os.Rename(out, files)
	if errors.Is(err, fs.ErrNotExist) {
		err = os.Mkdir(files, 0o700)
	}
	if err != nil {
		recovery.RemoveAll(tmp)
		return err
	}
	if err := writeSynced(filepath.Join(tmp, outboxEntryFile), e); err != nil {
		// Put the files back where sending without a copy reads them.
		os.Rename(files, out)
		recovery.RemoveAll(tmp)
		return err
	}
	final := filepath.Join(box, name)
	if err := recovery.RemoveAll(final); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	if err := syncDir(box); err != nil {
		return err
	}
	e.dir, e.files = final, filepath.Join(final, outboxFilesDir)
	return nil
}

func writeSynced(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// loadEntry reads the outbox entry in dir.
func loadEntry(dir string) (*outboxEntry, error) {
	b, err := os.ReadFile(filepath.Join(dir, outboxEntryFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadOutboxEntry, err)
	}
	e, err := decodeEntry(b)
	if err != nil {
		return nil, err
	}
	e.dir, e.files = dir, filepath.Join(dir, outboxFilesDir)
	return e, nil
}

// decodeEntry parses and checks entry.json.
func decodeEntry(b []byte) (*outboxEntry, error) {
	var e outboxEntry
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadOutboxEntry, err)
	}
	switch {
	case e.JobID <= 0 || e.Attempt <= 0:
		return nil, fmt.Errorf("%w: job %d attempt %d", ErrBadOutboxEntry, e.JobID, e.Attempt)
	case len(e.Envelope) == 0 || e.Key != protocol.ResultKey(e.Envelope):
		return nil, fmt.Errorf("%w: envelope does not match its key", ErrBadOutboxEntry)
	}
	for _, bl := range e.Blobs {
		if !filepath.IsLocal(filepath.FromSlash(bl.Name)) || bl.Size < 0 || len(bl.SHA256) != 64 {
			return nil, fmt.Errorf("%w: blob %q", ErrBadOutboxEntry, bl.Name)
		}
	}
	return &e, nil
}

// send uploads the entry's files and then its result. A blob upload that
// the coordinator refuses as stale goes straight to the result: the result
// may have been stored by an earlier send whose acknowledgement was lost,
// which the coordinator then acknowledges again.
func (w *Worker) send(ctx context.Context, e *outboxEntry) (protocol.ResultReply, error) {
	for _, b := range e.Blobs {
		err := w.upload(ctx, e.JobID, e.Attempt, e.files, b)
		if errors.Is(err, protocol.ErrStaleLease) {
			break
		}
		if err != nil {
			return protocol.ResultReply{}, err
		}
	}
	var reply protocol.ResultReply
	err := w.call(ctx, w.CallRetries, func(ctx context.Context, c Conn, token string) error {
		var err error
		reply, err = c.Result(ctx, token, protocol.ResultRequest{
			JobID: e.JobID, Attempt: e.Attempt, Envelope: e.Envelope, IdempotencyKey: e.Key,
		})
		return err
	})
	return reply, err
}

// settle removes an acknowledged entry, moves one the coordinator refused
// for good to outbox/refused, and keeps any other for a later try. It
// returns true when the entry is gone from the outbox.
func (w *Worker) settle(e *outboxEntry, err error, log *slog.Logger) bool {
	if e.dir == "" {
		return true
	}
	switch {
	case err == nil:
	case protocol.Permanent(err):
		log.Error("coordinator refused the result; keeping it in the outbox's refused directory", "job", e.JobID, "attempt", e.Attempt, "err", err)
		if merr := w.moveRefused(e); merr != nil {
			log.Error("cannot move the refused result", "dir", e.dir, "err", merr)
		}
		return true
	default:
		log.Warn("result not acknowledged yet; it stays in the outbox and is sent again", "job", e.JobID, "attempt", e.Attempt, "err", err)
		return false
	}
	if rerr := recovery.RemoveAll(e.dir); rerr != nil {
		log.Warn("cannot remove an acknowledged outbox entry", "dir", e.dir, "err", rerr)
	}
	return true
}

// moveRefused moves e to the refused directory and prunes the oldest
// refused entries beyond maxRefused.
func (w *Worker) moveRefused(e *outboxEntry) error {
	dir := filepath.Join(w.outboxPath(), outboxRefused)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	dst := filepath.Join(dir, fmt.Sprintf("%s-%d", filepath.Base(e.dir), w.Now().UnixNano()))
	if err := os.Rename(e.dir, dst); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) <= maxRefused {
		return nil
	}
	type aged struct {
		name string
		mod  time.Time
	}
	var all []aged
	for _, de := range entries {
		if fi, err := de.Info(); err == nil {
			all = append(all, aged{de.Name(), fi.ModTime()})
		}
	}
	sort.Slice(all, func(a, b int) bool { return all[a].mod.Before(all[b].mod) })
	for _, a := range all[:max(len(all)-maxRefused, 0)] {
		recovery.RemoveAll(filepath.Join(dir, a.name))
	}
	return nil
}

// pendingEntries returns the outbox's entries, oldest job first. Entries
// left half-made by a crash are finished when their entry.json is whole,
// and removed otherwise; unreadable entries are moved to refused.
func (w *Worker) pendingEntries(log *slog.Logger) []*outboxEntry {
	box := w.outboxPath()
	des, err := os.ReadDir(box)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("cannot read the outbox", "dir", box, "err", err)
		}
		return nil
	}
	var out []*outboxEntry
	for _, de := range des {
		name := de.Name()
		if !de.IsDir() || name == outboxRefused {
			continue
		}
		dir := filepath.Join(box, name)
		if rest, ok := strings.CutPrefix(name, outboxNewPrefix); ok {
			if _, err := loadEntry(dir); err != nil {
				log.Warn("removing a result the agent crashed while keeping", "dir", dir, "err", err)
				recovery.RemoveAll(dir)
				continue
			}
			final := filepath.Join(box, rest)
			if err := os.Rename(dir, final); err != nil {
				log.Warn("cannot finish an outbox entry", "dir", dir, "err", err)
				continue
			}
			dir = final
		}
		e, err := loadEntry(dir)
		if err != nil {
			log.Error("unreadable outbox entry", "dir", dir, "err", err)
			w.moveRefused(&outboxEntry{dir: dir})
			continue
		}
		out = append(out, e)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].JobID != out[b].JobID {
			return out[a].JobID < out[b].JobID
		}
		return out[a].Attempt < out[b].Attempt
	})
	return out
}

// flushOutbox sends every result waiting in the outbox once, within
// outboxFlushTimeout. It returns how many are still waiting.
func (w *Worker) flushOutbox(ctx context.Context) int {
	entries := w.pendingEntries(w.Log)
	if len(entries) == 0 {
		return 0
	}
	w.Log.Info("sending results kept in the outbox", "count", len(entries))
	ctx, cancel := context.WithTimeout(ctx, outboxFlushTimeout)
	defer cancel()
	left := 0
	for _, e := range entries {
		log := w.Log.With("job", e.JobID, "attempt", e.Attempt, "package", e.Package)
		reply, err := w.send(ctx, e)
		if !w.settle(e, err, log) {
			left++
			continue
		}
		if err == nil {
			log.Info("job reported from the outbox", "verdict", reply.Verdict, "duplicate", reply.Duplicate)
		}
	}
	return left
}
