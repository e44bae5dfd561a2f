package dep8

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxTestinfoSize caps the size of testinfo.json.
const MaxTestinfoSize = 1 << 20

// ErrBadTestinfo reports a testinfo.json that cannot be read.
var ErrBadTestinfo = errors.New("dep8: bad testinfo")

// Testinfo is what autopkgtest records about the testbed in testinfo.json.
// Every field is kept as text; a field autopkgtest left out is empty.
type Testinfo struct {
	VirtServer    string `json:"virt_server"`
	KernelVersion string `json:"kernel_version"`
	NProc         string `json:"nproc"`
	CPUModel      string `json:"cpu_model"`
	CPUFlags      string `json:"cpu_flags"`
}

// ReadTestinfo reads autopkgtest's testinfo.json. It ignores fields it does
// not know (such as test_kernel_versions and custom_environment) and accepts
// a number where it expects text, keeping the number's JSON spelling. Errors
// wrap ErrBadTestinfo; read errors are returned as they are.
func ReadTestinfo(r io.Reader) (Testinfo, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxTestinfoSize+1))
	if err != nil {
		return Testinfo{}, err
	}
	if len(data) > MaxTestinfoSize {
		return Testinfo{}, fmt.Errorf("%w: larger than %d bytes", ErrBadTestinfo, MaxTestinfoSize)
	}
	var raw struct {
		VirtServer    json.RawMessage `json:"virt_server"`
		KernelVersion json.RawMessage `json:"kernel_version"`
		NProc         json.RawMessage `json:"nproc"`
		CPUModel      json.RawMessage `json:"cpu_model"`
		CPUFlags      json.RawMessage `json:"cpu_flags"`
	}
	if err := decodeOne(data, &raw); err != nil {
		return Testinfo{}, fmt.Errorf("%w: %w", ErrBadTestinfo, err)
	}
	var ti Testinfo
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{
		{"virt_server", raw.VirtServer, &ti.VirtServer},
		{"kernel_version", raw.KernelVersion, &ti.KernelVersion},
		{"nproc", raw.NProc, &ti.NProc},
		{"cpu_model", raw.CPUModel, &ti.CPUModel},
		{"cpu_flags", raw.CPUFlags, &ti.CPUFlags},
	} {
		s, err := textValue(f.raw)
		if err != nil {
			return Testinfo{}, fmt.Errorf("%w: %s: %w", ErrBadTestinfo, f.name, err)
		}
		*f.dst = s
	}
	return ti, nil
}

// decodeOne decodes exactly one JSON object from data into v.
func decodeOne(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the object")
	}
	return nil
}

// textValue returns a JSON string's value, a JSON number's spelling, or ""
// for null or a missing field.
func textValue(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch {
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", err
		}
		return n.String(), nil
	}
	return "", errors.New("neither text nor a number")
}
