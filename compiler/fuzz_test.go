package compiler

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCompile feeds arbitrary bytes through parse, validation, expansion
// and graph checks: a spec may be rejected, never crash the compiler, and a
// program that compiles must encode to JSON.
func FuzzCompile(f *testing.F) {
	files, _ := filepath.Glob("../examples/*.yaml")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	inv, _ := filepath.Glob("testdata/invalid/*.txtar")
	for _, file := range inv {
		if b, err := os.ReadFile(file); err == nil {
			if _, spec, ok := strings.Cut(string(b), "-- spec.yaml --\n"); ok {
				spec, _, _ = strings.Cut(spec, "\n-- ")
				f.Add([]byte(spec))
			}
		}
	}
	f.Add([]byte("apiVersion: bmc/v1\nkind: Workload\nname: x\ntasks: [{id: a, matrix: {k: [1, 2]}, dependsOn: ['b-${{ matrix.k }}'], run: x}, {id: b, matrix: {k: [1, 2]}, run: y}]\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, partial := range []bool{false, true} {
			p, diags := Compile("fuzz.yaml", src, Options{Partial: partial})
			if len(diags) > 0 {
				for _, d := range diags {
					if d.Msg == "" {
						t.Fatalf("diagnostic without a message: %+v", d)
					}
					_ = d.Format(src)
				}
				continue
			}
			if p == nil {
				t.Fatal("no program and no diagnostics")
			}
			if _, err := json.Marshal(p); err != nil {
				t.Fatalf("encode: %v", err)
			}
			seen := map[string]bool{}
			for _, tk := range p.Tasks {
				low := strings.ToLower(tk.ID)
				if seen[low] || !validID(tk.ID) {
					t.Fatalf("bad or duplicate task id %q passed the checks", tk.ID)
				}
				seen[low] = true
			}
		}
	})
}

// FuzzTemplate checks the expression engine: parse never panics, and a
// parsed template renders without panicking in any scope.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"", "plain", "${{ params.x }}", "a-${{ matrix.k }}-b", "${{", "${{ }}", "${{ a..b }}", "${{ run.id }}/${{ task.attempt }}", "${{ workload.labels.team }}", "${{ params.m.k }}", "$${{x}}}}"} {
		f.Add(s)
	}
	s := &scope{
		params:   map[string]any{"x": "v", "l": []any{"a", int64(1)}, "m": map[string]any{"k": true}},
		missing:  map[string]bool{"req": true},
		workload: map[string]any{"name": "w", "labels": map[string]any{"team": "t"}},
		matrix:   map[string]any{"k": 1.5}, matrixOK: true, taskID: "t-1", taskOK: true,
	}
	f.Fuzz(func(t *testing.T, in string) {
		tp, perr := parseTemplate(in)
		if perr != nil {
			if perr.off < 0 || perr.off > len(in) {
				t.Fatalf("error offset %d outside the input", perr.off)
			}
			return
		}
		if !strings.Contains(in, "${{") && (len(tp.parts) > 1 || (len(tp.parts) == 1 && tp.parts[0].lit != in)) {
			t.Fatalf("plain string %q not kept as is", in)
		}
		out, _, err := tp.eval(s)
		if err == nil && !tp.constant() && strings.Contains(out, "${{") {
			for _, late := range LateNames() {
				out = strings.ReplaceAll(out, "${{ "+late+" }}", "")
			}
		}
		tp.evalValue(s)
	})
}
