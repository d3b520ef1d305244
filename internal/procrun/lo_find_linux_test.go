package procrun

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// placeTree lays out <root>/runs/<id>/tasks/<task>/wd for each task, and
// returns the directory Query.Under takes for them and a function giving
// each task's directory.
func placeTree(t *testing.T, tasks ...string) (under string, taskDir func(string) string) {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir()) // as /proc shows it
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("r-%d-%d", os.Getpid(), time.Now().UnixNano())
	taskDir = func(task string) string { return filepath.Join(root, "runs", id, "tasks", task) }
	for _, task := range tasks {
		if err := os.MkdirAll(filepath.Join(taskDir(task), "wd"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(root, "runs", id, "tasks") + "/", taskDir
}

// shell is sh running a script, started by startIn.
type shell struct {
	cmd   *exec.Cmd
	stdin *os.File // closing it ends a script waiting with `read _`
	wait  func()   // waits for sh to end
}

// startIn starts sh running script in dir with env added to the test's
// environment: in a session of its own when session is set (as a task is
// started), or else in a group of its own in the test's session. The
// processes of its group are killed when the test ends.
func startIn(t *testing.T, session bool, dir string, env []string, script string) *shell {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir, cmd.Stdin = dir, r
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: session, Setpgid: !session}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		t.Fatal(err)
	}
	sh := &shell{cmd: cmd, stdin: w, wait: sync.OnceFunc(func() { cmd.Wait() })}
	t.Cleanup(func() {
		w.Close()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		sh.wait()
	})
	return sh
}

// found runs Find and maps the pids found to what they were found with.
func found(t *testing.T, q Query) map[int]Found {
	t.Helper()
	fs, err := Find(q)
	if err != nil {
		t.Fatal(err)
	}
	m := map[int]Found{}
	for _, f := range fs {
		if _, dup := m[f.PID]; dup {
			t.Errorf("process %d found twice", f.PID)
		}
		m[f.PID] = f
	}
	return m
}

// A task whose processes drop their environment is found all the same: a
// process by its working directory or its stdout, the others of the
// session the task leads with it, also once the task's own process, which
// led the session, has exited, while one of the session keeps the task's
// environment.
func TestFindByPlaceAndSession(t *testing.T) {
	under, taskDir := placeTree(t, "t1")
	mark := fmt.Sprintf("place-%d", time.Now().UnixNano())
	pids := t.TempDir()
	// The task's process, with the mark, starts three with no environment:
	// one that works in the task's directory, one that only writes its
	// stdout there, and one in neither, which ignores SIGTERM; and one
	// with its environment that works elsewhere. Each notes its pid once
	// it runs.
	script := fmt.Sprintf(`
(cd %[1]s/wd && exec env -i sh -c 'echo $$ > %[2]s/cwd.pid; exec sleep 300') &
(cd / && exec env -i sh -c 'echo $$ > %[2]s/out.pid; exec sleep 301' > %[1]s/stdout.txt) &
(cd / && exec env -i sh -c 'trap "" TERM; echo $$ > %[2]s/none.pid; exec sleep 302') &
(cd / && exec sh -c 'echo $$ > %[2]s/kept.pid; exec sleep 303') &
read _
`, taskDir("t1"), pids)
	sh := startIn(t, true, t.TempDir(), []string{"BMC_TEST_MARK=" + mark, "BMC_TEST_TASK=t1"}, script)
	leader := sh.cmd.Process.Pid
	inCwd := readPID(t, filepath.Join(pids, "cwd.pid"))
	inOut := readPID(t, filepath.Join(pids, "out.pid"))
	none := readPID(t, filepath.Join(pids, "none.pid"))
	kept := readPID(t, filepath.Join(pids, "kept.pid"))

	q := Query{Env: []string{"BMC_TEST_MARK=" + mark}, Report: []string{"BMC_TEST_TASK"}, Under: under}
	got := found(t, q)
	want := map[int]Found{
		leader: {PID: leader, PGID: leader, Values: []string{"t1"}},
		kept:   {PID: kept, PGID: leader, Values: []string{"t1"}},
		inCwd:  {PID: inCwd, PGID: leader, Values: []string{""}, Dir: "t1"},
		inOut:  {PID: inOut, PGID: leader, Values: []string{""}, Dir: "t1"},
	}
	checkFound(t, "by environment and place", got, want)

	q.Sessions = true
	want[none] = Found{PID: none, PGID: leader, Values: []string{"t1"}}
	checkFound(t, "with sessions", found(t, q), want)

	// The leader exits: its session goes on with the others, found with
	// the one that kept the task's environment.
	sh.stdin.Close()
	sh.wait()
	delete(want, leader)
	checkFound(t, "once the leader exited", found(t, q), want)

	// Stop stops them all, also the one found by its session, which
	// outlives the SIGTERM that ends the others it was found with.
	again := func() ([]Found, error) { return Find(q) }
	all, err := again()
	if err != nil {
		t.Fatal(err)
	}
	if err := Stop(all, 300*time.Millisecond, again); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, pid := range []int{inCwd, inOut, none, kept} {
		if !gone(pid) {
			t.Errorf("process %d still runs after Stop", pid)
		}
	}
	if left := found(t, q); len(left) != 0 {
		t.Errorf("found after Stop: %+v", left)
	}
}

