package procrun

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// threadPolicies returns the scheduling policy of each of this process's
// threads, from field 41 of /proc/self/task/<tid>/stat.
func threadPolicies(t *testing.T) map[int]int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skip("no /proc/self/task")
	}
	out := map[int]int{}
	for _, e := range entries {
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/stat")
		if err != nil {
			continue // the thread exited
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		// f[0] is field 3 (state): field 41 is f[38].
		p, err := strconv.Atoi(f[38])
		if err != nil {
			t.Fatalf("policy of thread %s: %v", e.Name(), err)
		}
		tid, _ := strconv.Atoi(e.Name())
		out[tid] = p
	}
	return out
}

func TestYieldToTasks(t *testing.T) {
	if getScheduler(0) != unix.SCHED_NORMAL {
		t.Skip("the tests run under a scheduling policy other than the normal one")
	}
	undo := YieldToTasks()
	for tid, p := range threadPolicies(t) {
		if p != unix.SCHED_BATCH {
			t.Errorf("thread %d has policy %d after YieldToTasks, want SCHED_BATCH (%d)", tid, p, unix.SCHED_BATCH)
		}
	}

	// The task itself runs under the normal policy.
	s := bash(t, `read -r -a f < /proc/$$/stat; echo "${f[40]}"`)
	r, err := Run(context.Background(), s)
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("Run: %+v %v", r, err)
	}
	if got := strings.TrimSpace(readFile(t, s.Stdout)); got != strconv.Itoa(unix.SCHED_NORMAL) {
		t.Errorf("the task ran under policy %q, want the normal one (%d)", got, unix.SCHED_NORMAL)
	}
	// The thread that forked it went back to yielding.
	for tid, p := range threadPolicies(t) {
		if p != unix.SCHED_BATCH {
			t.Errorf("thread %d has policy %d after a task started, want SCHED_BATCH", tid, p)
		}
	}

	undo()
	for tid, p := range threadPolicies(t) {
		if p != unix.SCHED_NORMAL {
			t.Errorf("thread %d has policy %d after undo, want the normal one", tid, p)
		}
	}
	// A second undo, or yielding again and undoing, is harmless.
	undo()
	YieldToTasks()()
	if p := getScheduler(0); p != unix.SCHED_NORMAL {
		t.Errorf("policy %d after yield and undo, want the normal one", p)
	}
}
