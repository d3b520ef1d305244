package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestVfixValidateJSON decodes bmc validate -o json for an unreadable
// file, a spec with errors (one with a related place) and one with
// warnings, and checks the format docs/spec.md documents: every field in
// every entry, severity error or warning, the related places as fields.
func TestVfixValidateJSON(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dup := write("dup.yaml", "apiVersion: bmc/v1\nkind: Workload\nname: dup\ntasks:\n  - id: a\n    run: echo\n    run: again\n")
	warn := write("warn.yaml", "apiVersion: bmc/v1\nkind: Workload\nname: warn\ntasks:\n  - id: a\n    matrix: {x: [1, 2]}\n    run: echo\n    outputs:\n      - {path: o.txt, to: \"az://abc/o.txt\"}\n")
	missing := filepath.Join(dir, "missing.yaml")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"validate", "-o", "json", missing, dup, warn}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	var entries []map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &entries); err != nil {
		t.Fatalf("%v:\n%s", err, stdout.String())
	}
	fields := []string{"file", "line", "col", "severity", "path", "message", "hint", "related"}
	byFile := map[string][]map[string]any{}
	for _, e := range entries {
		var keys []string
		for k := range e {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := slices.Clone(fields)
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Errorf("entry has fields %v, want %v: %v", keys, want, e)
		}
		if s := e["severity"]; s != "error" && s != "warning" {
			t.Errorf("severity %v", s)
		}
		if _, ok := e["related"].([]any); !ok {
			t.Errorf("related is %T, want a list: %v", e["related"], e)
		}
		f, _ := e["file"].(string)
		byFile[f] = append(byFile[f], e)
	}
	if m := byFile[missing]; len(m) != 1 || m[0]["line"] != 0.0 || m[0]["col"] != 0.0 || !strings.HasPrefix(m[0]["message"].(string), "cannot read: ") {
		t.Errorf("missing file: %v", m)
	}
	if d := byFile[dup]; len(d) != 1 || d[0]["line"] != 7.0 || d[0]["col"] != 5.0 {
		t.Errorf("duplicate key: %v", d)
	} else {
		rel, _ := d[0]["related"].([]any)
		want := map[string]any{"file": dup, "line": 6.0, "col": 5.0}
		if len(rel) != 1 || !mapsEqual(rel[0], want) {
			t.Errorf("related %v, want [%v]", rel, want)
		}
	}
	if w := byFile[warn]; len(w) != 1 || w[0]["severity"] != "warning" || w[0]["path"] != "tasks[0].outputs[0].to" {
		t.Errorf("warning: %v", w)
	}

	// A valid spec prints [].
	stdout.Reset()
	ok := write("ok.yaml", "apiVersion: bmc/v1\nkind: Workload\nname: ok\ntasks:\n  - {id: a, run: echo}\n")
	if code := run(context.Background(), []string{"validate", "-o", "json", ok}, strings.NewReader(""), &stdout, &stderr); code != 0 || strings.TrimSpace(stdout.String()) != "[]" {
		t.Errorf("valid: exit %d, stdout %q", code, stdout.String())
	}
}

func mapsEqual(a any, b map[string]any) bool {
	m, ok := a.(map[string]any)
	if !ok || len(m) != len(b) {
		return false
	}
	for k, v := range b {
		if m[k] != v {
			return false
		}
	}
	return true
}
