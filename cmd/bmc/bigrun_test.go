package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/google/go-cmp/cmp"
)

// bigRun makes a finished run of n tasks, t-0 … t-(n-1), of which every
// 1000th failed, as a local run of a sweep leaves it, and returns its
// directory and the size of its program.
func bigRun(t *testing.T, state, id, workload string, created time.Time, n int) (string, int64) {
	t.Helper()
	p := &compiler.Program{APIVersion: "bmc/v1", Name: workload}
	for i := range n {
		p.Tasks = append(p.Tasks, compiler.Task{
			ID: fmt.Sprintf("t-%d", i), Group: "t", Matrix: map[string]any{"i": i},
			Command: []string{"true", fmt.Sprint(i)}, Env: map[string]string{"A": fmt.Sprint(i), "B": "x"},
			Outputs: []compiler.Output{{Pattern: "out.txt", To: fmt.Sprintf("az://sweep/${{ run.id }}/t-%d.txt", i), When: compiler.WhenSuccess}},
			Slots:   1, Hash: fmt.Sprintf("%064d", i),
		})
	}
	dir, err := executor.CreateRun(state, executor.Meta{ID: id, Workload: workload, Backend: "local", Created: created, Slots: 2}, p)
	if err != nil {
		t.Fatal(err)
	}
	j, err := executor.OpenJournal(filepath.Join(dir, executor.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	at := created
	add := func(r executor.Record) {
		at = at.Add(time.Millisecond)
		r.Time = at
		if err := j.AppendAsync(r); err != nil {
			t.Fatal(err)
		}
	}
	add(executor.Record{Type: executor.RecordRunStarted, Data: json.RawMessage(fmt.Sprintf(`{"backend":"local","slots":2,"tasks":%d,"toRun":%d}`, n, n))})
	failed := 0
	for i := range n {
		id := fmt.Sprintf("t-%d", i)
		add(executor.Record{Type: executor.RecordTaskStarted, Task: id, Attempt: 1})
		code, state := 0, executor.Succeeded
		if i%1000 == 999 {
			code, state = 1, executor.Failed
			failed++
		}
		add(executor.Record{Type: executor.RecordTaskFinished, Task: id, Attempt: 1, State: string(state), ExitCode: &code})
	}
	add(executor.Record{Type: executor.RecordRunFinished, State: "failed", Data: json.RawMessage(fmt.Sprintf(`{"total":%d,"succeeded":%d,"failed":%d,"skipped":0,"cancelled":0}`, n, n-failed, failed))})
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, executor.ProgramFile))
	if err != nil {
		t.Fatal(err)
	}
	return dir, fi.Size()
}

// allocated runs bmc with args, in this process, and returns its exit
// code, output and the bytes it allocated.
func allocated(t *testing.T, args ...string) (code int, stdout, stderr string, bytes uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	code, stdout, stderr = bmcRun(t, args...)
	runtime.ReadMemStats(&after)
	return code, stdout, stderr, after.TotalAlloc - before.TotalAlloc
}

