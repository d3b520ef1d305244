package compiler

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSharedOutputWarnings(t *testing.T) {
	src := `apiVersion: bmc/v1
kind: Workload
name: shared
params:
  reps: {}
tasks:
  - id: fit
    matrix: {s: [s1, s2, s3], r: [1, 2]}
    run: echo hi > out.txt
    outputs:
      - {path: out.txt, to: "az://res/${{ run.id }}/"}
      - {path: logs/fit.log, to: "az://res/fit.log", when: always}
      - {path: out.txt, to: "az://res/${{ matrix.s }}/"}
      - {path: out.txt, to: "az://res/${{ task.id }}.txt"}
      - {path: "${{ matrix.s }}-${{ matrix.r }}.txt", to: "az://res/"}
      - {path: "${{ matrix.s }}.txt", to: "az://res/one.txt"}
      - {path: "*.txt", to: "az://res/all/"}
      - {path: out.txt, to: "az://res/${{ matrix.s }}/${{ matrix.r }}/"}
      - {path: out.txt, to: "az://res/${{ matrix.s }}-${{ task.attempt }}/"}
  - id: one
    matrix: {s: [s1], r: [1]}
    run: echo hi > out.txt
    outputs:
      - {path: out.txt, to: "az://res/one/"}
  - id: solo
    run: echo hi > out.txt
    outputs:
      - {path: out.txt, to: "az://res/solo.log"}
  - id: wide
    matrix: {s: [a, b], r: "${{ params.reps }}"}
    run: echo hi > out.txt
    outputs:
      - {path: out.txt, to: "az://res/${{ matrix.s }}/"}
`
	type warning struct {
		Line, Col int
		Path, Msg string
	}
	const fix = "name the member in to, with %s or ${{ task.id }}, unless that is meant"
	every := func(line, col, j int, file, to string) warning {
		return warning{line, col, fmt.Sprintf("tasks[0].outputs[%d].to", j), fmt.Sprintf(
			"every member of matrix task fit uploads %s to %s: those that write it overwrite each other's (%s)", file, to,
			fmt.Sprintf(fix, "${{ matrix.s }} and ${{ matrix.r }}"))}
	}
	onlyR := func(line, col, j int) warning {
		return warning{line, col, fmt.Sprintf("tasks[0].outputs[%d].to", j),
			"members of matrix task fit that differ only in r upload out.txt to one place: those that write it overwrite each other's (" +
				fmt.Sprintf(fix, "${{ matrix.r }}") + ")"}
	}
	want := []warning{
		every(11, 29, 0, "out.txt", "az://res/${{ run.id }}/"),
		every(12, 34, 1, "logs/fit.log", "az://res/fit.log"),
		onlyR(13, 29, 2),
		// A blob named by to alone: the file's varying name does not
		// tell the members' uploads apart.
		every(16, 43, 5, "${{ matrix.s }}.txt", "az://res/one.txt"),
		// The attempt is no member's.
		onlyR(19, 29, 8),
	}
	got := func(opts Options) []warning {
		t.Helper()
		p, diags := Compile("spec.yaml", []byte(src), opts)
		if len(diags) > 0 {
			t.Fatalf("compile: %v", diags)
		}
		var out []warning
		for _, d := range p.Warnings() {
			if !d.Warning {
				t.Errorf("%v: not marked a warning", d)
			}
			msg := d.Msg
			if d.Hint != "" {
				msg += " (" + d.Hint + ")"
			}
			out = append(out, warning{d.Pos.Line, d.Pos.Col, d.Path, msg})
		}
		return out
	}
	// With the param given, wide's r has two values and is not named.
	wide := warning{33, 29, "tasks[3].outputs[0].to", "members of matrix task wide that differ only in r upload out.txt to one place: those that write it overwrite each other's (" +
		fmt.Sprintf(fix, "${{ matrix.r }}") + ")"}
	if d := cmp.Diff(append(want, wide), got(Options{Params: map[string]any{"reps": []any{1, 2}}})); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
	// Validating without it: what r takes is not known, and nothing is
	// said of it.
	if d := cmp.Diff(want, got(Options{Partial: true})); d != "" {
		t.Errorf("warnings at validate (-want +got):\n%s", d)
	}
}

