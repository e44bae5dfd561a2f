package rules

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func validEvent() Event {
	return Event{
		ID:          17,
		Type:        "upload",
		Source:      "libfoo",
		Version:     "1.2-1",
		ArtifactURL: "https://build.example.org/libfoo_1.2-1_source.changes",
		BuildID:     "4711",
		Metadata:    map[string]string{"suite": "unstable", "Uploader": "Jane Doe <jane@example.org>"},
		Producer:    "~buildd",
		Received:    time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

func TestEventValidate(t *testing.T) {
	many := map[string]string{}
	for i := range MaxMetadata + 1 {
		many[strings.Repeat("k", i+1)] = "v"
	}
	tests := []struct {
		name   string
		change func(*Event)
		ok     bool
	}{
		{"valid", func(*Event) {}, true},
		{"only a type", func(e *Event) { *e = Event{Type: "image-built"} }, true},
		{"source without version", func(e *Event) { e.Version = "" }, true},
		{"epoch and tilde", func(e *Event) { e.Version = "2:1.0~rc1-3+b1" }, true},
		{"http URL", func(e *Event) { e.ArtifactURL = "http://10.0.0.1:8080/x.img" }, true},
		{"negative id", func(e *Event) { e.ID = -1 }, false},
		{"no type", func(e *Event) { e.Type = "" }, false},
		{"upper-case type", func(e *Event) { e.Type = "Upload" }, false},
		{"type with space", func(e *Event) { e.Type = "new upload" }, false},
		{"long type", func(e *Event) { e.Type = strings.Repeat("a", MaxNameLen+1) }, false},
		{"bad source", func(e *Event) { e.Source = "LibFoo" }, false},
		{"source option", func(e *Event) { e.Source = "-rf" }, false},
		{"bad version", func(e *Event) { e.Version = "1.2 1" }, false},
		{"version without source", func(e *Event) { e.Source = "" }, false},
		{"ftp URL", func(e *Event) { e.ArtifactURL = "ftp://example.org/x" }, false},
		{"file URL", func(e *Event) { e.ArtifactURL = "file:///etc/passwd" }, false},
		{"relative URL", func(e *Event) { e.ArtifactURL = "/x.img" }, false},
		{"URL with credentials", func(e *Event) { e.ArtifactURL = "https://u:p@example.org/x" }, false},
		{"URL with space", func(e *Event) { e.ArtifactURL = "https://example.org/a b" }, false},
		{"long URL", func(e *Event) { e.ArtifactURL = "https://example.org/" + strings.Repeat("a", MaxURLLen) }, false},
		{"build id with newline", func(e *Event) { e.BuildID = "1\n2" }, false},
		{"long build id", func(e *Event) { e.BuildID = strings.Repeat("1", MaxBuildIDLen+1) }, false},
		{"too much metadata", func(e *Event) { e.Metadata = many }, false},
		{"empty metadata key", func(e *Event) { e.Metadata = map[string]string{"": "x"} }, false},
		{"metadata key with slash", func(e *Event) { e.Metadata = map[string]string{"a/b": "x"} }, false},
		{"metadata value with control", func(e *Event) { e.Metadata = map[string]string{"a": "x\x1b[31m"} }, false},
		{"metadata value not UTF-8", func(e *Event) { e.Metadata = map[string]string{"a": "\xff"} }, false},
		{"long metadata value", func(e *Event) { e.Metadata = map[string]string{"a": strings.Repeat("x", MaxMetadataValueLen+1)} }, false},
		{"producer with space", func(e *Event) { e.Producer = "a b" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEvent()
			tt.change(&e)
			err := e.Validate()
			if tt.ok && err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("Validate() = %v, want %v", err, ErrInvalidEvent)
			}
		})
	}
}

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Event
		ok   bool
	}{
		{
			name: "full",
			in: `{"type": "upload", "source": "libfoo", "version": "1.2-1",
				"artifact_url": "https://build.example.org/libfoo.changes", "build_id": "4711",
				"metadata": {"suite": "unstable", "uploader": "Jane Doe"}}`,
			want: Event{Type: "upload", Source: "libfoo", Version: "1.2-1",
				ArtifactURL: "https://build.example.org/libfoo.changes", BuildID: "4711",
				Metadata: map[string]string{"suite": "unstable", "uploader": "Jane Doe"}},
			ok: true,
		},
		{name: "minimal", in: `{"type":"image-built"}`, want: Event{Type: "image-built"}, ok: true},
		{name: "empty metadata", in: `{"type":"x","metadata":{}}`, want: Event{Type: "x"}, ok: true},
		{name: "surrounding space", in: " \n{\"type\":\"x\"}\n", want: Event{Type: "x"}, ok: true},
		{name: "empty", in: ``},
		{name: "null", in: `null`},
		{name: "array", in: `[{"type":"x"}]`},
		{name: "unknown key", in: `{"type":"x","colour":"red"}`},
		{name: "id from producer", in: `{"type":"x","id":"5"}`},
		{name: "producer from producer", in: `{"type":"x","producer":"~admin"}`},
		{name: "received from producer", in: `{"type":"x","received":"2026-01-01T00:00:00Z"}`},
		{name: "case variant", in: `{"Type":"x"}`},
		{name: "repeated key", in: `{"type":"x","type":"y"}`},
		{name: "repeated metadata key", in: `{"type":"x","metadata":{"a":"1","a":"2"}}`},
		{name: "number value", in: `{"type":"x","build_id":4711}`},
		{name: "null value", in: `{"type":"x","source":null}`},
		{name: "metadata not object", in: `{"type":"x","metadata":["a"]}`},
		{name: "metadata number", in: `{"type":"x","metadata":{"a":1}}`},
		{name: "nested metadata", in: `{"type":"x","metadata":{"a":{"b":"c"}}}`},
		{name: "trailing data", in: `{"type":"x"}{}`},
		{name: "truncated", in: `{"type":"x"`},
		{name: "invalid content", in: `{"type":"x","version":"1.0"}`},
		{name: "too big", in: `{"type":"x","build_id":"` + strings.Repeat("a", MaxEventSize) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent([]byte(tt.in))
			if !tt.ok {
				if !errors.Is(err, ErrInvalidEvent) {
					t.Errorf("DecodeEvent(%.60q) = %+v, %v, want error %v", tt.in, got, err, ErrInvalidEvent)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeEvent(%.60q) error = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeEvent(%.60q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// wireJSON encodes the fields of e that a producer sends.
func wireJSON(t testing.TB, e Event) []byte {
	t.Helper()
	m := map[string]any{"type": e.Type}
	for k, v := range map[string]string{"source": e.Source, "version": e.Version, "artifact_url": e.ArtifactURL, "build_id": e.BuildID} {
		if v != "" {
			m[k] = v
		}
	}
	if len(e.Metadata) > 0 {
		m["metadata"] = e.Metadata
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func FuzzDecodeEvent(f *testing.F) {
	e := validEvent()
	e.ID, e.Producer, e.Received = 0, "", time.Time{}
	f.Add(wireJSON(f, e))
	f.Add([]byte(`{"type":"image-built","artifact_url":"https://x.example/i.img","metadata":{"release":"trixie","arch":"arm64"}}`))
	f.Add([]byte(`{"type":"x","Type":"y"}`))
	f.Add([]byte(`{"type":"x","metadata":{"a":"1","a":"2"}}`))
	f.Add([]byte(`{"type":"x","metadata":{"a":{"b":[1,2,null]}}}`))
	f.Add([]byte(`{"type":"x"} `))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("DecodeEvent() error = %v, want it to wrap %v", err, ErrInvalidEvent)
			}
			return
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("Validate(DecodeEvent()) = %v, want nil", err)
		}
		if ev.ID != 0 || ev.Producer != "" || !ev.Received.IsZero() {
			t.Fatalf("DecodeEvent() = %+v, want ID, Producer and Received unset", ev)
		}
		again, err := DecodeEvent(wireJSON(t, ev))
		if err != nil {
			t.Fatalf("DecodeEvent(re-encoded) error = %v after a successful decode", err)
		}
		if diff := cmp.Diff(ev, again); diff != "" {
			t.Errorf("DecodeEvent(re-encoded) mismatch (-first +second):\n%s", diff)
		}
	})
}
