package executor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// awkwardProgram is a program whose JSON tries the task reader: a param
// named tasks holding objects with ids, ids and text that need escaping,
// nesting in a task's matrix, and a task longer than a read.
func awkwardProgram() *compiler.Program {
	p := &compiler.Program{
		APIVersion: "bmc/v1", Name: "awkward",
		Labels: map[string]string{"tasks": `{"id":"not-a-task"}`},
		Params: map[string]any{
			"tasks": []any{map[string]any{"id": "fake-1"}, map[string]any{"id": "fake-2", "tasks": []any{"x"}}},
			"a":     json.Number("1.10"),
		},
		Groups: []compiler.Group{{ID: "m", Members: []string{"m-1", "m-2"}}},
	}
	add := func(t compiler.Task) {
		t.Slots, t.Hash = 1, fmt.Sprintf("h%d", len(p.Tasks))
		p.Tasks = append(p.Tasks, t)
	}
	add(compiler.Task{ID: "plain", Command: []string{"true"}})
	add(compiler.Task{ID: "m-1", Group: "m", Matrix: map[string]any{"cfg": map[string]any{"id": "m-2", "deep": []any{"]", "}", `"`}}}, Run: `echo "}]{[" \\ done`})
	add(compiler.Task{ID: "m-2", Group: "m", Matrix: map[string]any{"cfg": map[string]any{"id": "inner"}}, Run: "echo <tag> & \u2028 ünï", Env: map[string]string{"Q": `a"b\c`}})
	add(compiler.Task{ID: "long", Run: strings.Repeat(`x\"{[`, 60_000), Retries: 3, DependsOn: []string{"plain"}, DependsOnGroups: []string{"m"}})
	for i := range 300 {
		add(compiler.Task{ID: fmt.Sprintf("t-%03d", i), Command: []string{"true", fmt.Sprint(i)}, Retries: i % 3})
	}
	add(compiler.Task{ID: "last", Run: "true"})
	return p
}

func TestBigrunReadTasks(t *testing.T) {
	dir, err := CreateRun(t.TempDir(), Meta{ID: "awkward-1", Workload: "awkward", Backend: "local", Created: time.Now()}, awkwardProgram())
	if err != nil {
		t.Fatal(err)
	}
	whole, err := ReadProgram(dir)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, tk := range whole.Tasks {
		want = append(want, tk.ID)
	}
	ids, err := ReadTaskIDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, ids); d != "" {
		t.Errorf("ReadTaskIDs (-ReadProgram +got):\n%s", d)
	}
	if n, err := CountTasks(dir); err != nil || n != len(want) {
		t.Errorf("CountTasks = %d, %v; want %d", n, err, len(want))
	}
	for i, id := range want {
		tk, ok, err := ReadTask(dir, id)
		if err != nil || !ok {
			t.Fatalf("ReadTask(%s) = %v, %v", id, ok, err)
		}
		if d := cmp.Diff(&whole.Tasks[i], tk); d != "" {
			t.Errorf("ReadTask(%s) (-ReadProgram +got):\n%s", id, d)
		}
	}
	for _, id := range []string{"fake-1", "inner", "not-a-task", "PLAIN", ""} {
		if tk, ok, err := ReadTask(dir, id); err != nil || ok || tk != nil {
			t.Errorf("ReadTask(%q) = %v, %v, %v; want no task", id, tk, ok, err)
		}
	}
}

// TestBigrunScanTasksReads: the tasks read are the same whatever the
// size of a read, so that a key, a string or a task cut by the end of a
// read is read whole.
func TestBigrunScanTasksReads(t *testing.T) {
	b, _, err := awkwardProgram().RedactedJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	indented, _, err := awkwardProgram().RedactedJSON(true)
	if err != nil {
		t.Fatal(err)
	}
	read := func(text []byte, size int) (tasks []string) {
		t.Helper()
		err := scanTasks(bytes.NewReader(text), size, func(raw []byte) bool {
			tasks = append(tasks, string(raw))
			return true
		})
		if err != nil {
			t.Fatalf("read %d bytes at a time: %v", size, err)
		}
		return tasks
	}
	var p struct{ Tasks []json.RawMessage }
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range p.Tasks {
		want = append(want, string(r))
	}
	for _, size := range []int{1, 2, 3, 5, 7, 64, 4096, 1 << 20} {
		if d := cmp.Diff(want, read(b, size)); d != "" {
			t.Fatalf("read %d bytes at a time (-want +got):\n%s", size, d)
		}
	}
	// Indented: the same tasks, each as written.
	var pi struct{ Tasks []json.RawMessage }
	json.Unmarshal(indented, &pi)
	got := read(indented, 7)
	if len(got) != len(pi.Tasks) {
		t.Fatalf("indented: %d tasks, want %d", len(got), len(pi.Tasks))
	}
	for i := range got {
		if got[i] != string(pi.Tasks[i]) {
			t.Fatalf("indented task %d:\n%s\nwant\n%s", i, got[i], pi.Tasks[i])
		}
	}
}

