package local

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// A run script longer than one argument may be runs as a short one does:
// under bash -euo pipefail, with the task id as $0 and no arguments.
func TestLongRunScript(t *testing.T) {
	f := newFixture(t, Options{})
	body := `echo "$0 $# ${1-none}" > ../seen
echo "$_" > ../underscore
ls /proc/$$/fd > ../fds 2>/dev/null || true
sh -c 'ls /proc/self/fd' > ../childfds 2>/dev/null || true
false
echo "not reached: -e holds"
`
	long := "# " + strings.Repeat("x", maxArgLen) + "\n" + body
	checkState(t, f.runTask(t, &compiler.Task{ID: "short", Run: body}, 1), executor.Failed)
	res := f.runTask(t, &compiler.Task{ID: "long", Run: long}, 1)
	checkState(t, res, executor.Failed)
	if *res.ExitCode != 1 {
		t.Errorf("long script: %s, want exit code 1 (false under -e)", res.Reason)
	}
	for _, name := range []string{"seen", "underscore", "childfds"} {
		if got, want := readFile(t, filepath.Join(f.taskDir("long"), name)), readFile(t, filepath.Join(f.taskDir("short"), name)); got != strings.ReplaceAll(want, "short", "long") {
			t.Errorf("%s: long script %q, short one %q", name, got, want)
		}
	}
	if got := readFile(t, filepath.Join(f.taskDir("long"), "stdout.txt")); got != "" {
		t.Errorf("stdout %q: the script went on after a failure", got)
	}
	// The script is kept nowhere: the task's directory holds what a short
	// script's does.
	for _, id := range []string{"short", "long"} {
		ents, err := os.ReadDir(f.taskDir(id))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if got, want := strings.Join(names, " "), "childfds fds seen stderr.txt stdout.txt underscore wd"; got != want {
			t.Errorf("%s: task directory holds %s, want %s", id, got, want)
		}
	}
	// Descriptor 3, which bash read the script from, is not the script's.
	if strings.Contains("\n"+readFile(t, filepath.Join(f.taskDir("long"), "fds")), "\n3\n") {
		t.Error("the long script runs with descriptor 3 open")
	}
}

// A variable or an argument longer than a program may be given fails the
// attempt, saying which, without retries; the plan says so beforehand.
func TestTooLongForProcess(t *testing.T) {
	big := strings.Repeat("v", maxArgLen)
	f := newFixture(t, Options{})
	for _, task := range []*compiler.Task{
		{ID: "env", Run: "true", Retries: 2, Env: map[string]string{"BIG": big}},
		{ID: "arg", Command: []string{"echo", big}, Retries: 2},
	} {
		res := f.runTask(t, task, 1)
		checkState(t, res, executor.Failed)
		if !res.NoRetry {
			t.Errorf("%s: %q retried", task.ID, res.Reason)
		}
		want := map[string]string{"env": "env BIG", "arg": "command argument 2"}[task.ID]
		if !strings.Contains(res.Reason, want) || strings.Contains(res.Reason, big) {
			t.Errorf("%s: reason %.200q, want it to name %s", task.ID, res.Reason, want)
		}
	}
	prog := &compiler.Program{
		Tasks: []compiler.Task{
			{ID: "ok", Run: big},
			{ID: "env", Run: "true", Env: map[string]string{"BIG": big}},
			{ID: "arg", Command: []string{"echo", big}},
		},
		Finalize: compiler.Finalize{ID: compiler.FinalizeID, Run: "true", Env: map[string]string{"BIG": big}},
	}
	var got []string
	for _, c := range Check(prog) {
		if c.Severity != planner.Error {
			t.Errorf("%s: %s is not an error", c.Task, c.Message)
		}
		got = append(got, c.Task)
	}
	if want := []string{"env", "arg", compiler.FinalizeID}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("checks for %v, want %v", got, want)
	}
}
