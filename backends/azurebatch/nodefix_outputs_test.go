package azurebatch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/internal/filepattern"
	"github.com/bmc-dev/bmc/planner"
)

// TestNodeStepExpandsOutputs: the finalize step on the pool expands the
// variables of its outputs' paths in its own environment, as Batch does
// a task's filePattern and the local backend the step's, and sets the
// files aside where the job manager task's output file for the output
// (FinalizeOutputPattern) finds them, each by the name Batch gives a
// task's file: a single file by the destination alone, files a wildcard
// matches by their path below the pattern's leading folders.
func TestNodeStepExpandsOutputs(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	root := t.TempDir()
	wd, taskDir := filepath.Join(root, "task", "wd"), filepath.Join(root, "task")
	step := &nodeStep{wd: wd, taskDir: taskDir}
	task := &compiler.Task{ID: FinalizeTaskID,
		Run: "mkdir -p out/sub sh && echo r > report.txt && echo a > out/a.csv && echo b > out/sub/b.csv && echo p > plain.txt && echo n > n-7.log",
		Env: map[string]string{"OUTDIR": "out", "N": "7"},
		Outputs: []compiler.Output{
			{Pattern: "$AZ_BATCH_TASK_WORKING_DIR/report.txt", To: "az://res/fin/", When: compiler.WhenSuccess},
			{Pattern: "${OUTDIR}/**/*.csv", To: "az://res/csv/", When: compiler.WhenSuccess},
			{Pattern: "plain.txt", To: "az://res/plain.txt", When: compiler.WhenSuccess},
			{Pattern: "n-$N.log", To: "az://res/log/", When: compiler.WhenSuccess},
			{Pattern: "$AZ_BATCH_TASK_WORKING_DIR/out/*$N.csv", To: "az://res/none/", When: compiler.WhenSuccess},
		}}
	run := &executor.RunInfo{ID: "fin-1", Workload: "fin"}
	res := step.RunTask(context.Background(), &executor.Attempt{Run: run, Task: task, Number: 1, Finalize: true})
	if res.State != executor.Succeeded {
		t.Fatalf("step: %s %s", res.State, res.Reason)
	}
	wantOut := []string{"az://res/fin/", "az://res/csv/", "az://res/plain.txt", "az://res/log/"}
	if !slices.Equal(res.Outputs, wantOut) {
		t.Errorf("outputs %q, want %q", res.Outputs, wantOut)
	}
	// What each output file of the job manager task uploads, as Batch
	// names it: relative to the expanded pattern's leading folders.
	want := [][]string{{"report.txt"}, {"a.csv", "sub/b.csv"}, {"plain.txt"}, {"n-7.log"}, nil}
	for k, o := range task.Outputs {
		pat := FinalizeOutputPattern(k, o.Pattern)
		if filepattern.Expand(pat, map[string]string{"AZ_BATCH_TASK_WORKING_DIR": wd, "OUTDIR": "elsewhere"}) != pat {
			t.Errorf("output %d: the job manager task's pattern %q holds variables, which Batch expands in its own environment", k, pat)
		}
		files, err := filepattern.Match(wd, pat)
		if err != nil {
			t.Fatal(err)
		}
		base := filepattern.BaseDir(pat)
		var names []string
		for _, f := range files {
			if !filepattern.HasWildcard(pat) {
				// The destination path names a single file.
				names = append(names, filepath.Base(filepattern.Literal(o.Pattern)))
				continue
			}
			rel, _ := filepath.Rel(base, f)
			names = append(names, filepath.ToSlash(rel))
		}
		if k == 3 {
			// Named by the destination, variables and all, as Batch
			// names a task's: what matters is that one file goes.
			if len(files) != 1 {
				t.Errorf("output %d: %q set aside, want one file", k, files)
			}
			continue
		}
		if !slices.Equal(names, want[k]) {
			t.Errorf("output %d (%s, uploaded as %s): %q, want %q", k, o.Pattern, pat, names, want[k])
		}
	}

	// An attempt run again sets aside its own files only.
	os.Remove(filepath.Join(wd, NodeStepDir, "out", "sub", "b.csv"))
	task.Run = "true"
	res = step.RunTask(context.Background(), &executor.Attempt{Run: run, Task: task, Number: 1, Finalize: true})
	if files, _ := filepattern.Match(wd, FinalizeOutputPattern(1, task.Outputs[1].Pattern)); res.State != executor.Succeeded || len(files) != 1 {
		t.Errorf("run again: %s %s, %q set aside", res.State, res.Reason, files)
	}
}

