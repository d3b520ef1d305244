package azurebatch

// Every body the client sends in a test is checked against the published
// Batch spec (internal/batchspec) rather than against this package's own
// idea of it. In request mode a read-only property is an error too.

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bmc-dev/bmc/internal/batchspec"
)

type specDoc struct {
	*batchspec.Spec
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
	specOnce.Do(func() {
		var s *batchspec.Spec
		s, specErr = batchspec.Load(filepath.Join("testdata", "extra-definitions.json"))
		specVal = &specDoc{s}
	})
	if specErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the Batch REST spec is required under CI: %v", specErr)
		}
		t.Skipf("SKIPPING: the Batch REST spec is missing, so request bodies cannot be checked against it: %v", specErr)
	}
	return specVal
}

// validate checks a body; request bodies may not carry read-only
// properties.
func (s *specDoc) validate(def string, data []byte, request bool) []string {
	return s.Validate(def, data, batchspec.Mode{Request: request})
}

// mustValidate fails the test for every problem found.
func (s *specDoc) mustValidate(t testing.TB, def string, data []byte, request bool) {
	t.Helper()
	for _, e := range s.validate(def, data, request) {
		t.Errorf("%s does not match the spec: %s", def, e)
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
