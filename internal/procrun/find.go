package procrun

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"
)

// Found is a process FindEnv found.
type Found struct {
	PID, PGID int
	// Values are the values of the variables FindEnv was asked for, in
	// its order, "" for one the process does not have.
	Values []string
}

// FindEnv returns the running processes (not zombies, not this one) whose
// environment holds name=value, with the values of the variables in
// report. A task's processes carry its environment, also those it started
// in the background or in a session of their own, so this finds what a
// task left behind whatever became of its process group. Processes whose
// environment cannot be read (another user's) are passed over.
func FindEnv(name, value string, report ...string) ([]Found, error) {
	return FindEnvAll([]string{name + "=" + value}, report...)
}

// FindEnvAll is FindEnv for processes whose environment holds every one
// of match, each "name=value".
func FindEnvAll(match []string, report ...string) ([]Found, error) {
	pids, err := procPIDs()
	if errors.Is(err, errNoProcTable) {
		return nil, nil // nothing can be found here
	}
	if err != nil {
		return nil, err
	}
	want := make([][]byte, len(match))
	for i, m := range match {
		want[i] = []byte(m)
	}
	self := os.Getpid()
	var out []Found
	consider := func(pid int, vars [][]byte) {
		if !holdsAll(vars, want) {
			return
		}
		pgrp, zombie, ok := procState(pid)
		if !ok || zombie {
			return
		}
		f := Found{PID: pid, PGID: pgrp, Values: make([]string, len(report))}
		for i, k := range report {
			prefix := []byte(k + "=")
			for _, v := range vars {
				if bytes.HasPrefix(v, prefix) {
					f.Values[i] = string(v[len(prefix):])
				}
			}
		}
		out = append(out, f)
	}
	// A process in the middle of an exec shows no environment until the
	// new program's is in place, a moment later: a task's process exec'ing
	// just as it is looked for would be missed. User processes read empty
	// are read again, backing off, for up to some 30 ms in all (those
	// that exit, or were given no environment, read empty throughout).
	var blank []int
	for _, pid := range pids {
		if pid == self {
			continue
		}
		vars, err := procEnviron(pid)
		switch {
		case err != nil:
			// gone, or not ours
		case len(vars) > 0:
			consider(pid, vars)
		case userProcess(pid):
			blank = append(blank, pid)
		}
	}
	for wait := time.Millisecond; len(blank) > 0 && wait <= 16*time.Millisecond; wait *= 2 {
		time.Sleep(wait) // an exec has no event to wait on
		blank = slices.DeleteFunc(blank, func(pid int) bool {
			vars, err := procEnviron(pid)
			if err != nil || len(vars) > 0 {
				if err == nil {
					consider(pid, vars)
				}
				return true
			}
			return !userProcess(pid)
		})
	}
	return out, nil
}

func holdsAll(vars, want [][]byte) bool {
	for _, w := range want {
		if !slices.ContainsFunc(vars, func(v []byte) bool { return bytes.Equal(v, w) }) {
			return false
		}
	}
	return true
}

// errNoProcTable is returned by procPIDs where the process table cannot
// be read: FindEnv then finds nothing, and a process group counts as alive
// for as long as it exists.
var errNoProcTable = errors.New("no process table")

// groupAlive reports whether any process in group pgid is still running.
// kill(-pgid, 0) alone would count zombies: members whose parent died are
// reaped by init, which may take a second or more, and waiting for that
// would stretch every stop towards the full grace period. So when the
// group still exists, the process table is consulted for a member that is
// not a zombie; without one the group counts as alive.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	alive, ok := groupHasLive(pgid)
	return alive || !ok
}

// splitEnv splits an environment block of NUL-terminated "k=v" strings.
func splitEnv(b []byte) [][]byte {
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		return nil
	}
	return bytes.Split(b, []byte{0})
}

// Stop stops the processes found: SIGTERM to each, and to the process
// groups they lead, then SIGKILL to what still runs once grace has passed
// (zero for DefaultKillGrace, negative for SIGKILL at once). again finds
// those of them still running (FindEnv again, with the same filter), since
// processes that are not our children give no notice of their end. Stop
// returns once they are gone or zombies, also those of them still exiting.
func Stop(found []Found, grace time.Duration, again func() ([]Found, error)) error {
	if len(found) == 0 {
		return nil
	}
	if grace == 0 {
		grace = DefaultKillGrace
	}
	sig := syscall.SIGTERM
	if grace < 0 {
		sig = syscall.SIGKILL
	}
	// A group is signalled only when its leader is one of the processes
	// found, as a task's own group is: members that cleared their
	// environment go with it, and no other group is touched.
	groups := map[int]bool{}
	for _, p := range found {
		if p.PID == p.PGID && p.PGID != syscall.Getpgrp() {
			groups[p.PGID] = true
		}
	}
	signal := func(procs []Found, sig syscall.Signal) {
		for _, p := range procs {
			_ = syscall.Kill(p.PID, sig)
		}
		for g := range groups {
			_ = syscall.Kill(-g, sig)
		}
	}
	signal(found, sig)
	// Look again, backing off, until none is left. Once the grace period
	// is up, what is left gets SIGKILL, and a moment to be gone.
	deadline := time.Now().Add(max(grace, 0))
	killed := sig == syscall.SIGKILL
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		left, err := again()
		if err != nil {
			return err
		}
		if len(left) == 0 && !anyAlive(groups) && !slices.ContainsFunc(found, exiting) {
			return nil
		}
		if time.Now().After(deadline) {
			if killed {
				if len(left) == 0 {
					return nil // only exiting, or zombies in a group: none runs
				}
				return fmt.Errorf("%d processes still run after SIGKILL", len(left))
			}
			signal(left, syscall.SIGKILL)
			killed, deadline = true, time.Now().Add(2*time.Second)
		}
		time.Sleep(wait) // polling other processes' exit, which has no event to wait on
	}
}

// exiting reports whether p, a process found, is on its way out: a
// process that is killed releases its memory, and with it the environment
// FindEnv knows it by, before it shows as a zombie.
func exiting(p Found) bool {
	if !userProcess(p.PID) {
		return false
	}
	vars, err := procEnviron(p.PID)
	return err == nil && len(vars) == 0
}

func anyAlive(groups map[int]bool) bool {
	for g := range groups {
		if groupAlive(g) {
			return true
		}
	}
	return false
}
