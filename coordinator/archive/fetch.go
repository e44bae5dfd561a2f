package archive

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// validators are the conditional-request headers remembered for one URL.
type validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

func (v validators) empty() bool { return v.ETag == "" && v.LastModified == "" }

// response is one fetched URL.
type response struct {
	notModified bool
	body        []byte
	validators  validators
}

// get fetches url, conditionally when cond is not empty, reading at most
// max bytes of body. 404 and 410 give ErrNotFound.
func (w *Watcher) get(ctx context.Context, url string, cond validators, max int64) (response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("User-Agent", w.opts.UserAgent)
	if cond.ETag != "" {
		req.Header.Set("If-None-Match", cond.ETag)
	}
	if cond.LastModified != "" {
		req.Header.Set("If-Modified-Since", cond.LastModified)
	}
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("archive: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		if cond.empty() {
			return response{}, fmt.Errorf("%w: GET %s: 304 to an unconditional request", ErrHTTPStatus, url)
		}
		return response{notModified: true, validators: cond}, nil
	case http.StatusNotFound, http.StatusGone:
		return response{}, fmt.Errorf("%w: GET %s: %s", ErrNotFound, url, resp.Status)
	default:
		return response{}, fmt.Errorf("%w: GET %s: %s", ErrHTTPStatus, url, resp.Status)
	}
	if resp.ContentLength > max {
		return response{}, fmt.Errorf("%w: GET %s: %d bytes, limit %d", ErrTooLarge, url, resp.ContentLength, max)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return response{}, fmt.Errorf("archive: GET %s: %w", url, err)
	}
	if int64(len(body)) > max {
		return response{}, fmt.Errorf("%w: GET %s: more than %d bytes", ErrTooLarge, url, max)
	}
	return response{
		body: body,
		validators: validators{
			ETag:         resp.Header.Get("ETag"),
			LastModified: resp.Header.Get("Last-Modified"),
		},
	}, nil
}
