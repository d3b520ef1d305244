package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/executor"
	"github.com/google/go-cmp/cmp"
)

// bmcPrune runs bmc with prune among its commands.
func bmcPrune(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRoot(&stdout, &stderr)
	if c, _, err := root.Find([]string{"prune"}); err != nil || c == root {
		root.AddCommand(newPruneCmd())
	}
	root.SetArgs(args)
	ctx := context.Background()
	_, err := root.ExecuteContextC(ctx)
	return exitCode(ctx, err, &stderr), stdout.String(), stderr.String()
}

// pruneFixture is a run directory made by hand: a run of workload w made
// at created, its journal ending with status (a run-finished record),
// or not ending (status "", interrupted unless someone holds its lock).
type pruneFixture struct {
	id, workload, backend, status string
	created                       time.Time
	// running names a task journaled as started and not ended.
	running string
}

func (f pruneFixture) make(t *testing.T, state string) string {
	t.Helper()
	dir := filepath.Join(executor.RunsDir(state), f.id)
	backend := f.backend
	if backend == "" {
		backend = "local"
	}
	meta, _ := json.Marshal(executor.Meta{ID: f.id, Workload: f.workload, Backend: backend, Created: f.created})
	rec := func(r executor.Record) string {
		b, _ := json.Marshal(r)
		return string(b) + "\n"
	}
	journal := rec(executor.Record{Time: f.created, Type: executor.RecordRunStarted})
	journal += rec(executor.Record{Time: f.created.Add(time.Minute), Type: executor.RecordTaskStarted, Task: "a", Attempt: 1})
	if f.running == "" {
		journal += rec(executor.Record{Time: f.created.Add(time.Hour), Type: executor.RecordTaskFinished, Task: "a", Attempt: 1, State: "succeeded"})
	} else {
		journal += rec(executor.Record{Time: f.created.Add(time.Minute), Type: executor.RecordTaskStarted, Task: f.running, Attempt: 1})
	}
	if f.status != "" {
		journal += rec(executor.Record{Time: f.created.Add(2 * time.Hour), Type: executor.RecordRunFinished, State: f.status})
	}
	for name, s := range map[string]string{
		executor.ProgramFile:                             `{"name":"` + f.workload + `","tasks":[{"id":"a","run":"true"}]}`,
		executor.JournalFile:                             journal,
		executor.MetaFile:                                string(meta),
		filepath.Join("tasks", "a", "stdout.txt"):        "hello\n",
		filepath.Join("tasks", "a", "wd", "scratch.bin"): strings.Repeat("x", 32<<10),
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// A run in progress is never removed: neither one that reads as running
// nor one that read as over when chosen and that a bmc process (a
// resume) has locked since. The blob store is not touched.
func TestPruneRunInProgress(t *testing.T) {
	state := t.TempDir()
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	running := pruneFixture{id: "w-200102030405-aa", workload: "w", created: old, running: "b"}.make(t, state)
	resumed := pruneFixture{id: "w-200102030406-bb", workload: "w", status: "failed", created: old.Add(time.Second)}.make(t, state)
	over := pruneFixture{id: "w-200102030407-cc", workload: "w", status: "succeeded", created: old.Add(2 * time.Second)}.make(t, state)
	interrupted := pruneFixture{id: "w-200102030408-dd", workload: "w", created: old.Add(3 * time.Second), running: "b"}.make(t, state)
	output := filepath.Join(state, "storage", "res", "w", "out.txt")
	if err := os.MkdirAll(filepath.Dir(output), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(output, []byte("yours\n"), 0o644)
	for _, dir := range []string{running, resumed} {
		unlock, err := executor.Lock(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
	}

	code, stdout, stderr := bmcPrune(t, "prune", "--state-dir", state, "--keep", "0")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, dir := range []string{running, resumed, interrupted} {
		if !exists(filepath.Join(dir, executor.MetaFile)) || !exists(filepath.Join(dir, "tasks", "a", "wd", "scratch.bin")) {
			t.Errorf("run %s was touched", filepath.Base(dir))
		}
	}
	if exists(over) {
		t.Errorf("run %s, succeeded, is still there", filepath.Base(over))
	}
	if b, err := os.ReadFile(output); err != nil || string(b) != "yours\n" {
		t.Errorf("the blob store was touched: %q, %v", b, err)
	}
	if !strings.Contains(stderr, "run w-200102030406-bb is in progress (bmc process ") || !strings.Contains(stderr, "left alone") {
		t.Errorf("stderr does not say the run locked since was left alone:\n%s", stderr)
	}
	if strings.Contains(stdout+stderr, "w-200102030405-aa") || strings.Contains(stdout+stderr, "w-200102030408-dd") {
		t.Errorf("a run in progress or interrupted was chosen:\n%s%s", stdout, stderr)
	}
	if !strings.Contains(stdout, "removed w-200102030407-cc (succeeded, ") || !strings.Contains(stdout, "1 run removed") {
		t.Errorf("stdout:\n%s", stdout)
	}
	// Asked for, the interrupted run goes; the running one never.
	code, _, stderr = bmcPrune(t, "prune", "--state-dir", state, "--keep", "0", "--status", "interrupted")
	if code != exitOK || exists(interrupted) || !exists(running) {
		t.Errorf("exit %d, interrupted run there: %v, running run there: %v\n%s", code, exists(interrupted), exists(running), stderr)
	}
	code, _, stderr = bmcPrune(t, "prune", "--state-dir", state, "--keep", "0", "--status", "running")
	if code != exitUsage || !strings.Contains(stderr, "never removed") {
		t.Errorf("--status running: exit %d\n%s", code, stderr)
	}
}

// An interrupted run whose tasks' processes still run (bmc was killed)
// is left for bmc cancel to stop them.
func TestPruneInterruptedLeftovers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	state := t.TempDir()
	id := "w-200102030405-ee"
	dir := pruneFixture{id: id, workload: "w", created: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), running: "b"}.make(t, state)
	// Start returns once the process runs with its environment.
	p := exec.Command("sleep", "600")
	p.Env = append(os.Environ(), "BMC_RUN_ID="+id, "AZ_BATCH_TASK_ID=b")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { p.Process.Kill(); p.Wait() }()
	code, stdout, stderr := bmcPrune(t, "prune", "--state-dir", state, "--keep", "0", "--status", "interrupted")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if !exists(filepath.Join(dir, executor.MetaFile)) {
		t.Fatal("the run was removed under its task's process")
	}
	if !strings.Contains(stderr, "1 process of run "+id+" (task b) still run") || !strings.Contains(stderr, "bmc cancel "+id) {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// --dry-run lists with sizes and removes nothing; -o json says the same.
func TestPruneDryRunJSON(t *testing.T) {
	state := t.TempDir()
	now := time.Now()
	old := pruneFixture{id: "w-200102030405-aa", workload: "w", status: "cancelled", created: now.Add(-40 * 24 * time.Hour)}.make(t, state)
	pruneFixture{id: "w-200102030406-bb", workload: "w", status: "succeeded", created: now.Add(-time.Hour)}.make(t, state)
	code, stdout, stderr := bmcPrune(t, "prune", "--state-dir", state, "--older-than", "30d", "--dry-run", "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var rep struct {
		DryRun bool `json:"dryRun"`
		Runs   []struct {
			ID, Workload, Status string
			Bytes                int64
		}
		Bytes int64
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if !rep.DryRun || len(rep.Runs) != 1 || rep.Runs[0].ID != "w-200102030405-aa" || rep.Runs[0].Status != "cancelled" || rep.Runs[0].Workload != "w" {
		t.Errorf("report %+v", rep)
	}
	if want := executor.DiskUsage(old); len(rep.Runs) == 1 && (rep.Runs[0].Bytes != want || rep.Bytes != want || want < 32<<10) {
		t.Errorf("bytes %d, total %d, want %d", rep.Runs[0].Bytes, rep.Bytes, want)
	}
	if !exists(old) {
		t.Error("a dry run removed a run")
	}
	code, stdout, _ = bmcPrune(t, "prune", "--state-dir", state, "--older-than", "30d", "--dry-run")
	if code != exitOK || !strings.Contains(stdout, "w-200102030405-aa  cancelled") || !strings.Contains(stdout, "would free ") || strings.Contains(stdout, "-bb") {
		t.Errorf("exit %d\n%s", code, stdout)
	}
	// Nothing to remove: exit 0, and for JSON an empty list.
	code, stdout, _ = bmcPrune(t, "prune", "--state-dir", state, "--older-than", "100d", "-o", "json")
	if code != exitOK || !strings.Contains(stdout, `"runs": []`) {
		t.Errorf("exit %d\n%s", code, stdout)
	}
}

// A removal that was cut short left a hidden directory, which the next
// prune removes whatever its options.
func TestPruneRemnant(t *testing.T) {
	state := t.TempDir()
	dir := pruneFixture{id: "w-200102030405-aa", workload: "w", status: "succeeded", created: time.Now()}.make(t, state)
	remnant := filepath.Join(executor.RunsDir(state), ".w-200102030405-aa.removing")
	if err := os.Rename(dir, remnant); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(remnant, executor.MetaFile))
	code, stdout, stderr := bmcPrune(t, "prune", "--state-dir", state, "--older-than", "30d")
	if code != exitOK || exists(remnant) || !strings.Contains(stdout, "removed w-200102030405-aa (partly-removed, ") {
		t.Errorf("exit %d, remnant there: %v\n%s%s", code, exists(remnant), stdout, stderr)
	}
}

// A run chosen that changed before its lock was taken is left alone.
func TestPruneCheckChanged(t *testing.T) {
	state := t.TempDir()
	dir := pruneFixture{id: "w-200102030405-aa", workload: "w", created: time.Now(), running: "b"}.make(t, state)
	err := executor.RemoveRun(dir, func() error {
		return checkPrune(newPruneCmd(), pruneRun{ID: "w-200102030405-aa", Status: "succeeded", dir: dir})
	})
	var left *leftAlone
	if !errors.As(err, &left) || !strings.Contains(err.Error(), "is interrupted now, not succeeded") {
		t.Errorf("err = %v", err)
	}
	if !exists(filepath.Join(dir, executor.MetaFile)) {
		t.Error("the run was removed")
	}
}

func TestChoosePrune(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	run := func(id, workload, status string, age time.Duration) pruneRun {
		return pruneRun{ID: id, Workload: workload, Status: status, Created: now.Add(-age - time.Hour), Active: now.Add(-age)}
	}
	runs := []pruneRun{
		run("a1", "a", "succeeded", 40*day),
		run("a2", "a", "failed", 20*day),
		run("a3", "a", "succeeded", 10*day),
		run("a4", "a", "running", 50*day),
		run("b1", "b", "interrupted", 60*day),
		run("b2", "b", "cancelled", 35*day),
		run("b3", "b", "detached", 45*day),
		run("c1", "c", "succeeded", 41*day),
		run("c2", "c", "running", day),
	}
	over := map[string]bool{"succeeded": true, "failed": true, "cancelled": true}
	all := map[string]bool{"succeeded": true, "failed": true, "cancelled": true, "interrupted": true, "detached": true, "running": true}
	for _, tc := range []struct {
		name     string
		statuses map[string]bool
		age      time.Duration // 0: no --older-than
		keep     int
		want     []string
	}{
		{"older than", over, 30 * day, -1, []string{"c1", "a1", "b2"}},
		{"keep 1, a running run among them", over, 0, 1, []string{"c1", "a1", "a2"}},
		{"keep 2", over, 0, 2, []string{"a1"}},
		{"keep 0", over, 0, 0, []string{"c1", "a1", "b2", "a2", "a3"}},
		{"both", over, 15 * day, 1, []string{"c1", "a1", "a2"}},
		{"interrupted asked for", all, 30 * day, -1, []string{"b1", "b3", "c1", "a1", "b2"}},
		{"none", over, 100 * day, -1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, r := range choosePrune(runs, tc.statuses, tc.age > 0, tc.age, tc.keep, now) {
				got = append(got, r.ID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("chosen (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30d":   30 * 24 * time.Hour,
		"1d12h": 36 * time.Hour,
		"1.5d":  36 * time.Hour,
		"36h":   36 * time.Hour,
		"90m":   90 * time.Minute,
		"0d":    0,
	} {
		if got, err := parseAge(in); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "30", "d", "-1d", "1d-2h", "1h2d", "thirty days"} {
		if got, err := parseAge(in); err == nil {
			t.Errorf("parseAge(%q) = %v, want an error", in, got)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 4096: "4.0 KiB", 1536 << 10: "1.5 MiB", 3 << 30: "3.0 GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPruneUsage(t *testing.T) {
	for _, args := range [][]string{
		{},                                 // neither --older-than nor --keep
		{"--older-than", "30"},             // no unit
		{"--keep", "-1"},                   // negative
		{"--keep", "1", "--status", "new"}, // unknown status
		{"--keep", "1", "-o", "yaml"},      // unknown output
		{"--keep", "1", "some-run"},        // no arguments
	} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			code, _, stderr := bmcPrune(t, append([]string{"prune", "--state-dir", t.TempDir()}, args...)...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d\n%s", code, exitUsage, stderr)
			}
		})
	}
}
