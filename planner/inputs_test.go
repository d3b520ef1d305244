package planner

import (
	"cmp"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
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
  - id: here
    run: "true"
    inputs:
      - {from: data/d1, path: .}
      - {from: data/a.txt, path: ./}
  - id: dot
    run: "true"
    inputs:
      - {from: data/b.txt, path: .}
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
		{Severity: Error, Task: "files", Input: 2, Message: "inputs data/a.txt and data/b.txt both land on ./in.txt, and both are files: one would replace the other (give each a path of its own)"},
		{Severity: Error, Task: "mixed", Input: 2, Message: "inputs az://cont/prefix/ and data/a.txt both land on x, and data/a.txt is a file: one would replace the other (give each a path of its own)"},
		{Severity: Error, Task: "locked", Input: 1, Message: "input secret/key cannot be read: " + filepath.Join(specDir, "secret", "key") + ": permission denied"},
		{Severity: Error, Task: "here", Input: 2, Message: "input data/a.txt is a file, and its path ./ is the working directory itself: give it a file name (path: a.txt) or leave path out"},
		{Severity: Error, Task: "dot", Input: 1, Message: "input data/b.txt is a file, and its path . is the working directory itself: give it a file name (path: b.txt) or leave path out"},
		{Severity: Error, Task: "m-1", Input: 1, Message: "input data/missing.txt is not there: " + filepath.Join(specDir, "data", "missing.txt") + ": file does not exist (needed by 3 tasks)"},
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

const foldersSpec = `apiVersion: bmc/v1
kind: Workload
name: folders
tasks:
  - id: merged
    run: "true"
    inputs:
      - {from: data/d1, path: cfg}
      - {from: data/d2, path: cfg}
      - {from: data/a.txt, path: cfg/a.txt}
  - id: common
    matrix: {i: [1, 2]}
    run: "true"
    inputs:
      - {from: data/dirA, path: cfg}
      - {from: data/dirB, path: cfg}
  - id: into
    run: "true"
    inputs:
      - {from: data/dirA, path: cfg}
      - {from: data/a.txt, path: cfg/common.txt}
  - id: below
    run: "true"
    inputs:
      - {from: data/d1, path: .}
      - {from: data/dirB, path: x}
  - id: shape
    run: "true"
    inputs:
      - {from: data/a.txt, path: cfg/bin}
      - {from: data/dirA, path: cfg}
  - id: told
    run: "true"
    inputs:
      - {from: data/dirA, path: cfg}
      - {from: data/a.txt, path: cfg}
  - id: prefix
    run: "true"
    inputs:
      - {from: data/dirA, path: cfg}
      - {from: "az://cont/p/", path: cfg}
  - id: apart
    run: "true"
    inputs:
      - {from: data/big, path: big}
      - {from: data/dirB, path: cfg}
`

// TestSpecInputsFolders: folders are looked into where another input of
// the task lands among their files, and a file two inputs would put at
// one path is an error of the plan, as is a file where a folder needs a
// folder; folders merging without a file in common are not.
func TestSpecInputsFolders(t *testing.T) {
	prog := compile(t, foldersSpec)
	files := fstest.MapFS{
		"data/a.txt":            {Data: []byte("a")},
		"data/d1/x/common.txt":  {Data: []byte("x")},
		"data/d2/y.txt":         {Data: []byte("y")},
		"data/dirA/bin/a.sh":    {Data: []byte("a")},
		"data/dirA/common.txt":  {Data: []byte("A")},
		"data/dirA/more.txt":    {Data: []byte("A")},
		"data/dirB/b.txt":       {Data: []byte("B")},
		"data/dirB/common.txt":  {Data: []byte("B")},
		"data/dirB/more.txt":    {Data: []byte("B")},
		"data/dirB/x/x.txt":     {Data: []byte("B")},
		"data/big/never/looked": {Data: []byte("!")},
	}
	specDir := filepath.FromSlash("/spec")
	rel := func(name string) string {
		r, err := filepath.Rel(specDir, name)
		if err != nil {
			t.Fatalf("%s, outside the spec's folder", name)
		}
		return filepath.ToSlash(r)
	}
	stat := func(name string) (fs.FileInfo, error) { return fs.Stat(files, rel(name)) }
	read := map[string]int{}
	readDir := func(name string) ([]fs.DirEntry, error) {
		read[rel(name)]++
		return fs.ReadDir(files, rel(name))
	}
	got := SpecInputsWalk(prog, nil, specDir, stat, readDir)
	want := []Check{
		{Severity: Error, Task: "common-1", Message: "inputs data/dirA and data/dirB both put a file at cfg/common.txt (and 1 more): one would replace the other (give each a path of its own)"},
		{Severity: Error, Task: "common-2", Message: "inputs data/dirA and data/dirB both put a file at cfg/common.txt (and 1 more): one would replace the other (give each a path of its own)"},
		{Severity: Error, Task: "into", Message: "inputs data/dirA and data/a.txt both put a file at cfg/common.txt: one would replace the other (give each a path of its own)"},
		{Severity: Error, Task: "below", Message: "inputs data/d1 and data/dirB both put a file at x/common.txt: one would replace the other (give each a path of its own)"},
		{Severity: Error, Task: "shape", Message: "inputs data/a.txt and data/dirA cannot both land: data/a.txt puts a file at cfg/bin, where data/dirA needs a folder (give each a path of its own)"},
		{Severity: Error, Task: "told", Input: 2, Message: "inputs data/dirA and data/a.txt both land on cfg, and data/a.txt is a file: one would replace the other (give each a path of its own)"},
	}
	byTask := func(a, b Check) int { return cmp.Compare(a.Task, b.Task) }
	slices.SortFunc(got, byTask)
	slices.SortFunc(want, byTask)
	if d := gocmp.Diff(want, got); d != "" {
		t.Errorf("checks (-want +got):\n%s", d)
	}
	// Each folder is read once, however many tasks name it; one that
	// no other input lands among, not at all.
	for d, n := range read {
		if n > 1 {
			t.Errorf("%s read %d times", d, n)
		}
		if strings.HasPrefix(d, "data/big") {
			t.Errorf("%s read, which no other input lands among", d)
		}
	}
	if read["data/dirA/bin"] != 1 {
		t.Errorf("folders read %v: want data/dirA's subfolders too", read)
	}
	// Without readDir, only what stat tells is checked.
	if got := SpecInputs(prog, nil, specDir, stat); len(got) != 1 || got[0].Task != "told" {
		t.Errorf("checks without looking into folders: %v", got)
	}
}
