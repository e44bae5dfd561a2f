package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
)

// APIError is the coordinator's refusal of a request: every non-2xx answer.
// Match it with errors.Is against the Err* values below, which compare by
// Code only.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the API's error code, such as "not_found".
	Code string
	// Message is the coordinator's human readable explanation.
	Message string
}

// Error returns the coordinator's message.
func (e *APIError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	if e.Code != "" {
		return fmt.Sprintf("coordinator: %s (HTTP %d)", e.Code, e.Status)
	}
	return fmt.Sprintf("coordinator: HTTP %d", e.Status)
}

// Is reports whether target is an *APIError with the same Code.
func (e *APIError) Is(target error) bool {
	var t *APIError
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// Error codes of the API, to match with errors.Is.
var (
	ErrBadRequest      = &APIError{Status: http.StatusBadRequest, Code: "bad_request", Message: "client: bad request"}
	ErrUnauthenticated = &APIError{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: "client: unauthenticated"}
	ErrForbidden       = &APIError{Status: http.StatusForbidden, Code: "forbidden", Message: "client: forbidden"}
	ErrNotFound        = &APIError{Status: http.StatusNotFound, Code: "not_found", Message: "client: not found"}
	ErrConflict        = &APIError{Status: http.StatusConflict, Code: "conflict", Message: "client: conflict"}
	ErrTooLarge        = &APIError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: "client: too large"}
	ErrInternal        = &APIError{Status: http.StatusInternalServerError, Code: "internal", Message: "client: internal error"}
)

// ErrBadResponse reports a 2xx answer the client cannot use: a body that
// does not decode, the wrong content type or a short download.
var ErrBadResponse = errors.New("client: bad response from coordinator")

// codeForStatus names the error code of a status when the body carries
// none, as when a proxy answers instead of the coordinator.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	}
	if status >= 500 {
		return "internal"
	}
	return ""
}

// parseError turns an error answer into an *APIError. It never fails: a
// body that is not the API's error object keeps the status's code and a
// message naming the status.
func parseError(status int, body []byte) *APIError {
	var wire apiv1.ErrorResponse
	e := &APIError{Status: status}
	if json.Unmarshal(body, &wire) == nil {
		e.Code, e.Message = wire.Error.Code, wire.Error.Message
	}
	if e.Code == "" {
		e.Code = codeForStatus(status)
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("coordinator answered HTTP %d %s", status, http.StatusText(status))
		if e.Code != "" {
			e.Message += " (" + e.Code + ")"
		}
	}
	return e
}
