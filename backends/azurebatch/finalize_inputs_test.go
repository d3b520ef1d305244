package azurebatch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/planner"
	"github.com/google/go-cmp/cmp"
)

const finalizeInputsSpec = `apiVersion: bmc/v1
kind: Workload
name: fin
pool: {id: p}
tasks:
  - {id: a, run: "true"}
finalize:
  run: ./summarize.sh
  inputs:
    - {from: summarize.sh}
    - {from: lib, path: tools}
    - {from: "az://res/${{ run.id }}/", path: results}
    - {from: "https://example.org/ref.txt"}
`

// TestFinalizeInputs: on the pool, the finalize step's spec-relative
// inputs come as resource files of the job manager task, into the step's
// directory; a folder's files are moved into place, and its empty
// folders made, by the setup the step runs first. Its az:// and https://
// inputs are not resource files: the node fetches them when the step
// runs, after the tasks wrote them.
func TestFinalizeInputs(t *testing.T) {
	prog := compile(t, finalizeInputsSpec, nil)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "fin-1", Workload: "fin"}
	tree := TreeLayout(blobstage.Location{Container: "bmc-staging", Path: ""}, []StagedFile{
		{Rel: "a.txt", Loc: blobstage.Location{Container: "bmc-staging", Path: "sha256/a"}, Mode: 0o644},
	})
	opt := MapOptions{
		Staged: map[string][]StagedFile{
			"summarize.sh": {{Loc: blobstage.Location{Container: "bmc-staging", Path: "sha256/s"}, Mode: 0o755}},
			"lib":          tree,
		},
		Dirs: map[string]StagedDirs{"lib": {Rels: []string{"empty"}}},
	}
	rfs, setup, err := FinalizeInputs(plan, run, fakeLocator{identity: "/id"}, opt)
	if err != nil {
		t.Fatal(err)
	}
	ref := &BatchNodeIdentityReference{ResourceID: "/id"}
	want := []ResourceFile{
		{HTTPURL: "https://acct.blob.core.windows.net/bmc-staging/sha256/s", FilePath: "step/summarize.sh", FileMode: "0755", IdentityReference: ref},
		{StorageContainerURL: "https://acct.blob.core.windows.net/bmc-staging", BlobPrefix: tree[0].Group.Path, FilePath: "step/.bmc-in/1", FileMode: "0644", IdentityReference: ref},
	}
	if d := cmp.Diff(want, rfs); d != "" {
		t.Errorf("resource files (-want +got):\n%s", d)
	}
	for _, s := range []string{"cp -a -- '.bmc-in/1/" + strings.TrimSuffix(tree[0].Group.Path, "/") + "'/. 'tools'/", "mkdir -p -- 'tools/empty'", "rm -rf -- '.bmc-in'"} {
		if !strings.Contains(setup, s) {
			t.Errorf("setup lacks %q:\n%s", s, setup)
		}
	}
	// The setup runs as the step's first lines, in its directory: the
	// folder lands where the local backend puts it.
	dir := t.TempDir()
	src := filepath.Join(dir, ".bmc-in", "1", filepath.FromSlash(tree[0].Loc.Path))
	os.MkdirAll(filepath.Dir(src), 0o755)
	os.WriteFile(src, []byte("A"), 0o644)
	cmd := []string{"bash", "-euo", "pipefail", "-c", setup}
	if out, err := runIn(dir, cmd); err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "tools", "a.txt")); err != nil || string(b) != "A" {
		t.Errorf("tools/a.txt: %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tools", "empty")); err != nil || !fi.IsDir() {
		t.Errorf("tools/empty: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".bmc-in")); !os.IsNotExist(err) {
		t.Errorf(".bmc-in left: %v", err)
	}

	// Without spec-relative inputs there is nothing to bring or set up.
	prog.Finalize.Inputs = prog.Finalize.Inputs[2:]
	if rfs, setup, err := FinalizeInputs(plan, run, fakeLocator{}, MapOptions{}); err != nil || rfs != nil || setup != "" {
		t.Errorf("az:// and https:// only: %v %q %v", rfs, setup, err)
	}
}

// TestNodeStepStagesInputs: the finalize step on a node downloads its
// az:// inputs from the node's store and its https:// inputs itself when
// it runs, and then runs the setup before its own script.
func TestNodeStepStagesInputs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ref")) }))
	defer srv.Close()
	root := t.TempDir()
	store := blobstage.NewLocal(filepath.Join(root, "store"))
	os.MkdirAll(filepath.Join(root, "store", "res", "fin-1"), 0o755)
	os.WriteFile(filepath.Join(root, "store", "res", "fin-1", "out.txt"), []byte("task output"), 0o644)
	wd, taskDir := filepath.Join(root, "task", "wd"), filepath.Join(root, "task")
	os.MkdirAll(filepath.Join(wd, NodeStepDir), 0o755)
	os.WriteFile(filepath.Join(wd, NodeStepDir, "summarize.sh"), []byte("#!/bin/sh\ncat results/out.txt ref.txt set-up\n"), 0o755)
	step := &nodeStep{wd: wd, taskDir: taskDir, setup: "echo ' set up' > set-up", store: store}
	task := &compiler.Task{ID: FinalizeTaskID, Run: "./summarize.sh", Inputs: []compiler.Input{
		{From: "summarize.sh", Kind: compiler.InputFile, Path: "summarize.sh"},
		{From: "az://res/fin-1/", Kind: compiler.InputBlobPrefix, Path: "results"},
		{From: srv.URL + "/ref.txt", Kind: compiler.InputHTTP, Path: "ref.txt"},
	}}
	run := &executor.RunInfo{ID: "fin-1", Workload: "fin"}
	res := step.RunTask(context.Background(), &executor.Attempt{Run: run, Task: task, Number: 1, Finalize: true})
	if res.State != executor.Succeeded {
		t.Fatalf("step: %s %s", res.State, res.Reason)
	}
	b, _ := os.ReadFile(filepath.Join(taskDir, filepath.FromSlash(NodeStepLog("stdout"))))
	if want := "task outputref set up\n"; string(b) != want {
		t.Errorf("stdout %q, want %q", b, want)
	}

	// Without a store, an az:// input fails the step, saying why.
	step.store = nil
	res = step.RunTask(context.Background(), &executor.Attempt{Run: run, Task: task, Number: 1, Finalize: true})
	if res.State != executor.Failed || !strings.Contains(res.Reason, "input az://res/fin-1/: the node has no blob store") {
		t.Errorf("without a store: %s %q", res.State, res.Reason)
	}
	// A setup that finds an input missing fails the step with its words.
	step.store = store
	step.setup = "echo 'bmc: input lib: not found' >&2; exit 86"
	res = step.RunTask(context.Background(), &executor.Attempt{Run: run, Task: task, Number: 1, Finalize: true})
	if res.State != executor.Failed || res.Reason != "input lib: not found" {
		t.Errorf("a missing input: %s %q", res.State, res.Reason)
	}
}

// runIn runs argv in dir, returning its output.
func runIn(dir string, argv []string) ([]byte, error) {
	c := exec.Command(argv[0], argv[1:]...)
	c.Dir = dir
	return c.CombinedOutput()
}
