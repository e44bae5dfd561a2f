package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Limits on an event. They keep an event small enough to store, log and
// show whole.
const (
	// MaxEventSize bounds the JSON document DecodeEvent accepts.
	MaxEventSize = 64 << 10
	// MaxNameLen bounds event types, build ids, producers, rule names and
	// lanes.
	MaxNameLen = 64
	// MaxBuildIDLen bounds a build id.
	MaxBuildIDLen = 128
	// MaxURLLen bounds an artifact URL.
	MaxURLLen = 2048
	// MaxMetadata bounds the number of metadata entries.
	MaxMetadata = 32
	// MaxMetadataKeyLen bounds a metadata key.
	MaxMetadataKeyLen = 64
	// MaxMetadataValueLen bounds a metadata value, in bytes.
	MaxMetadataValueLen = 1024
)

// ErrInvalidEvent is wrapped by every error about an event's content or
// encoding.
var ErrInvalidEvent = errors.New("rules: invalid event")

// Event is something a build system announces: a new upload, a finished
// build, a new image. Type and the other producer-supplied fields come from
// the JSON body of POST /api/v1/events; ID, Producer and Received are set
// by the coordinator and never taken from the body.
//
// The cel tags are the field names rules see, as in event.artifact_url.
type Event struct {
	// ID is the coordinator's number for the event, 0 until it is stored.
	ID int64 `json:"id,omitempty" cel:"id"`
	// Type says what happened, such as "upload", "build-finished" or
	// "image-built".
	Type string `json:"type" cel:"type"`
	// Source is the source package concerned, if any.
	Source string `json:"source,omitempty" cel:"source"`
	// Version is Source's new version, if any; it needs a Source.
	Version string `json:"version,omitempty" cel:"version"`
	// ArtifactURL points at what was built (an image, a .changes file).
	ArtifactURL string `json:"artifact_url,omitempty" cel:"artifact_url"`
	// BuildID is the producer's own identifier of the build.
	BuildID string `json:"build_id,omitempty" cel:"build_id"`
	// Metadata carries anything else the producer wants rules to see.
	Metadata map[string]string `json:"metadata,omitempty" cel:"metadata"`
	// Producer is the account whose token posted the event.
	Producer string `json:"producer,omitempty" cel:"producer"`
	// Received is when the coordinator accepted the event.
	Received time.Time `json:"received,omitzero" cel:"received"`
}

// Validate reports the first problem with e, wrapping ErrInvalidEvent.
func (e Event) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
	}
	if e.ID < 0 {
		return bad("id %d is negative", e.ID)
	}
	if e.Type == "" {
		return bad("type is missing")
	}
	if !validName(e.Type) {
		return bad("type %q: want 1 to %d lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", clip(e.Type), MaxNameLen)
	}
	if e.Source != "" && !dep8.ValidSource(e.Source) {
		return bad("source %q is not a Debian source package name", clip(e.Source))
	}
	if e.Version != "" {
		if e.Source == "" {
			return bad("version %q given without a source", clip(e.Version))
		}
		if !dep8.ValidVersion(e.Version) {
			return bad("version %q is not a Debian version", clip(e.Version))
		}
	}
	if e.ArtifactURL != "" {
		if err := checkURL(e.ArtifactURL); err != nil {
			return bad("artifact_url: %v", err)
		}
	}
	if e.BuildID != "" && !validToken(e.BuildID, MaxBuildIDLen) {
		return bad("build_id %q: want 1 to %d printable ASCII characters without spaces", clip(e.BuildID), MaxBuildIDLen)
	}
	if len(e.Metadata) > MaxMetadata {
		return bad("metadata has %d entries, more than %d", len(e.Metadata), MaxMetadata)
	}
	for _, k := range slices.Sorted(maps.Keys(e.Metadata)) {
		if !validMetadataKey(k) {
			return bad("metadata key %q: want 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit", clip(k), MaxMetadataKeyLen)
		}
		if v := e.Metadata[k]; !validMetadataValue(v) {
			return bad("metadata %q: value must be printable UTF-8 of at most %d bytes", k, MaxMetadataValueLen)
		}
	}
	if e.Producer != "" && !validToken(e.Producer, MaxNameLen) {
		return bad("producer %q: want 1 to %d printable ASCII characters without spaces", clip(e.Producer), MaxNameLen)
	}
	return nil
}

