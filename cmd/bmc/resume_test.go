package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/azurite"
)

// resumeFixture is a run of one task that fails until $BMC_TEST_FIXED
// exists, and appends a line to ran.log each time it runs.
type resumeFixture struct {
	dir, state, spec, fixed, ran string
}

func newResumeFixture(t *testing.T) *resumeFixture {
	dir := t.TempDir()
	f := &resumeFixture{dir: dir, state: filepath.Join(dir, "state"), spec: filepath.Join(dir, "spec.yaml"),
		fixed: filepath.Join(dir, "fixed"), ran: filepath.Join(dir, "ran.log")}
	os.WriteFile(f.spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: again
tasks:
  - id: work
    run: |
      echo ran >> "$BMC_TEST_RAN"
      test -e "$BMC_TEST_FIXED"
`), 0o644)
	t.Setenv("BMC_TEST_RAN", f.ran)
	t.Setenv("BMC_TEST_FIXED", f.fixed)
	return f
}

func (f *resumeFixture) fix(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(f.fixed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *resumeFixture) runs(t *testing.T) int {
	t.Helper()
	b, _ := os.ReadFile(f.ran)
	return strings.Count(string(b), "ran\n")
}

// noStorageEnv leaves no blob account configured in the environment.
func noStorageEnv(t *testing.T) {
	for _, k := range []string{"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_URL", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"} {
		t.Setenv(k, "")
	}
}

// TestResumeKeepsLocalStorage: a run started on the local store is
// resumed on it, even where an Azure account is now configured.
func TestResumeKeepsLocalStorage(t *testing.T) {
	noStorageEnv(t)
	f := newResumeFixture(t)
	if code, _, stderr := bmcRun(t, "run", "--state-dir", f.state, "--progress", "none", f.spec); code != 1 {
		t.Fatalf("run: exit %d, want 1\n%s", code, stderr)
	}
	f.fix(t)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.ConnString("http://127.0.0.1:1/"+azurite.Account))
	code, _, stderr := bmcRun(t, "resume", "--state-dir", f.state, "--progress", "none", "latest")
	local, _ := filepath.Abs(filepath.Join(f.state, "storage"))
	if code != 0 || !strings.Contains(stderr, "storage file://"+filepath.ToSlash(local)+"\n") {
		t.Errorf("resume: exit %d, want 0 on the run's local store\n%s", code, stderr)
	}
}

// TestResumeKeepsAzureStorage: a run started on an Azure account is
// resumed on it: not on the local store where none is configured, nor on
// another account.
func TestResumeKeepsAzureStorage(t *testing.T) {
	noStorageEnv(t)
	f := newResumeFixture(t)
	account := "http://127.0.0.1:1/" + azurite.Account
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.ConnString(account))
	if code, _, stderr := bmcRun(t, "run", "--state-dir", f.state, "--progress", "none", f.spec); code != 1 {
		t.Fatalf("run: exit %d, want 1\n%s", code, stderr)
	}
	f.fix(t)
	for _, tt := range []struct {
		name, conn string
		args       []string
		want       string
	}{
		{"none configured", "", nil, "keeps its files in " + account + ": it cannot be opened: storage azure: no blob account is configured"},
		{"another account", azurite.ConnString("http://127.0.0.1:2/" + azurite.Account), nil, "the environment configures http://127.0.0.1:2/" + azurite.Account + " instead"},
		{"--storage local", azurite.ConnString(account), []string{"--storage", "local"}, "--storage local names another store"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AZURE_STORAGE_CONNECTION_STRING", tt.conn)
			code, _, stderr := bmcRun(t, append([]string{"resume", "--state-dir", f.state, "--progress", "none", "latest"}, tt.args...)...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, want 1 and %q\n%s", code, tt.want, stderr)
			}
			if strings.Contains(stderr, azurite.Key) {
				t.Errorf("the account key was shown:\n%s", stderr)
			}
		})
	}
	if n := f.runs(t); n != 1 {
		t.Errorf("the task ran %d times, want once: a refused resume ran it", n)
	}
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.ConnString(account))
	code, _, stderr := bmcRun(t, "resume", "--state-dir", f.state, "--progress", "none", "latest")
	if code != 0 || !strings.Contains(stderr, "storage "+account+"\n") {
		t.Errorf("resume: exit %d, want 0 on the run's account\n%s", code, stderr)
	}
}

// TestResumeRereadsStateUnderLock: a resume that ran between another
// resume's first read of the run and its taking the run's lock is not
// redone.
func TestResumeRereadsStateUnderLock(t *testing.T) {
	f := newResumeFixture(t)
	if code, _, stderr := bmcRun(t, "run", "--state-dir", f.state, "--progress", "none", f.spec); code != 1 {
		t.Fatalf("run: exit %d, want 1\n%s", code, stderr)
	}
	f.fix(t)
	var inner string
	resumeStateRead = func() {
		resumeStateRead = nil
		var code int
		code, _, inner = bmcRun(t, "resume", "--state-dir", f.state, "--progress", "none", "latest")
		if code != 0 {
			t.Errorf("the resume in between: exit %d\n%s", code, inner)
		}
	}
	t.Cleanup(func() { resumeStateRead = nil })
	code, _, stderr := bmcRun(t, "resume", "--state-dir", f.state, "--progress", "none", "latest")
	if code != 0 || !strings.Contains(stderr, "(0 to run)") {
		t.Errorf("resume: exit %d, want 0 with nothing to run\n%s", code, stderr)
	}
	if n := f.runs(t); n != 2 {
		t.Errorf("the task ran %d times, want 2: the run, then the resume in between", n)
	}
	ids, _ := executor.ListRunIDs(f.state)
	st, err := executor.LoadState(filepath.Join(executor.RunsDir(f.state), ids[0]))
	if err != nil || st.Status != "succeeded" {
		t.Errorf("run %v, %v: want succeeded", st, err)
	}
}

// TestResumeKeepsWorkdirs: a run started with --keep-workdirs keeps the
// working directories of its succeeded tasks when it is resumed too.
func TestResumeKeepsWorkdirs(t *testing.T) {
	noStorageEnv(t)
	f := newResumeFixture(t)
	os.WriteFile(f.spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: kept
tasks:
  - id: good
    run: echo result > result.txt
  - id: work
    run: |
      echo ran >> "$BMC_TEST_RAN"
      test -e "$BMC_TEST_FIXED"
`), 0o644)
	if code, _, stderr := bmcRun(t, "run", "--state-dir", f.state, "--progress", "none", "--keep-workdirs", f.spec); code != 1 {
		t.Fatalf("run: exit %d, want 1\n%s", code, stderr)
	}
	ids, _ := executor.ListRunIDs(f.state)
	if len(ids) != 1 {
		t.Fatalf("runs %v, want one", ids)
	}
	kept := filepath.Join(executor.RunsDir(f.state), ids[0], "tasks", "good", "wd", "result.txt")
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("the run did not keep the working directory: %v", err)
	}
	f.fix(t)
	if code, _, stderr := bmcRun(t, "resume", "--state-dir", f.state, "--progress", "none", "latest"); code != 0 {
		t.Fatalf("resume: exit %d, want 0\n%s", code, stderr)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("the resume emptied the working directory the run kept: %v", err)
	}
}

