package executor

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newMeta(id string, created time.Time) Meta {
	return Meta{
		ID: id, Workload: "w", Backend: "local", Spec: "/specs/w.yaml", SpecDir: "/specs",
		Params: map[string]any{"who": "world"}, Created: created, Slots: 4, KeepGoing: true,
		Only: []string{"merge"}, Storage: "file:///state/storage", Packages: []string{"aligner=/opt/aligner"},
	}
}

func createRun(t *testing.T, state, id string, created time.Time) string {
	t.Helper()
	prog := compileSpec(t, groupSpec, nil)
	dir, err := CreateRun(state, newMeta(id, created), prog)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestNewRunID(t *testing.T) {
	now := time.Date(2026, 3, 1, 14, 5, 9, 0, time.FixedZone("x", 3600))
	id := NewRunID("genome-align", now)
	if !regexp.MustCompile(`^genome-align-260301130509-[0-9a-z]{6}$`).MatchString(id) {
		t.Errorf("NewRunID = %q", id)
	}
	long := NewRunID(strings.Repeat("a", 48), now)
	if len(long) > 64 {
		t.Errorf("%q is longer than a Batch job id may be", long)
	}
}

// TestNewRunIDBurst: runs of one workload started in the same second (CI
// fanning out, a script looping over params) get distinct ids.
func TestNewRunIDBurst(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for range 200 {
		id := NewRunID("w", now)
		if seen[id] {
			t.Fatalf("run id %s given twice", id)
		}
		seen[id] = true
	}
}

func TestCreateRun(t *testing.T) {
	state := t.TempDir()
	prog := compileSpec(t, groupSpec, nil)
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	meta := newMeta("w-260301120000-ab", created)
	dir, err := CreateRun(state, meta, prog)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(state, "runs", meta.ID); dir != want {
		t.Errorf("dir %q, want %q", dir, want)
	}
	got, err := ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(meta, got); diff != "" {
		t.Errorf("meta (-want +got):\n%s", diff)
	}
	p, err := ReadProgram(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(prog)
	have, _ := json.Marshal(p)
	if string(want) != string(have) {
		t.Errorf("program does not round-trip:\n%s\n%s", want, have)
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{LockFile, ProgramFile, MetaFile}) {
		t.Errorf("run directory holds %v", names)
	}
	if _, err := CreateRun(state, meta, prog); err == nil {
		t.Error("CreateRun reused an existing run directory")
	}
}

func TestFindRun(t *testing.T) {
	state := t.TempDir()
	day := func(d int) time.Time { return time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC) }
	// "latest" goes by creation time, not by id.
	createRun(t, state, "w-260101000000-aa", day(1))
	createRun(t, state, "w-260101000000-ab", day(2))
	createRun(t, state, "w-260102000000-zz", day(3))
	createRun(t, state, "other-1", day(5))
	createRun(t, state, "x-1", day(4))
	createRun(t, state, "x-10", day(4))
	// A directory without run.json is not a run.
	if err := os.MkdirAll(filepath.Join(RunsDir(state), "w-half"), 0o755); err != nil {
		t.Fatal(err)
	}

	ids, err := ListRunIDs(state)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"other-1", "w-260101000000-aa", "w-260101000000-ab", "w-260102000000-zz", "x-1", "x-10"}; !slices.Equal(ids, want) {
		t.Errorf("ListRunIDs = %v, want %v", ids, want)
	}

	for _, tt := range []struct{ arg, want string }{
		{"w-260101000000-aa", "w-260101000000-aa"},
		{"w-260102", "w-260102000000-zz"},
		{"oth", "other-1"},
		{"x-1", "x-1"}, // exact, though also a prefix of x-10
		{"x-10", "x-10"},
		{"latest", "other-1"},
		{"last", "other-1"},
	} {
		dir, err := FindRun(state, tt.arg)
		if err != nil {
			t.Errorf("FindRun(%q): %v", tt.arg, err)
			continue
		}
		if want := filepath.Join(RunsDir(state), tt.want); dir != want {
			t.Errorf("FindRun(%q) = %q, want %q", tt.arg, dir, want)
		}
	}

	_, err = FindRun(state, "w-260101")
	if err == nil || !strings.Contains(err.Error(), "ambiguous") ||
		!strings.Contains(err.Error(), "w-260101000000-aa") || !strings.Contains(err.Error(), "w-260101000000-ab") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if errors.Is(err, ErrNoRun) {
		t.Errorf("an ambiguous id is not a missing run: %v", err)
	}
	for _, arg := range []string{"nope", "w-half", "w-3"} {
		if _, err := FindRun(state, arg); !errors.Is(err, ErrNoRun) {
			t.Errorf("FindRun(%q) = %v, want ErrNoRun", arg, err)
		}
	}
	if _, err := FindRun(t.TempDir(), "latest"); !errors.Is(err, ErrNoRun) {
		t.Errorf("latest without runs: %v", err)
	}
}

