package emulator

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bmc-dev/bmc/internal/batchspec"
)

// Every body the emulator returns in these tests is checked against the
// official Batch spec (internal/batchspec): types, formats, required
// properties, enums, and no undeclared properties, which is how a misspelt
// wire name is caught. Times must look as the service writes them.

type spec struct {
	*batchspec.Spec
}

var (
	specOnce sync.Once
	specVal  *spec
	specErr  error
)

// loadSpec reads the spec and the supplement in testdata. A missing spec
// fails the test under CI=true and is reported loudly otherwise, in which
// case bodies go unvalidated (nil).
func loadSpec(t testing.TB) *spec {
	t.Helper()
	specOnce.Do(func() {
		var s *batchspec.Spec
		s, specErr = batchspec.Load(filepath.Join("testdata", "spec-supplement.json"))
		specVal = &spec{s}
	})
	if specErr != nil {
		msg := "CONFORMANCE NOT CHECKED: " + specErr.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Log(msg)
		return nil
	}
	return specVal
}

// validate checks a JSON document against a definition. relaxTop skips
// the required properties of the top-level entity (or of each item of a
// list's value), as $select legitimately omits them.
func (sp *spec) validate(def string, body []byte, relaxTop bool) []string {
	return sp.Validate(def, body, batchspec.Mode{RelaxTop: relaxTop, ServerTimes: true})
}

// The validator itself must be able to fail.
func TestSpecValidatorCatches(t *testing.T) {
	sp := loadSpec(t)
	if sp == nil {
		t.Skip("no spec")
	}
	for _, tc := range []struct {
		name, def, body string
		relax           bool
		want            string
	}{
		{"ok", "BatchTaskCounts", `{"active":1,"running":0,"completed":0,"succeeded":0,"failed":0}`, false, ""},
		{"missing", "BatchTaskCounts", `{"active":1,"running":0,"completed":0,"succeeded":0}`, false, `required property "failed" is missing`},
		{"undeclared", "BatchTaskCounts", `{"active":1,"running":0,"completed":0,"succeeded":0,"failed":0,"x":1}`, false, `unknown property "x"`},
		{"enum", "BatchTaskCreateResult", `{"status":"Success","taskId":"a"}`, false, "is not one of"},
		{"time", "BatchTaskExecutionInfo", `{"retryCount":0,"requeueCount":0,"startTime":"2025-01-01T00:00:00Z"}`, false, "7 fractional digits"},
		{"int32", "BatchTaskExecutionInfo", `{"retryCount":3000000000,"requeueCount":0}`, false, "does not fit int32"},
		{"type", "BatchError", `{"code":1}`, false, "want a string"},
		{"relaxed", "BatchTaskListResult", `{"value":[{"id":"a"}]}`, true, ""},
		{"strict list", "BatchTaskListResult", `{"value":[{"id":"a"}]}`, false, `required property "url" is missing`},
		{"nested", "BatchTask", `{"id":"a","url":"http://x/a","eTag":"1","lastModified":"2025-01-01T00:00:00.0000000Z","creationTime":"2025-01-01T00:00:00.0000000Z","state":"active","stateTransitionTime":"2025-01-01T00:00:00.0000000Z","commandLine":"x","executionInfo":{"retryCount":0}}`, false, `required property "requeueCount" is missing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := sp.validate(tc.def, []byte(tc.body), tc.relax)
			got := strings.Join(errs, "\n")
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("validate %s %s:\n got %q\nwant %q", tc.def, tc.body, got, tc.want)
			}
		})
	}
}

// TestSpecPresent makes the absence of the spec visible: it fails under
// CI=true and is skipped with the reason otherwise.
func TestSpecPresent(t *testing.T) {
	if loadSpec(t) == nil {
		t.Skip("SKIPPED LOUDLY: the Batch REST spec is not at ../shared/ref/azure-batch/BatchService.json; response bodies are not validated (this fails under CI=true)")
	}
}