func TestBigrunReadTasksDamaged(t *testing.T) {
	for _, tc := range []struct{ name, text string }{
		{"empty", ""},
		{"not an object", `[{"id":"a"}]`},
		{"no tasks", `{"apiVersion":"bmc/v1","name":"x"}`},
		{"tasks not a list", `{"tasks":{"id":"a"}}`},
		{"a task not an object", `{"tasks":[{"id":"a"},"b"]}`},
		{"cut short", `{"name":"x","tasks":[{"id":"a"},{"id":"b","run":"tr`},
		{"garbage", "\x00\x00\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ProgramFile), []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			if ids, err := ReadTaskIDs(dir); err == nil {
				t.Errorf("ReadTaskIDs = %q, no error", ids)
			} else if !strings.Contains(err.Error(), filepath.Join(dir, ProgramFile)) {
				t.Errorf("error %q does not name the file", err)
			}
			if n, err := CountTasks(dir); err == nil {
				t.Errorf("CountTasks = %d, no error", n)
			}
		})
	}
	// A task that does not decode is an error when it is read, not when
	// another is.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ProgramFile), []byte(`{"tasks":[{"id":"a","retries":1},{"id":"b","retries":"x"}],"finalize":{}}`), 0o644)
	if tk, ok, err := ReadTask(dir, "a"); err != nil || !ok || tk.Retries != 1 {
		t.Errorf("ReadTask(a) = %+v, %v, %v", tk, ok, err)
	}
	if _, _, err := ReadTask(dir, "b"); err == nil {
		t.Error("ReadTask(b): no error")
	}
	if _, err := ReadTaskIDs(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no program: %v", err)
	}
}

// journalLines are journal lines bmc writes and lines it does not, each
// of which ScanJournal must read as ReadJournal does.
var journalLines = []string{
	`{"t":"2026-01-02T03:04:05.123456789Z","type":"run-started","data":{"backend":"local","slots":2,"tasks":3,"toRun":3}}`,
	`{"t":"2026-01-02T03:04:05Z","type":"task-started","task":"a","attempt":1}`,
	`{"t":"2026-01-02T03:04:06+01:00","type":"task-finished","task":"a","attempt":1,"state":"failed","exitCode":-7,"reason":"exit code 7 \u003c\u003e \"q\" \\ é","data":{"outputs":["az://c/a.txt"]}}`,
	`{"t":"2026-01-02T03:04:06Z","type":"task-finished","task":"b","attempt":2,"state":"succeeded","exitCode":0}`,
	`{"t":"2026-01-02T03:04:06Z","type":"task-skipped","task":"c","state":"skipped","reason":"skipped: upstream a failed"}`,
	`{"type":"task-started","t":"2026-01-02T03:04:07Z","task":"a","attempt":2}`,
	`{"t": "2026-01-02T03:04:07Z", "type": "task-finished", "task": "a", "attempt": 2, "state": "succeeded"}`,
	`{"t":"2026-01-02T03:04:08Z","type":"task-finished","task":"x","exitCode":null,"state":"failed"}`,
	`{"t":"2026-01-02T03:04:08Z","type":"task-finished","task":"x","attempt":-0,"state":"failed"}`,
	`{"t":"2026-01-02T03:04:08Z","type":"task-finished","task":"x","attempt":1,"state":"failed","data":{"outputs":[]} }`,
	`{"t":"2026-01-02T03:04:08Z","type":"task-finished","task":"x","attempt":1,"state":"failed","data": [1]}`,
	`{"t":"2026-01-02T03:04:08Z","type":"task-finished","task":"x","attempt":1,"unknown":true}`,
	`{"t":"2026-01-02T03:04:08Z","type":"task-finished","task":"","attempt":1}`,
	`{"t":"2026-01-02T03:04:08Z","type":"task-finished","task":"a","task":"b"}`,
	`{"t":"2026-01-02T03:04:08Z","type":"callback","data":{"delivered":true,"status":200,"attempts":1}}`,
	`{"t":"2026-01-02T03:04:09Z","type":"finalize-finished","task":"finalize","attempt":1,"state":"succeeded","exitCode":0,"data":{"start":"2026-01-02T03:04:08.5Z"}}`,
	`{"t":"2026-01-02T03:04:09Z","type":"run-finished","state":"failed","data":{"total":3,"succeeded":1,"failed":1,"skipped":1,"cancelled":0}}`,
}

