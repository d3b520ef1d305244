package planner

import (
	"cmp"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"

	gocmp "github.com/google/go-cmp/cmp"
)

const inputsSpec = `apiVersion: bmc/v1
kind: Workload
name: inputs
tasks:
  - id: m
    matrix: {i: [1, 2, 3]}
    run: "true"
    inputs:
      - {from: data/missing.txt}
      - {from: data/a.txt}
  - id: files
    run: "true"
    inputs:
      - {from: data/a.txt, path: in.txt}
      - {from: data/b.txt, path: ./in.txt}
  - id: folders
    run: "true"
    inputs:
      - {from: data/d1, path: d}
      - {from: data/d2, path: d}
      - {from: "az://cont/prefix/", path: d}
  - id: mixed
    run: "true"
    inputs:
      - {from: "az://cont/prefix/", path: x}
      - {from: data/a.txt, path: x}
  - id: locked
    run: "true"
    inputs:
      - {from: secret/key}
  - id: gone
    run: "true"
    inputs:
      - {from: data/gone.txt}
`

func TestSpecInputs(t *testing.T) {
	prog := compile(t, inputsSpec)
	files := fstest.MapFS{
		"data/a.txt":    {Data: []byte("a")},
		"data/b.txt":    {Data: []byte("b")},
		"data/d1/x.txt": {Data: []byte("x")},
		"data/d2/y.txt": {Data: []byte("y")},
	}
	specDir := filepath.FromSlash("/spec")
	var asked []string
	stat := func(name string) (fs.FileInfo, error) {
		asked = append(asked, name)
		rel, err := filepath.Rel(specDir, name)
		if err != nil {
			t.Fatalf("stat of %s, outside the spec's folder", name)
		}
		if rel == filepath.FromSlash("secret/key") {
			return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrPermission}
		}
		fi, err := fs.Stat(files, filepath.ToSlash(rel))
		if pe, ok := err.(*fs.PathError); ok {
			pe.Path = name // as os.Stat has it
		}
		return fi, err
	}
	got := SpecInputs(prog, map[string]bool{"gone": true}, specDir, stat)
	want := []Check{
		{Severity: Error, Task: "files", Message: "inputs data/a.txt and data/b.txt both land on ./in.txt, and both are files: one would replace the other (give each a path of its own)"},
		{Severity: Error, Task: "mixed", Message: "inputs az://cont/prefix/ and data/a.txt both land on x, and data/a.txt is a file: one would replace the other (give each a path of its own)"},
		{Severity: Error, Task: "locked", Message: "input secret/key cannot be read: " + filepath.Join(specDir, "secret", "key") + ": permission denied"},
		{Severity: Error, Task: "m-1", Message: "input data/missing.txt is not there: " + filepath.Join(specDir, "data", "missing.txt") + ": file does not exist (needed by 3 tasks)"},
	}
	// Collisions come in the program's order, files not there after them:
	// compared by task.
	byTask := func(a, b Check) int { return cmp.Compare(a.Task, b.Task) }
	slices.SortFunc(got, byTask)
	slices.SortFunc(want, byTask)
	if d := gocmp.Diff(want, got); d != "" {
		t.Errorf("checks (-want +got):\n%s", d)
	}
	// Each file is looked at once, however many tasks name it, and the
	// done task's not at all.
	seen := map[string]int{}
	for _, n := range asked {
		seen[n]++
		if n == filepath.Join(specDir, "data", "gone.txt") {
			t.Errorf("stat of the input of a done task")
		}
	}
	for n, c := range seen {
		if c > 1 {
			t.Errorf("%s looked at %d times", n, c)
		}
	}
	// Nothing to say of a program whose inputs are all there.
	if got := SpecInputs(compile(t, chainSpec), nil, specDir, stat); len(got) != 0 {
		t.Errorf("checks of a program without inputs: %v", got)
	}
}
