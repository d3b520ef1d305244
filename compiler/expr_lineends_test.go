package compiler

import (
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/schema"
	"github.com/google/go-cmp/cmp"
)

// lineEnds rewrites a spec written with LF line ends with CR LF or CR.
var lineEnds = map[string]func(string) string{
	"crlf": func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") },
	"cr":   func(s string) string { return strings.ReplaceAll(s, "\n", "\r") },
}

// TestLineEndsCompileAlike checks that a spec checked out with CR LF (or
// old CR) line ends compiles to the program its LF copy does, hashes
// included: a quoted value folded over lines is one value whatever ends
// its lines.
func TestLineEndsCompileAlike(t *testing.T) {
	const src = `apiVersion: bmc/v1
kind: Workload
name: fold
description: "one
  two

  three"
tasks:
  - id: t
    run: "echo one
      two"
    env:
      A: 'x
        y'
      B: "p\
        q"
  - id: u
    command: [echo, "a
      b", 'c

      d']
  - id: v
    run: |
      line one
      line two
  - id: w
    run: >
      folded
      text

      kept
  - id: x
    run: echo plain
      continued
`
	want := encode(t, mustCompile(t, src, Options{}))
	if !strings.Contains(string(want), `"run": "echo one two"`) {
		t.Fatalf("the LF spec folds differently than YAML does:\n%s", want)
	}
	for name, conv := range lineEnds {
		t.Run(name, func(t *testing.T) {
			got := encode(t, mustCompile(t, conv(src), Options{}))
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("program differs from the LF spec's (-lf +%s):\n%s", name, diff)
			}
		})
	}
}

// TestLineEndsDiagnoseAlike checks that errors after a quoted value folded
// over lines are reported at the same line and column, with the same
// source line and caret, whatever ends the lines.
func TestLineEndsDiagnoseAlike(t *testing.T) {
	const src = `apiVersion: bmc/v1
kind: Workload
name: dq
tasks:
  - id: t
    description: "a
      b
      c"
    run: 'echo
      ${{ params.nope }}'
    timout: 1h
  - id: u
    run: "x"
    retries: two
`
	format := func(src string) []string {
		_, diags := Compile("dq.yaml", []byte(src), Options{})
		lines := schema.NewSourceLines([]byte(src))
		var out []string
		for _, d := range diags {
			out = append(out, d.FormatLines(lines))
		}
		return out
	}
	want := format(src)
	wantFirst := []string{
		"dq.yaml:10:7: tasks[0].run: unknown name params.nope\n          ${{ params.nope }}'\n          ^\n",
		"dq.yaml:11:5: tasks[0].timout: unknown field \"timout\"\n        timout: 1h\n        ^\n    did you mean timeout?\n",
		"dq.yaml:14:14: tasks[1].retries: expected int, got string \"two\"\n        retries: two\n                 ^\n",
	}
	if diff := cmp.Diff(wantFirst, want); diff != "" {
		t.Fatalf("LF diagnostics (-want +got):\n%s", diff)
	}
	// A syntax error is placed by the parser.
	const bad = "apiVersion: bmc/v1\nkind: Workload\nname: dq\ndescription: \"a\n  b\"\ntasks: [{id: t, run: x}\n"
	wantBad := format(bad)
	if len(wantBad) != 1 || !strings.HasPrefix(wantBad[0], "dq.yaml:6:8: YAML syntax") {
		t.Fatalf("LF syntax error: %q", wantBad)
	}
	for name, conv := range lineEnds {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(want, format(conv(src))); diff != "" {
				t.Errorf("diagnostics differ from the LF spec's (-lf +%s):\n%s", name, diff)
			}
			if diff := cmp.Diff(wantBad, format(conv(bad))); diff != "" {
				t.Errorf("syntax error differs from the LF spec's (-lf +%s):\n%s", name, diff)
			}
		})
	}
}
