package sched

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// Limits of an external policy program.
const (
	DefaultExecTimeout = 30 * time.Second
	maxDecision        = 16 << 20
	maxStderr          = 4 << 10
)

// ErrPolicyProgram means the external policy program failed or answered
// with something that is not a Decision.
var ErrPolicyProgram = errors.New("sched: policy program")

// Exec is a policy run by an external program: it gets the State as JSON on
// its standard input and must print a Decision as JSON on its standard
// output and exit 0. The answer is decoded strictly (unknown fields are
// refused) and every request is validated; nothing of a bad answer is used.
type Exec struct {
	// Argv is the program and its arguments.
	Argv []string
	// Timeout bounds one run (default DefaultExecTimeout).
	Timeout time.Duration
}

// Decide implements Policy.
func (p Exec) Decide(ctx context.Context, s State) (Decision, error) {
	if len(p.Argv) == 0 {
		return Decision{}, fmt.Errorf("%w: no program configured", ErrPolicyProgram)
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultExecTimeout
	}
	in, err := json.Marshal(s)
	if err != nil {
		return Decision{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.Argv[0], p.Argv[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	var out, errOut bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &out, n: maxDecision + 1}
	cmd.Stderr = &limitedWriter{w: &errOut, n: maxStderr}
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		return Decision{}, fmt.Errorf("%w %s: %v: %s", ErrPolicyProgram, p.Argv[0], err, strings.TrimSpace(errOut.String()))
	}
	if out.Len() > maxDecision {
		return Decision{}, fmt.Errorf("%w %s: answer larger than %d bytes", ErrPolicyProgram, p.Argv[0], maxDecision)
	}
	d, err := DecodeDecision(out.Bytes())
	if err != nil {
		return Decision{}, fmt.Errorf("%w %s: %w", ErrPolicyProgram, p.Argv[0], err)
	}
	return d, nil
}

// DecodeDecision decodes and validates a Decision strictly.
func DecodeDecision(b []byte) (Decision, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d Decision
	if err := dec.Decode(&d); err != nil {
		return Decision{}, fmt.Errorf("%w: %v", ErrBadDecision, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Decision{}, fmt.Errorf("%w: data after the decision", ErrBadDecision)
	}
	for _, r := range d.Requests {
		if err := r.Validate(); err != nil {
			return Decision{}, err
		}
	}
	if d.OldestResultAge < 0 {
		return Decision{}, fmt.Errorf("%w: negative oldest result age", ErrBadDecision)
	}
	return d, nil
}

// limitedWriter keeps at most n bytes and drops the rest, so a chatty
// program cannot exhaust memory.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