// TestResumeKeepsLogsPrefix: the tasks a resume runs upload their logs
// under the --logs prefix the run was started with, as the run's own did.
func TestResumeKeepsLogsPrefix(t *testing.T) {
	noStorageEnv(t)
	f := newResumeFixture(t)
	os.WriteFile(f.spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: logged
tasks:
  - id: work
    run: |
      echo "ran $(cat "$BMC_TEST_FIXED" 2>/dev/null)" >> "$BMC_TEST_RAN"
      test -e "$BMC_TEST_FIXED" && echo fixed-attempt
`), 0o644)
	if code, _, stderr := bmcRun(t, "run", "--state-dir", f.state, "--progress", "none", "--logs", "az://tasklogs/", f.spec); code != 1 {
		t.Fatalf("run: exit %d, want 1\n%s", code, stderr)
	}
	f.fix(t)
	if code, _, stderr := bmcRun(t, "resume", "--state-dir", f.state, "--progress", "none", "latest"); code != 0 {
		t.Fatalf("resume: exit %d, want 0\n%s", code, stderr)
	}
	ids, _ := executor.ListRunIDs(f.state)
	if len(ids) != 1 {
		t.Fatalf("runs %v, want one", ids)
	}
	b, err := os.ReadFile(filepath.Join(f.state, "storage", "tasklogs", ids[0], "work", "stdout.txt"))
	if err != nil || string(b) != "fixed-attempt\n" {
		t.Errorf("the resumed attempt's stdout under az://tasklogs/: %q, %v", b, err)
	}
}

// TestResumeMovedStateDir: a project moved with its state directory is
// resumed on the store that moved with it, not on the path the run
// recorded, where outputs would be written anew and inputs not found.
func TestResumeMovedStateDir(t *testing.T) {
	noStorageEnv(t)
	f := newResumeFixture(t)
	os.WriteFile(f.spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: moved
tasks:
  - id: a
    run: echo A > a.txt
    outputs: [{path: a.txt, to: "az://out/${{ run.id }}/"}]
  - id: work
    dependsOn: [a]
    inputs: [{from: "az://out/${{ run.id }}/a.txt"}]
    run: |
      test -e "$BMC_TEST_FIXED"
      cat a.txt > b.txt
    outputs: [{path: b.txt, to: "az://out/${{ run.id }}/"}]
`), 0o644)
	if code, _, stderr := bmcRun(t, "run", "--state-dir", f.state, "--progress", "none", f.spec); code != 1 {
		t.Fatalf("run: exit %d, want 1\n%s", code, stderr)
	}
	moved := filepath.Join(f.dir, "moved-state")
	if err := os.Rename(f.state, moved); err != nil {
		t.Fatal(err)
	}
	f.fix(t)
	if code, _, stderr := bmcRun(t, "resume", "--state-dir", moved, "--progress", "none", "latest"); code != 0 {
		t.Fatalf("resume: exit %d, want 0\n%s", code, stderr)
	}
	ids, _ := executor.ListRunIDs(moved)
	if len(ids) != 1 {
		t.Fatalf("runs %v, want one", ids)
	}
	if b, err := os.ReadFile(filepath.Join(moved, "storage", "out", ids[0], "b.txt")); err != nil || string(b) != "A\n" {
		t.Errorf("b.txt in the moved store: %q, %v", b, err)
	}
	if _, err := os.Stat(f.state); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the old state directory was made again: %v", err)
	}
}
