package schema

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestVdDirectives checks YAML directives: %TAG is an error at its line
// saying custom tags are not supported, and a tag using its handle is an
// unsupported tag as any other, while the rest of the spec is read and
// checked; %YAML 1.x is read; a directive is no document of its own.
func TestVdDirectives(t *testing.T) {
	const tagDirective = "unsupported YAML directive %TAG: custom tags are not supported; a spec may use only the YAML core tags " + CoreTags
	for _, tc := range []struct {
		name, src string
		want      any // the value of the document
		errs      []string
	}{{
		name: "%TAG and a tag using it",
		src:  "%TAG !e! tag:example.com,2000:app/\n---\na: !e!foo x\nb: 1\n",
		want: map[string]any{"a": "x", "b": int64(1)},
		errs: []string{
			"1:1 : " + tagDirective,
			"3:4 a: unsupported YAML tag !e!foo: a spec may use only the YAML core tags " + CoreTags,
		},
	}, {
		name: "%TAG not used",
		src:  "%TAG !e! tag:example.com,2000:app/\n---\napiVersion: bmc/v1\nkind: Workload\n",
		want: map[string]any{"apiVersion": "bmc/v1", "kind": "Workload"},
		errs: []string{"1:1 : " + tagDirective},
	}, {
		name: "%TAG not used, --- with a blank after it",
		src:  "%TAG !e! tag:example.com,2000:app/\n--- \na: 1\n",
		want: map[string]any{"a": int64(1)},
		errs: []string{"1:1 : " + tagDirective},
	}, {
		name: "%TAG after %YAML and a comment",
		src:  "# spec\n%YAML 1.2\n%TAG !e! tag:example.com,2000:app/\n---\na: 1\n",
		want: map[string]any{"a": int64(1)},
		errs: []string{"3:1 : " + tagDirective},
	}, {
		name: "%YAML",
		src:  "%YAML 1.2\n---\na: 1\n",
		want: map[string]any{"a": int64(1)},
	}, {
		name: "%YAML of another major version",
		src:  "%YAML 2.0\n---\na: 1\n",
		want: map[string]any{"a": int64(1)},
		errs: []string{"1:1 : unsupported YAML version 2.0: bmc reads YAML 1.2"},
	}, {
		name: "%YAML with no version",
		src:  "%YAML\n---\na: 1\n",
		want: map[string]any{"a": int64(1)},
		errs: []string{"1:1 : YAML syntax: %YAML needs a version, such as %YAML 1.2"},
	}, {
		name: "a directive of no known name",
		src:  "%FOO bar\n---\na: 1\n",
		want: map[string]any{"a": int64(1)},
		errs: []string{"1:1 : unsupported YAML directive %FOO"},
	}, {
		name: "a directive and no ---",
		src:  "%YAML 1.2\na: 1\n",
		want: map[string]any{"a": int64(1)},
		errs: []string{"2:1 : YAML syntax: a directive (%YAML at 1:1) must be followed by a --- line, where the document starts"},
	}, {
		name: "a directive before a second document",
		src:  "a: 1\n...\n%TAG !e! tag:example.com,2000:app/\n---\nb: 2\n",
		want: map[string]any{"a": int64(1)},
		errs: []string{"3:1 : a spec file holds one document; found another here"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			root, diags := Parse("s.yaml", []byte(tc.src))
			if diff := cmp.Diff(tc.errs, vdDiags(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s\nsource:\n%s", diff, tc.src)
			}
			if diags.Fatal() {
				t.Fatalf("the tree is not whole: %v", diags)
			}
			if diff := cmp.Diff(tc.want, root.Value()); diff != "" {
				t.Errorf("value (-want +got):\n%s\nsource:\n%s", diff, tc.src)
			}
		})
	}
}
