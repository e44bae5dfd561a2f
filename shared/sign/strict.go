package sign

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// decodeStrict decodes exactly one JSON object from data into v, which must
// point to a struct. It refuses unknown fields, data after the object, keys
// that differ in case from the field they would fill, and objects that
// repeat a key.
//
// encoding/json matches keys to fields without regard to case and lets a
// later key win, so {"verdict":"pass","Verdict":"fail"} would read as fail
// here and may read as pass elsewhere. With every key spelt exactly as a
// field and none repeated, each document this accepts has one reading.
func decodeStrict(data []byte, v any) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("not a JSON object")
	}
	allowed := map[string]bool{}
	jsonNames(reflect.TypeOf(v), allowed)
	if err := checkKeys(data, allowed); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// jsonNames adds to names every JSON field name of t and of the types it
// contains. Map keys are data, not field names, and are not added: a map's
// keys must appear among the field names to be accepted, which holds for
// the only map here, a digest keyed "sha256".
func jsonNames(t reflect.Type, names map[string]bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		jsonNames(t.Elem(), names)
	case reflect.Struct:
		if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
			return
		}
		for f := range t.Fields() {
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch name {
			case "-":
				continue
			case "":
				name = f.Name
			}
			names[name] = true
			jsonNames(f.Type, names)
		}
	}
}

// checkKeys walks every JSON value in data and fails on an object key that
// is not in allowed or that repeats within its object.
func checkKeys(data []byte, allowed map[string]bool) error {
	var stack []jsonFrame
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if n := len(stack); n > 0 && stack[n-1].keys != nil && stack[n-1].wantKey {
			top := &stack[n-1]
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone(stack)
				continue
			}
			key, ok := tok.(string)
			if !ok {
				return fmt.Errorf("object key is %v", tok)
			}
			if !allowed[key] {
				return fmt.Errorf("unknown key %q", key)
			}
			if top.keys[key] {
				return fmt.Errorf("key %q repeats", key)
			}
			top.keys[key] = true
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, jsonFrame{keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, jsonFrame{})
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
			valueDone(stack)
		default:
			valueDone(stack)
		}
	}
}

// jsonFrame is an open object or array in checkKeys.
type jsonFrame struct {
	keys    map[string]bool // nil for an array
	wantKey bool
}

// valueDone records that the innermost open container got a whole value:
// an object expects a key next.
func valueDone(stack []jsonFrame) {
	if n := len(stack); n > 0 && stack[n-1].keys != nil {
		stack[n-1].wantKey = true
	}
}