// TestBigrunInspect: bmc logs of one task, bmc status and bmc runs of a
// run of many tasks read what they show, not the whole program, whose
// decoding costs some ten times its size: each allocates less than half the
// program's size (logs) or twice it (status, and runs for each such run).
// Allocation, unlike time, does not depend on the machine's load.
func TestBigrunInspect(t *testing.T) {
	state := t.TempDir()
	dir, size := bigRun(t, state, "sweep-1", "sweep", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 20_000)
	td := local.TaskDir(dir, "t-12345")
	if err := os.MkdirAll(td, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(td, "stdout.txt"), []byte("twelve thousand\n"), 0o644)

	code, out, serr, n := allocated(t, "logs", "sweep-1", "t-12345", "--state-dir", state)
	if code != 0 || out != "twelve thousand\n" {
		t.Fatalf("logs: exit %d\n%s%s", code, out, serr)
	}
	if n > uint64(size)/2 {
		t.Errorf("bmc logs of one task allocated %d bytes, for a program of %d", n, size)
	}
	t.Logf("bmc logs: %d bytes allocated, for a program of %d", n, size)
	code, _, serr, n = allocated(t, "logs", "sweep-1", "t-12344", "--state-dir", state)
	if code != 1 || !strings.Contains(serr, "task t-12344 ran (succeeded), but its logs are gone") {
		t.Errorf("logs of a task without a log: exit %d\n%s", code, serr)
	}
	if n > uint64(size)/2 {
		t.Errorf("bmc logs of one task allocated %d bytes, for a program of %d", n, size)
	}
	code, _, serr = bmcRun(t, "logs", "sweep-1", "t-12345x", "--state-dir", state)
	if code != 1 || !strings.Contains(serr, "run sweep-1 has no task t-12345x; did you mean t-12345?") {
		t.Errorf("logs of a task the run lacks: exit %d\n%s", code, serr)
	}

	code, out, serr, n = allocated(t, "status", "sweep-1", "--state-dir", state)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, serr)
	}
	for _, want := range []string{
		"run sweep-1 (sweep): failed\n",
		"tasks: 19980 succeeded, 20 failed, 0 skipped, 0 cancelled, 0 running, 0 pending of 20000\n",
		"\nt-999    failed  1         1     1ms       \n",
		"\n19980 succeeded tasks not shown; --all shows them, --state STATE those in a state\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status: no %q in\n%s", want, out)
		}
	}
	if n > 2*uint64(size) {
		t.Errorf("bmc status allocated %d bytes, for a program of %d", n, size)
	}
	t.Logf("bmc status: %d bytes allocated", n)
	code, out, serr, n = allocated(t, "status", "sweep-1", "--state", "failed", "-o", "json", "--state-dir", state)
	var st struct {
		Counts executor.Counts      `json:"tasks"`
		Tasks  []executor.TaskState `json:"taskStates"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status -o json: exit %d\n%s%s", code, out, serr)
	}
	if len(st.Tasks) != 20 || st.Tasks[0].ID != "t-999" || st.Tasks[19].ID != "t-19999" || st.Counts.Total != 20_000 {
		t.Errorf("status --state failed -o json: %d tasks, counts %+v", len(st.Tasks), st.Counts)
	}
	if n > 2*uint64(size) {
		t.Errorf("bmc status -o json allocated %d bytes, for a program of %d", n, size)
	}

	bigRun(t, state, "sweep-2", "sweep", time.Date(2026, 1, 3, 3, 4, 5, 0, time.UTC), 20_000)
	code, out, serr, n = allocated(t, "runs", "--state-dir", state)
	if code != 0 || !regexpMatch(`(?m)^sweep-1 +failed +19980/20000 +20 `, out) || !regexpMatch(`(?m)^sweep-2 +failed +19980/20000 +20 `, out) {
		t.Errorf("runs: exit %d\n%s%s", code, out, serr)
	}
	if n > 2*2*uint64(size) {
		t.Errorf("bmc runs of two runs allocated %d bytes, for programs of %d each", n, size)
	}
	t.Logf("bmc runs: %d bytes allocated", n)
}

// TestBigrunRunsFilters: bmc runs lists the runs of the workloads and
// with the statuses asked for, the newest --limit of them, newest last.
func TestBigrunRunsFilters(t *testing.T) {
	state := t.TempDir()
	day := func(d int) time.Time { return time.Date(2026, 1, d, 12, 0, 0, 0, time.UTC) }
	mk := func(id, workload string, created time.Time, recs ...executor.Record) string {
		t.Helper()
		prog := &compiler.Program{APIVersion: "bmc/v1", Name: workload, Tasks: []compiler.Task{{ID: "a", Run: "true"}, {ID: "b", Run: "true"}, {ID: "c", Run: "true"}}}
		dir, err := executor.CreateRun(state, executor.Meta{ID: id, Workload: workload, Backend: "local", Created: created}, prog)
		if err != nil {
			t.Fatal(err)
		}
		j, err := executor.OpenJournal(filepath.Join(dir, executor.JournalFile))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := j.Append(r); err != nil {
				t.Fatal(err)
			}
		}
		j.Close()
		return dir
	}
	code0 := 0
	started := executor.Record{Type: executor.RecordRunStarted, Data: json.RawMessage(`{"tasks":3}`)}
	ok := func(task string) executor.Record {
		return executor.Record{Type: executor.RecordTaskFinished, Task: task, Attempt: 1, State: string(executor.Succeeded), ExitCode: &code0}
	}
	fail := executor.Record{Type: executor.RecordTaskFinished, Task: "b", Attempt: 1, State: string(executor.Failed), Reason: "exit code 1"}
	finished := func(s string) executor.Record { return executor.Record{Type: executor.RecordRunFinished, State: s} }
	mk("align-1", "align", day(1), started, ok("a"), ok("b"), ok("c"), finished("succeeded"))
	mk("merge-1", "merge", day(2), started, ok("a"), fail, finished("failed"))
	// No task count in its journal: its program is counted.
	mk("align-2", "align", day(3), executor.Record{Type: executor.RecordRunStarted}, ok("a"))
	mk("merge-2", "merge", day(4), started, finished("cancelled"))
	corrupt := mk("align-3", "align", day(5), started, ok("a"))
	f, _ := os.OpenFile(filepath.Join(corrupt, executor.JournalFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("garbage\n{}\n")
	f.Close()

	list := func(args ...string) []string {
		t.Helper()
		code, out, serr := bmcRun(t, append([]string{"runs", "--state-dir", state, "-o", "json"}, args...)...)
		var rows []runRow
		if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
			t.Fatalf("runs %q: exit %d\n%s%s", args, code, out, serr)
		}
		var got []string
		for _, r := range rows {
			got = append(got, fmt.Sprintf("%s %s %d/%d %d", r.ID, r.Status, r.Counts.Succeeded, r.Counts.Total, r.Counts.Failed))
		}
		return got
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"align-1 succeeded 3/3 0", "merge-1 failed 1/3 1", "align-2 interrupted 1/3 0", "merge-2 cancelled 0/3 0", "align-3 corrupt 0/3 0"}},
		{[]string{"--workload", "align"}, []string{"align-1 succeeded 3/3 0", "align-2 interrupted 1/3 0", "align-3 corrupt 0/3 0"}},
		{[]string{"--workload", "merge,nope"}, []string{"merge-1 failed 1/3 1", "merge-2 cancelled 0/3 0"}},
		{[]string{"--status", "failed", "--status", "interrupted"}, []string{"merge-1 failed 1/3 1", "align-2 interrupted 1/3 0"}},
		{[]string{"--state", "corrupt,succeeded"}, []string{"align-1 succeeded 3/3 0", "align-3 corrupt 0/3 0"}},
		{[]string{"--limit", "2"}, []string{"merge-2 cancelled 0/3 0", "align-3 corrupt 0/3 0"}},
		{[]string{"--limit", "9"}, []string{"align-1 succeeded 3/3 0", "merge-1 failed 1/3 1", "align-2 interrupted 1/3 0", "merge-2 cancelled 0/3 0", "align-3 corrupt 0/3 0"}},
		{[]string{"--workload", "align", "--status", "succeeded,interrupted", "--limit", "1"}, []string{"align-2 interrupted 1/3 0"}},
		{[]string{"--workload", "nope"}, nil},
	} {
		if d := cmp.Diff(tc.want, list(tc.args...)); d != "" {
			t.Errorf("runs %q (-want +got):\n%s", tc.args, d)
		}
	}
	// The counts are those bmc status gives.
	for _, id := range []string{"align-1", "merge-1", "align-2", "merge-2"} {
		code, out, serr := bmcRun(t, "status", id, "--state-dir", state, "-o", "json")
		var st runRow
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("status %s: exit %d\n%s%s", id, code, out, serr)
		}
		if s, c := runsStatus(t, state, id); s != st.Status || c != st.Counts {
			t.Errorf("%s: runs says %s %+v, status %s %+v", id, s, c, st.Status, st.Counts)
		}
	}
	// The corrupt run is named on stderr when it is listed, and only then.
	if _, out, serr := bmcRun(t, "runs", "--state-dir", state, "--limit", "1"); !strings.Contains(serr, "bmc: run align-3: ") || !regexpMatch(`^RUN +STATUS +TASKS +FAILED +STARTED\nalign-3 +corrupt +0/3 +0 +\S+ \S+\n$`, out) {
		t.Errorf("runs --limit 1:\n%s%s", out, serr)
	}
	if _, _, serr := bmcRun(t, "runs", "--state-dir", state, "--workload", "merge"); serr != "" {
		t.Errorf("runs --workload merge: %s", serr)
	}
	if code, out, serr := bmcRun(t, "runs", "--state-dir", state, "--workload", "nope", "--status", "failed"); code != 0 || out != "" || !strings.Contains(serr, "no runs in "+executor.RunsDir(state)+" of workload nope and status failed") {
		t.Errorf("runs of no run: exit %d\n%s%s", code, out, serr)
	}
	for _, tc := range []struct{ args, want string }{
		{"--status done", `unknown --status "done": expected some of running, succeeded, failed, cancelled, interrupted, detached, corrupt`},
		{"--limit 0", "--limit must be 1 or more"},
		{"--limit -1", "--limit must be 1 or more"},
	} {
		code, _, serr := bmcRun(t, append([]string{"runs", "--state-dir", state}, strings.Fields(tc.args)...)...)
		if code != 2 || !strings.Contains(serr, tc.want) {
			t.Errorf("runs %s: exit %d\n%s", tc.args, code, serr)
		}
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
