package azurebatch

// Inputs that overlap: Batch downloads every resource file before the
// task's first lines move prefixes and folders into place, so the move
// must not decide, by overwriting, which of two inputs' files the task
// reads. As the local backend does, the attempt fails, naming both
// inputs and the file, whatever the inputs' order.

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/planner"
)

const clashSpec = `apiVersion: bmc/v1
kind: Workload
name: clash
pool: {id: p}
tasks:
  - id: folders
    inputs: [{from: data/dirA, path: cfg}, {from: data/dirB, path: cfg}]
    run: "true"
  - id: prefix-first
    inputs: [{from: "az://inputs/pre/", path: p}, {from: "az://inputs/single.txt", path: p/a.txt}]
    run: "true"
  - id: blob-first
    inputs: [{from: "az://inputs/single.txt", path: p/a.txt}, {from: "az://inputs/pre/", path: p}]
    run: "true"
  - id: here
    inputs: [{from: data/one.txt, path: a.txt}, {from: "az://inputs/pre/"}]
    run: "true"
  - id: deep
    inputs: [{from: "az://inputs/pre/"}, {from: data/one.txt, path: sub}]
    run: "true"
  - id: merged
    inputs:
      - {from: data/dirA, path: cfg}
      - {from: data/dirC, path: cfg}
      - {from: "az://inputs/pre/", path: cfg/pre}
      - {from: data/one.txt, path: cfg/one.txt}
    run: "true"
`

// clashWant is each task's stderr line, "" for a task that runs.
var clashWant = map[string]string{
	"folders":      "bmc: input data/dirB replaced cfg/common.txt, which input data/dirA put there: each file needs a path of its own",
	"prefix-first": "bmc: input az://inputs/single.txt replaced p/a.txt, which input az://inputs/pre/ put there: each file needs a path of its own",
	"blob-first":   "bmc: input az://inputs/pre/ replaced p/a.txt, which input az://inputs/single.txt put there: each file needs a path of its own",
	"here":         "bmc: input az://inputs/pre/ replaced a.txt, which input data/one.txt put there: each file needs a path of its own",
	"deep":         "bmc: input data/one.txt replaced sub, which input az://inputs/pre/ put there: each file needs a path of its own",
	"merged":       "",
}

// clashTree writes the local inputs of clashSpec below specDir: two
// folders holding one file (and each an executable, so that each comes
// as two groups), a third holding other files only, and a file.
func clashTree(t testing.TB, specDir string) {
	t.Helper()
	writeTree(t, filepath.Join(specDir, "data", "dirA"), map[string]string{"common.txt": "A", "a-only.txt": "a", "bin/a.sh*": "A"})
	writeTree(t, filepath.Join(specDir, "data", "dirB"), map[string]string{"common.txt": "B", "bin/b.sh*": "B"})
	writeTree(t, filepath.Join(specDir, "data", "dirC"), map[string]string{"c-only.txt": "c", "bin/c.sh*": "C"})
	writeTree(t, filepath.Join(specDir, "data"), map[string]string{"one.txt": "1"})
}

// clashBlobs are the blobs clashSpec's az:// inputs name.
var clashBlobs = map[blobstage.Location]string{
	{Container: "inputs", Path: "pre/a.txt"}:     "prefix's a",
	{Container: "inputs", Path: "pre/sub/b.txt"}: "prefix's b",
	{Container: "inputs", Path: "single.txt"}:    "named",
}