func writeLines(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), JournalFile)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func scanAll(path, only string, size int) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []Record
	err = scanRecords(f, path, only, size, func(r *Record) error {
		recs = append(recs, *r)
		return nil
	})
	return recs, err
}

func TestBigrunScanJournal(t *testing.T) {
	var lines []string
	for _, l := range journalLines {
		lines = append(lines, l+"\n")
	}
	for _, tc := range []struct {
		name  string
		lines []string
	}{
		{"whole", lines},
		{"torn last line", append(lines[:len(lines):len(lines)], `{"t":"2026-01-02T03:04:10Z","type":"run-fin`)},
		{"bad last line", append(lines[:len(lines):len(lines)], "garbage\n")},
		{"bad line before the last", append(append(lines[:3:3], "{\"t\":\"2026-01-02T03:04:05Z\",\"type\":\"task-started\",\"task\":\"a\",\"attempt\":1}x\n"), lines[3:]...)},
		{"zero bytes", append(lines[:2:2], "\x00\x00\x00\n", lines[2])},
		{"no type", append(lines[:2:2], `{"t":"2026-01-02T03:04:05Z","type":""}`+"\n", lines[2])},
		{"bad time", append(lines[:2:2], `{"t":"2026-13-02T03:04:05Z","type":"task-started","task":"a"}`+"\n", lines[2])},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeLines(t, tc.lines...)
			want, wantErr := ReadJournal(path)
			for _, size := range []int{16, 64 << 10} {
				got, err := scanAll(path, "", size)
				if fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Fatalf("buffer %d: error %v, ReadJournal's %v", size, err, wantErr)
				}
				if wantErr != nil {
					var ce *CorruptJournalError
					if !errors.As(err, &ce) {
						t.Errorf("error %v is not a *CorruptJournalError", err)
					}
					continue
				}
				if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
					t.Errorf("buffer %d (-ReadJournal +ScanJournal):\n%s", size, d)
				}
			}
			// One task's: the run's records and that task's, nothing else.
			if wantErr == nil {
				got, err := scanAll(path, "a", 16)
				if err != nil {
					t.Fatal(err)
				}
				var only []Record
				for _, r := range want {
					if r.Task == "" || r.Task == "a" {
						only = append(only, r)
					}
				}
				if d := cmp.Diff(only, got, cmpopts.EquateEmpty()); d != "" {
					t.Errorf("task a's (-want +got):\n%s", d)
				}
			}
		})
	}
}

// FuzzBigrunParseRecord: a line the fast reader reads, it reads as the
// decoder does.
func FuzzBigrunParseRecord(f *testing.F) {
	for _, l := range journalLines {
		f.Add([]byte(l))
	}
	for _, r := range []Record{
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Type: RecordTaskFinished, Task: "t-1_x", Attempt: 12, State: "failed", ExitCode: new(int), Reason: "a\nb\t<&>\u2028\xff", Data: json.RawMessage(`{"outputs": ["a"]}`)},
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", -3600)), Type: "x"},
	} {
		b, err := appendRecord(nil, &r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var lr lineRecord
		if !parseRecord(b, &lr) {
			return
		}
		want, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("%q: read, but the decoder says %v", b, err)
		}
		var got Record
		lr.record(&got)
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("%q (-decoder +fast):\n%s", b, d)
		}
	})
}

