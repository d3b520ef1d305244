package compiler

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// vdCompileDiags compiles src as bmc validate does and returns its errors
// as lines of "line:col path: message", with "hint: " and "see " lines.
func vdCompileDiags(t *testing.T, src string) []string {
	t.Helper()
	errs, _ := Validate("spec.yaml", []byte(src), Options{Partial: true})
	var out []string
	for _, d := range errs {
		out = append(out, fmt.Sprintf("%d:%d %s: %s", d.Pos.Line, d.Pos.Col, d.Path, d.Msg))
		if d.Hint != "" {
			out = append(out, "hint: "+d.Hint)
		}
		for _, r := range d.Related {
			out = append(out, "see "+r.String())
		}
	}
	return out
}

// TestVdMatrixUnknownDependsOn checks that a dependsOn entry of a matrix
// task that names no task is one error at the entry, saying how many of
// the task's members it applies to, whether the entry is the same for
// every member or pairs members (one name per member), and that the
// names it gives are listed up to a bound, the rest counted.
func TestVdMatrixUnknownDependsOn(t *testing.T) {
	const head = "apiVersion: bmc/v1\nkind: Workload\nname: deps\nparams: {xs: {}}\ntasks:\n  - id: trim\n    matrix: {x: [1, 2, 3]}\n    run: echo\n"
	for _, tc := range []struct {
		name, tasks string
		want        []string
	}{{
		name: "the same name for every member",
		tasks: `  - id: a
    matrix: {x: [1, 2, 3], y: [p, q, r, s]}
    dependsOn: [nosuch]
    run: echo
`,
		want: []string{`11:17 tasks[1].dependsOn[0]: unknown dependsOn target "nosuch": no task or matrix group has that id (all 12 members of matrix task "a" depend on it)`},
	}, {
		name: "the same name, beside an entry that pairs",
		tasks: `  - id: a
    matrix: {x: [1, 2, 3], y: [p, q, r, s]}
    dependsOn: ["trim-${{ matrix.x }}", nosuch]
    run: echo
`,
		want: []string{`11:41 tasks[1].dependsOn[1]: unknown dependsOn target "nosuch": no task or matrix group has that id (all 12 members of matrix task "a" depend on it)`},
	}, {
		name: "pairing on one key, the name misspelt",
		tasks: `  - id: a
    matrix: {x: [1, 2, 3], y: [p, q, r, s]}
    dependsOn: ["trimm-${{ matrix.x }}"]
    run: echo
`,
		want: []string{
			`11:17 tasks[1].dependsOn[0]: unknown dependsOn targets "trimm-1", "trimm-2" and "trimm-3": no task or matrix group has those ids (all 12 members of matrix task "a" depend on one)`,
			"hint: did you mean trim-1?",
		},
	}, {
		name: "pairing on both keys, the names counted past three",
		tasks: `  - id: a
    matrix: {x: [1, 2, 3], y: [p, q, r, s]}
    dependsOn: ["trim-${{ matrix.x }}-${{ matrix.y }}"]
    run: echo
`,
		want: []string{
			`11:17 tasks[1].dependsOn[0]: unknown dependsOn targets "trim-1-p", "trim-1-q", "trim-1-r" and 9 more: no task or matrix group has those ids (all 12 members of matrix task "a" depend on one)`,
			"hint: did you mean trim-1?",
		},
	}, {
		name: "pairing, some members' names unknown",
		tasks: `  - id: a
    matrix: {x: [1, 2, 3, 4, 5], y: [p, q]}
    dependsOn: ["trim-${{ matrix.x }}"]
    run: echo
`,
		want: []string{`11:17 tasks[1].dependsOn[0]: unknown dependsOn targets "trim-4" and "trim-5": no task or matrix group has those ids (4 of the 10 members of matrix task "a" depend on one)`,
			"hint: did you mean trim-1?"},
	}, {
		name: "pairing, one member's name unknown",
		tasks: `  - id: a
    matrix: {x: [1, 2, 3, 4]}
    dependsOn: ["trim-${{ matrix.x }}"]
    run: echo
`,
		want: []string{`11:17 tasks[1].dependsOn[0]: unknown dependsOn target "trim-4": no task or matrix group has that id (1 of the 4 members of matrix task "a" depends on it)`,
			"hint: did you mean trim-1?"},
	}, {
		name: "pairing, every name known",
		tasks: `  - id: a
    matrix: {x: [1, 2, 3], y: [p, q]}
    dependsOn: ["trim-${{ matrix.x }}", trim]
    run: echo
`,
	}, {
		name: "one member",
		tasks: `  - id: a
    matrix: {x: [1]}
    dependsOn: [nosuch]
    run: echo
`,
		want: []string{`11:17 tasks[1].dependsOn[0]: unknown dependsOn target "nosuch": no task or matrix group has that id (the one member of matrix task "a" depends on it)`},
	}, {
		name: "members not known: a required param not given",
		tasks: `  - id: a
    matrix: {x: "${{ params.xs }}", y: [p, q]}
    dependsOn: [nosuch, "trimm-${{ matrix.y }}"]
    run: echo
`,
		want: []string{
			`11:17 tasks[1].dependsOn[0]: unknown dependsOn target "nosuch": no task or matrix group has that id (every member of matrix task "a" depends on it)`,
			`11:25 tasks[1].dependsOn[1]: unknown dependsOn targets "trimm-p" and "trimm-q": no task or matrix group has those ids (every member of matrix task "a" depends on one)`,
			"hint: did you mean trim-1?",
		},
	}, {
		name: "a task with no matrix, as before",
		tasks: `  - id: a
    dependsOn: [nosuch]
    run: echo
`,
		want: []string{`10:17 tasks[1].dependsOn[0]: unknown dependsOn target "nosuch": no task or matrix group has that id`},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			src := head + tc.tasks
			if diff := cmp.Diff(tc.want, vdCompileDiags(t, src)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nsource:\n%s", diff, src)
			}
		})
	}
}
