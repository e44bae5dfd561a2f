// Package client owns the typed Go client of the coordinator's HTTP API
// (/api/v1, see docs/api.md) and the packing of local source packages into
// the tar archives that the API accepts as uploads.
//
// It speaks only HTTP to the coordinator, in the JSON shapes of package
// apiv1: it must not import other coordinator packages (store, api) nor the
// agent protocol, and it keeps no state
// besides the server address, the token and the http.Client it was given.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/shared/version"
)

const (
	apiPrefix = "/api/v1"
	// maxJSON caps a JSON answer; a job list is far smaller.
	maxJSON = 64 << 20
	// maxEnvelope caps a signed result envelope.
	maxEnvelope = 16 << 20
	// maxErrorBody caps the body read from an error answer.
	maxErrorBody = 64 << 10
)

// Client calls one coordinator's HTTP API. It is safe for concurrent use.
type Client struct {
	server string
	token  string
	hc     *http.Client
}

// New returns a client of the coordinator at server (such as
// "http://127.0.0.1:8080"). token is the API token sent on every request,
// or empty for anonymous reads. A nil httpClient means http.DefaultClient.
func New(server, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{server: strings.TrimRight(server, "/"), token: token, hc: httpClient}
}

// Server returns the base address the client talks to.
func (c *Client) Server() string { return c.server }

// Version returns the coordinator's build and agent protocol version.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var v VersionInfo
	err := c.doJSON(ctx, http.MethodGet, "/version", nil, nil, &v)
	return v, err
}

// CreateAccount creates an account (admin only) and returns it with its
// API token, which the coordinator shows this one time only.
func (c *Client) CreateAccount(ctx context.Context, req CreateAccountRequest) (Account, string, error) {
	var resp apiv1.CreateAccountResponse
	if err := c.doJSON(ctx, http.MethodPost, "/accounts", nil, req, &resp); err != nil {
		return Account{}, "", err
	}
	if resp.Token == "" {
		return Account{}, "", fmt.Errorf("%w: account created without a token", ErrBadResponse)
	}
	return resp.Account, resp.Token, nil
}

// Whoami returns the account the client's token belongs to.
func (c *Client) Whoami(ctx context.Context) (Account, error) {
	var a Account
	err := c.doJSON(ctx, http.MethodGet, "/whoami", nil, nil, &a)
	return a, err
}

// Agents lists every agent the coordinator knows.
func (c *Client) Agents(ctx context.Context) ([]Agent, error) {
	var resp apiv1.AgentList
	err := c.doJSON(ctx, http.MethodGet, "/agents", nil, nil, &resp)
	return resp.Agents, err
}

// Agent returns one agent.
func (c *Client) Agent(ctx context.Context, id int64) (Agent, error) {
	var a Agent
	err := c.doJSON(ctx, http.MethodGet, "/agents/"+strconv.FormatInt(id, 10), nil, nil, &a)
	return a, err
}

// ClaimAgent confirms, as the agent's owner, the code an agent showed at
// registration.
func (c *Client) ClaimAgent(ctx context.Context, code string) (Agent, error) {
	var a Agent
	err := c.doJSON(ctx, http.MethodPost, "/agents/claim", nil, apiv1.ClaimRequest{Code: code}, &a)
	return a, err
}

// ApproveAgent lets an agent take jobs (admin only).
func (c *Client) ApproveAgent(ctx context.Context, id int64) (Agent, error) {
	var a Agent
	err := c.doJSON(ctx, http.MethodPost, "/agents/"+strconv.FormatInt(id, 10)+"/approve", nil, nil, &a)
	return a, err
}

// SetAgentLabels replaces the labels an admin set for an agent, which
// routing applies over what the agent advertised (admin only); no labels
// clears them. The coordinator refuses a label that is not one of the
// forms docs/api.md lists with ErrBadRequest.
func (c *Client) SetAgentLabels(ctx context.Context, id int64, labels []string) (Agent, error) {
	if labels == nil {
		labels = []string{}
	}
	var a Agent
	err := c.doJSON(ctx, http.MethodPut, "/agents/"+strconv.FormatInt(id, 10)+"/labels", nil, apiv1.AgentLabelsRequest{Labels: labels}, &a)
	return a, err
}

