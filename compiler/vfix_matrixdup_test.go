package compiler

import (
	"fmt"
	"strings"
	"testing"
)

// vfixDiags compiles src and returns its diagnostics as lines of
// "line:col path: message", with "hint: " and "see " lines after each.
func vfixDiags(t *testing.T, src string, opts Options) []string {
	t.Helper()
	_, diags := Compile("spec.yaml", []byte(src), opts)
	var out []string
	for _, d := range diags {
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

// TestVfixMatrixDuplicateValues checks that a value a matrix key repeats
// is one error at its first repeat, saying why it collides and how many
// times it is written, however many values the other keys have; and that a clash only the combination
// of keys makes is still told at the task id, naming both combinations.
func TestVfixMatrixDuplicateValues(t *testing.T) {
	chr := make([]string, 24)
	for i := range chr {
		chr[i] = fmt.Sprintf("chr%d", i+1)
	}
	for _, tc := range []struct {
		name, matrix string
		set          map[string]any
		want         []string
	}{{
		name:   "same text",
		matrix: "{sample: [s1, s2, s1], chr: [" + strings.Join(chr, ", ") + "]}",
		want: []string{
			`6:31 tasks[0].matrix.sample[2]: matrix value "s1" is written twice (first at 6:23): both give task ids such as "t-s1-chr1"`,
			"see spec.yaml:6:23",
		},
	}, {
		name:   "three times",
		matrix: "{v: [s1, s2, s1, s1]}",
		want: []string{
			`6:26 tasks[0].matrix.v[2]: matrix value "s1" is written 3 times (first at 6:18): all give task id "t-s1"`,
			"see spec.yaml:6:18",
		},
	}, {
		name:   "each value once",
		matrix: "{v: [a, A, a, A]}",
		want: []string{
			`6:21 tasks[0].matrix.v[1]: matrix values "a" (at 6:18) and "A" give task ids "t-a" and "t-A", which differ only in case: Azure Batch takes ids that differ only in case for one ("A" is written twice)`,
			"see spec.yaml:6:18",
			`6:24 tasks[0].matrix.v[2]: matrix value "a" is written twice (first at 6:18): both give task id "t-a"`,
			"see spec.yaml:6:18",
		},
	}, {
		name:   "from a param, three times",
		matrix: "{v: \"${{ params.l }}\", w: [x, y]}",
		set:    map[string]any{"l": []any{"s1", "s2", "s1", "s1"}},
		want: []string{
			`6:17 tasks[0].matrix.v: matrix value "s1" is written 3 times (values 1, 3 and 1 more of the list): all give task ids such as "t-s1-x"`,
		},
	}, {
		name:   "number and case",
		matrix: "{x: [1, \"1\"], y: [a, A]}",
		want: []string{
			`6:21 tasks[0].matrix.x[1]: matrix values 1 (at 6:18) and "1" are one value written two ways: both give task ids such as "t-1-a"`,
			"see spec.yaml:6:18",
			`6:34 tasks[0].matrix.y[1]: matrix values "a" (at 6:31) and "A" give task ids such as "t-1-a" and "t-1-A", which differ only in case: Azure Batch takes ids that differ only in case for one`,
			"see spec.yaml:6:31",
		},
	}, {
		name:   "numbers written two ways",
		matrix: "{v: [1.10, 1.1, 2]}",
		want: []string{
			`6:24 tasks[0].matrix.v[1]: matrix values 1.10 (at 6:18) and 1.1 are one value written two ways: both give task id "t-1_1"`,
			"see spec.yaml:6:18",
		},
	}, {
		name:   "sanitized",
		matrix: "{v: [a.b, a_b, a-b]}",
		want: []string{
			`6:23 tasks[0].matrix.v[1]: matrix values "a.b" (at 6:18) and "a_b" both give task id "t-a_b": in ids, characters other than letters, digits, _ and - become _`,
			"see spec.yaml:6:18",
		},
	}, {
		name:   "from a param",
		matrix: "{v: \"${{ params.l }}\", w: [x, y]}",
		set:    map[string]any{"l": []any{"s1", "s2", "s1", "S2"}},
		want: []string{
			`6:17 tasks[0].matrix.v: matrix value "s1" is written twice (values 1 and 3 of the list): both give task ids such as "t-s1-x"`,
			`6:17 tasks[0].matrix.v: matrix values "s2" (value 2 of the list) and "S2" (value 4) give task ids such as "t-s2-x" and "t-S2-x", which differ only in case: Azure Batch takes ids that differ only in case for one`,
		},
	}, {
		name:   "across keys",
		matrix: "{x: [a-b, a], y: [c, b-c]}",
		want: []string{
			`5:9 tasks[0].id: matrix x="a-b", y="c" and x="a", y="b-c" both give task id "t-a-b-c"`,
		},
	}, {
		name:   "across keys, in case",
		matrix: "{x: [a-b, a], y: [c, B-c]}",
		want: []string{
			`5:9 tasks[0].id: matrix x="a-b", y="c" and x="a", y="B-c" give task ids "t-a-b-c" and "t-a-B-c", which differ only in case: Azure Batch takes ids that differ only in case for one`,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			// The task's id is on line 5 and its matrix on line 6.
			src := "apiVersion: bmc/v1\nkind: Workload\nname: m\ntasks:\n  - id: t\n    matrix: " + tc.matrix + "\n    run: echo\nparams: {l: {default: []}}\n"
			got := vfixDiags(t, src, Options{Params: tc.set})
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("spec:\n%s\ngot:\n%s\nwant:\n%s", src, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestVfixMatrixCrossKeyClashesCapped checks that clashes only the
// combination of keys makes, which can be as many as members, are told
// up to 20, and the rest counted, at the task id.
func TestVfixMatrixCrossKeyClashesCapped(t *testing.T) {
	xs, ys := []string{"a"}, []string{"b"}
	for i := range 25 {
		xs = append(xs, fmt.Sprintf("a-%d", i))
		ys = append(ys, fmt.Sprintf("%d-b", i))
	}
	got := vfixDiags(t, "apiVersion: bmc/v1\nkind: Workload\nname: m\ntasks:\n  - id: t\n    matrix: {x: ["+strings.Join(xs, ", ")+"], y: ["+strings.Join(ys, ", ")+"]}\n    run: echo\n", Options{})
	pairs := 0
	for _, g := range got {
		switch {
		case strings.HasPrefix(g, "5:9 tasks[0].id: matrix x=") && strings.Contains(g, " both give task id "):
			pairs++
		case g == "5:9 tasks[0].id: and 5 more pairs of matrix values that give one task id":
		default:
			t.Errorf("unexpected: %s", g)
		}
	}
	if pairs != 20 || len(got) != 21 {
		t.Errorf("%d pairs told, %d errors; want 20 and 21:\n%s", pairs, len(got), strings.Join(got, "\n"))
	}
}

// TestVfixMatrixRepeatsCapped checks that a value written thousands of
// times is one error, and that past 20 values repeated, in a list or in a
// list an expression gives, the rest are counted.
func TestVfixMatrixRepeatsCapped(t *testing.T) {
	const head = "apiVersion: bmc/v1\nkind: Workload\nname: m\nparams: {l: {default: []}}\ntasks:\n  - id: t\n    run: echo\n    matrix: "
	same := make([]string, 3000)
	for i := range same {
		same[i] = "s1"
	}
	got := vfixDiags(t, head+"{v: ["+strings.Join(same, ", ")+"]}\n", Options{})
	want := []string{`8:22 tasks[0].matrix.v[1]: matrix value "s1" is written 3000 times (first at 8:18): all give task id "t-s1"`, "see spec.yaml:8:18"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("3000 copies:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	var vals []string
	var set []any
	for i := range 25 {
		for range 3 {
			vals = append(vals, fmt.Sprintf("v%d", i))
			set = append(set, fmt.Sprintf("v%d", i))
		}
	}
	for _, tc := range []struct {
		name, matrix string
		set          map[string]any
		more         string
	}{
		{"list", "{v: [" + strings.Join(vals, ", ") + "]}", nil, "tasks[0].matrix.v[61]: and 5 more values"},
		{"expression", `{v: "${{ params.l }}"}`, map[string]any{"l": set}, "tasks[0].matrix.v: and 5 more values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := vfixDiags(t, head+tc.matrix+"\n", Options{Params: tc.set})
			told, summaries := 0, 0
			for _, g := range got {
				switch {
				case strings.Contains(g, " is written 3 times ("):
					told++
				case strings.Contains(g, tc.more+" of matrix v that repeat an earlier value's id"):
					summaries++
				case strings.HasPrefix(g, "see "):
				default:
					t.Errorf("unexpected: %s", g)
				}
			}
			if told != 20 || summaries != 1 {
				t.Errorf("%d told and %d summaries, want 20 and 1:\n%s", told, summaries, strings.Join(got, "\n"))
			}
		})
	}
}