func TestLock(t *testing.T) {
	dir := createRun(t, t.TempDir(), "w-1", time.Now())
	if pid, held := LockHolder(dir); held || pid != 0 {
		t.Errorf("before Lock: LockHolder = %d, %v", pid, held)
	}
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	pid, held := LockHolder(dir)
	if !held || pid != os.Getpid() {
		t.Errorf("LockHolder = %d, %v; want %d, true", pid, held, os.Getpid())
	}
	_, err = Lock(dir)
	if err == nil {
		t.Fatal("a second Lock succeeded while the first is held")
	}
	if !strings.Contains(err.Error(), "in progress") || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Errorf("second Lock: %v", err)
	}
	// The failed attempt did not disturb the holder's pid.
	if pid, held := LockHolder(dir); !held || pid != os.Getpid() {
		t.Errorf("after a failed Lock: LockHolder = %d, %v", pid, held)
	}
	// A held lock makes the journal read as a live run.
	if st, err := LoadState(dir); err != nil || st.Status != "running" {
		t.Errorf("LoadState while locked: %v, %v", st, err)
	}
	unlock()
	if pid, held := LockHolder(dir); held {
		t.Errorf("after unlock: LockHolder = %d, %v", pid, held)
	}
	unlock2, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}

// writeJournal writes records to dir's journal, each a second apart from
// base.
func writeJournal(t *testing.T, dir string, base time.Time, recs ...Record) {
	t.Helper()
	j, err := OpenJournal(filepath.Join(dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Time.IsZero() {
			r.Time = base.Add(time.Duration(i) * time.Second)
		}
		if err := j.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadState(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	outputs := json.RawMessage(`{"outputs":["az://res/a/"]}`)
	session1 := []Record{
		{Type: RecordRunStarted},
		{Type: RecordTaskStarted, Task: "a", Attempt: 1},
		{Type: RecordTaskFinished, Task: "a", Attempt: 1, State: "failed", ExitCode: codePtr(1), Reason: "exit code 1"},
		{Type: RecordTaskStarted, Task: "a", Attempt: 2},
		{Type: RecordTaskFinished, Task: "a", Attempt: 2, State: "succeeded", ExitCode: codePtr(0), Data: outputs},
		{Type: RecordTaskStarted, Task: "b", Attempt: 1},
		{Type: RecordTaskFinished, Task: "b", Attempt: 1, State: "failed", ExitCode: codePtr(2), Reason: "exit code 2"},
		{Type: RecordTaskSkipped, Task: "c", State: "skipped", Reason: "skipped: upstream b failed"},
		{Type: RecordTaskStarted, Task: "d", Attempt: 1},
		{Type: RecordFinalizeFinished, Task: "finalize", Attempt: 1, State: "failed", ExitCode: codePtr(4), Reason: "exit code 4"},
		{Type: RecordCallback, Data: json.RawMessage(`{"attempts":2,"status":500,"delivered":false,"error":"boom"}`)},
		{Type: RecordRunFinished, State: "failed"},
	}

	t.Run("finished", func(t *testing.T) {
		dir := t.TempDir()
		writeJournal(t, dir, base, session1...)
		st, err := LoadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != "failed" || st.Sessions != 1 || !st.Started.Equal(base) || !st.Finished.Equal(base.Add(11*time.Second)) {
			t.Errorf("status %s, sessions %d, started %v, finished %v", st.Status, st.Sessions, st.Started, st.Finished)
		}
		want := map[string]*TaskState{
			"a": {ID: "a", State: Succeeded, Attempts: 2, ExitCode: codePtr(0), Outputs: []string{"az://res/a/"}, Start: base.Add(time.Second), LastStart: base.Add(3 * time.Second), End: base.Add(4 * time.Second)},
			"b": {ID: "b", State: Failed, Attempts: 1, ExitCode: codePtr(2), Reason: "exit code 2", Start: base.Add(5 * time.Second), LastStart: base.Add(5 * time.Second), End: base.Add(6 * time.Second)},
			"c": {ID: "c", State: Skipped, Reason: "skipped: upstream b failed", End: base.Add(7 * time.Second)},
			// No bmc process holds the run: d was interrupted.
			"d": {ID: "d", State: Canceled, Attempts: 1, Reason: "interrupted: bmc stopped while it ran", Start: base.Add(8 * time.Second), LastStart: base.Add(8 * time.Second), Interrupted: true},
		}
		if diff := cmp.Diff(want, st.Tasks); diff != "" {
			t.Errorf("tasks (-want +got):\n%s", diff)
		}
		for task, want := range map[string]bool{"a": false, "b": false, "c": false, "d": true, "finalize": false, "nosuch": false} {
			if got := st.WasRunning(task); got != want {
				t.Errorf("WasRunning(%s) = %v, want %v", task, got, want)
			}
		}
		if f := st.Finalize; f == nil || f.State != Failed || f.ExitCode == nil || *f.ExitCode != 4 {
			t.Errorf("finalize %+v", f)
		}
		if diff := cmp.Diff(&CallbackResult{Attempts: 2, Status: 500, Err: "boom"}, st.Callback); diff != "" {
			t.Errorf("callback (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]bool{"a": true}, st.Done()); diff != "" {
			t.Errorf("Done (-want +got):\n%s", diff)
		}
	})

	t.Run("resumed and interrupted", func(t *testing.T) {
		dir := t.TempDir()
		session2 := []Record{
			{Type: RecordRunStarted},
			// A succeeded task is never downgraded, whatever follows.
			{Type: RecordTaskStarted, Task: "a", Attempt: 1},
			{Type: RecordTaskFinished, Task: "a", Attempt: 1, State: "failed", ExitCode: codePtr(9), Reason: "exit code 9"},
			{Type: RecordTaskSkipped, Task: "a", State: "skipped", Reason: "skipped: x"},
			{Type: RecordTaskStarted, Task: "b", Attempt: 1},
			{Type: RecordTaskStarted, Task: "c", Attempt: 1},
			{Type: RecordTaskFinished, Task: "c", Attempt: 1, State: "succeeded", ExitCode: codePtr(0)},
		}
		writeJournal(t, dir, base, append(slices.Clone(session1), session2...)...)
		st, err := LoadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != "interrupted" || st.Sessions != 2 || !st.Finished.IsZero() || !st.Started.Equal(base) {
			t.Errorf("status %s, sessions %d, started %v, finished %v", st.Status, st.Sessions, st.Started, st.Finished)
		}
		a := st.Tasks["a"]
		if a.State != Succeeded || a.Attempts != 2 || *a.ExitCode != 0 || a.Reason != "" {
			t.Errorf("a: %+v", a)
		}
		if b := st.Tasks["b"]; b.State != Canceled || !strings.HasPrefix(b.Reason, "interrupted") {
			t.Errorf("b: %+v", b)
		}
		if c := st.Tasks["c"]; c.State != Succeeded || c.Reason != "" || c.Attempts != 1 {
			t.Errorf("c: %+v", c)
		}
		if diff := cmp.Diff(map[string]bool{"a": true, "c": true}, st.Done()); diff != "" {
			t.Errorf("Done (-want +got):\n%s", diff)
		}
		// The second session was cut off before its finalize step ended:
		// that of the first does not count.
		for task, want := range map[string]bool{"a": false, "b": true, "c": false, "finalize": true} {
			if got := st.WasRunning(task); got != want {
				t.Errorf("WasRunning(%s) = %v, want %v", task, got, want)
			}
		}

		// While a bmc process holds the lock, running tasks are running.
		unlock, err := Lock(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		st, err = LoadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		// d, left running by the first session, is the second's to run
		// again: pending until it starts.
		if st.Status != "running" || st.Tasks["b"].State != Running || st.Tasks["d"].State != Pending {
			t.Errorf("locked: status %s, b %s, d %s", st.Status, st.Tasks["b"].State, st.Tasks["d"].State)
		}
	})

	t.Run("outputs of two attempts", func(t *testing.T) {
		dir := t.TempDir()
		dbg := json.RawMessage(`{"outputs":["az://res/debug/"]}`)
		writeJournal(t, dir, base,
			Record{Type: RecordRunStarted},
			Record{Type: RecordTaskStarted, Task: "x", Attempt: 1},
			Record{Type: RecordTaskFinished, Task: "x", Attempt: 1, State: "failed", ExitCode: codePtr(1), Data: dbg},
			Record{Type: RecordTaskStarted, Task: "x", Attempt: 2},
			Record{Type: RecordTaskFinished, Task: "x", Attempt: 2, State: "failed", ExitCode: codePtr(1), Data: json.RawMessage(`{"outputs":["az://res/debug/","az://res/x.log"]}`)},
		)
		st, err := LoadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"az://res/debug/", "az://res/x.log"}, st.Tasks["x"].Outputs); diff != "" {
			t.Errorf("outputs (-want +got):\n%s", diff)
		}
	})

	t.Run("a later session makes the last report stale", func(t *testing.T) {
		// The first session ended with its finalize step and callback;
		// the second ran b again and was cut off before its own.
		dir := t.TempDir()
		session2 := []Record{
			{Type: RecordRunStarted},
			{Type: RecordTaskStarted, Task: "b", Attempt: 2},
		}
		writeJournal(t, dir, base, append(slices.Clone(session1), session2...)...)
		st, err := LoadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Finalize != nil || st.Callback != nil {
			t.Errorf("finalize %+v, callback %+v: the first session's, which told of b's failure", st.Finalize, st.Callback)
		}
		// b's attempt 2 was cut off: its attempt 1's exit code and
		// reason are not its.
		if b := st.Tasks["b"]; b.State != Canceled || b.ExitCode != nil || !strings.HasPrefix(b.Reason, "interrupted") || b.Attempts != 2 || !b.End.IsZero() {
			t.Errorf("b: %+v", b)
		}
		// c, skipped in the first session, waits to run again.
		if c := st.Tasks["c"]; c.State != Pending || c.Reason != "" || !c.End.IsZero() {
			t.Errorf("c: %+v", c)
		}
		if a := st.Tasks["a"]; a.State != Succeeded {
			t.Errorf("a: %+v", a)
		}

		// A session that starts with tasks to run again makes it stale as
		// it starts: cut off then, a cancel reports afresh.
		dir = t.TempDir()
		writeJournal(t, dir, base, append(slices.Clone(session1), Record{Type: RecordRunStarted})...)
		if st, err = LoadState(dir); err != nil {
			t.Fatal(err)
		}
		if st.Finalize != nil || st.Callback != nil {
			t.Errorf("finalize %+v, callback %+v: told of tasks the new session runs again", st.Finalize, st.Callback)
		}

		// With every task done, the report stands: a resume only sends
		// again a callback that was not delivered.
		dir = t.TempDir()
		writeJournal(t, dir, base,
			Record{Type: RecordRunStarted},
			Record{Type: RecordTaskStarted, Task: "a", Attempt: 1},
			Record{Type: RecordTaskFinished, Task: "a", Attempt: 1, State: "succeeded", ExitCode: codePtr(0)},
			Record{Type: RecordFinalizeFinished, Task: "finalize", Attempt: 1, State: "succeeded", ExitCode: codePtr(0)},
			Record{Type: RecordCallback, Data: json.RawMessage(`{"attempts":1,"status":500,"delivered":false}`)},
			Record{Type: RecordRunFinished, State: "failed"},
			Record{Type: RecordRunStarted},
		)
		if st, err = LoadState(dir); err != nil {
			t.Fatal(err)
		}
		if st.Finalize == nil || st.Finalize.State != Succeeded || st.Callback == nil || st.Callback.Delivered {
			t.Errorf("finalize %+v, callback %+v, want the first session's", st.Finalize, st.Callback)
		}
	})

	t.Run("no journal", func(t *testing.T) {
		st, err := LoadState(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != "interrupted" || len(st.Tasks) != 0 || st.Sessions != 0 {
			t.Errorf("%+v", st)
		}
	})

	t.Run("corrupt", func(t *testing.T) {
		dir := t.TempDir()
		data := "{\"t\":\"2026-03-01T12:00:00Z\",\"type\":\"run-started\"}\nnot json\n{\"t\":\"2026-03-01T12:00:00Z\",\"type\":\"run-finished\",\"state\":\"succeeded\"}\n"
		if err := os.WriteFile(filepath.Join(dir, JournalFile), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadState(dir)
		var ce *CorruptJournalError
		if !errors.As(err, &ce) || ce.Line != 2 {
			t.Errorf("LoadState of a damaged journal: %v", err)
		}
	})
}
