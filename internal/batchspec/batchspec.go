// Package batchspec validates JSON bodies against the definitions of the
// official Azure Batch REST spec (BatchService.json, kept beside the
// project in ../shared/ref/azure-batch): JSON types, int32 ranges, formats,
// required properties, enums, and no properties a definition does not
// list; $ref and allOf resolved. It is test support, shared by the Batch
// client's tests (every request it sends) and the emulator's (every
// response it returns), so that both are checked against the published
// spec rather than against each other.
package batchspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Rel is where the spec lives, relative to the directory beside the
// project that holds the shared material.
const Rel = "shared/ref/azure-batch/BatchService.json"

// Schema is one swagger schema.
type Schema struct {
	Ref                  string             `json:"$ref"`
	Type                 string             `json:"type"`
	Format               string             `json:"format"`
	Enum                 []any              `json:"enum"`
	Required             []string           `json:"required"`
	Properties           map[string]*Schema `json:"properties"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
	Items                *Schema            `json:"items"`
	AllOf                []*Schema          `json:"allOf"`
	ReadOnly             bool               `json:"readOnly"`
}

// Spec is the spec's definitions.
type Spec struct {
	Path string
	defs map[string]*Schema
}

// Find looks for the spec in the directories above the working directory.
func Find() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, Rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("no %s in any directory above the package", Rel)
		}
		dir = up
	}
}

// Load reads the spec, plus definition files for what the excerpt lacks;
// an extra file may not redefine what the spec has.
func Load(extra ...string) (*Spec, error) {
	path, err := Find()
	if err != nil {
		return nil, err
	}
	s := &Spec{Path: path, defs: map[string]*Schema{}}
	for i, f := range append([]string{path}, extra...) {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Definitions map[string]*Schema `json:"definitions"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if i == 0 && len(doc.Definitions) == 0 {
			return nil, fmt.Errorf("%s: no definitions", f)
		}
		for name, d := range doc.Definitions {
			if _, dup := s.defs[name]; dup {
				return nil, fmt.Errorf("%s redefines %s, which the spec has", f, name)
			}
			s.defs[name] = d
		}
	}
	return s, nil
}

// Definition returns a definition by name, or nil.
func (s *Spec) Definition(name string) *Schema { return s.defs[name] }

// Mode says how strictly a body is checked.
type Mode struct {
	// Request: a read-only property is an error (the body is sent).
	Request bool
	// RelaxTop skips the required properties of the top-level entity, or
	// of each item of a list result's value, as $select omits them.
	RelaxTop bool
	// ServerTimes: date-times must be UTC with 7 fractional digits, as
	// the service writes them.
	ServerTimes bool
}

// Validate checks a JSON document against a definition and returns every
// problem found, each with its JSON path.
func (s *Spec) Validate(def string, data []byte, m Mode) []string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	if dec.More() {
		return []string{"trailing data after the JSON value"}
	}
	relax := -1
	if m.RelaxTop {
		relax = 0
		if strings.HasSuffix(def, "ListResult") {
			relax = 1
		}
	}
	var errs []string
	c := checker{s: s, m: m, relax: relax, errs: &errs}
	c.check("$", &Schema{Ref: "#/definitions/" + def}, v, 0)
	return errs
}

type checker struct {
	s     *Spec
	m     Mode
	relax int // the depth whose required properties are not checked
	errs  *[]string
}

func (s *Spec) resolve(sch *Schema) (*Schema, error) {
	for sch.Ref != "" {
		name, ok := strings.CutPrefix(sch.Ref, "#/definitions/")
		if !ok {
			return nil, fmt.Errorf("unsupported $ref %q", sch.Ref)
		}
		d, ok := s.defs[name]
		if !ok {
			return nil, fmt.Errorf("$ref to %q, which is not in the spec excerpt", name)
		}
		sch = d
	}
	return sch, nil
}

// flatten gathers a schema's own and its allOf parents' properties and
// required fields.
func (s *Spec) flatten(sch *Schema, props map[string]*Schema, req *[]string, typ *string, addl *json.RawMessage) error {
	sch, err := s.resolve(sch)
	if err != nil {
		return err
	}
	for _, p := range sch.AllOf {
		if err := s.flatten(p, props, req, typ, addl); err != nil {
			return err
		}
	}
	for k, v := range sch.Properties {
		props[k] = v
	}
	*req = append(*req, sch.Required...)
	if sch.Type != "" {
		*typ = sch.Type
	}
	if len(sch.AdditionalProperties) > 0 {
		*addl = sch.AdditionalProperties
	}
	return nil
}

