package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/google/go-cmp/cmp"
)

// sweepSpec is bench/gen-sweep.sh's spec, of a*b*c tasks and a fan-in.
func sweepSpec(a, b, c int) string {
	list := func(n int) string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprint(i))
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	return fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: big-sweep
params:
  a: {default: %s}
  b: {default: %s}
  c: {default: %s}
tasks:
  - id: t
    matrix: {a: "${{ params.a }}", b: "${{ params.b }}", c: "${{ params.c }}"}
    env: {A: "${{ matrix.a }}", B: "${{ matrix.b }}", C: "${{ matrix.c }}"}
    command: ["true", "${{ matrix.a }}"]
    outputs:
      - {path: out.txt, to: "az://sweep/${{ run.id }}/${{ task.id }}.txt"}
  - id: fan-in
    dependsOn: [t]
    command: ["true"]
`, list(a), list(b), list(c))
}

// sweepRun makes a finished run of the spec file, as bmc run leaves it,
// every 1000th task failed, and returns its directory and its program's
// size.
func sweepRun(t *testing.T, state, id, file string) (string, int64) {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	prog, diags := compiler.Compile(file, src, compiler.Options{})
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dir, err := executor.CreateRun(state, executor.Meta{ID: id, Workload: prog.Name, Backend: "local", Spec: file, SpecDir: filepath.Dir(file), Created: created, Slots: 2}, prog)
	if err != nil {
		t.Fatal(err)
	}
	j, err := executor.OpenJournal(filepath.Join(dir, executor.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	n := len(prog.Tasks)
	j.AppendAsync(executor.Record{Type: executor.RecordRunStarted, Time: created, Data: json.RawMessage(fmt.Sprintf(`{"backend":"local","slots":2,"tasks":%d,"toRun":%d}`, n, n))})
	for i, tk := range prog.Tasks {
		code, st := 0, executor.Succeeded
		if i%1000 == 999 {
			code, st = 1, executor.Failed
		}
		j.AppendAsync(executor.Record{Type: executor.RecordTaskFinished, Time: created, Task: tk.ID, Attempt: 1, State: string(st), ExitCode: &code})
	}
	j.AppendAsync(executor.Record{Type: executor.RecordRunFinished, Time: created, State: "failed"})
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, executor.ProgramFile))
	if err != nil {
		t.Fatal(err)
	}
	return dir, fi.Size()
}

// TestRsPlanRunBig: bmc plan FILE --run RUN of a sweep compares FILE's
// program with the run's task by task, by their JSON, and decodes only
// the tasks that differ: it allocates some 12 times the program's size,
// compiling FILE included, not the 45 that decoding the run's program
// whole, and encoding and decoding FILE's to compare them, took; and it
// plans what the run's program, decoded whole, plans. Allocation, unlike
// time, does not depend on the machine's load.
func TestRsPlanRunBig(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "big.yaml")
	os.WriteFile(file, []byte(sweepSpec(20, 20, 50)), 0o644)
	state := filepath.Join(root, "state")
	dir, size := sweepRun(t, state, "big-sweep-1", file)

	// What it plans: the run's program, decoded whole.
	stored, err := executor.ReadProgram(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := executor.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	plan := newPlan(stored, local.New(local.Options{Slots: 2}).Capabilities(), st.Done(), root)
	plan.Checks = append(plan.Checks, envChecks(stored)...)
	plan.Locate()
	var want bytes.Buffer
	printPlan(&want, plan)
	printStorage(&want, stored, state, "big-sweep-1")
	wantJSON, _ := json.MarshalIndent(plan, "", "  ")

	code, out, serr, n := allocated(t, "plan", file, "--run", "big-sweep-1", "--state-dir", state)
	if code != 0 || strings.Contains(serr, "warning") {
		t.Fatalf("plan --run: exit %d\n%s", code, serr)
	}
	if d := cmp.Diff(want.String(), out); d != "" {
		t.Errorf("plan --run (-want +got):\n%s", d)
	}
	t.Logf("bmc plan --run: %d bytes allocated, for a program of %d", n, size)
	if n > 20*uint64(size) {
		t.Errorf("bmc plan --run allocated %d bytes, %.1f times the program's %d", n, float64(n)/float64(size), size)
	}
	code, out, serr = bmcRun(t, "plan", file, "--run", "big-sweep-1", "--state-dir", state, "-o", "json")
	if code != 0 {
		t.Fatalf("plan --run -o json: exit %d\n%s", code, serr)
	}
	if d := cmp.Diff(string(wantJSON)+"\n", out); d != "" {
		t.Errorf("plan --run -o json (-want +got):\n%s", d)
	}

	// One task changed, one added: said as before, and planned the same.
	edited := strings.Replace(sweepSpec(20, 20, 50), `  - id: fan-in
    dependsOn: [t]
    command: ["true"]`, `  - id: fan-in
    dependsOn: [t]
    command: ["echo", "fan-in"]
  - {id: extra, run: "true"}`, 1)
	file2 := filepath.Join(root, "edited.yaml")
	os.WriteFile(file2, []byte(edited), 0o644)
	code, out, serr = bmcRun(t, "plan", file2, "--run", "big-sweep-1", "--state-dir", state)
	if code != 0 || !strings.Contains(serr, "bmc: warning: "+file2+" changes task fan-in; adds task extra since run big-sweep-1 started") {
		t.Fatalf("plan --run of an edited spec: exit %d\n%s", code, serr)
	}
	if d := cmp.Diff(want.String(), out); d != "" {
		t.Errorf("plan --run of an edited spec (-want +got):\n%s", d)
	}
}
