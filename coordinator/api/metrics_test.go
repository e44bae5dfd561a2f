package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMetricsRoute(t *testing.T) {
	db, bs := openStores(t)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "sparegrid_up 1\n")
	})
	for _, tt := range []struct {
		name     string
		handler  http.Handler
		method   string
		wantCode int
		wantBody string
	}{
		{"served", metrics, http.MethodGet, http.StatusOK, "sparegrid_up 1\n"},
		{"not configured", nil, http.MethodGet, http.StatusNotFound, ""},
		{"read only", metrics, http.MethodPost, http.StatusMethodNotAllowed, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := New(Config{Store: db, Blobs: bs, Metrics: tt.handler, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), tt.method, "/metrics", nil))
			if rec.Code != tt.wantCode {
				t.Errorf("%s /metrics = %d, want %d", tt.method, rec.Code, tt.wantCode)
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("%s /metrics body = %q, want %q", tt.method, rec.Body.String(), tt.wantBody)
			}
		})
	}
}
