package schema

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue"
)

func TestJSONSchema(t *testing.T) {
	b, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	defs, _ := m["$defs"].(map[string]any)
	task, _ := defs["Task"].(map[string]any)
	if task == nil || task["additionalProperties"] != false || task["oneOf"] == nil {
		t.Fatalf("Task schema is not closed with a oneOf for run/command: %v", task)
	}
	// What the generator leaves out, and validate refuses: a finalize step
	// with both run and command, a matrix key that is not a name.
	fin, _ := defs["Finalize"].(map[string]any)
	if not, _ := fin["not"].(map[string]any); not == nil || fmt.Sprint(not["required"]) != "[run command]" {
		t.Errorf("Finalize schema allows run and command together: %v", fin)
	}
	tprops, _ := task["properties"].(map[string]any)
	if mx, _ := tprops["matrix"].(map[string]any); mx["additionalProperties"] != false || mx["patternProperties"] == nil {
		t.Errorf("matrix schema allows keys other than names: %v", mx)
	}
	props, _ := m["properties"].(map[string]any)
	for _, f := range []string{"apiVersion", "kind", "name", "params", "pool", "packages", "defaults", "tasks", "finalize", "storage", "logs", "labels", "description"} {
		if props[f] == nil {
			t.Errorf("JSON Schema lacks property %q", f)
		}
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"retries", "timeout", "dependsOn", "run", "command"}
	for in, want := range map[string]string{"retires": "retries", "dependson": "dependsOn", "timout": "timeout", "bogus": "", "rn": "run", "xyz": ""} {
		if got := Suggest(in, cands); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidateEveryErrorAtOnce(t *testing.T) {
	src := []byte("apiVersion: bmc/v1\nkind: Workload\nname: x\nbogus: 1\ntasks:\n  - {id: a, run: x, retries: -1, slots: x, when: y}\n")
	n, diags := Parse("s.yaml", src)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	got := s.Validate(n)
	if len(got) != 4 {
		t.Fatalf("got %d errors, want 4 (bogus, retries, slots, when): %v", len(got), got)
	}
}

// TestBareTypes checks isBareType against the types' printed forms on
// every node of the schema.
func TestBareTypes(t *testing.T) {
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[*snode]bool{}
	bare := 0
	var visit func(n *snode, path string)
	visit = func(n *snode, path string) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		printed := fmt.Sprint(n.v)
		want := slices.Contains([]string{"_", "string", "int", "number", "bool", "float", "null"}, printed)
		if n.plain != want {
			t.Errorf("%s (%s): bare type %v, want %v", path, printed, n.plain, want)
		}
		if want {
			bare++
		}
		for k := range n.fields {
			c, _ := s.field(n, k)
			visit(c, path+"."+k)
		}
		if n.kind&cue.ListKind != 0 && n.alts == nil {
			visit(s.elem(n), path+"[]")
		}
		for i, a := range n.alts {
			visit(a, fmt.Sprintf("%s|%d", path, i))
		}
	}
	visit(s.root, "$")
	if bare < 20 || len(seen) < 80 {
		t.Errorf("visited %d nodes, %d bare types: the walk missed most of the schema", len(seen), bare)
	}
}

// TestRegexLeaves checks that the schema's regular expression constraints
// accept in Go exactly what CUE accepts.
func TestRegexLeaves(t *testing.T) {
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	samples := []string{"", "a", "A-b_9", "x y", "${{ matrix.k }}", "t-${{ matrix.i }}-x", "${{", "é", "90s", "1h30m", "1.5h", "h", "-", "a\n", "Ab", "a-b-c", strings.Repeat("a", 48), strings.Repeat("a", 49)}
	checked := 0
	for _, path := range [][]string{{"name"}, {"tasks", "[]", "id"}, {"tasks", "[]", "timeout"}} {
		n := s.root
		for _, p := range path {
			if p == "[]" {
				n = s.elem(n)
				continue
			}
			var ok bool
			if n, ok = s.field(n, p); !ok {
				t.Fatalf("no field %v", path)
			}
		}
		if n.match == nil {
			t.Errorf("%v: no Go pattern derived", path)
			continue
		}
		for _, str := range samples {
			want := n.v.Unify(s.ctx.Encode(str)).Validate(cue.Concrete(true)) == nil
			if got := n.match.MatchString(str); got != want {
				t.Errorf("%v: %q matches in Go: %v, valid in CUE: %v", path, str, got, want)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("nothing checked")
	}
}
