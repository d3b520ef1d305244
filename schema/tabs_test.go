package schema

import "testing"

// TestTabsInValues: a tab inside a value is part of it, as YAML says,
// whether the value is plain, quoted, or in a flow map.
func TestTabsInValues(t *testing.T) {
	src := "apiVersion: bmc/v1\nkind: Workload\nname: x\ntasks:\n" +
		"  - id: t\n    run: cut -d'\t' -f2 data.tsv\n    env: {A: x\ty}\n" +
		"  - {id: u, run: \"printf 'a\tb'\", retries: 1}\n"
	root, diags := Parse("s.yaml", []byte(src))
	if len(diags) > 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	tasks := root.Get("tasks")
	if tasks == nil || len(tasks.Vals) != 2 {
		t.Fatalf("tasks: %+v", tasks)
	}
	for _, c := range []struct{ got, want string }{
		{tasks.Vals[0].Get("run").Str, "cut -d'\t' -f2 data.tsv"},
		{tasks.Vals[0].Get("env").Get("A").Str, "x\ty"},
		{tasks.Vals[1].Get("run").Str, "printf 'a\tb'"},
	} {
		if c.got != c.want {
			t.Errorf("read %q, want %q", c.got, c.want)
		}
	}
	if r := tasks.Vals[1].Get("retries"); r == nil || r.Int != 1 {
		t.Errorf("retries: %+v", r)
	}
	if p := tasks.Vals[0].Get("run").Pos; p.Line != 6 || p.Col != 10 {
		t.Errorf("run at %v, want 6:10", p)
	}
}
