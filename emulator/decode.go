package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// decodeBody checks a request body against the wire type of dst, the way
// Batch does before it looks at any value, and then decodes it: a property
// the type does not declare is UnsupportedProperty, a required one that is
// absent or null MissingRequiredProperty, a value of the wrong JSON type,
// an integer outside int32, an unknown enum value or a malformed duration
// InvalidPropertyValue, each naming the property's path. Property names
// are matched exactly, not case-insensitively as encoding/json would.
func decodeBody(body []byte, dst any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return errInvalidBody("the request body is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return errInvalidBody("the request body is not valid JSON: " + err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errInvalidBody("the request body holds data after its JSON value")
	}
	if e := checkShape(v, reflect.TypeOf(dst).Elem(), ""); e != nil {
		return e
	}
	if err := json.Unmarshal(body, dst); err != nil {
		// checkShape accepted what encoding/json rejects; report it rather
		// than guess.
		return errInvalidBody(err.Error())
	}
	return nil
}

type fieldMeta struct {
	name     string
	typ      reflect.Type
	required bool
}

type structMeta struct {
	fields map[string]fieldMeta
	order  []string
}

var metaCache sync.Map // reflect.Type -> *structMeta

func metaOf(t reflect.Type) *structMeta {
	if m, ok := metaCache.Load(t); ok {
		return m.(*structMeta)
	}
	m := &structMeta{fields: map[string]fieldMeta{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		m.fields[name] = fieldMeta{name: name, typ: f.Type, required: f.Tag.Get("batch") == "required"}
		m.order = append(m.order, name)
	}
	metaCache.Store(t, m)
	return m
}

var (
	rawType      = reflect.TypeFor[json.RawMessage]()
	timeType     = reflect.TypeFor[Time]()
	enumIface    = reflect.TypeFor[enum]()
	checkerIface = reflect.TypeFor[interface{ checkJSON(any) string }]()
)

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func shown(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return fmt.Sprint(x)
	case nil:
		return "null"
	}
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		b = append(b[:200], "..."...)
	}
	return string(b)
}

func checkShape(v any, t reflect.Type, path string) *apiError {
	if v == nil {
		return nil // null is absent; required fields are checked by the parent
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == rawType:
		return nil
	case t == timeType:
		s, ok := v.(string)
		if ok {
			_, err := time.Parse(time.RFC3339Nano, s)
			ok = err == nil
		}
		if !ok {
			return errInvalidProperty(path, shown(v), "expected an RFC 3339 date-time")
		}
		return nil
	case t.Implements(checkerIface):
		if msg := reflect.Zero(t).Interface().(interface{ checkJSON(any) string }).checkJSON(v); msg != "" {
			return errInvalidProperty(path, shown(v), msg)
		}
		return nil
	case t.Implements(enumIface):
		if msg := checkEnum(reflect.Zero(t).Interface().(enum), v); msg != "" {
			return errInvalidProperty(path, shown(v), msg)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return errInvalidProperty(path, shown(v), "expected a JSON object")
		}
		m := metaOf(t)
		// Report in a stable order: unknown properties first, by name.
		var unknown []string
		for k := range obj {
			if _, ok := m.fields[k]; !ok {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			slices.Sort(unknown)
			return errUnsupportedProperty(joinPath(path, unknown[0]))
		}
		for _, name := range m.order {
			f := m.fields[name]
			fv, present := obj[name]
			if f.required && (!present || fv == nil) {
				return errMissingProperty(joinPath(path, name))
			}
			if present {
				if e := checkShape(fv, f.typ, joinPath(path, name)); e != nil {
					return e
				}
			}
		}
		return nil
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return errInvalidProperty(path, shown(v), "expected a JSON array")
		}
		for i, x := range arr {
			if x == nil {
				return errInvalidProperty(fmt.Sprintf("%s[%d]", path, i), "null", "array items may not be null")
			}
			if e := checkShape(x, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); e != nil {
				return e
			}
		}
		return nil
	case reflect.String:
		if _, ok := v.(string); !ok {
			return errInvalidProperty(path, shown(v), "expected a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return errInvalidProperty(path, shown(v), "expected true or false")
		}
	case reflect.Int32, reflect.Int64, reflect.Int:
		n, ok := v.(json.Number)
		if !ok {
			return errInvalidProperty(path, shown(v), "expected an integer")
		}
		i, err := n.Int64()
		if err != nil {
			return errInvalidProperty(path, n.String(), "expected an integer")
		}
		if t.Kind() == reflect.Int32 && (i < math.MinInt32 || i > math.MaxInt32) {
			return errInvalidProperty(path, n.String(), "the value is outside the range of a 32-bit integer")
		}
	}
	return nil
}