// TestMoveInClashOnNode runs each task of clashSpec as a node would:
// one whose inputs put two files at one path fails with
// InputNotFoundExit, saying which inputs and which file; one whose
// inputs share folders without sharing a file has them all.
func TestMoveInClashOnNode(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	specDir := t.TempDir()
	clashTree(t, specDir)
	blobs := map[blobstage.Location][]byte{}
	for l, b := range clashBlobs {
		blobs[l] = []byte(b)
	}
	staged := map[string][]StagedFile{}
	for _, from := range []string{"data/dirA", "data/dirB", "data/dirC", "data/one.txt"} {
		staged[from] = stageDir(t, filepath.Join(specDir, filepath.FromSlash(from)), true, blobs)
	}
	_, m := mapOne(t, clashSpec, fakeLocator{}, MapOptions{Staged: staged})
	for _, tk := range m.Tasks {
		t.Run(tk.ID, func(t *testing.T) {
			wd, out, err := node(t, tk, blobs)
			want := clashWant[tk.ID]
			if want == "" {
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				for p, body := range map[string]string{
					"cfg/common.txt": "A", "cfg/a-only.txt": "a", "cfg/c-only.txt": "c", "cfg/bin/a.sh": "A", "cfg/bin/c.sh": "C",
					"cfg/pre/a.txt": "prefix's a", "cfg/pre/sub/b.txt": "prefix's b", "cfg/one.txt": "1",
				} {
					if b, err := os.ReadFile(filepath.Join(wd, filepath.FromSlash(p))); err != nil || string(b) != body {
						t.Errorf("%s: %q, %v; want %q", p, b, err, body)
					}
				}
				if _, err := os.Stat(filepath.Join(wd, prefixDir)); !os.IsNotExist(err) {
					t.Errorf("%s left behind: %v", prefixDir, err)
				}
				return
			}
			var ee *exec.ExitError
			if !errorsAs(err, &ee) || ee.ExitCode() != InputNotFoundExit {
				t.Fatalf("exit %v, want %d\n%s", err, InputNotFoundExit, out)
			}
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("stderr\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestMoveInUnchecked: inputs that land apart move into place as they
// always did, with nothing looked at.
func TestMoveInUnchecked(t *testing.T) {
	_, m := mapOne(t, mapSpec, fakeLocator{}, MapOptions{Staged: staged()})
	for _, tk := range m.Tasks {
		if strings.Contains(tk.CommandLine, "bmc_") {
			t.Errorf("%s: command line %s checks its inputs", tk.ID, tk.CommandLine)
		}
	}
	_, m = mapOne(t, clashSpec, fakeLocator{}, MapOptions{Staged: map[string][]StagedFile{
		"data/dirA":    {{Rel: "x", Loc: testStaging.Join("tree/h/0644/x"), Group: testStaging.Join("tree/h/0644/"), Mode: 0o644}},
		"data/dirB":    {{Rel: "y", Loc: testStaging.Join("tree/i/0644/y"), Group: testStaging.Join("tree/i/0644/"), Mode: 0o644}},
		"data/dirC":    {{Rel: "z", Loc: testStaging.Join("tree/j/0644/z"), Group: testStaging.Join("tree/j/0644/"), Mode: 0o644}},
		"data/one.txt": {{Loc: testStaging.Join("sha256/1"), Mode: 0o644}},
	}})
	for _, tk := range m.Tasks {
		argv, err := SplitCommandLine(tk.CommandLine)
		if err != nil || len(argv) < 5 {
			t.Fatalf("%s: command line %s", tk.ID, tk.CommandLine)
		}
		if n, want := strings.Count(argv[4], "\nbmc_check "), map[string]int{"folders": 2, "merged": 3}[tk.ID]; n != max(want, 1) {
			t.Errorf("%s: %d moves checked\n%s", tk.ID, n, argv[4])
		}
		if !strings.Contains(argv[4], "\nunset -f bmc_owner bmc_moved bmc_check bmc_clash\n") {
			t.Errorf("%s: the checks outlive the first lines\n%s", tk.ID, argv[4])
		}
	}
}

// TestMoveInClashOnEmulator runs clashSpec through the backend on the
// emulator, its inputs staged in Azurite: the tasks whose inputs clash
// fail with the reason the local backend gives, the one whose inputs
// merge succeeds.
func TestMoveInClashOnEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Azurite")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	st, err := StorageFromConnectionString(azurite.Start(t), StorageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for l, b := range clashBlobs {
		if err := st.Put(t.Context(), l, []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	specDir := t.TempDir()
	clashTree(t, specDir)
	// An attempt run again finds what the one before it moved into
	// place, which no input of this attempt put there.
	prog := compile(t, clashSpec+`  - id: retried
    retries: 1
    inputs: [{from: data/dirA, path: cfg}, {from: data/dirC, path: cfg}]
    run: |
      if [ ! -e cfg/tried ]; then touch cfg/tried; exit 3; fi
      echo ok
`, nil)
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 4)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "clash-run", Workload: prog.Name, SpecDir: specDir}
	be := NewBackend(BackendOptions{Client: e.c, Storage: st, Staging: testStaging})
	o, err := executor.RunNative(t.Context(), plan, be, run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i, pt := range prog.Tasks {
		got := o.Tasks[i]
		want := clashWant[pt.ID]
		if pt.ID == "retried" {
			if got.State != executor.Succeeded || got.Attempts != 2 {
				t.Errorf("%s: %s after %d attempts (%s), want succeeded after 2", pt.ID, got.State, got.Attempts, got.Reason)
			}
			continue
		}
		if want == "" {
			if got.State != executor.Succeeded {
				t.Errorf("%s: %s (%s), want succeeded", pt.ID, got.State, got.Reason)
			}
			continue
		}
		if got.State != executor.Failed {
			t.Errorf("%s: %s, want failed", pt.ID, got.State)
			continue
		}
		rc, err := e.c.GetTaskFile(t.Context(), run.ID, pt.ID, "stderr.txt", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		stderr, _ := io.ReadAll(rc)
		rc.Close()
		if !strings.Contains(string(stderr), want+"\n") {
			t.Errorf("%s: stderr\n%s\nwant\n%s", pt.ID, stderr, want)
		}
		// The client reads the stderr line as the reason of a task with
		// a blob prefix input only.
		if got.Reason != strings.TrimPrefix(want, InputNotFoundPrefix) {
			t.Errorf("%s: reason %q, want %q", pt.ID, got.Reason, strings.TrimPrefix(want, InputNotFoundPrefix))
		}
	}
}
