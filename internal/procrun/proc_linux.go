package procrun

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// procPIDs lists the processes in /proc.
func procPIDs() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoProcTable // /proc not mounted
	}
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(entries))
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// procEnviron returns the environment pid started with (or set up since,
// in place), one "k=v" a slice.
func procEnviron(pid int) ([][]byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return nil, err
	}
	return splitEnv(b), nil
}

// procState returns pid's process group and whether it is a zombie; ok is
// false if it is gone.
func procState(pid int) (pgrp int, zombie, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, false
	}
	state, pgrp, ok := parseStat(string(b))
	return pgrp, state == 'Z' || state == 'X', ok
}

// groupHasLive reports whether a process of group pgid is not a zombie;
// ok is false if the process table cannot be read.
func groupHasLive(pgid int) (alive, ok bool) {
	pids, err := procPIDs()
	if err != nil {
		return false, false
	}
	for _, pid := range pids {
		if pgrp, zombie, ok := procState(pid); ok && pgrp == pgid && !zombie {
			return true, true
		}
	}
	return false, true
}

// parseStat extracts the state and process group from /proc/<pid>/stat:
// "pid (comm) state ppid pgrp ...". comm may hold spaces and parentheses,
// so fields are counted from the last ')'.
func parseStat(s string) (state byte, pgrp int, ok bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, false
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], pgrp, true
}
