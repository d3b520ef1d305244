package compiler

import (
	"strings"
	"testing"
)

// TestVfixValidateWarningsWithErrors checks that Validate gives the
// warnings of a spec that has errors too, which Compile, with no program
// to give them with, cannot.
func TestVfixValidateWarningsWithErrors(t *testing.T) {
	const src = `apiVersion: bmc/v1
kind: Workload
name: warnerr
tasks:
  - id: a
    matrix: {x: [1, 2]}
    run: ./go.sh
    outputs:
      - {path: o.txt, to: "az://abc/o.txt"}
  - id: b
    run: echo
    retries: lots
`
	errs, warnings := Validate("spec.yaml", []byte(src), Options{Partial: true})
	if len(errs) != 1 || errs[0].Pos.String() != "spec.yaml:12:14" {
		t.Errorf("errors: %v, want one at spec.yaml:12:14", errs)
	}
	var got []string
	for _, w := range warnings {
		if !w.Warning {
			t.Errorf("%v is not marked a warning", w)
		}
		got = append(got, w.Pos.String())
	}
	// ./go.sh that no input brings, and the members' one upload.
	if want := "spec.yaml:7:10 spec.yaml:9:27"; strings.Join(got, " ") != want {
		t.Errorf("warnings at %v, want %s: %v", got, want, warnings)
	}
	if p, diags := Compile("spec.yaml", []byte(src), Options{Partial: true}); p != nil || len(diags) != 1 {
		t.Errorf("Compile: program %v, %d diagnostics; want none and 1", p != nil, len(diags))
	}
}
