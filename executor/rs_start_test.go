package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/google/go-cmp/cmp"
)

// TestRsStartChanges: a start record fingerprints each path input once
// (size and modification time, a folder's entries too), and Changes
// names those that differ, read from where the spec is now.
func TestRsStartChanges(t *testing.T) {
	spec := t.TempDir()
	write := func(rel, text string) {
		t.Helper()
		p := filepath.Join(spec, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("step.sh", "echo 1\n")
	write("same.txt", "same\n")
	write("ref/a.txt", "a\n")
	write("ref/sub/b.txt", "b\n")
	abs := filepath.Join(t.TempDir(), "abs.txt")
	os.WriteFile(abs, []byte("abs\n"), 0o644)
	file := func(from string) compiler.Input {
		return compiler.Input{From: from, Kind: compiler.InputFile, Path: "x"}
	}
	prog := &compiler.Program{
		Tasks: []compiler.Task{
			{ID: "a", Inputs: []compiler.Input{file("step.sh"), file("ref"), {From: "az://c/x", Kind: compiler.InputBlob, Path: "y"}}},
			{ID: "b", Inputs: []compiler.Input{file("step.sh"), file("same.txt"), file(abs), file("missing.txt")}},
		},
		Finalize: compiler.Finalize{Inputs: []compiler.Input{file("step.sh")}},
	}
	s := NewStart("state", spec, prog)
	var froms []string
	for _, in := range s.Inputs {
		froms = append(froms, in.From)
	}
	if d := cmp.Diff([]string{"step.sh", "ref", "same.txt", abs}, froms); d != "" {
		t.Errorf("inputs recorded (-want +got):\n%s", d)
	}
	if !filepath.IsAbs(s.StateDir) || filepath.Base(s.StateDir) != "state" {
		t.Errorf("state directory %q, want it absolute", s.StateDir)
	}
	if got := s.Changes(spec); len(got) != 0 {
		t.Errorf("changes of inputs as they were: %v", got)
	}

	dir := t.TempDir()
	if err := WriteStart(dir, s); err != nil {
		t.Fatal(err)
	}
	back, ok, err := ReadStart(dir)
	if err != nil || !ok || !cmp.Equal(back, s) {
		t.Fatalf("read back: %v %v\n%s", ok, err, cmp.Diff(s, back))
	}
	if _, ok, err := ReadStart(t.TempDir()); ok || err != nil {
		t.Errorf("a run with no record: %v %v", ok, err)
	}

	write("step.sh", "echo 1; echo 2\n")
	write("ref/sub/b.txt", "bb\n")
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	os.Chtimes(abs, old, old)
	got := s.Changes(spec)
	want := []InputChange{
		{From: "step.sh", What: "now 15 bytes, was 7"},
		{From: "ref", What: "sub/b.txt now 3 bytes, was 2"},
		{From: abs, What: "modified 2001-02-03 04:05:06 UTC"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}

	// Entries added to a folder change its time; a file saved anew
	// (written aside, then renamed) is named before its folder.
	os.Chtimes(filepath.Join(spec, "ref"), old, old)
	write("ref/c.txt", "c\n")
	os.Rename(filepath.Join(spec, "ref/c.txt"), filepath.Join(spec, "ref/a.txt"))
	got = s.Changes(spec)
	if len(got) < 2 || got[1].What != "a.txt now 2 bytes, was 2" && !strings.HasPrefix(got[1].What, "a.txt modified ") || !strings.HasSuffix(got[1].What, ", and 2 more changes") {
		t.Errorf("changes of a folder: %v", got)
	}

	// Read where the spec is now: a copy of its folder, as it was.
	moved := t.TempDir()
	if err := os.CopyFS(moved, os.DirFS(spec)); err != nil {
		t.Fatal(err)
	}
	if got := s.Changes(moved); len(got) == 0 {
		t.Error("a copy's files, of other times, are no change")
	}
	if got := s.Changes(filepath.Join(t.TempDir(), "nowhere")); len(got) != 1 || got[0].From != abs {
		t.Errorf("inputs gone are left to the plan's checks: %v", got)
	}
}

// TestRsStartBounded: a start record holds at most MaxStartEntries
// files and folder entries, all inputs together, and counts what it
// left out; a folder too big is not read whole.
func TestRsStartBounded(t *testing.T) {
	defer func(n int) { startEntries = n }(startEntries)
	startEntries = 5
	spec := t.TempDir()
	for i := range 8 {
		os.MkdirAll(filepath.Join(spec, "big"), 0o755)
		os.WriteFile(filepath.Join(spec, "big", string(rune('a'+i))+".txt"), nil, 0o644)
	}
	os.WriteFile(filepath.Join(spec, "late.txt"), nil, 0o644)
	file := func(from string) compiler.Input {
		return compiler.Input{From: from, Kind: compiler.InputFile, Path: "x"}
	}
	s := NewStart("state", spec, &compiler.Program{Tasks: []compiler.Task{{ID: "a", Inputs: []compiler.Input{file("big"), file("late.txt")}}}})
	if len(s.Inputs) != 1 || len(s.Inputs[0].Entries) != 4 || !s.Inputs[0].Partial || s.Unrecorded < 2 {
		t.Fatalf("record: %+v", s)
	}
	if e := s.Inputs[0].Entries; !slices.IsSortedFunc(e, func(a, b EntryPrint) int { return strings.Compare(a.Path, b.Path) }) {
		t.Errorf("entries %+v, want them in name order", e)
	}
	// No path input, no walk: a record of the state directory alone.
	s = NewStart("state", spec, &compiler.Program{Tasks: []compiler.Task{{ID: "a", Inputs: []compiler.Input{{From: "https://x/y", Kind: compiler.InputHTTP, Path: "y"}}}}})
	if len(s.Inputs) != 0 || s.Unrecorded != 0 {
		t.Errorf("record of a program with no path input: %+v", s)
	}
}

// TestRsSplitProgram: a program's JSON splits into its tasks' JSON and
// the rest, which decodes as the program less its tasks; JSON that is
// not a program's is refused, as the other readers refuse it.
func TestRsSplitProgram(t *testing.T) {
	p := &compiler.Program{APIVersion: "bmc/v1", Name: "w", Params: map[string]any{"tasks": "x"},
		Tasks:    []compiler.Task{{ID: "a", Run: `echo "}]{["`, Hash: "h1"}, {ID: "b", Command: []string{"x"}, DependsOn: []string{"a"}, Hash: "h2"}},
		Finalize: compiler.Finalize{ID: "finalize", Run: "true"}}
	dir, err := CreateRun(t.TempDir(), Meta{ID: "w-1", Workload: "w", Backend: "local"}, p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, ProgramFile))
	rest, tasks, err := SplitProgram(b)
	if err != nil || len(tasks) != 2 {
		t.Fatalf("split: %d tasks, %v", len(tasks), err)
	}
	for i, raw := range tasks {
		tk, err := DecodeTask(raw)
		if err != nil || !cmp.Equal(*tk, p.Tasks[i]) {
			t.Errorf("task %d: %v\n%s", i, err, cmp.Diff(p.Tasks[i], *tk))
		}
		if id, err := TaskID(raw); err != nil || id != p.Tasks[i].ID {
			t.Errorf("task %d: id %q, %v", i, id, err)
		}
	}
	r, err := DecodeProgram(rest)
	if err != nil || len(r.Tasks) != 0 || r.Name != "w" || r.Finalize.Run != "true" || r.Params["tasks"] != "x" {
		t.Errorf("the rest: %+v, %v", r, err)
	}
	for _, bad := range []string{`[]`, `{"name":"w"}`, `{"tasks":[{"id":"a"}`, `{"tasks":[{"id":"a"} 7]}`, `{"tasks":["a"]}`, `{"tasks":[{"id":"a"}:{}]}`} {
		if _, _, err := SplitProgram([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// BenchmarkRsStartNoInputs: the start record of a run of 1,000 tasks
// with no path input (bench/local-vs-make.sh's W1), made and written.
func BenchmarkRsStartNoInputs(b *testing.B) {
	prog := &compiler.Program{}
	for i := range 1000 {
		prog.Tasks = append(prog.Tasks, compiler.Task{ID: fmt.Sprintf("t-%d", i), Command: []string{"true"}})
	}
	dir := b.TempDir()
	for b.Loop() {
		if err := WriteStart(dir, NewStart("state", dir, prog)); err != nil {
			b.Fatal(err)
		}
	}
}