// Two tasks uploading to one blob, neither waiting for the other, are
// warned of; a task that waits for the other overwrites on purpose.
func TestCrossTaskOutputWarnings(t *testing.T) {
	src := `apiVersion: bmc/v1
kind: Workload
name: cross
tasks:
  - id: a
    run: echo a > r.txt
    outputs: [{path: r.txt, to: "az://out/${{ run.id }}/r.txt"}]
  - id: b
    run: echo b > r.txt
    outputs: [{path: r.txt, to: "az://out/${{ run.id }}/r.txt"}]
  - id: c
    dependsOn: [a, b]
    run: echo c > r.txt
    outputs: [{path: out/r.txt, to: "az://out/${{ run.id }}/"}]
  - id: m
    matrix: {s: [x, y]}
    run: echo > r.txt
    outputs: [{path: r.txt, to: "az://out/${{ matrix.s }}.txt"}]
  - id: n
    run: echo > r.txt
    outputs: [{path: "logs/n.txt", to: "az://out/x.txt"}]
  - id: after
    dependsOn: [m]
    run: echo > r.txt
    outputs: [{path: r.txt, to: "az://out/y.txt"}]
`
	p, diags := Compile("spec.yaml", []byte(src), Options{})
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	var got []string
	for _, d := range p.Warnings() {
		got = append(got, fmt.Sprintf("%d:%d %s: %s (%s) see %v", d.Pos.Line, d.Pos.Col, d.Path, d.Msg, d.Hint, d.Related))
	}
	want := []string{
		"10:33 tasks[1].outputs[0].to: tasks a and b both upload r.txt to az://out/${{ run.id }}/r.txt, and neither waits for the other: " +
			"which upload remains depends on timing (give each its own to, or make b depend on a) see [spec.yaml:7:33]",
		"21:40 tasks[4].outputs[0].to: tasks m-x and n both upload r.txt and logs/n.txt to az://out/x.txt, and neither waits for the other: " +
			"which upload remains depends on timing (give each its own to, or make n depend on m-x) see [spec.yaml:18:33]",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
}

// A task or finalize step that starts by running a program from its
// working directory, ./X, which no input puts there, is warned of: the
// directory starts empty, and every attempt would fail with exit code
// 127. Only the first command counts; an input at X, or a folder or
// prefix that may hold it, quiets it.
func TestEmptyStartWarnings(t *testing.T) {
	src := `apiVersion: bmc/v1
kind: Workload
name: empty
params: {where: {default: x}}
tasks:
  - id: script
    run: ./fetch.sh --all
  - id: comments
    run: |
      # fetch first

      ./bin/run.sh "$X"
  - id: argv
    command: [./tool, --x]
  - id: brought
    run: ./fetch.sh
    inputs: [{from: fetch.sh}]
  - id: renamed
    run: ./go.sh
    inputs: [{from: scripts/fetch.sh, path: go.sh}]
  - id: folder
    run: ./scripts/go.sh
    inputs: [{from: scripts}]
  - id: prefix
    run: ./go.sh
    inputs: [{from: "az://tools/bin/"}]
  - id: blob-elsewhere
    run: ./go.sh
    inputs: [{from: "az://tools/bin/go.sh", path: bin/go.sh}]
  - id: later
    run: |
      make
      ./built
  - id: chained
    run: cd sub; ./x
  - id: variable
    run: ./$PROG
  - id: unknown-path
    run: ./go.sh
    inputs: [{from: go.sh, path: "${{ run.id }}"}]
  - id: sweep
    matrix: {s: [a, b]}
    command: ["./sweep-${{ matrix.s }}"]
finalize:
  run: ./summarize.sh
`
	p, diags := Compile("spec.yaml", []byte(src), Options{})
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	var got []string
	for _, d := range p.Warnings() {
		got = append(got, fmt.Sprintf("%d:%d %s: %s (%s) %v", d.Pos.Line, d.Pos.Col, d.Path, d.Msg, d.Hint, d.Warning))
	}
	w := func(line, col int, path, who, x, add string) string {
		return fmt.Sprintf("%d:%d %s: runs ./%s, but the %s's working directory starts empty: no input puts %s there (add inputs: [%s] to bring the file from the spec's folder) true",
			line, col, path, x, who, x, add)
	}
	want := []string{
		w(7, 10, "tasks[0].run", "task", "fetch.sh", "{from: fetch.sh}"),
		w(9, 10, "tasks[1].run", "task", "bin/run.sh", "{from: bin/run.sh, path: bin/run.sh}"),
		w(14, 15, "tasks[2].command[0]", "task", "tool", "{from: tool}"),
		w(28, 10, "tasks[7].run", "task", "go.sh", "{from: go.sh}"),
		w(43, 15, "tasks[12].command[0]", "task", "sweep-a", "{from: sweep-a}"),
		w(45, 8, "finalize.run", "step", "summarize.sh", "{from: summarize.sh}"),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
	// Brought in as an input, the finalize step's script is there.
	fixed := strings.Replace(src, "  run: ./summarize.sh\n", "  run: ./summarize.sh\n  inputs: [{from: summarize.sh}]\n", 1)
	p, diags = Compile("spec.yaml", []byte(fixed), Options{})
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	for _, d := range p.Warnings() {
		if strings.HasPrefix(d.Path, "finalize") {
			t.Errorf("with the input: %v", d)
		}
	}
}
