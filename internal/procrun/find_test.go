package procrun

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// leftBehind starts sh in a group of its own, with mark in its
// environment, running script; the processes it starts carry the mark.
// It returns once the script has started them.
func leftBehind(t *testing.T, mark, script string) *exec.Cmd {
	t.Helper()
	ready := t.TempDir() + "/ready"
	// The shell marks readiness itself: a touch would be one more
	// process with the mark, for a moment.
	cmd := exec.Command("sh", "-c", script+"\n: > "+ready+"\nwait")
	cmd.Env = append(os.Environ(), "BMC_TEST_MARK="+mark, "BMC_TEST_TASK=t-"+mark)
	startGroup(t, cmd)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatal("the script did not start")
		}
		time.Sleep(5 * time.Millisecond) // polling another process's file
	}
}

// startGroup starts cmd in a process group of its own, killed whole when
// the test ends.
func startGroup(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
}

func TestFindAndStopEnv(t *testing.T) {
	mark := fmt.Sprintf("find-%d", time.Now().UnixNano())
	// A background sleep, and one that moved to a session of its own.
	cmd := leftBehind(t, mark, "sleep 300 & setsid sleep 301 &")
	// The background jobs may still be between their fork and their exec,
	// when /proc does not show their environment: look until all three
	// are seen.
	var found []Found
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		found, err = FindEnv("BMC_TEST_MARK", mark, "BMC_TEST_TASK", "NOT_SET")
		if err != nil {
			t.Fatal(err)
		}
		if len(found) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling other processes' start
	}
	var pids []int
	for _, f := range found {
		pids = append(pids, f.PID)
		if f.Values[0] != "t-"+mark || f.Values[1] != "" {
			t.Errorf("values of %d: %q", f.PID, f.Values)
		}
	}
	if len(found) != 3 || !slices.Contains(pids, cmd.Process.Pid) {
		t.Fatalf("found %+v, want sh (%d) and its two sleeps", found, cmd.Process.Pid)
	}
	if other, _ := FindEnv("BMC_TEST_MARK", mark+"-other"); len(other) != 0 {
		t.Errorf("another value found %+v", other)
	}

	again := func() ([]Found, error) { return FindEnv("BMC_TEST_MARK", mark) }
	if err := Stop(found, 5*time.Second, again); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if left, _ := FindEnv("BMC_TEST_MARK", mark); len(left) != 0 {
		t.Errorf("still running after Stop: %+v", left)
	}
}

// A process that ignores SIGTERM is killed once the grace period is over.
func TestStopEnvKillsAfterGrace(t *testing.T) {
	mark := fmt.Sprintf("grace-%d", time.Now().UnixNano())
	leftBehind(t, mark, "trap '' TERM; sleep 300 &")
	again := func() ([]Found, error) { return FindEnv("BMC_TEST_MARK", mark) }
	found, err := again()
	if err != nil || len(found) == 0 {
		t.Fatalf("FindEnv: %+v, %v", found, err)
	}
	start := time.Now()
	if err := Stop(found, 300*time.Millisecond, again); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if left, _ := FindEnv("BMC_TEST_MARK", mark); len(left) != 0 {
		var s []string
		for _, l := range left {
			s = append(s, fmt.Sprint(l.PID))
		}
		t.Errorf("still running after the grace period: %s", strings.Join(s, " "))
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Errorf("killed before the grace period was over")
	}
}
