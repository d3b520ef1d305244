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

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
)

// TestRv8RunsProgramCutShort lists runs whose program.json was cut short
// (anywhere: in a string, after a task, after the tasks) or emptied: each
// is corrupt, named on stderr, while a whole program's run is listed as
// its journal says. The journal of each holds the task count, so the
// program is not read to count.
func TestRv8RunsProgramCutShort(t *testing.T) {
	state := t.TempDir()
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: "w", Tasks: []compiler.Task{
		{ID: "a", Run: "true", Matrix: map[string]any{"i": 1}}, {ID: "b", Run: "true"}, {ID: "c", Run: "true"}}}
	started := executor.Record{Type: executor.RecordRunStarted, Data: json.RawMessage(`{"tasks":3}`)}
	mk := func(id string, cut func([]byte) []byte) {
		t.Helper()
		dir, err := executor.CreateRun(state, executor.Meta{ID: id, Workload: "w", Backend: "local", Created: time.Date(2026, 1, 1, 0, 0, len(id), 0, time.UTC)}, prog)
		if err != nil {
			t.Fatal(err)
		}
		j, err := executor.OpenJournal(filepath.Join(dir, executor.JournalFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Append(started); err != nil {
			t.Fatal(err)
		}
		j.Close()
		p := filepath.Join(dir, executor.ProgramFile)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, cut(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	at := func(s string, keep int) func([]byte) []byte {
		return func(b []byte) []byte {
			i := strings.Index(string(b), s)
			if i < 0 {
				t.Fatalf("program %s lacks %q", b, s)
			}
			return b[:i+keep]
		}
	}
	mk("whole", func(b []byte) []byte { return b })
	mk("half", func(b []byte) []byte { return b[:len(b)/2] })
	mk("empty", func([]byte) []byte { return nil })
	mk("blank", func([]byte) []byte { return []byte("\n \n") })
	mk("aftertask", at(`},{"id":"b"`, 1))            // ends with a task's }
	mk("aftermatrix", at(`{"i":1}`, len(`{"i":1}`))) // ends with an object's } inside a task
	mk("aftertasks", at(`],"finalize"`, 1))          // ends with ]
	mk("infinalize", at(`"finalize":{`, len(`"finalize":{`)+3))
	mk("lastbyte", func(b []byte) []byte { b = bytes.TrimRight(b, "\n"); return b[:len(b)-1] }) // its last } gone

	code, out, serr := bmcRun(t, "runs", "--state-dir", state, "-o", "json")
	var rows []runRow
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("runs: exit %d\n%s%s", code, out, serr)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.ID] = r.Status
	}
	for id, want := range map[string]string{"whole": "interrupted", "half": "corrupt", "empty": "corrupt", "blank": "corrupt",
		"aftertask": "corrupt", "aftermatrix": "corrupt", "aftertasks": "corrupt", "infinalize": "corrupt", "lastbyte": "corrupt"} {
		if got[id] != want {
			t.Errorf("%s: %s, want %s", id, got[id], want)
		}
		if named := strings.Contains(serr, fmt.Sprintf("bmc: run %s: ", id)); named != (want == "corrupt") {
			t.Errorf("%s named on stderr: %v\n%s", id, named, serr)
		}
	}
}
