package procrun

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// yielding is set while bmc's threads give way to its tasks.
var yielding atomic.Bool

var yieldMu sync.Mutex

// YieldToTasks puts every thread of bmc under SCHED_BATCH, which keeps
// their share of the CPU but stops them from preempting a running task
// when they wake. A supervisor wakes many times per task it runs (to reap
// it, journal it, start the next one, and for the Go runtime's own
// housekeeping); on a machine whose cores are all busy with tasks, each
// of those wake-ups would otherwise interrupt a task, with two context
// switches. The work still gets done at once on a core a task has just
// left, which is when bmc has work to do.
//
// Tasks do not inherit the policy: Run starts them from a thread that is
// switched back to the normal policy for the fork. Nice values are kept.
// Nothing changes when bmc was started under another policy (chrt), or
// when the system refuses.
//
// The returned function undoes it.
func YieldToTasks() (undo func()) {
	yieldMu.Lock()
	defer yieldMu.Unlock()
	if yielding.Load() || getScheduler(0) != unix.SCHED_NORMAL {
		return func() {}
	}
	// Set first, so that a task forked meanwhile is forked under the
	// normal policy from a thread already switched.
	yielding.Store(true)
	if !setAllThreads(unix.SCHED_BATCH) {
		yielding.Store(false)
		setAllThreads(unix.SCHED_NORMAL)
		return func() {}
	}
	return func() {
		yieldMu.Lock()
		defer yieldMu.Unlock()
		if yielding.Swap(false) {
			setAllThreads(unix.SCHED_NORMAL)
		}
	}
}

// setAllThreads sets the policy of every thread of this process and
// reports whether it could. Threads started later inherit it from the
// thread that starts them.
func setAllThreads(policy int) bool {
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return false
	}
	ok := true
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := setScheduler(tid, policy); err != nil && err != unix.ESRCH {
			ok = false
		}
	}
	return ok
}

// normalForFork switches the calling goroutine's thread to the normal
// policy while a task is forked from it, so that the task does not
// inherit bmc's, and returns the function that switches it back.
func normalForFork() (restore func()) {
	if !yielding.Load() {
		return func() {}
	}
	runtime.LockOSThread()
	if setScheduler(0, unix.SCHED_NORMAL) != nil {
		runtime.UnlockOSThread()
		return func() {}
	}
	return func() {
		if yielding.Load() {
			setScheduler(0, unix.SCHED_BATCH)
		}
		runtime.UnlockOSThread()
	}
}

// schedParam is struct sched_param; for the normal and batch policies
// its priority must be 0.
type schedParam struct{ priority int32 }

// setScheduler sets the policy of thread tid (0: the calling thread),
// leaving its nice value as it is.
func setScheduler(tid, policy int) error {
	var p schedParam
	_, _, e := unix.RawSyscall(unix.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(&p)))
	if e != 0 {
		return e
	}
	return nil
}

// getScheduler returns the policy of thread tid, or -1.
func getScheduler(tid int) int {
	r, _, e := unix.RawSyscall(unix.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	if e != 0 {
		return -1
	}
	return int(r)
}
