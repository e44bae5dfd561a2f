package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// maxOutput caps how much of a command's output or an HTTP body is read.
const maxOutput = 4096

// maxExcerpt caps the excerpt of it kept in a failure's detail.
const maxExcerpt = 300

// Outcome is what one run of a check found.
type Outcome struct {
	Up bool
	// Detail says why the check failed, on one line; empty when up.
	Detail string
}

// Probe runs c once, bounded by c.Timeout.
func Probe(ctx context.Context, c Check) Outcome {
	c = c.WithDefaults()
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	if len(c.Command) > 0 {
		return probeCommand(ctx, c)
	}
	return probeHTTP(ctx, c)
}

func probeCommand(ctx context.Context, c Check) Outcome {
	cmd := exec.CommandContext(ctx, c.Command[0], c.Command[1:]...)
	out := &capped{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	killGroup(cmd)
	err := cmd.Run()
	if err == nil {
		return Outcome{Up: true}
	}
	why := err.Error()
	if ctx.Err() != nil {
		why = fmt.Sprintf("timed out after %v", c.Timeout)
	}
	return Outcome{Detail: withExcerpt(why, out.Bytes())}
}

func probeHTTP(ctx context.Context, c Check) Outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.HTTP, nil)
	if err != nil {
		return Outcome{Detail: err.Error()}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Outcome{Detail: fmt.Sprintf("timed out after %v", c.Timeout)}
		}
		return Outcome{Detail: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxOutput))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return Outcome{Up: true}
	}
	return Outcome{Detail: withExcerpt("HTTP "+resp.Status, body)}
}

// withExcerpt appends the start of output to why, on one line.
func withExcerpt(why string, output []byte) string {
	ex := store.OneLine(string(output))
	if len(ex) > maxExcerpt {
		ex = strings.ToValidUTF8(ex[:maxExcerpt], "") + "..."
	}
	if ex != "" {
		why += ": " + ex
	}
	return store.OneLine(why)
}

// capped keeps the first max bytes written to it and discards the rest.
type capped struct {
	max int
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) Bytes() []byte { return c.buf.Bytes() }
