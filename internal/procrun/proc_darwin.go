package procrun

import (
	"time"

	"golang.org/x/sys/unix"
)

// sZomb is a zombie's p_stat (SZOMB in <sys/proc.h>).
const sZomb = 5

// procPIDs lists the processes of the kern.proc.all table.
func procPIDs() ([]int, error) {
	procs, err := unix.SysctlKinfoProcSlice("kern.proc.all")
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(procs))
	for _, p := range procs {
		pids = append(pids, int(p.Proc.P_pid))
	}
	return pids, nil
}

// procEnviron returns the environment pid started with, one "k=v" a
// slice, from kern.procargs2 (readable for this user's processes only).
func procEnviron(pid int) ([][]byte, error) {
	b, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil {
		return nil, err
	}
	return parseProcArgs(b), nil
}

// procState returns pid's process group and whether it is a zombie; ok is
// false if it is gone.
func procState(pid int) (pgrp int, zombie, ok bool) {
	p, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || int(p.Proc.P_pid) != pid {
		return 0, false, false
	}
	return int(p.Eproc.Pgid), p.Proc.P_stat == sZomb, true
}

// groupHasLive reports whether a process of group pgid is not a zombie;
// ok is false if the process table cannot be read.
func groupHasLive(pgid int) (alive, ok bool) {
	procs, err := unix.SysctlKinfoProcSlice("kern.proc.pgrp", pgid)
	if err != nil {
		return false, false
	}
	for _, p := range procs {
		if p.Proc.P_stat != sZomb {
			return true, true
		}
	}
	return false, true
}

// userProcess reports whether pid is a user process that is not a
// zombie, one whose empty environment may be out of sight for a moment.
// kern.procargs2 gives a process's arguments whole or not at all: none is.
func userProcess(int) bool { return false }

// procIDsOf cannot tell here: Find widens to no session.
func procIDsOf(int) (procIDs, bool) { return procIDs{}, false }

// procPlaces cannot tell here: Find finds no process by where it works.
func procPlaces(int) []string { return nil }

// Started cannot tell here.
func Started(int) (time.Time, bool) { return time.Time{}, false }