func checkFound(t *testing.T, what string, got, want map[int]Found) {
	t.Helper()
	for pid, w := range want {
		g, ok := got[pid]
		if !ok {
			t.Errorf("%s: process %d not found", what, pid)
			continue
		}
		if g.PGID != w.PGID || g.Dir != w.Dir || strings.Join(g.Values, ",") != strings.Join(w.Values, ",") {
			t.Errorf("%s: process %d found as %+v, want %+v", what, pid, g, w)
		}
	}
	for pid, g := range got {
		if _, ok := want[pid]; !ok {
			t.Errorf("%s: process %d found as %+v, want it not found", what, pid, g)
		}
	}
}

// A session is only widened into when it is a task's: not this process's
// own, nor one whose leader runs without being found. A process of
// another run that works in this one's directory is not this run's, nor
// one in this process's session (found by its environment only).
func TestFindSessionsNotWidened(t *testing.T) {
	under, taskDir := placeTree(t, "t1", "t2", "t3")
	mark := fmt.Sprintf("narrow-%d", time.Now().UnixNano())
	env := []string{"BMC_TEST_MARK=" + mark, "BMC_TEST_TASK=t"}
	q := Query{Env: []string{"BMC_TEST_MARK=" + mark}, Report: []string{"BMC_TEST_TASK"}, Under: under, Sessions: true}
	pids := t.TempDir()
	// (A subshell's $$ is its parent's: a shell of its own notes its pid.)
	note := func(name string) string {
		return fmt.Sprintf("exec sh -c 'echo $$ > %s/%s.pid; exec sleep 300'", pids, name)
	}

	// In this test's session (as tasks of older runs were): one with the
	// mark, one working in a task's directory, one in neither.
	startIn(t, false, t.TempDir(), env, note("marked"))
	startIn(t, false, filepath.Join(taskDir("t1"), "wd"), nil, note("placed"))
	startIn(t, false, t.TempDir(), nil, note("mine"))
	// A session its leader, not the run's, leads: one of its processes
	// works in a task's directory, another does not.
	startIn(t, true, t.TempDir(), nil, fmt.Sprintf(`
(cd %s/wd && %s) &
(%s) &
echo $$ > %s/leader.pid
read _
`, taskDir("t2"), note("led-placed"), note("led-other"), pids))
	// A process of another run, working in this run's directory.
	startIn(t, true, filepath.Join(taskDir("t3"), "wd"), []string{"BMC_TEST_MARK=" + mark + "-other"}, note("other-run"))

	pid := func(name string) int { return readPID(t, filepath.Join(pids, name+".pid")) }
	marked, placed, mine := pid("marked"), pid("placed"), pid("mine")
	ledPlaced, ledOther, leader, otherRun := pid("led-placed"), pid("led-other"), pid("leader"), pid("other-run")

	got := found(t, q)
	want := map[int]Found{
		marked:    {PID: marked, PGID: marked, Values: []string{"t"}},
		ledPlaced: {PID: ledPlaced, PGID: leader, Values: []string{""}, Dir: "t2"},
	}
	checkFound(t, "beside other sessions", got, want)
	for name, pid := range map[string]int{"placed": placed, "mine": mine, "led-other": ledOther, "leader": leader, "other-run": otherRun} {
		if _, ok := got[pid]; ok {
			t.Errorf("%s (%d) found", name, pid)
		}
	}
	// Not even were the leader of this session taken for the run's.
	own, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	all, err := procPIDs()
	if err != nil {
		t.Fatal(err)
	}
	taken := []Found{{PID: own, PGID: own, Values: []string{"t"}}, got[marked]}
	if w := withSessions(slices.Clone(taken), all, lineage(os.Getpid())); len(w) != len(taken) {
		t.Errorf("widened into this process's session: %+v", w[len(taken):])
	}
}

