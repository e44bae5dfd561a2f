package client

import (
	"errors"
	"testing"
)

func TestParseError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   APIError
	}{
		{
			name: "api error", status: 409,
			body: `{"error":{"code":"conflict","message":"account ~alice exists"}}`,
			want: APIError{Status: 409, Code: "conflict", Message: "account ~alice exists"},
		},
		{
			name: "code only", status: 403, body: `{"error":{"code":"forbidden"}}`,
			want: APIError{Status: 403, Code: "forbidden", Message: "coordinator answered HTTP 403 Forbidden (forbidden)"},
		},
		{
			name: "not json", status: 502, body: "<html>",
			want: APIError{Status: 502, Code: "internal", Message: "coordinator answered HTTP 502 Bad Gateway (internal)"},
		},
		{
			name: "unknown status", status: 418, body: "",
			want: APIError{Status: 418, Message: "coordinator answered HTTP 418 I'm a teapot"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseError(tt.status, []byte(tt.body)); *got != tt.want {
				t.Errorf("parseError(%d, %q) = %+v, want %+v", tt.status, tt.body, *got, tt.want)
			}
		})
	}
}

func FuzzParseError(f *testing.F) {
	f.Add(400, []byte(`{"error":{"code":"bad_request","message":"no"}}`))
	f.Add(500, []byte(`{"error":null}`))
	f.Add(404, []byte(`[]`))
	f.Add(302, []byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := parseError(status, body)
		if e.Status != status || e.Error() == "" {
			t.Fatalf("parseError(%d, %q) = %+v", status, body, e)
		}
		if !errors.Is(e, &APIError{Code: e.Code}) {
			t.Fatalf("parseError(%d, %q) does not match its own code", status, body)
		}
	})
}
