package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// vdValidate runs bmc validate with args on a spec written to a file, and
// returns its exit code, stdout and stderr.
func vdValidate(t *testing.T, src string, args ...string) (int, string, string, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append(append([]string{"validate"}, args...), p), strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String(), p
}

// TestVdValidateDuplicateKeys checks that every duplicate key comes out of
// bmc validate with its field path, in the text report and in JSON, with
// the first occurrence as its related place, and exit 1.
func TestVdValidateDuplicateKeys(t *testing.T) {
	const src = `apiVersion: bmc/v1
kind: Workload
name: dup
tasks:
  - id: align
    container: {image: a}
    run: echo
    run: again
    run: more
  - id: b
    run: echo
    id: c
`
	code, stdout, _, p := vdValidate(t, src, "-o", "json")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	type pos struct {
		File      string
		Line, Col int
	}
	var got []struct {
		Line, Col     int
		Path, Message string
		Related       []pos
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	type entry struct {
		Line, Col     int
		Path, Message string
		Related       []pos
	}
	want := []entry{
		{8, 5, "tasks[0].run", `duplicate key "run" (first at 7:5)`, []pos{{p, 7, 5}}},
		{9, 5, "tasks[0].run", `duplicate key "run" (first at 7:5)`, []pos{{p, 7, 5}}},
		{12, 5, "tasks[1].id", `duplicate key "id" (first at 10:5)`, []pos{{p, 10, 5}}},
	}
	var gotE []entry
	for _, g := range got {
		gotE = append(gotE, entry(g))
	}
	if diff := cmp.Diff(want, gotE); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}

	code, _, stderr, p := vdValidate(t, src)
	if code != 1 {
		t.Errorf("text: exit %d, want 1", code)
	}
	for _, line := range []string{
		p + `:8:5: tasks[0].run: duplicate key "run" (first at 7:5)`,
		p + `:9:5: tasks[0].run: duplicate key "run" (first at 7:5)`,
		p + `:12:5: tasks[1].id: duplicate key "id" (first at 10:5)`,
		"    see " + p + ":10:5",
	} {
		if !strings.Contains(stderr, line+"\n") {
			t.Errorf("text report lacks %q:\n%s", line, stderr)
		}
	}
}

// TestVdValidateTags checks tags end to end: an empty !!str is a valid
// default, an empty !!int an error at the tag, and a %TAG directive an
// error at its line beside the unsupported tag that uses it.
func TestVdValidateTags(t *testing.T) {
	const valid = `apiVersion: bmc/v1
kind: Workload
name: tags
params:
  a: {default: !!str }
  b:
    default: !!str
tasks:
  - {id: t, run: "echo ${{ params.a }}${{ params.b }}"}
`
	if code, stdout, stderr, p := vdValidate(t, valid); code != 0 || stdout != p+": valid\n" {
		t.Errorf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	const bad = `%TAG !e! tag:example.com,2000:app/
---
apiVersion: bmc/v1
kind: Workload
name: tags
params:
  a: {default: !!int }
  b: {default: !e!foo x}
tasks:
  - {id: t, run: echo}
`
	code, _, stderr, p := vdValidate(t, bad)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, line := range []string{
		p + ":1:1: unsupported YAML directive %TAG: custom tags are not supported; a spec may use only the YAML core tags !!str, !!int, !!float, !!bool, !!null, !!map and !!seq",
		p + ":7:16: params.a.default: the !!int tag needs a value: expected an integer such as 42, -7 or 0x1F",
		p + ":8:16: params.b.default: unsupported YAML tag !e!foo: a spec may use only the YAML core tags !!str, !!int, !!float, !!bool, !!null, !!map and !!seq",
		"bmc: 3 errors in 1 file",
	} {
		if !strings.Contains(stderr, line+"\n") {
			t.Errorf("text report lacks %q:\n%s", line, stderr)
		}
	}
}
