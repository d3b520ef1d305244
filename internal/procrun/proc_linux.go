package procrun

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
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
//
// It is read in one read(2) call: the kernel holds the process's memory
// for the length of a call, but not between calls, so a process that
// exits or execs between two reads leaves the second empty and the first
// cut short, a variable or several missing and no error. A buffer the
// environment fills is grown and the whole read again. (A process that
// execs after the open, or is in the middle of an exec, reads as empty:
// FindEnvAll reads those again.)
func procEnviron(pid int) ([][]byte, error) {
	bp := environBuf.Get().(*[]byte)
	defer environBuf.Put(bp)
	b, err := readWhole("/proc/"+strconv.Itoa(pid)+"/environ", bp)
	return splitEnv(b), err
}

// readWhole reads file name in one read(2) call, into *bp or a larger
// buffer it leaves there, and returns a copy of what it read.
func readWhole(name string, bp *[]byte) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for {
		buf := *bp
		n, err := syscall.Pread(int(f.Fd()), buf, 0)
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: name, Err: err}
		}
		if n < len(buf) {
			return bytes.Clone(buf[:n]), nil
		}
		*bp = make([]byte, 4*len(buf))
	}
}

// environBuf holds buffers for procEnviron, large enough for most
// environments at the first read.
var environBuf = sync.Pool{New: func() any {
	b := make([]byte, 64<<10)
	return &b
}}

// procState returns pid's process group and whether it is a zombie; ok is
// false if it is gone.
func procState(pid int) (pgrp int, zombie, ok bool) {
	ids, ok := procIDsOf(pid)
	return ids.pgrp, ids.zombie, ok
}

// procIDsOf reads pid's procIDs from /proc/<pid>/stat; ok is false if it
// is gone.
func procIDsOf(pid int) (ids procIDs, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procIDs{}, false
	}
	return parseIDs(string(b))
}

// parseIDs reads "pid (comm) state ppid pgrp session tty_nr tpgid flags
// ... starttime ...". comm may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseIDs(s string) (ids procIDs, ok bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procIDs{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return procIDs{}, false
	}
	var n [4]int
	for j := range n {
		v, err := strconv.Atoi(f[j+1])
		if err != nil {
			return procIDs{}, false
		}
		n[j] = v
	}
	flags, err1 := strconv.ParseUint(f[6], 10, 64)
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return procIDs{}, false
	}
	return procIDs{ppid: n[0], pgrp: n[1], sid: n[2], tty: n[3], start: start,
		zombie: f[0] == "Z" || f[0] == "X", exiting: flags&pfExiting != 0,
		kthread: flags&pfKthread != 0}, true
}

// pfExiting is PF_EXITING, set in the flags of a process from the start
// of its exit.
const pfExiting = 0x4

// procPlaces returns where pid works and writes: its working directory,
// and the files of its stdout and stderr, those of them that can be read
// (those of another user's process cannot).
func procPlaces(pid int) []string {
	dir := "/proc/" + strconv.Itoa(pid)
	out := make([]string, 0, 3)
	for _, l := range [...]string{"/cwd", "/fd/1", "/fd/2"} {
		if p, err := os.Readlink(dir + l); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// pfKthread is PF_KTHREAD, the flag of a kernel thread in the flags field
// of /proc/<pid>/stat.
const pfKthread = 0x00200000

// userProcess reports whether pid is a user process that is not a
// zombie: one whose environment, when it reads empty, is out of sight for
// a moment (an exec in progress, or an exit) or was given empty.
func userProcess(pid int) bool {
	ids, ok := procIDsOf(pid)
	return ok && !ids.zombie && !ids.kthread
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

// Started is when the process pid started, from /proc/<pid>/stat; ok is
// false where that cannot be read. A zombie, which runs no more, started
// at the zero time.
func Started(pid int) (t time.Time, ok bool) {
	ids, ok := procIDsOf(pid)
	if !ok {
		return time.Time{}, false
	}
	if ids.zombie { // killed, not yet reaped
		return time.Time{}, true
	}
	boot, ok := bootTime()
	if !ok {
		return time.Time{}, false
	}
	// starttime is in clock ticks since boot, which Linux gives user
	// space at 100 a second (USER_HZ) on every architecture Go runs on.
	return boot.Add(time.Duration(ids.start) * (time.Second / 100)), true
}

// bootTime is when the system started, from /proc/stat's btime.
func bootTime() (time.Time, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(s, 0), true
		}
	}
	return time.Time{}, false
}
