//go:build !linux

package procrun

// YieldToTasks does nothing here: it needs Linux's SCHED_BATCH.
func YieldToTasks() (undo func()) { return func() {} }

func normalForFork() (restore func()) { return func() {} }