// wireFields lists the keys DecodeEvent accepts, spelt exactly.
const wireFields = "type, source, version, artifact_url, build_id, metadata"

func isWireField(key string) bool {
	switch key {
	case "type", "source", "version", "artifact_url", "build_id", "metadata":
		return true
	}
	return false
}

// DecodeEvent decodes and validates the JSON body a producer posts:
//
//	{"type": "upload", "source": "libfoo", "version": "1.2-1",
//	 "artifact_url": "https://…", "build_id": "4711",
//	 "metadata": {"suite": "unstable"}}
//
// It is strict: data over MaxEventSize, anything but one JSON object,
// unknown keys (id, producer and received included: the coordinator sets
// those), keys in another case, repeated keys, values that are not strings
// (metadata: an object of strings) and trailing data are refused. Every
// error wraps ErrInvalidEvent.
func DecodeEvent(data []byte) (Event, error) {
	e, err := decodeEvent(data)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("the JSON ends too early")
	}
	if err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

func decodeEvent(data []byte) (Event, error) {
	var e Event
	if len(data) > MaxEventSize {
		return e, fmt.Errorf("%d bytes, more than %d", len(data), MaxEventSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := expectDelim(dec, '{'); err != nil {
		return e, err
	}
	seen := map[string]bool{}
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return e, err
		}
		if !isWireField(key) {
			return e, fmt.Errorf("unknown key %q (want one of %s)", clip(key), wireFields)
		}
		if seen[key] {
			return e, fmt.Errorf("key %q repeats", key)
		}
		seen[key] = true
		if key == "metadata" {
			if e.Metadata, err = decodeMetadata(dec); err != nil {
				return e, fmt.Errorf("metadata: %w", err)
			}
			continue
		}
		s, err := stringValue(dec)
		if err != nil {
			return e, fmt.Errorf("%s: %w", key, err)
		}
		switch key {
		case "type":
			e.Type = s
		case "source":
			e.Source = s
		case "version":
			e.Version = s
		case "artifact_url":
			e.ArtifactURL = s
		case "build_id":
			e.BuildID = s
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return e, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return e, errors.New("data after the JSON object")
	}
	return e, nil
}

func decodeMetadata(dec *json.Decoder) (map[string]string, error) {
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return nil, err
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("key %q repeats", clip(key))
		}
		if len(m) == MaxMetadata {
			return nil, fmt.Errorf("more than %d entries", MaxMetadata)
		}
		if m[key], err = stringValue(dec); err != nil {
			return nil, fmt.Errorf("%q: %w", clip(key), err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != want {
		if want == '{' {
			return fmt.Errorf("want a JSON object, got %s", describeToken(tok))
		}
		return fmt.Errorf("want %q, got %s", want, describeToken(tok))
	}
	return nil
}

func objectKey(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	key, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("object key is %s", describeToken(tok))
	}
	return key, nil
}

func stringValue(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %s", describeToken(tok))
	}
	return s, nil
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return fmt.Sprintf("%q", v.String())
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

func checkURL(s string) error {
	if len(s) > MaxURLLen {
		return fmt.Errorf("%d bytes, more than %d", len(s), MaxURLLen)
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f {
			return errors.New("must be printable ASCII without spaces")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q: want http or https", clip(u.Scheme))
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	if u.User != nil {
		return errors.New("must not carry credentials")
	}
	return nil
}

// validName reports whether s is a lower-case identifier of at most
// MaxNameLen bytes, such as "build-finished".
func validName(s string) bool {
	if s == "" || len(s) > MaxNameLen || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func validMetadataKey(s string) bool {
	if s == "" || len(s) > MaxMetadataKeyLen || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func validMetadataValue(s string) bool {
	if len(s) > MaxMetadataValueLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// validToken reports whether s is 1 to max printable ASCII characters
// other than space.
func validToken(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' }

func isAlnum(c byte) bool { return isLowerAlnum(c) || 'A' <= c && c <= 'Z' }

// clip shortens s for an error message, so that oversized input is not
// echoed whole.
func clip(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
