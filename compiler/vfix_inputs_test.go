package compiler

import (
	"strconv"
	"strings"
	"testing"
)

// TestVfixAbsoluteFromRefused compiles inputs whose from is an absolute
// path, in a task and in the finalize step: a path on the machine of
// whoever validates names another file, or none, on the others'. A from
// that climbs out of the spec's folder with .. is allowed.
func TestVfixAbsoluteFromRefused(t *testing.T) {
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
	_, diags := Compile("spec.yaml", []byte(src), Options{Partial: true})
	got := map[string]string{}
	for _, d := range diags {
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
			t.Errorf("no error at %s for %s", want.at, want.value)
			continue
		}
		delete(got, want.at)
		for _, s := range []string{want.path + ": ", strconv.Quote(want.value), "is absolute", "relative to the spec's folder", "az://", "https://"} {
			if !strings.Contains(g, s) {
				t.Errorf("%s: %q lacks %q", want.at, g, s)
			}
		}
	}
	for at, g := range got {
		t.Errorf("unexpected error at %s: %s", at, g)
	}
}
