package compiler

import (
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/schema"
	"github.com/google/go-cmp/cmp"
)

// diagText renders diagnostics one a line, with hints after each.
func diagText(ds schema.Diagnostics) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Error())
		if d.Hint != "" {
			out = append(out, "hint: "+d.Hint)
		}
	}
	return out
}

// TestYamlfixTaggedValues: a tagged value reaches the program as the
// type its tag names: !!str 0755 is the text 0755, not 493.
func TestYamlfixTaggedValues(t *testing.T) {
	src := `apiVersion: bmc/v1
kind: Workload
name: tags
labels: {num: !!str 3}
packages:
  - {name: p, version: !!str 2.10}
params:
  code: {default: !!str 0755}
  ver: {default: !!str 1.10}
  plain: {default: 0755}
tasks:
  - id: t
    matrix: {v: [!!str 1.10, !!str 1.1e1]}
    env: {CODE: "${{ params.code }}", VER: "x${{ params.ver }}", PLAIN: "x${{ params.plain }}", MV: "${{ matrix.v }}"}
    packages: [p]
    slots: !!int "2"
    run: echo
`
	p := mustCompile(t, src, Options{})
	var ids []string
	for _, task := range p.Tasks {
		ids = append(ids, task.ID)
	}
	if diff := cmp.Diff([]string{"t-1_10", "t-1_1e1"}, ids); diff != "" {
		t.Fatalf("task ids (-want +got):\n%s", diff)
	}
	want := map[string]string{"CODE": "0755", "VER": "x1.10", "PLAIN": "x493", "MV": "1.10"}
	if diff := cmp.Diff(want, p.Tasks[0].Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if p.Tasks[0].Slots != 2 {
		t.Errorf("slots = %d, want 2", p.Tasks[0].Slots)
	}
}

// TestYamlfixTagErrorsAtOnce: tags bmc does not read are errors, with
// every other error of the spec.
func TestYamlfixTagErrorsAtOnce(t *testing.T) {
	src := `apiVersion: bmc/v1
kind: Workload
name: x
tasks:
  - id: !custom a
    run: !!binary aGVsbG8=
    retries: !!str 3
    env: {A: !!float 1, B: !!str 010, C: !!bool "true", D: "${{ params.nope }}"}
`
	_, diags := Compile("s.yaml", []byte(src), Options{})
	const core = "a spec may use only the YAML core tags !!str, !!int, !!float, !!bool, !!null, !!map and !!seq"
	want := []string{
		"s.yaml:5:9: tasks[0].id: unsupported YAML tag !custom: " + core,
		"s.yaml:6:10: tasks[0].run: unsupported YAML tag !!binary: " + core,
		`s.yaml:7:20: tasks[0].retries: expected int, got string "3"`,
		"hint: the !!str tag makes it a string",
		"s.yaml:8:61: tasks[0].env.D: unknown name params.nope",
	}
	if diff := cmp.Diff(want, diagText(diags)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}

// TestYamlfixQuotedTabs: a double-quoted value with tabs, its closing
// quote at the start of the next line, leaves every later error on its
// own line.
func TestYamlfixQuotedTabs(t *testing.T) {
	src := "apiVersion: bmc/v1\nkind: Workload\nname: x\ntasks:\n  - id: x\n    run: \"\t\tt\n\"\n  - id: b\n    run: ${{ params.r }}\n"
	_, diags := Compile("s.yaml", []byte(src), Options{})
	want := []string{"s.yaml:9:10: tasks[1].run: unknown name params.r"}
	if diff := cmp.Diff(want, diagText(diags)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}

// TestYamlfixExtensionFields: x- fields hold the anchors tasks merge in;
// the compiler ignores them.
func TestYamlfixExtensionFields(t *testing.T) {
	src := `apiVersion: bmc/v1
kind: Workload
name: anchors
x-common: &common
  retries: 2
  timeout: 1h
x-env: &env {A: "1"}
x-notes: {owner: genomics, "${{ not an expression }}": 99999999999999999999}
tasks:
  - id: a
    <<: *common
    run: echo a
    env: *env
  - id: b
    <<: *common
    retries: 5
    run: echo b
`
	p := mustCompile(t, src, Options{})
	type got struct {
		ID      string
		Retries int
		Timeout time.Duration
		Env     map[string]string
	}
	var tasks []got
	for _, task := range p.Tasks {
		tasks = append(tasks, got{task.ID, task.Retries, time.Duration(task.Timeout), task.Env})
	}
	want := []got{{"a", 2, time.Hour, map[string]string{"A": "1"}}, {"b", 5, time.Hour, nil}}
	if diff := cmp.Diff(want, tasks, cmp.Transformer("env", func(m map[string]string) map[string]string {
		if len(m) == 0 {
			return nil
		}
		return m
	})); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	// The JSON Schema editors use takes them too, and refuses other
	// unknown fields still.
	check := jsonSchemaCheck(t)
	if err := check([]byte(src)); err != nil {
		t.Errorf("the JSON Schema refuses x- fields: %v", err)
	}
	bad := strings.Replace(src, "x-notes:", "notes:", 1)
	if _, diags := Compile("s.yaml", []byte(bad), Options{}); len(diags) == 0 || !strings.Contains(diags[0].Msg, `unknown field "notes"`) {
		t.Errorf("an unknown field: %v", diags)
	}
	if err := check([]byte(bad)); err == nil {
		t.Errorf("the JSON Schema accepts an unknown top-level field")
	}
}