var (
	isoDuration = regexp.MustCompile(`^-?P(?:\d+(?:[.,]\d+)?Y)?(?:\d+(?:[.,]\d+)?M)?(?:\d+(?:[.,]\d+)?W)?(?:\d+(?:[.,]\d+)?D)?(?:T(?:\d+(?:[.,]\d+)?H)?(?:\d+(?:[.,]\d+)?M)?(?:\d+(?:[.,]\d+)?S)?)?$`)
	serverTime  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$`)
	int64String = regexp.MustCompile(`^-?\d+$`)
)

func (c *checker) check(path string, sch *Schema, v any, depth int) {
	fail := func(format string, args ...any) {
		*c.errs = append(*c.errs, path+": "+fmt.Sprintf(format, args...))
	}
	r, err := c.s.resolve(sch)
	if err != nil {
		fail("%v", err)
		return
	}
	props := map[string]*Schema{}
	var required []string
	typ := r.Type
	var addl json.RawMessage
	if err := c.s.flatten(r, props, &required, &typ, &addl); err != nil {
		fail("%v", err)
		return
	}
	if typ == "" && len(props) > 0 {
		typ = "object"
	}
	if len(r.Enum) > 0 && !slices.Contains(r.Enum, v) {
		fail("%v is not one of %v", v, r.Enum)
	}
	switch typ {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			fail("want an object, got %T", v)
			return
		}
		if depth != c.relax {
			for _, k := range required {
				if _, ok := m[k]; !ok {
					fail("required property %q is missing", k)
				}
			}
		}
		var extra *Schema
		openEnded := len(props) == 0
		if len(addl) > 0 {
			switch strings.TrimSpace(string(addl)) {
			case "true":
				openEnded = true
			case "false":
				openEnded = false
			default:
				extra = &Schema{}
				if err := json.Unmarshal(addl, extra); err != nil {
					fail("additionalProperties: %v", err)
					return
				}
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p, ok := props[k]
			switch {
			case ok:
				if c.m.Request {
					if rp, err := c.s.resolve(p); err == nil && (p.ReadOnly || rp.ReadOnly) {
						fail("property %q is read-only, not for a request", k)
					}
				}
				c.check(path+"."+k, p, m[k], depth+1)
			case extra != nil:
				c.check(path+"."+k, extra, m[k], depth+1)
			case !openEnded:
				fail("unknown property %q", k)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			fail("want an array, got %T", v)
			return
		}
		if r.Items != nil {
			for i, e := range a {
				c.check(fmt.Sprintf("%s[%d]", path, i), r.Items, e, depth)
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			fail("want a string, got %T", v)
			return
		}
		switch r.Format {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				fail("%q is not an RFC 3339 date-time", str)
			} else if c.m.ServerTimes && !serverTime.MatchString(str) {
				fail("%q is not a UTC time with 7 fractional digits, as the service writes them", str)
			}
		case "duration":
			if !isoDuration.MatchString(str) || strings.HasSuffix(str, "P") || strings.HasSuffix(str, "T") {
				fail("%q is not an ISO-8601 duration", str)
			}
		case "uri":
			if u, err := url.Parse(str); err != nil || !u.IsAbs() {
				fail("%q is not an absolute URI", str)
			}
		case "int64":
			if !int64String.MatchString(str) {
				fail("%q is not an int64 string", str)
			}
		}
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			fail("want an integer, got %T", v)
			return
		}
		i, err := n.Int64()
		if err != nil {
			fail("%s is not an integer", n)
			return
		}
		if r.Format == "int32" && (i < -1<<31 || i > 1<<31-1) {
			fail("%d does not fit int32", i)
		}
	case "number":
		if _, ok := v.(json.Number); !ok {
			fail("want a number, got %T", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("want a boolean, got %T", v)
		}
	case "":
		// No constraint.
	default:
		fail("schema type %q not supported by this validator", typ)
	}
}
