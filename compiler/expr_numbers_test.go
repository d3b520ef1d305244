package compiler

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/schema"
	"github.com/google/go-cmp/cmp"
)

// TestNumbersInterpolatedAsWritten checks that a number from a matrix, a
// param's default or --set reaches a task's fields as it is written in
// the spec (1.10 stays 1.10, not 1.1), as a literal one does, while
// member ids keep the shortest form docs/spec.md gives them.
func TestNumbersInterpolatedAsWritten(t *testing.T) {
	const src = `apiVersion: bmc/v1
kind: Workload
name: nums
params:
  ver: {default: 1.10}
  small: {default: 0.000001}
  list: {default: [1.10, 2, 1.0e-6, .5]}
  cfg: {default: {lr: 0.10}}
tasks:
  - id: t
    matrix: {v: [1.10, 2.50, 1.9]}
    command: [echo, "${{ matrix.v }}", 1.10, "${{ params.ver }}"]
    env: {V: "${{ matrix.v }}", W: "v${{ matrix.v }}"}
  - id: s
    run: echo ${{ params.small }} ${{ params.list }} ${{ params.cfg }} ${{ params.cfg.lr }}
  - id: m
    matrix: {x: "${{ params.list }}"}
    run: echo ${{ matrix.x }}
`
	p := mustCompile(t, src, Options{})
	type row struct {
		Command []string
		Run     string
		Env     map[string]string
	}
	got := map[string]row{}
	for _, tk := range p.Tasks {
		got[tk.ID] = row{tk.Command, tk.Run, tk.Env}
	}
	// .5 is not written as JSON writes numbers: it is given in its
	// shortest form, as docs/spec.md says.
	want := map[string]row{
		"t-1_1":      {Command: []string{"echo", "1.10", "1.10", "1.10"}, Env: map[string]string{"V": "1.10", "W": "v1.10"}},
		"t-2_5":      {Command: []string{"echo", "2.50", "1.10", "1.10"}, Env: map[string]string{"V": "2.50", "W": "v2.50"}},
		"t-1_9":      {Command: []string{"echo", "1.9", "1.10", "1.10"}, Env: map[string]string{"V": "1.9", "W": "v1.9"}},
		"s":          {Run: `echo 0.000001 [1.10,2,1.0e-6,0.5] {"lr":0.10} 0.10`},
		"m-1_1":      {Run: "echo 1.10"},
		"m-2":        {Run: "echo 2"},
		"m-0_000001": {Run: "echo 1.0e-6"},
		"m-0_5":      {Run: "echo 0.5"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
}

// TestSetNumbersInterpolatedAsWritten checks the same of --set values,
// which are read as the spec's values are.
func TestSetNumbersInterpolatedAsWritten(t *testing.T) {
	const src = `apiVersion: bmc/v1
kind: Workload
name: nums
params:
  ver: {default: 1}
  vs: {default: [1]}
tasks:
  - id: t
    matrix: {v: "${{ params.vs }}"}
    command: [run, "${{ params.ver }}", "${{ matrix.v }}"]
`
	set := func(s string) any {
		v, err := schema.ParseValue([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	p := mustCompile(t, src, Options{Params: map[string]any{"ver": set("3.10"), "vs": set("[1.10, 1.9]")}})
	var got [][]string
	for _, tk := range p.Tasks {
		got = append(got, append([]string{tk.ID}, tk.Command...))
	}
	want := [][]string{{"t-1_1", "run", "3.10", "1.10"}, {"t-1_9", "run", "3.10", "1.9"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
}

// TestNumbersAsWrittenStillCollide checks that two matrix values that
// differ only in how they are written still give one member id, which
// is an error, and that the error names both.
func TestNumbersAsWrittenStillCollide(t *testing.T) {
	const src = "apiVersion: bmc/v1\nkind: Workload\nname: n\ntasks:\n  - {id: t, matrix: {v: [1.10, 1.1]}, run: 'echo ${{ matrix.v }}'}\n"
	_, diags := Compile("spec.yaml", []byte(src), Options{})
	if len(diags) != 1 || !strings.Contains(diags[0].Msg, "t-1_1") {
		t.Fatalf("diagnostics = %v, want one about the id t-1_1", diags)
	}
}

// TestNumbersAsWrittenInJSON checks that the program's params and matrix
// values keep the numbers as written too, that a program read back with
// json.Decoder.UseNumber encodes as it did, and that params read back so
// (a run's --set values, kept in its run directory) compile alike.
func TestNumbersAsWrittenInJSON(t *testing.T) {
	const src = "apiVersion: bmc/v1\nkind: Workload\nname: n\nparams:\n  v: {default: 1.10}\n  w: {default: [2.50, 3]}\ntasks:\n  - {id: t, matrix: {m: [0.000001]}, run: 'echo ${{ params.v }} ${{ params.w }} ${{ matrix.m }}'}\n"
	p := mustCompile(t, src, Options{})
	out := encode(t, p)
	for _, want := range []string{`"v": 1.10`, `2.50,`, `"m": 0.000001`, `"run": "echo 1.10 [2.50,3] 0.000001"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("program lacks %s:\n%s", want, out)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var back Program
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(out), string(encode(t, &back))); diff != "" {
		t.Errorf("program read back encodes otherwise (-compiled +read back):\n%s", diff)
	}
	again := encode(t, mustCompile(t, src, Options{Params: back.Params}))
	if diff := cmp.Diff(string(out), string(again)); diff != "" {
		t.Errorf("compiled with its params read back (-first +again):\n%s", diff)
	}
}
