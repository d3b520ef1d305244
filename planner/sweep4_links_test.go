package planner

import (
	"os"
	"path/filepath"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

const linksSpec = `apiVersion: bmc/v1
kind: Workload
name: links
tasks:
  - id: inside
    run: "true"
    inputs:
      - {from: data/a.txt, path: a.txt}
      - {from: data/inside, path: cfg}
  - id: again
    run: "true"
    inputs:
      - {from: data/inside}
  - id: outside
    run: "true"
    inputs:
      - {from: data/outside, path: .}
  - id: broken
    run: "true"
    inputs:
      - {from: data/broken}
  - id: looped
    run: "true"
    inputs:
      - {from: data/loop}
  - id: fine
    run: "true"
    inputs:
      - {from: data/fine, path: f}
      - {from: data/linked, path: l}
  - id: done
    run: "true"
    inputs:
      - {from: data/skipped}
finalize:
  run: "true"
  inputs:
    - {from: data/fin, path: fin}
`

// TestSweep4SpecInputFolders: a folder input holding a symbolic link to
// a folder (inside the input or out of it), a link to nothing or one that
// loops passes every other check of the plan and fails the task as it
// starts; the plan tells it as an error at the input's from, once for
// each folder (at the first task in the program's order, here "again"),
// naming the first such entry. Links to files, and a from
// that is itself a link to a folder, are staged and not told.
func TestSweep4SpecInputFolders(t *testing.T) {
	dir := t.TempDir()
	mk := func(rel string) {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := func(rel string) {
		mk(filepath.Dir(rel))
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(rel)), []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, rel string) {
		mk(filepath.Dir(rel))
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
			t.Fatal(err)
		}
	}
	file("data/a.txt")
	file("data/inside/v1/x.txt")
	link("v1", "data/inside/latest")
	link("v1", "data/inside/sub/zz-also") // told as "and 1 more"
	file("data/elsewhere/y.txt")
	link("../elsewhere", "data/outside/ref")
	link("nothing-here", "data/broken/a-dangling")
	link("b-loop", "data/broken/b-loop")
	link("loop", "data/loop/loop")
	file("data/fine/z.txt")
	link("z.txt", "data/fine/z-link.txt")
	link("fine", "data/linked")
	link("..", "data/skipped/up")
	link("../elsewhere", "data/fin/ref")

	prog := compile(t, linksSpec)
	specDir := dir
	checks := SpecInputFolders(prog, map[string]bool{"done": true}, specDir, os.Stat, os.ReadDir)
	plan := New(prog, Capabilities{Name: "local", Slots: 1}, map[string]bool{"done": true})
	plan.Checks = checks
	plan.Locate()

	type told struct {
		Task, Pos, Message string
	}
	var got []told
	for _, c := range plan.Checks {
		if c.Severity != Error {
			t.Errorf("%s: severity %s", c.Message, c.Severity)
		}
		got = append(got, told{c.Task, c.Pos(), c.Message})
	}
	want := []told{
		{"again", "spec.yaml:13:16", "input data/inside holds latest, a symbolic link to a folder, which staging does not follow (and 1 more that cannot be staged): replace the link with the folder itself, or remove it and bring the folder as an input of its own (from: <the folder>, path: inside/latest)"},
		{"broken", "spec.yaml:21:16", "input data/broken holds a-dangling, a symbolic link to nothing (and 1 more that cannot be staged)"},
		{"looped", "spec.yaml:25:16", "input data/loop holds loop, a symbolic link that cannot be followed: " + filepath.Join(dir, "data", "loop", "loop") + ": too many levels of symbolic links"},
		{"outside", "spec.yaml:17:16", "input data/outside holds ref, a symbolic link to a folder, which staging does not follow: replace the link with the folder itself, or remove it and bring the folder as an input of its own (from: <the folder>, path: ref)"},
		{"finalize", "spec.yaml:38:14", "input data/fin holds ref, a symbolic link to a folder, which staging does not follow: replace the link with the folder itself, or remove it and bring the folder as an input of its own (from: <the folder>, path: fin/ref)"},
	}
	if d := gocmp.Diff(want, got); d != "" {
		t.Errorf("checks (-want +got):\n%s", d)
	}
}
