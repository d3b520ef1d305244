//go:build unix

package blobstage

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processGone reports whether no process has the id pid. A process of
// another user (EPERM) or a zombie still counts as there.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// processStart is when the process pid started, from /proc (Linux); ok
// is false where that cannot be read. A zombie, which writes nothing
// more, started at the zero time: whatever it left is abandoned. A
// variable for tests.
var processStart = func(pid int) (time.Time, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return time.Time{}, false
	}
	// The command name, in parentheses, may hold spaces and parentheses:
	// the fields counted are those after its last ')', from the 3rd on.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return time.Time{}, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return time.Time{}, false
	}
	if f[0] == "Z" || f[0] == "X" { // killed, not yet reaped
		return time.Time{}, true
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64) // field 22, starttime
	if err != nil {
		return time.Time{}, false
	}
	boot, ok := bootTime()
	if !ok {
		return time.Time{}, false
	}
	// starttime is in clock ticks since boot, which Linux gives user
	// space at 100 a second (USER_HZ) on every architecture Go runs on.
	return boot.Add(time.Duration(ticks) * (time.Second / 100)), true
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
