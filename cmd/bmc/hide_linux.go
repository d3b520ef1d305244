package main

import "golang.org/x/sys/unix"

// hideEnviron keeps bmc's environment, which holds the callback's secret
// or URL, from its tasks: the variables are left out of theirs, but a task
// could read them from /proc/<bmc's pid>/environ, as any process of the
// same user may. A process that is not "dumpable" has its /proc files
// owned by root and cannot be traced by the user. Tasks are dumpable
// again: exec resets it.
func hideEnviron() {
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}

// environHidden reports whether hideEnviron took effect, for tests.
func environHidden() bool {
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	return err == nil && v == 0
}