// RejectAgent refuses an agent (admin only).
func (c *Client) RejectAgent(ctx context.Context, id int64) (Agent, error) {
	var a Agent
	err := c.doJSON(ctx, http.MethodPost, "/agents/"+strconv.FormatInt(id, 10)+"/reject", nil, nil, &a)
	return a, err
}

// UploadSource uploads a source tar archive of size bytes whose sha256 (hex)
// the caller computed, such as the File of a Packed. The coordinator checks
// the digest and refuses a mismatch.
func (c *Client) UploadSource(ctx context.Context, r io.Reader, sha256 string, size int64) (SourceRef, error) {
	var ref SourceRef
	q := url.Values{"sha256": {sha256}}
	req, err := c.newRequest(ctx, http.MethodPost, "/sources", q, io.NopCloser(r))
	if err != nil {
		return ref, err
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := c.do(req)
	if err != nil {
		return ref, err
	}
	defer resp.Body.Close()
	if err := decodeJSON(resp, &ref); err != nil {
		return ref, err
	}
	if !strings.EqualFold(ref.SHA256, sha256) || ref.Size != size {
		return ref, fmt.Errorf("%w: uploaded sha256:%s (%d bytes), coordinator stored sha256:%s (%d bytes)",
			ErrBadResponse, sha256, size, ref.SHA256, ref.Size)
	}
	return ref, nil
}

// SubmitJob asks for a package to be tested.
func (c *Client) SubmitJob(ctx context.Context, req SubmitRequest) (Job, error) {
	var j Job
	err := c.doJSON(ctx, http.MethodPost, "/jobs", nil, req, &j)
	return j, err
}

// Jobs lists jobs matching f, newest first.
func (c *Client) Jobs(ctx context.Context, f JobsFilter) ([]Job, error) {
	q := url.Values{}
	if f.Package != "" {
		q.Set("package", f.Package)
	}
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var resp apiv1.JobList
	err := c.doJSON(ctx, http.MethodGet, "/jobs", q, nil, &resp)
	return resp.Jobs, err
}

// Job returns one job with the tests, harness and blobs of its latest
// result.
func (c *Client) Job(ctx context.Context, id int64) (Job, error) {
	var j Job
	err := c.doJSON(ctx, http.MethodGet, "/jobs/"+strconv.FormatInt(id, 10), nil, nil, &j)
	return j, err
}

// CancelJob cancels a queued or running job.
func (c *Client) CancelJob(ctx context.Context, id int64) (Job, error) {
	var j Job
	err := c.doJSON(ctx, http.MethodPost, "/jobs/"+strconv.FormatInt(id, 10)+"/cancel", nil, nil, &j)
	return j, err
}

// Log copies the autopkgtest log of a job's latest result to w.
func (c *Client) Log(ctx context.Context, id int64, w io.Writer) error {
	_, err := c.download(ctx, "/jobs/"+strconv.FormatInt(id, 10)+"/log", w)
	return err
}

// Envelope returns the signed result envelope of a job's latest result,
// byte for byte as the agent signed it.
func (c *Client) Envelope(ctx context.Context, id int64) ([]byte, error) {
	var buf bytes.Buffer
	_, err := c.download(ctx, "/jobs/"+strconv.FormatInt(id, 10)+"/envelope", &limitedWriter{w: &buf, n: maxEnvelope})
	if err != nil {
		if errors.Is(err, errWriteLimit) {
			return nil, fmt.Errorf("%w: envelope larger than %d bytes", ErrBadResponse, maxEnvelope)
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// Blob copies the blob with the given sha256 (hex) to w and returns how many
// bytes it copied. It does not check the digest; callers that care do.
func (c *Client) Blob(ctx context.Context, sha256 string, w io.Writer) (int64, error) {
	if !isHex(sha256) {
		return 0, fmt.Errorf("%w: blob digest %q is not hex", ErrBadRequest, sha256)
	}
	return c.download(ctx, "/blobs/"+sha256, w)
}

// Results lists the done jobs of a package, newest first.
func (c *Client) Results(ctx context.Context, pkg string) ([]Job, error) {
	var resp apiv1.JobList
	err := c.doJSON(ctx, http.MethodGet, "/results", url.Values{"package": {pkg}}, nil, &resp)
	return resp.Jobs, err
}

// Verdicts returns the verdicts of a package, of one version when version
// is not empty, with the confirmation runs they wait for.
func (c *Client) Verdicts(ctx context.Context, pkg, version string) (VerdictList, error) {
	q := url.Values{"package": {pkg}}
	if version != "" {
		q.Set("version", version)
	}
	var resp VerdictList
	err := c.doJSON(ctx, http.MethodGet, "/verdicts", q, nil, &resp)
	return resp, err
}

// Schedule returns what the coordinator's selection policy did last.
func (c *Client) Schedule(ctx context.Context) (Schedule, error) {
	var resp Schedule
	err := c.doJSON(ctx, http.MethodGet, "/schedule", nil, nil, &resp)
	return resp, err
}

// AddBlockRule adds a blocklist rule (admin only) and returns it as
// stored.
func (c *Client) AddBlockRule(ctx context.Context, req BlockRuleRequest) (BlockRule, error) {
	var r BlockRule
	err := c.doJSON(ctx, http.MethodPost, "/blocklist", nil, req, &r)
	return r, err
}

// BlockRules lists the active blocklist rules, or with all every rule,
// expired ones too; oldest first.
func (c *Client) BlockRules(ctx context.Context, all bool) ([]BlockRule, error) {
	var q url.Values
	if all {
		q = url.Values{"all": {"true"}}
	}
	var resp apiv1.BlockRuleList
	err := c.doJSON(ctx, http.MethodGet, "/blocklist", q, nil, &resp)
	return resp.Rules, err
}

// RemoveBlockRule deletes a blocklist rule (admin only).
func (c *Client) RemoveBlockRule(ctx context.Context, id int64) error {
	req, err := c.newRequest(ctx, http.MethodDelete, "/blocklist/"+strconv.FormatInt(id, 10), nil, nil)
	if err != nil {
		return err
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// PostEvent posts an event (maintainer or admin) and returns it as stored,
// with what the coordinator's rules made of it.
func (c *Client) PostEvent(ctx context.Context, req EventPost) (Event, error) {
	var e Event
	err := c.doJSON(ctx, http.MethodPost, "/events", nil, req, &e)
	return e, err
}

// Events lists the newest events, newest first; limit 0 means the
// coordinator's default.
func (c *Client) Events(ctx context.Context, limit int) ([]Event, error) {
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var resp apiv1.EventList
	err := c.doJSON(ctx, http.MethodGet, "/events", q, nil, &resp)
	return resp.Events, err
}

// Event returns one event.
func (c *Client) Event(ctx context.Context, id int64) (Event, error) {
	var e Event
	err := c.doJSON(ctx, http.MethodGet, "/events/"+strconv.FormatInt(id, 10), nil, nil, &e)
	return e, err
}

func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	u := c.server + apiPrefix + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", "sparegrid-client/"+version.Version)
	return req, nil
}

// do sends req and returns the response when its status is 2xx; otherwise
// it closes the body and returns an *APIError.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("client: %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return nil, parseError(resp.StatusCode, body)
}

func (c *Client) doJSON(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeJSON(resp, out)
}

func (c *Client) download(ctx context.Context, path string, w io.Writer) (int64, error) {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("client: GET %s: %w", path, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("%w: GET %s: got %d bytes, announced %d", ErrBadResponse, path, n, resp.ContentLength)
	}
	return n, nil
}

func decodeJSON(resp *http.Response, out any) error {
	path := resp.Request.URL.Path
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return fmt.Errorf("%w: %s answered with %q, want application/json", ErrBadResponse, path, ct)
		}
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxJSON))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadResponse, path, err)
	}
	return nil
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

var errWriteLimit = errors.New("client: write limit reached")

// limitedWriter fails once more than n bytes are written.
type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, errWriteLimit
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}
