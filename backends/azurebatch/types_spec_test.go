package azurebatch

// A validator for the Batch swagger's definitions, so that every body the
// client sends in a test is checked against the published spec rather than
// against this package's own idea of it: JSON types, int32 ranges,
// formats, required fields, enums, and no properties a definition does not
// list; $ref and allOf resolved. In request mode a read-only property is an
// error too.

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
	"sync"
	"testing"
	"time"
)

// specRel is where the spec lives, relative to the directory beside the
// project that holds it (../shared).
const specRel = "shared/ref/azure-batch/BatchService.json"

type specSchema struct {
	Ref                  string                 `json:"$ref"`
	Type                 string                 `json:"type"`
	Format               string                 `json:"format"`
	Enum                 []any                  `json:"enum"`
	Required             []string               `json:"required"`
	Properties           map[string]*specSchema `json:"properties"`
	AdditionalProperties json.RawMessage        `json:"additionalProperties"`
	Items                *specSchema            `json:"items"`
	AllOf                []*specSchema          `json:"allOf"`
	ReadOnly             bool                   `json:"readOnly"`
}

type specDoc struct {
	path string
	defs map[string]*specSchema
}

var (
	specOnce sync.Once
	specVal  *specDoc
	specErr  error
)

// loadSpec returns the spec's definitions, plus testdata/extra-definitions.json
// for the few the excerpt lacks. Where the spec cannot be found it fails
// the test under CI=true and skips it, loudly, otherwise.
func loadSpec(t testing.TB) *specDoc {
	t.Helper()
	specOnce.Do(func() { specVal, specErr = readSpec() })
	if specErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the Batch REST spec is required under CI: %v", specErr)
		}
		t.Skipf("SKIPPING: the Batch REST spec is missing, so request bodies cannot be checked against it: %v", specErr)
	}
	return specVal
}

func readSpec() (*specDoc, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for {
		p := filepath.Join(dir, specRel)
		if _, err := os.Stat(p); err == nil {
			return parseSpec(p)
		}
		up := filepath.Dir(dir)
		if up == dir {
			return nil, fmt.Errorf("no %s in any directory above the package", specRel)
		}
		dir = up
	}
}

