package procrun

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
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
	entries, err := os.ReadDir("/proc")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no /proc (not Linux): nothing can be found
	}
	if err != nil {
		return nil, err
	}
	want := []byte(name + "=" + value)
	self := os.Getpid()
	var out []Found
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || len(env) == 0 {
			continue // gone, a kernel thread, a zombie, or not ours
		}
		vars := bytes.Split(bytes.TrimSuffix(env, []byte{0}), []byte{0})
		found := false
		for _, v := range vars {
			if bytes.Equal(v, want) {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		state, pgrp, ok := parseStat(string(stat))
		if !ok || state == 'Z' || state == 'X' {
			continue
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
	return out, nil
}

// Stop stops the processes found: SIGTERM to each, and to the process
// groups they lead, then SIGKILL to what still runs once grace has passed
// (zero for DefaultKillGrace, negative for SIGKILL at once). again finds
// those of them still running (FindEnv again, with the same filter), since
// processes that are not our children give no notice of their end.
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
		if len(left) == 0 && !anyAlive(groups) {
			return nil
		}
		if time.Now().After(deadline) {
			if killed {
				return fmt.Errorf("%d processes still run after SIGKILL", len(left))
			}
			signal(left, syscall.SIGKILL)
			killed, deadline = true, time.Now().Add(2*time.Second)
		}
		time.Sleep(wait) // polling other processes' exit, which has no event to wait on
	}
}

func anyAlive(groups map[int]bool) bool {
	for g := range groups {
		if groupAlive(g) {
			return true
		}
	}
	return false
}