// TestNodeStepOutputVarsRefused: an output whose variables would have
// the job manager task's upload miss files, or send several to the one
// blob a single file's destination names, fails the step, saying why,
// rather than report an output that never arrives.
func TestNodeStepOutputVarsRefused(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	for _, tc := range []struct {
		name, pattern, want string
	}{
		{"slash in the wildcard part", "out/*-$S", "it matches a-x/y.csv, which the job manager task's upload from the pool would miss"},
		{"leading dot", "out/$P*", "it matches .hidden, which the job manager task's upload from the pool would miss"},
		{"wildcard made by a variable", "out/$STAR.csv", "its variables make it a pattern with wildcards"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			step := &nodeStep{wd: filepath.Join(root, "wd"), taskDir: root}
			task := &compiler.Task{ID: FinalizeTaskID,
				Run:     "mkdir -p out/a-x && echo y > out/a-x/y.csv && echo h > out/.hidden && echo c > out/c.csv",
				Env:     map[string]string{"S": "x/y.csv", "P": ".h", "STAR": "*"},
				Outputs: []compiler.Output{{Pattern: tc.pattern, To: "az://res/x/", When: compiler.WhenSuccess}}}
			res := step.RunTask(context.Background(), &executor.Attempt{Run: &executor.RunInfo{ID: "r"}, Task: task, Number: 1, Finalize: true})
			if res.State != executor.Failed || !strings.Contains(res.Reason, "output "+tc.pattern+" -> az://res/x/: "+tc.want) || len(res.Outputs) != 0 {
				t.Errorf("%s %q %q, want failed: %s", res.State, res.Reason, res.Outputs, tc.want)
			}
		})
	}
}

// TestFinalizeOutputVarsOnEmulator runs the finalize step on the pool of
// the emulator, as the job manager task, its outputs' paths naming
// variables: the files land where the local backend puts them.
func TestFinalizeOutputVarsOnEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Azurite")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	const identity = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bmc"
	cs := azurite.Start(t)
	e := newEmu(t, emulator.Options{StorageConnectionString: cs, PoolIdentity: identity})
	e.pool(t, "p", 1, 4)
	st, err := StorageFromConnectionString(cs, StorageOptions{Identity: identity})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bmc")
	if err := copyFile(exe, bin); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: "finvars", Pool: &compiler.Pool{ID: "p"},
		Tasks: []compiler.Task{{ID: "a", Run: "true", Slots: 1}},
		Finalize: compiler.Finalize{ID: compiler.FinalizeID,
			Run: "mkdir -p out/sub && echo r > report.txt && echo a > out/a.csv && echo b > out/sub/b.csv && echo p > plain.txt",
			Env: map[string]string{"OUTDIR": "out"},
			Outputs: []compiler.Output{
				{Pattern: "$AZ_BATCH_TASK_WORKING_DIR/report.txt", To: "az://res/${{ run.id }}/", When: compiler.WhenSuccess},
				{Pattern: "${OUTDIR}/**/*.csv", To: "az://res/${{ run.id }}/csv/", When: compiler.WhenSuccess},
				{Pattern: "plain.txt", To: "az://res/${{ run.id }}/plain/", When: compiler.WhenSuccess},
			}}}
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "finvars-run", Workload: prog.Name, Dir: t.TempDir(), Started: time.Now()}
	be := NewBackend(BackendOptions{Client: e.c, Storage: st, Staging: blobstage.Location{Container: "bmc"},
		Node: &NodeOptions{Binary: bin, PollInterval: 20 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := executor.RunNative(ctx, plan, be, run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitJobDone(ctx, e.c, run.ID, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	nr, err := ReadNodeResult(ctx, e.c, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if nr.Finalize == nil || nr.Finalize.State != executor.Succeeded || len(nr.Finalize.Outputs) != 3 {
		t.Fatalf("the finalize step on the pool: %+v", nr.Finalize)
	}
	for blob, want := range map[string]string{"report.txt": "r\n", "csv/a.csv": "a\n", "csv/sub/b.csv": "b\n", "plain/plain.txt": "p\n"} {
		b, err := st.Get(ctx, blobstage.Location{Container: "res", Path: run.ID + "/" + blob})
		if err != nil || string(b) != want {
			t.Errorf("res/%s/%s: %q, %v; want %q", run.ID, blob, b, err, want)
		}
	}
}

// TestFinalizeOutputPattern: the job manager task's pattern for an
// output is the path itself when it names no variable; otherwise it
// names none, and keeps the wildcard part's shape.
func TestFinalizeOutputPattern(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"report.txt", "upload/0/report.txt"},
		{"out/**/*.bam", "upload/0/out/**/*.bam"},
		{"cost$.txt", "upload/0/cost$.txt"},
		{"100%.txt", "upload/0/100%.txt"},
		{"$AZ_BATCH_TASK_WORKING_DIR/report.txt", "upload/0/file"},
		{"n-%N%.log", "upload/0/file"},
		{"${OUT}/sub/**/*.csv", "upload/0/**/*.csv"},
		{"out/*$N.csv", "upload/0/*.csv"},
		{"out/*/${A}${B}/x?", "upload/0/*/*/x?"},
		{"out/*/${}$A.txt", "upload/0/*/*.txt"},
		{"%D%/a[*]b/*.txt", "upload/0/*.txt"},
	} {
		if got := FinalizeOutputPattern(0, tc.in); got != tc.want {
			t.Errorf("FinalizeOutputPattern(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