func parseSpec(path string) (*specDoc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Definitions map[string]*specSchema `json:"definitions"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Definitions) == 0 {
		return nil, fmt.Errorf("%s: no definitions", path)
	}
	extra, err := os.ReadFile(filepath.Join("testdata", "extra-definitions.json"))
	if err != nil {
		return nil, err
	}
	var ex struct {
		Definitions map[string]*specSchema `json:"definitions"`
	}
	if err := json.Unmarshal(extra, &ex); err != nil {
		return nil, fmt.Errorf("extra-definitions.json: %w", err)
	}
	for name, d := range ex.Definitions {
		if _, ok := doc.Definitions[name]; !ok {
			doc.Definitions[name] = d
		}
	}
	return &specDoc{path: path, defs: doc.Definitions}, nil
}

// validate checks a JSON document against a definition and returns every
// problem found, each with its JSON path.
func (s *specDoc) validate(def string, data []byte, request bool) []string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	if dec.More() {
		return []string{"trailing data after the JSON value"}
	}
	var errs []string
	s.check("$", &specSchema{Ref: "#/definitions/" + def}, v, request, &errs)
	return errs
}

// mustValidate fails the test for every problem found.
func (s *specDoc) mustValidate(t testing.TB, def string, data []byte, request bool) {
	t.Helper()
	for _, e := range s.validate(def, data, request) {
		t.Errorf("%s does not match the spec: %s", def, e)
	}
}

func (s *specDoc) resolve(sch *specSchema) (*specSchema, error) {
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
func (s *specDoc) flatten(sch *specSchema, props map[string]*specSchema, req *[]string, typ *string, addl *json.RawMessage) error {
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

var isoDuration = regexp.MustCompile(`^-?P(?:\d+(?:[.,]\d+)?Y)?(?:\d+(?:[.,]\d+)?M)?(?:\d+(?:[.,]\d+)?W)?(?:\d+(?:[.,]\d+)?D)?(?:T(?:\d+(?:[.,]\d+)?H)?(?:\d+(?:[.,]\d+)?M)?(?:\d+(?:[.,]\d+)?S)?)?$`)

func (s *specDoc) check(path string, sch *specSchema, v any, request bool, errs *[]string) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, path+": "+fmt.Sprintf(format, args...))
	}
	r, err := s.resolve(sch)
	if err != nil {
		fail("%v", err)
		return
	}
	props := map[string]*specSchema{}
	var required []string
	typ := r.Type
	var addl json.RawMessage
	if err := s.flatten(r, props, &required, &typ, &addl); err != nil {
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
		for _, k := range required {
			if _, ok := m[k]; !ok {
				fail("required property %q is missing", k)
			}
		}
		var extra *specSchema
		openEnded := len(props) == 0
		if len(addl) > 0 {
			switch strings.TrimSpace(string(addl)) {
			case "true":
				openEnded = true
			case "false":
				openEnded = false
			default:
				extra = &specSchema{}
				if err := json.Unmarshal(addl, extra); err != nil {
					fail("additionalProperties: %v", err)
					return
				}
			}
		}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		}) {
			p, ok := props[k]
			switch {
			case ok:
				if request {
					if rp, err := s.resolve(p); err == nil && (p.ReadOnly || rp.ReadOnly) {
						fail("property %q is read-only, not for a request", k)
					}
				}
				s.check(path+"."+k, p, m[k], request, errs)
			case extra != nil:
				s.check(path+"."+k, extra, m[k], request, errs)
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
				s.check(fmt.Sprintf("%s[%d]", path, i), r.Items, e, request, errs)
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
			}
		case "duration":
			if !isoDuration.MatchString(str) || strings.HasSuffix(str, "P") || strings.HasSuffix(str, "T") {
				fail("%q is not an ISO-8601 duration", str)
			}
		case "uri":
			if u, err := url.Parse(str); err != nil || !u.IsAbs() {
				fail("%q is not an absolute URI", str)
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

// TestSpecValidatorCatches keeps the validator honest: each case must be
// refused, for the reason given.
func TestSpecValidatorCatches(t *testing.T) {
	s := loadSpec(t)
	cases := []struct {
		name, def, body string
		request         bool
		want            string
	}{
		{"unknown property", "BatchTaskCreateOptions", `{"id":"a","commandLine":"x","cmdLine":"y"}`, true, `unknown property "cmdLine"`},
		{"missing required", "BatchTaskCreateOptions", `{"id":"a"}`, true, `required property "commandLine"`},
		{"wrong type", "BatchTaskCreateOptions", `{"id":"a","commandLine":"x","requiredSlots":"1"}`, true, "want an integer"},
		{"int32 range", "BatchTaskCreateOptions", `{"id":"a","commandLine":"x","requiredSlots":4294967296}`, true, "int32"},
		{"enum spelling", "BatchTaskCreateOptions", `{"id":"a","commandLine":"x","outputFiles":[{"filePattern":"*","destination":{"container":{"containerUrl":"https://a.blob.core.windows.net/c"}},"uploadOptions":{"uploadCondition":"TaskSuccess"}}]}`, true, "is not one of"},
		{"nested via ref", "BatchTaskGroup", `{"value":[{"id":"a","commandLine":"x","dependsOn":{"taskIds":["b"],"taskIdRanges":[{"start":1}]}}]}`, true, `$.value[0].dependsOn.taskIdRanges[0]: required property "end"`},
		{"duration format", "BatchTaskCreateOptions", `{"id":"a","commandLine":"x","constraints":{"maxWallClockTime":"1h"}}`, true, "ISO-8601"},
		{"read-only in a request", "BatchPoolCreateOptions", `{"id":"p","vmSize":"s","virtualMachineConfiguration":{"imageReference":{"exactVersion":"1"},"nodeAgentSKUId":"n"}}`, true, "read-only"},
		{"wire-name case", "BatchPoolCreateOptions", `{"id":"p","vmSize":"s","virtualMachineConfiguration":{"imageReference":{},"nodeAgentSkuId":"n"}}`, true, `unknown property "nodeAgentSkuId"`},
		{"missing definition", "NoSuchDefinition", `{}`, true, "not in the spec excerpt"},
		{"date-time", "BatchTaskCreateResult", `{"status":"success","taskId":"a","lastModified":"yesterday"}`, false, "date-time"},
		{"nextLink uri", "BatchTaskListResult", `{"value":[],"odata.nextLink":"page2"}`, false, "absolute URI"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := s.validate(c.def, []byte(c.body), c.request)
			if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, c.want) }) {
				t.Errorf("validate(%s) = %q; want an error containing %q", c.def, errs, c.want)
			}
		})
	}
	// And a valid body passes, so the cases above fail for their reason.
	ok := `{"value":[{"id":"a","commandLine":"x","dependsOn":{"taskIdRanges":[{"start":1,"end":2}]},"constraints":{"maxWallClockTime":"PT1H30M"}}]}`
	if errs := s.validate("BatchTaskGroup", []byte(ok), true); len(errs) > 0 {
		t.Errorf("a valid body was refused: %q", errs)
	}
}
