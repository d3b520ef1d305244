package azurebatch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/planner"
)

// manyFinalizeInputs is a spec whose finalize step reads n local files,
// one of them a folder when folder is set.
func manyFinalizeInputs(n int, folder bool) string {
	var b strings.Builder
	b.WriteString(`apiVersion: bmc/v1
kind: Workload
name: fin
pool: {id: p, vmSize: Standard_D4s_v5, image: {publisher: p, offer: o, sku: s}, nodeAgentSku: a, nodes: {dedicated: 2}, slotsPerNode: 4}
tasks:
  - {id: a, run: "true"}
finalize:
  run: ./summarize.sh
  inputs:
`)
	if folder {
		b.WriteString("    - {from: conf, path: conf}\n")
	}
	for i := range n {
		fmt.Fprintf(&b, "    - {from: parts/part-%04d.json}\n", i)
	}
	return b.String()
}

// TestCheckJobManagerResourceFiles: with the finalize step on the pool,
// bmc plan holds the job manager task's resource files (the step's local
// inputs, the run record, bmc) to Batch's limit as it holds a task's,
// and says so at the step's input that brings the most of them; with
// the step on the client, its inputs are no resource files.
func TestCheckJobManagerResourceFiles(t *testing.T) {
	prog := compile(t, manyFinalizeInputs(200, false), nil)
	if errs := checksOf(planner.Error, Check(prog, CheckOptions{})); len(errs) != 0 {
		t.Errorf("finalize on the client: %+v", errs)
	}
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	plan.Checks = checksOf(planner.Error, Check(prog, CheckOptions{JobManager: true}))
	plan.Locate()
	errs := plan.Checks
	if len(errs) != 1 || errs[0].Task != FinalizeTaskID || errs[0].Line == 0 ||
		!strings.HasPrefix(errs[0].Message, "on the pool, the job manager task that runs it brings 202 resource files, which come to ") ||
		!strings.Contains(errs[0].Message, "RequestEntityTooLarge") || !strings.Contains(errs[0].Message, "they come from 200 inputs") {
		t.Fatalf("finalize on the pool: %+v", errs)
	}
	for _, c := range errs {
		if strings.Contains(c.Message, "sig=") || strings.Contains(c.Message, "https://") {
			t.Errorf("a check quotes a URL: %s", c.Message)
		}
	}

	// A folder of files whose names a blob name cannot carry, each a
	// resource file of its own: the error is at the folder's input.
	specDir := t.TempDir()
	for i := range 300 {
		p := filepath.Join(specDir, "conf", fmt.Sprintf("x%04d.", i)) // a final dot
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("x"), 0o644)
	}
	prog = compile(t, manyFinalizeInputs(1, true), nil)
	plan = planner.New(prog, Capabilities(prog.Pool), nil)
	plan.Checks = checksOf(planner.Error, Check(prog, CheckOptions{JobManager: true, SpecDir: specDir}))
	plan.Locate()
	errs = plan.Checks
	pos, _ := prog.InputPos(-1, 0)
	if len(errs) != 1 || errs[0].Line != pos.Line || errs[0].Col != pos.Col || !strings.Contains(errs[0].Message, "input conf brings 300 of them") {
		t.Errorf("a folder: %+v, want at %v", errs, pos)
	}

	// A name staging refuses is refused at plan time in the step's
	// folder too, when it goes to the pool.
	specDir = t.TempDir()
	os.MkdirAll(filepath.Join(specDir, "conf"), 0o755)
	os.WriteFile(filepath.Join(specDir, "conf", `a\b.txt`), []byte("x"), 0o644)
	prog = compile(t, manyFinalizeInputs(0, true), nil)
	if errs := checksOf(planner.Error, Check(prog, CheckOptions{SpecDir: specDir})); len(errs) != 0 {
		t.Errorf("a backslash, finalize on the client: %+v", errs)
	}
	errs = checksOf(planner.Error, Check(prog, CheckOptions{JobManager: true, SpecDir: specDir}))
	if len(errs) != 1 || !strings.Contains(errs[0].Message, `input conf holds a\b.txt: a file name with a backslash`) {
		t.Errorf("a backslash, finalize on the pool: %+v", errs)
	}
}

// TestMapJobManagerResourceFiles: a run whose job manager task brings
// more resource files than Batch takes is refused before anything is
// created, as one whose task does.
func TestMapJobManagerResourceFiles(t *testing.T) {
	prog := compile(t, manyFinalizeInputs(200, false), nil)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "fin-1", Workload: "fin"}
	staged := map[string][]StagedFile{}
	for _, in := range prog.Finalize.Inputs {
		staged[in.From] = []StagedFile{{Loc: blobstage.Location{Container: "bmc-staging", Path: "sha256/" + strings.Repeat("0", 64)}, Mode: 0o644}}
	}
	opt := MapOptions{Staged: staged}
	rfs, _, err := FinalizeInputs(plan, run, fakeLocator{identity: "/id"}, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.JobManager = &BatchJobManagerTask{ID: FinalizeTaskID, CommandLine: "bmc finalize --watch", ResourceFiles: rfs}
	_, err = Map(plan, run, fakeLocator{identity: "/id"}, opt)
	var re *ResourceFilesError
	if !errors.As(err, &re) || re.Task != FinalizeTaskID || re.Files != 200 || re.Limit != MaxResourceFilesChars ||
		!strings.HasPrefix(err.Error(), "the finalize step: on the pool, the job manager task that runs it brings 200 resource files") {
		t.Fatalf("Map = %v, want the job manager task refused", err)
	}
	opt.JobManager.ResourceFiles = rfs[:10]
	if _, err := Map(plan, run, fakeLocator{identity: "/id"}, opt); err != nil {
		t.Errorf("10 resource files: %v", err)
	}
}
