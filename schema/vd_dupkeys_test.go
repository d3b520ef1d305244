package schema

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// vdDiags formats diagnostics as "line:col path: message", each followed
// by "hint: " and "see " lines.
func vdDiags(diags Diagnostics) []string {
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

// TestVdDuplicateKeyPaths checks that a key written twice in one map is
// reported with the path of the map plus the key, at the repeat, with
// the first occurrence as its related place; every repeat is reported,
// each at its own position.
func TestVdDuplicateKeyPaths(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{{
		name: "a task's key, three times",
		src:  "tasks:\n  - id: a\n    run: x\n  - id: align\n    image: a\n    image: b\n    image: c\n",
		want: []string{
			`6:5 tasks[1].image: duplicate key "image" (first at 5:5)`, "see s.yaml:5:5",
			`7:5 tasks[1].image: duplicate key "image" (first at 5:5)`, "see s.yaml:5:5",
		},
	}, {
		name: "a top-level key",
		src:  "tasks:\n  - id: a\ntasks:\n  - id: b\n",
		want: []string{`3:1 tasks: duplicate key "tasks" (first at 1:1)`, "see s.yaml:1:1"},
	}, {
		name: "in a flow map in a list",
		src:  "tasks:\n  - {id: a, env: {A: 1, B: 2, A: 3}}\n",
		want: []string{`2:31 tasks[0].env.A: duplicate key "A" (first at 2:19)`, "see s.yaml:2:19"},
	}, {
		name: "a key that needs quotes in a path",
		src:  "labels:\n  'a.b': x\n  \"a.b\": y\n",
		want: []string{`3:3 labels."a.b": duplicate key "a.b" (first at 2:3)`, "see s.yaml:2:3"},
	}, {
		name: "in two maps",
		src:  "a: {k: 1, k: 2}\nb:\n  c:\n    k: 1\n    k: 2\n",
		want: []string{
			`1:11 a.k: duplicate key "k" (first at 1:5)`, "see s.yaml:1:5",
			`5:5 b.c.k: duplicate key "k" (first at 4:5)`, "see s.yaml:4:5",
		},
	}, {
		name: "a merge key",
		src:  "x: &m {k: 1}\ny:\n  <<: *m\n  <<: *m\n",
		want: []string{`4:3 y."<<": duplicate key "<<" (first at 3:3)`, "see s.yaml:3:3"},
	}, {
		name: "in an anchored map, once, where it is written",
		src:  "x-a: &m {k: 1, k: 2}\ny: *m\n",
		want: []string{`1:16 x-a.k: duplicate key "k" (first at 1:10)`, "see s.yaml:1:10"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Parse("s.yaml", []byte(tc.src))
			if diff := cmp.Diff(tc.want, vdDiags(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s\nsource:\n%s", diff, tc.src)
			}
			for _, d := range diags {
				if !strings.HasPrefix(d.Error(), "s.yaml:"+fmt.Sprint(d.Pos.Line)+":"+fmt.Sprint(d.Pos.Col)+": "+d.Path+": duplicate key") {
					t.Errorf("Error() = %q, want the path after the position", d.Error())
				}
			}
		})
	}
}

// TestVdDuplicateKeyBesideWrongKind checks that a duplicate key stays
// reported when the schema refuses the kind of the value kept: the two
// share a path, and the duplicate is no consequence of the other.
func TestVdDuplicateKeyBesideWrongKind(t *testing.T) {
	src := "apiVersion: bmc/v1\nkind: Workload\nname: d\ntasks:\n  - id: a\n    run: x\n    retries: many\n    retries: 2\n"
	root, diags := Parse("s.yaml", []byte(src))
	if diags.Fatal() {
		t.Fatal(diags)
	}
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	all := append(diags, s.Validate(root)...)
	all.Sort()
	want := []string{
		`7:14 tasks[0].retries: expected int, got string "many"`,
		`8:5 tasks[0].retries: duplicate key "retries" (first at 7:5)`, "see s.yaml:7:5",
	}
	if diff := cmp.Diff(want, vdDiags(all)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}