// TestBigrunLoadTaskState: one task's state is what the whole state has
// of it, and so is what it tells of the run.
func TestBigrunLoadTaskState(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	code := func(n int) *int { return &n }
	recs := []Record{
		{Time: at(0), Type: RecordRunStarted, Data: json.RawMessage(`{"tasks":3}`)},
		{Time: at(1), Type: RecordTaskStarted, Task: "a", Attempt: 1},
		{Time: at(1), Type: RecordTaskStarted, Task: "b", Attempt: 1},
		{Time: at(2), Type: RecordTaskFinished, Task: "a", Attempt: 1, State: string(Failed), ExitCode: code(3), Reason: "exit code 3"},
		{Time: at(3), Type: RecordTaskFinished, Task: "b", Attempt: 1, State: string(Succeeded), ExitCode: code(0), Data: json.RawMessage(`{"outputs":["az://c/b"]}`)},
		{Time: at(3), Type: RecordTaskSkipped, Task: "c", State: string(Skipped), Reason: "skipped: upstream a failed"},
		{Time: at(4), Type: RecordFinalizeFinished, Task: compiler.FinalizeID, Attempt: 1, State: string(Succeeded), ExitCode: code(0), Data: json.RawMessage(`{"start":"2026-01-02T03:00:03.5Z"}`)},
		{Time: at(5), Type: RecordRunFinished, State: "failed"},
		{Time: at(6), Type: RecordRunStarted, Data: json.RawMessage(`{"tasks":3}`)},
		{Time: at(7), Type: RecordTaskStarted, Task: "a", Attempt: 2},
	}
	dir := t.TempDir()
	writeJournal(t, dir, base, recs...)
	whole, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := whole.TaskCount(); n != 3 || !ok {
		t.Errorf("TaskCount = %d, %v; want 3", n, ok)
	}
	for _, task := range []string{"a", "b", "c", "nope"} {
		one, err := LoadTaskState(dir, task)
		if err != nil {
			t.Fatal(err)
		}
		if len(one.Tasks) > 1 || one.Tasks[task] == nil && whole.Tasks[task] != nil {
			t.Errorf("%s: tasks %v", task, one.Tasks)
		}
		if d := cmp.Diff(whole.Tasks[task], one.Tasks[task]); d != "" {
			t.Errorf("%s (-LoadState +LoadTaskState):\n%s", task, d)
		}
		if one.Status != whole.Status || !one.Started.Equal(whole.Started) || !one.Finished.Equal(whole.Finished) || one.Sessions != whole.Sessions || one.WasRunning(task) != whole.WasRunning(task) {
			t.Errorf("%s: run %+v, want %+v", task, one, whole)
		}
	}
	if whole.Tasks["a"].State != Canceled || !whole.Tasks["a"].Interrupted {
		t.Errorf("a: %+v, want interrupted", whole.Tasks["a"])
	}
	// The finalize step's: the whole state, whose last session has not
	// run it again.
	fin, err := LoadTaskState(dir, compiler.FinalizeID)
	if err != nil {
		t.Fatal(err)
	}
	if fin.Finalize != nil || !fin.WasRunning(compiler.FinalizeID) {
		t.Errorf("finalize: %+v", fin.Finalize)
	}
	// Before the second session: the finalize step and when it started.
	dir = t.TempDir()
	writeJournal(t, dir, base, recs[:8]...)
	st, err := LoadTaskState(dir, compiler.FinalizeID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Finalize == nil || st.Finalize.State != Succeeded || !st.FinalizeStart().Equal(at(3).Add(500*time.Millisecond)) {
		t.Errorf("finalize %+v, started %v", st.Finalize, st.FinalizeStart())
	}
}

// BenchmarkBigrunInspect reads one task and the state of a run of many
// tasks, as bmc logs and bmc status do.
func BenchmarkBigrunInspect(b *testing.B) {
	const n = 20_000
	p := &compiler.Program{APIVersion: "bmc/v1", Name: "sweep"}
	for i := range n {
		p.Tasks = append(p.Tasks, compiler.Task{ID: fmt.Sprintf("t-%d", i), Command: []string{"true", fmt.Sprint(i)}, Env: map[string]string{"I": fmt.Sprint(i)}, Slots: 1, Hash: strings.Repeat("h", 64)})
	}
	dir, err := CreateRun(b.TempDir(), Meta{ID: "sweep-1", Workload: "sweep", Backend: "local", Created: time.Now()}, p)
	if err != nil {
		b.Fatal(err)
	}
	j, err := OpenJournal(filepath.Join(dir, JournalFile))
	if err != nil {
		b.Fatal(err)
	}
	j.AppendAsync(Record{Type: RecordRunStarted, Data: json.RawMessage(fmt.Sprintf(`{"tasks":%d}`, n))})
	for i := range n {
		id := fmt.Sprintf("t-%d", i)
		j.AppendAsync(Record{Type: RecordTaskStarted, Task: id, Attempt: 1})
		j.AppendAsync(Record{Type: RecordTaskFinished, Task: id, Attempt: 1, State: string(Succeeded), ExitCode: new(int)})
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	b.Run("ReadTask", func(b *testing.B) {
		for b.Loop() {
			if _, ok, err := ReadTask(dir, "t-19999"); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("ReadTaskIDs", func(b *testing.B) {
		for b.Loop() {
			if _, err := ReadTaskIDs(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LoadTaskState", func(b *testing.B) {
		for b.Loop() {
			if _, err := LoadTaskState(dir, "t-19999"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LoadState", func(b *testing.B) {
		for b.Loop() {
			if _, err := LoadState(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadProgram", func(b *testing.B) {
		for b.Loop() {
			if _, err := ReadProgram(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
}
