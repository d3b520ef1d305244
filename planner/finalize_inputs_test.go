package planner

import (
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

	gocmp "github.com/google/go-cmp/cmp"
)

// The finalize step's spec-relative inputs are checked before anything
// runs, as a task's are: one not there fails the plan, naming the step,
// and two that land on one file are told too.
func TestSpecInputsFinalize(t *testing.T) {
	prog := compile(t, `apiVersion: bmc/v1
kind: Workload
name: fin
tasks:
  - {id: a, run: "true"}
finalize:
  run: ./summarize.sh
  inputs:
    - {from: summarize.sh}
    - {from: lib/a.txt, path: x}
    - {from: lib/b.txt, path: x}
`)
	files := fstest.MapFS{
		"lib/a.txt": {Data: []byte("a")},
		"lib/b.txt": {Data: []byte("b")},
	}
	specDir := filepath.FromSlash("/spec")
	stat := func(name string) (fs.FileInfo, error) {
		rel, err := filepath.Rel(specDir, name)
		if err != nil {
			t.Fatalf("stat of %s, outside the spec's folder", name)
		}
		fi, err := fs.Stat(files, filepath.ToSlash(rel))
		if pe, ok := err.(*fs.PathError); ok {
			pe.Path = name
		}
		return fi, err
	}
	got := SpecInputs(prog, map[string]bool{"a": true}, specDir, stat)
	want := []Check{
		{Severity: Error, Task: "finalize", Input: 3, Message: "inputs lib/a.txt and lib/b.txt both land on x, and both are files: one would replace the other (give each a path of its own)"},
		{Severity: Error, Task: "finalize", Input: 1, Message: "input summarize.sh is not there: " + filepath.Join(specDir, "summarize.sh") + ": file does not exist"},
	}
	if d := gocmp.Diff(want, got); d != "" {
		t.Errorf("checks (-want +got):\n%s", d)
	}
	files["summarize.sh"] = &fstest.MapFile{Data: []byte("#!/bin/sh\n"), Mode: 0o755}
	if got := SpecInputs(prog, nil, specDir, stat); len(got) != 1 {
		t.Errorf("with the script there: %v, want the one clash", got)
	}
}
