package compiler

import (
	"strconv"
	"strings"
	"testing"
)

// TestVfixAbsoluteFromWarned compiles inputs whose from is an absolute
// path, in a task and in the finalize step: a path on the machine of
// whoever validates names another file, or none, on the others'. It is a
// warning, not an error: on a shared filesystem it holds for every local
// run. A from that climbs out of the spec's folder with .. is allowed.
func TestVfixAbsoluteFromWarned(t *testing.T) {
	const src = `apiVersion: bmc/v1
kind: Workload
name: abs
params:
  dir: {default: /data}
  later: {}
tasks:
  - id: a
    run: echo
    inputs:
      - {from: /etc/passwd, path: p}
      - {from: '\share\x', path: q}
      - {from: 'C:\x', path: r}
      - {from: "${{ params.dir }}/ref.fa", path: s}
      - {from: ../shared/run.sh, path: t}
      - {from: data/../../x.txt, path: u}
      - {from: "${{ params.later }}/x", path: v}
finalize:
  run: echo
  inputs:
    - {from: /srv/summarize.sh}
`
	errs, warnings := Validate("spec.yaml", []byte(src), Options{Partial: true})
	for _, d := range errs {
		t.Errorf("unexpected error: %s", d)
	}
	got := map[string]string{}
	for _, d := range warnings {
		if !d.Warning {
			t.Errorf("%s: not marked a warning", d.Pos)
		}
		got[d.Pos.String()] = d.Path + ": " + d.Msg + " | " + d.Hint
	}
	for _, want := range []struct{ at, path, value string }{
		{"spec.yaml:11:16", "tasks[0].inputs[0].from", "/etc/passwd"},
		{"spec.yaml:12:16", "tasks[0].inputs[1].from", `\share\x`},
		{"spec.yaml:13:16", "tasks[0].inputs[2].from", `C:\x`},
		{"spec.yaml:14:16", "tasks[0].inputs[3].from", "/data/ref.fa"},
		{"spec.yaml:21:14", "finalize.inputs[0].from", "/srv/summarize.sh"},
	} {
		g, ok := got[want.at]
		if !ok {
			t.Errorf("no warning at %s for %s", want.at, want.value)
			continue
		}
		delete(got, want.at)
		for _, s := range []string{want.path + ": ", strconv.Quote(want.value), "is absolute", "this machine only", "relative to the spec's folder", "az://", "https://"} {
			if !strings.Contains(g, s) {
				t.Errorf("%s: %q lacks %q", want.at, g, s)
			}
		}
	}
	for at, g := range got {
		t.Errorf("unexpected warning at %s: %s", at, g)
	}
}

// TestVfixAbsoluteFromSetRuns gives an absolute from through --set into
// a param, in a matrix task: the program compiles, keeps the path, and
// carries one warning for the field, not one per member.
func TestVfixAbsoluteFromSetRuns(t *testing.T) {
	const src = `apiVersion: bmc/v1
kind: Workload
name: abs
params:
  ref: {}
tasks:
  - id: a
    matrix: {k: [x, y, z]}
    run: echo ${{ matrix.k }}
    inputs:
      - {from: "${{ params.ref }}", path: ref.fa}
`
	p, diags := Compile("spec.yaml", []byte(src), Options{Params: map[string]any{"ref": "/scratch/ref.fa"}})
	if len(diags) > 0 {
		t.Fatalf("errors: %v", diags)
	}
	for _, task := range p.Tasks {
		if len(task.Inputs) != 1 || task.Inputs[0].From != "/scratch/ref.fa" {
			t.Errorf("%s: inputs %+v", task.ID, task.Inputs)
		}
	}
	ws := p.Warnings()
	if len(ws) != 1 || ws[0].Pos.String() != "spec.yaml:11:16" || ws[0].Path != "tasks[0].inputs[0].from" || !strings.Contains(ws[0].Msg, `"/scratch/ref.fa" is absolute`) {
		t.Errorf("warnings: %v", ws)
	}
}
