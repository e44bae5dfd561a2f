package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/coordinator/client"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/sign"
)

func (a *app) verifyCommand() *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "verify JOB",
		Short: "Check a job's signed result offline",
		Long: `Check the signed result of a job's latest attempt: the agent's signature
over it, that it is the result of this job and says what the coordinator
reports about the job, and that every log and artifact it names has the
signed size and sha256.

By default the agent's public key comes from the coordinator. Give --key
with a file holding the agent's base64 public key (as "sparegrid agents
show ID --json" shows it in public_key, or as the agent's owner reads it
off the agent's key) to trust no one but that key. Each check is reported on standard error; the exit status is non-zero
when any fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("job", args[0])
			if err != nil {
				return err
			}
			return a.verify(cmd.Context(), id, keyFile)
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "file holding the agent's base64 Ed25519 public key")
	return cmd
}

func (a *app) verify(ctx context.Context, id int64, keyFile string) error {
	c, err := a.client(false)
	if err != nil {
		return err
	}
	job, err := c.Job(ctx, id)
	if err != nil {
		return err
	}
	data, err := c.Envelope(ctx, id)
	if err != nil {
		if errors.Is(err, client.ErrNotFound) {
			return fmt.Errorf("job %d has no signed result yet (state %s)", id, clean(job.State))
		}
		return err
	}
	env, err := sign.ParseEnvelope(data)
	if err != nil {
		return fmt.Errorf("signature: FAILED: %w", err)
	}

	pub, keyFrom, err := a.verifyKey(ctx, c, job, keyFile)
	if err != nil {
		return err
	}
	tr, err := sign.VerifyResult(env, pub)
	if err != nil {
		fmt.Fprintf(a.stderr, "signature: FAILED: %v\n", err)
		return fmt.Errorf("job %d: the result is not signed by key %s (%s)", id, sign.KeyID(pub), keyFrom)
	}
	fmt.Fprintf(a.stderr, "signature: ok (agent %d, key %s, %s)\n", tr.Agent.ID, sign.KeyID(pub), keyFrom)

	failed := 0
	check := func(what string, ok bool, signed, reported any) {
		if ok {
			fmt.Fprintf(a.stderr, "%s: ok\n", what)
			return
		}
		failed++
		fmt.Fprintf(a.stderr, "%s: MISMATCH: signed %s, coordinator reports %s\n", what, show(signed), show(reported))
	}
	check("job id", tr.JobID == job.ID, tr.JobID, job.ID)
	if job.Agent != nil {
		check("agent", tr.Agent.ID == *job.Agent, tr.Agent.ID, *job.Agent)
	}
	check("package", tr.Package == job.Package, tr.Package, job.Package)
	if job.Version != "" {
		check("version", tr.Version == job.Version, tr.Version, job.Version)
	}
	check("release", tr.Release == job.Release, tr.Release, job.Release)
	check("arch", tr.Arch == job.Arch, tr.Arch, job.Arch)
	check("verdict", tr.Verdict == job.Verdict, tr.Verdict, job.Verdict)
	check("tests", slices.Equal(tr.Tests, job.Tests), tr.Tests, job.Tests)
	if job.Harness != nil {
		check("harness", tr.Harness == *job.Harness, tr.Harness.Rev(), job.Harness.Rev())
	}
	check("blob list", sameBlobs(tr.Blobs, job.Blobs), tr.Blobs, job.Blobs)

	for _, b := range tr.Blobs {
		if err := a.verifyBlob(ctx, c, b); err != nil {
			failed++
			fmt.Fprintf(a.stderr, "blob %s: FAILED: %v\n", clean(b.Name), err)
			continue
		}
		fmt.Fprintf(a.stderr, "blob %s: ok (%s)\n", clean(b.Name), humanSize(b.Size))
	}
	if failed > 0 {
		return fmt.Errorf("job %d: %d of the checks failed; do not trust this result", id, failed)
	}
	fmt.Fprintf(a.stderr, "job %d: verified: %s %s on %s/%s, %s, attempt %d\n",
		id, clean(tr.Package), clean(tr.Version), clean(tr.Release), clean(tr.Arch), tr.Verdict, tr.Attempt)
	return nil
}

// verifyKey returns the public key to verify job's result with and says
// where it came from.
func (a *app) verifyKey(ctx context.Context, c *client.Client, job client.Job, keyFile string) (ed25519.PublicKey, string, error) {
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, "", fmt.Errorf("read key: %w", err)
		}
		pub, err := decodeKey(string(b))
		if err != nil {
			return nil, "", fmt.Errorf("key file %s: %w", keyFile, err)
		}
		return pub, "from " + keyFile, nil
	}
	if job.Agent == nil {
		return nil, "", fmt.Errorf("job %d names no agent; give the agent's key with --key", job.ID)
	}
	ag, err := c.Agent(ctx, *job.Agent)
	if err != nil {
		return nil, "", fmt.Errorf("agent %d: %w", *job.Agent, err)
	}
	pub, err := publicKey(ag.PublicKey)
	if err != nil {
		return nil, "", fmt.Errorf("agent %d public key: %w", ag.ID, err)
	}
	if ag.KeyID != "" && ag.KeyID != sign.KeyID(pub) {
		return nil, "", fmt.Errorf("agent %d: key_id %s does not name its public key %s", ag.ID, clean(ag.KeyID), sign.KeyID(pub))
	}
	return pub, "from the coordinator", nil
}

func decodeKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	return publicKey(b)
}

func publicKey(b []byte) (ed25519.PublicKey, error) {
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%d bytes, want a %d-byte Ed25519 public key", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// verifyBlob streams the blob from the coordinator through
// sign.VerifyBlob.
func (a *app) verifyBlob(ctx context.Context, c *client.Client, b sign.Blob) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := c.Blob(ctx, b.SHA256, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	err := sign.VerifyBlob(b, pr)
	pr.Close()
	dlErr := <-done
	if dlErr != nil && !errors.Is(dlErr, io.ErrClosedPipe) {
		return dlErr
	}
	return err
}

func sameBlobs(signed []sign.Blob, reported []client.Blob) bool {
	if len(signed) != len(reported) {
		return false
	}
	for i, s := range signed {
		r := reported[i]
		if s.Name != r.Name || s.SHA256 != r.SHA256 || s.Size != r.Size {
			return false
		}
	}
	return true
}

// show renders a checked value for a mismatch report.
func show(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case dep8.Verdict:
		return strconv.Quote(string(v))
	case []dep8.Test:
		parts := make([]string, len(v))
		for i, t := range v {
			parts[i] = fmt.Sprintf("%s %s", t.Name, t.Result)
		}
		return clean("[" + strings.Join(parts, ", ") + "]")
	case []sign.Blob:
		parts := make([]string, len(v))
		for i, b := range v {
			parts[i] = fmt.Sprintf("%s %d %.12s", b.Name, b.Size, b.SHA256)
		}
		return clean("[" + strings.Join(parts, ", ") + "]")
	case []client.Blob:
		parts := make([]string, len(v))
		for i, b := range v {
			parts[i] = fmt.Sprintf("%s %d %.12s", b.Name, b.Size, b.SHA256)
		}
		return clean("[" + strings.Join(parts, ", ") + "]")
	}
	return clean(fmt.Sprint(v))
}
