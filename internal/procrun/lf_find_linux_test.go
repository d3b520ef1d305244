package procrun

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// noteScript is a shell command that notes its pid in dir/name.pid, then
// sleeps (a subshell's $$ is its parent's: a shell of its own notes it).
func noteScript(dir, name string, secs int) string {
	return fmt.Sprintf("exec sh -c 'echo $$ > %s/%s.pid; exec sleep %d'", dir, name, secs)
}

// `cd <task dir> && bmc status RUN | cat`: cat works in the task's
// directory, in the session bmc runs in, and is not the run's. One in a
// session of its own there is.
func TestFindNotInOwnSession(t *testing.T) {
	under, taskDir := placeTree(t, "t1")
	mark := fmt.Sprintf("own-%d", time.Now().UnixNano())
	pids := t.TempDir()
	wd := filepath.Join(taskDir("t1"), "wd")
	startIn(t, false, wd, nil, noteScript(pids, "sibling", 300))
	startIn(t, true, wd, nil, noteScript(pids, "task", 301))
	sibling := readPID(t, filepath.Join(pids, "sibling.pid"))
	task := readPID(t, filepath.Join(pids, "task.pid"))
	own, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	if ids, ok := procIDsOf(sibling); !ok || ids.sid != own {
		t.Fatalf("process %d is not in this process's session %d: %+v", sibling, own, ids)
	}
	for _, sessions := range []bool{false, true} {
		got := found(t, Query{Env: []string{"BMC_TEST_MARK=" + mark}, Report: []string{"BMC_TEST_TASK"}, Under: under, Sessions: sessions})
		checkFound(t, fmt.Sprintf("sessions %v", sessions), got, map[int]Found{
			task: {PID: task, PGID: task, Values: []string{""}, Dir: "t1"},
		})
	}
}

// A session no task led: a person's shell starts one job in a task's
// directory and one elsewhere, then goes (its terminal hung up). The first
// is found, by where it works; the other is not, for nothing tells the
// session was a task's.
func TestFindLeaderlessSessionNotWidened(t *testing.T) {
	under, taskDir := placeTree(t, "t1")
	mark := fmt.Sprintf("leaderless-%d", time.Now().UnixNano())
	pids := t.TempDir()
	sh := startIn(t, true, t.TempDir(), nil, fmt.Sprintf(`
(cd %s/wd && %s) &
(cd / && %s) &
read _
`, taskDir("t1"), noteScript(pids, "there", 300), noteScript(pids, "elsewhere", 301)))
	leader := sh.cmd.Process.Pid
	there := readPID(t, filepath.Join(pids, "there.pid"))
	elsewhere := readPID(t, filepath.Join(pids, "elsewhere.pid"))
	sh.stdin.Close()
	sh.wait()
	if ids, ok := procIDsOf(elsewhere); !ok || ids.sid != leader || ids.tty != 0 {
		t.Fatalf("process %d is not in the session %d left without its leader: %+v", elsewhere, leader, ids)
	}
	got := found(t, Query{Env: []string{"BMC_TEST_MARK=" + mark}, Report: []string{"BMC_TEST_TASK"}, Under: under, Sessions: true})
	checkFound(t, "a session no task led", got, map[int]Found{
		there: {PID: there, PGID: leader, Values: []string{""}, Dir: "t1"},
	})
}

// Processes of a copy of a state directory (cp -a) carry the same Env:
// Home tells them apart by the directory their environment names. One
// whose directory is gone was moved here, and is found.
func TestFindHome(t *testing.T) {
	mark := fmt.Sprintf("home-%d", time.Now().UnixNano())
	root := t.TempDir()
	mine, other, link := filepath.Join(root, "mine"), filepath.Join(root, "other"), filepath.Join(root, "link")
	for _, d := range []string{mine, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(mine, link); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(root, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pids := t.TempDir()
	start := func(name string, env ...string) int {
		startIn(t, true, t.TempDir(), append([]string{"BMC_TEST_MARK=" + mark}, env...), noteScript(pids, name, 300))
		return readPID(t, filepath.Join(pids, name+".pid"))
	}
	want := map[int]Found{}
	for _, name := range []string{"mine", "link", "gone", "not-dir", "relative", "none"} {
		home := map[string]string{
			"mine": mine, "link": link, "gone": filepath.Join(root, "gone"),
			"not-dir": notDir, "relative": "mine",
		}[name]
		var env []string
		if home != "" {
			env = []string{"BMC_TEST_HOME=" + home}
		}
		pid := start(name, env...)
		want[pid] = Found{PID: pid, PGID: pid}
	}
	otherPID := start("other", "BMC_TEST_HOME="+other)
	got := found(t, Query{Env: []string{"BMC_TEST_MARK=" + mark}, Home: "BMC_TEST_HOME=" + mine})
	checkFound(t, "Home mine", got, want) // not other's
	// From the other's side, only its own and those that cannot tell.
	got = found(t, Query{Env: []string{"BMC_TEST_MARK=" + mark}, Home: "BMC_TEST_HOME=" + other})
	for _, name := range []string{"mine", "link"} {
		if pid := readPID(t, filepath.Join(pids, name+".pid")); got[pid].PID != 0 {
			t.Errorf("%s's process %d found from the other directory", name, pid)
		}
	}
	if _, ok := got[otherPID]; !ok {
		t.Errorf("the other directory's process %d not found from it", otherPID)
	}
}