func TestParseIDs(t *testing.T) {
	const stat = "2112 (odd) name) R 1 2109 2110 34817 -1 4195340 218 0 0 0 0 0 0 0 20 0 1 0 7891633 0 0 18446744073709551615 0 0"
	ids, ok := parseIDs(stat)
	want := procIDs{ppid: 1, pgrp: 2109, sid: 2110, tty: 34817, start: 7891633, exiting: true}
	if !ok || ids != want {
		t.Errorf("parseIDs = %+v %v, want %+v", ids, ok, want)
	}
	if ids, ok := parseIDs("5 (z) Z 1 5 5 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 99"); !ok || !ids.zombie || ids.exiting || ids.start != 99 {
		t.Errorf("parseIDs(a zombie) = %+v %v", ids, ok)
	}
	if _, ok := parseIDs("5 (sleep) S 1 5 5 0"); ok {
		t.Error("parseIDs(cut short): ok")
	}
}

func TestDirBelow(t *testing.T) {
	const under = "/home/u/.bmc/runs/r1/tasks/"
	for _, tt := range []struct{ path, want string }{
		{"/home/u/.bmc/runs/r1/tasks/align/wd", "align"},
		{"/home/u/.bmc/runs/r1/tasks/align/wd/sub/dir", "align"},
		{"/home/u/.bmc/runs/r1/tasks/align", "align"},
		{"/home/u/.bmc/runs/r1/tasks/align/stdout.txt", "align"},
		{"/home/u/.bmc/runs/r1/tasks/a_b-1/stderr.txt (deleted)", "a_b-1"},
		{"/home/u/.bmc/runs/r1/tasks", ""},
		{"/home/u/.bmc/runs/r12/tasks/align/wd", ""},
		{"/home/u/.bmc/runs/r1/shared", ""},
		// Another state directory's run of the same id (a copy's).
		{"/home/u/copy/.bmc/runs/r1/tasks/align/wd", ""},
		{"/x/home/u/.bmc/runs/r1/tasks/align/wd", ""},
		{"pipe:[1234]", ""},
		{"/dev/null", ""},
	} {
		if got := dirBelow(tt.path, under); got != tt.want {
			t.Errorf("dirBelow(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

// This process and the processes it was started by are never found by
// where they work: bmc cancel run from a task's directory leaves the
// shell it was run from alone.
func TestLineage(t *testing.T) {
	l := lineage(os.Getpid())
	if !l[os.Getpid()] || !l[os.Getppid()] {
		t.Errorf("lineage %v, without this process %d or its parent %d", l, os.Getpid(), os.Getppid())
	}
	ids, ok := procIDsOf(os.Getppid())
	if ok && ids.ppid > 1 && !l[ids.ppid] {
		t.Errorf("lineage %v, without the parent's parent %d", l, ids.ppid)
	}
}
