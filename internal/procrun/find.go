package procrun

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Found is a process Find found.
type Found struct {
	PID, PGID int
	// Values are the values of the variables Find was asked to report,
	// in its order, "" for one the process does not have. A process
	// found with another of its session has that one's.
	Values []string
	// Dir is the name of the directory right below Query.Under where the
	// process was found, or where the process of its session it was found
	// with was; "" for one found by its environment.
	Dir string
}

// Query says which processes Find finds.
type Query struct {
	// Env are "name=value" strings: a process whose environment holds
	// every one of them is found.
	Env []string
	// Report names the variables whose values Found.Values gives.
	Report []string
	// Under, when set, is a directory, absolute, with its symbolic links
	// resolved (as /proc shows where a process works) and ending in "/"
	// ("/home/u/p/.bmc/runs/<id>/tasks/", say): a process whose working
	// directory, stdout or stderr is in a directory right below it is
	// found too, as that directory's, also with an environment of its
	// own (env -i, a container's) or none. Not one that has a controlling
	// terminal (a person's shell, or a program run from it, that went to
	// look there), nor one of this process's session (the pipeline it
	// was run in from there: `bmc status | cat`), nor this process or its
	// ancestors, nor one whose environment gives a variable of Env
	// another value.
	Under string
	// Home, when set, is "name=dir", dir absolute: a process of Env whose
	// variable name gives another directory than dir, one that exists,
	// is not found, for it is a copy's of dir (cp -a), whose processes
	// carry the same Env. One whose directory is gone is found: dir was
	// moved from there.
	Home string
	// Sessions finds with each process found the others of its session,
	// when the session is a task's: its leader is found (a process can
	// only leave a session for a new one of its own, so those of a
	// session a task leads are all the task's), or it has ended and one
	// of the session is found by Env, which it has from a task. Not the
	// session of this process, nor one with a controlling terminal, nor
	// one whose leader runs without being found itself (the user's
	// session that a task started without a session of its own sits in),
	// nor one that ended with none of it found by Env: a person's shell
	// that went, leaving a job in a task's directory and others, which
	// are not the task's, elsewhere. (The one in the task's directory is
	// still found, by where it works.)
	Sessions bool
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
	return Find(Query{Env: match, Report: report})
}

// Find returns the running processes (not zombies, not this one) that q
// finds: by their environment (as FindEnvAll), by where they work, and
// by their session. Processes that cannot be read (another user's) are
// passed over.
func Find(q Query) ([]Found, error) {
	pids, err := procPIDs()
	if errors.Is(err, errNoProcTable) {
		return nil, nil // nothing can be found here
	}
	if err != nil {
		return nil, err
	}
	want := make([][]byte, len(q.Env))
	for i, m := range q.Env {
		want[i] = []byte(m)
	}
	self := os.Getpid()
	var spare map[int]bool // never found by where they work, nor by session
	own := -1              // this process's session, where none is found by where it works
	if q.Under != "" || q.Sessions {
		spare = lineage(self)
		if sid, err := unix.Getsid(0); err == nil {
			own = sid
		}
	}
	home := homeOf(q.Home)
	var out []Found
	// byEnv reports whether pid, whose environment holds Env, was found.
	byEnv := func(pid int, vars [][]byte) bool {
		if !home.holds(vars) {
			return false
		}
		pgrp, zombie, ok := procState(pid)
		if !ok || zombie {
			return false
		}
		f := Found{PID: pid, PGID: pgrp, Values: make([]string, len(q.Report))}
		for i, k := range q.Report {
			prefix := []byte(k + "=")
			for _, v := range vars {
				if bytes.HasPrefix(v, prefix) {
					f.Values[i] = string(v[len(prefix):])
				}
			}
		}
		out = append(out, f)
		return true
	}
	// byPlace reports whether pid was found by where it works.
	byPlace := func(pid int, vars [][]byte) bool {
		if q.Under == "" || spare[pid] || givesOther(vars, want) {
			return false
		}
		dir := ""
		for _, p := range procPlaces(pid) {
			if dir = dirBelow(p, q.Under); dir != "" {
				break
			}
		}
		if dir == "" {
			return false
		}
		ids, ok := procIDsOf(pid)
		if !ok || ids.zombie || ids.tty != 0 || ids.sid == own {
			return false
		}
		out = append(out, Found{PID: pid, PGID: ids.pgrp, Values: make([]string, len(q.Report)), Dir: dir})
		return true
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
		case len(vars) > 0 && holdsAll(vars, want) && byEnv(pid, vars):
		// One of Env that Home tells is a copy's is found only if it works
		// here after all.
		case byPlace(pid, vars):
		case len(vars) == 0 && userProcess(pid):
			blank = append(blank, pid)
		}
	}
	for wait := time.Millisecond; len(blank) > 0 && wait <= 16*time.Millisecond; wait *= 2 {
		time.Sleep(wait) // an exec has no event to wait on
		blank = slices.DeleteFunc(blank, func(pid int) bool {
			vars, err := procEnviron(pid)
			if err != nil || len(vars) > 0 {
				if err == nil && holdsAll(vars, want) {
					byEnv(pid, vars)
				}
				return true
			}
			return !userProcess(pid)
		})
	}
	if q.Sessions && len(out) > 0 {
		out = withSessions(out, pids, spare)
	}
	return out, nil
}

// withSessions adds to found the other processes of the sessions of
// those found, when these are sessions a task leads, or led: not this
// process's, and none that has a controlling terminal or a leader that
// runs without being found (older bmcs started tasks in the user's own
// session, where the user's shell leads). A session whose leader ended
// is a task's only when one of it was found by its environment: one found
// by where it works alone may be a person's job, started from a shell
// that went (a terminal hung up), and the others of its session the
// person's too. pids are the processes to look at; spare those never to
// add.
func withSessions(found []Found, pids []int, spare map[int]bool) []Found {
	own, err := unix.Getsid(0)
	if err != nil {
		return found
	}
	index := make(map[int]int, len(found)) // pid -> its place in found
	for i, f := range found {
		index[f.PID] = i
	}
	// The found process whose Values and Dir the others of each session
	// take: its leader when found, or else the first found in it by its
	// environment.
	sessions := map[int]int{}
	for i, f := range found {
		ids, ok := procIDsOf(f.PID)
		if !ok || ids.sid <= 1 || ids.sid == own || ids.tty != 0 {
			continue
		}
		if _, seen := sessions[ids.sid]; seen {
			continue
		}
		if l, ok := index[ids.sid]; ok {
			sessions[ids.sid] = l
			continue
		}
		if f.Dir != "" || !ended(ids.sid) {
			continue // found by where it works alone, or the leader runs unfound
		}
		sessions[ids.sid] = i
	}
	if len(sessions) == 0 {
		return found
	}
	for _, pid := range pids {
		if _, ok := index[pid]; ok || spare[pid] {
			continue
		}
		ids, ok := procIDsOf(pid)
		if !ok || ids.zombie {
			continue
		}
		if i, ok := sessions[ids.sid]; ok {
			with := found[i]
			found = append(found, Found{PID: pid, PGID: ids.pgrp, Values: slices.Clone(with.Values), Dir: with.Dir})
		}
	}
	return found
}

// home is Query.Home, read.
type home struct {
	prefix []byte      // "name="; nil for no Home
	dir    os.FileInfo // nil when dir cannot be read
	seen   map[string]bool
}

func homeOf(h string) *home {
	name, dir, ok := strings.Cut(h, "=")
	if !ok || name == "" {
		return &home{}
	}
	fi, _ := os.Stat(dir)
	return &home{prefix: []byte(name + "="), dir: fi, seen: map[string]bool{}}
}

// holds reports whether vars, a process's environment, give no other
// directory than home's that exists: none, home's (by whatever path), a
// relative one (which tells nothing), or one that is gone or no longer a
// directory (home was moved from there). A directory that cannot be read
// may be another copy's, and counts as one.
func (h *home) holds(vars [][]byte) bool {
	if h.prefix == nil {
		return true
	}
	var p string
	for _, v := range vars {
		if bytes.HasPrefix(v, h.prefix) {
			p = string(v[len(h.prefix):])
		}
	}
	if p == "" || !filepath.IsAbs(p) {
		return true
	}
	ok, seen := h.seen[p]
	if !seen {
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			ok = true
		case err != nil:
			ok = false
		default:
			ok = !fi.IsDir() || h.dir != nil && os.SameFile(fi, h.dir)
		}
		h.seen[p] = ok
	}
	return ok
}

// procIDs are what Find tells a process's session and lineage by.
type procIDs struct {
	ppid, pgrp, sid int
	tty             int    // tty_nr: 0 for no controlling terminal
	start           uint64 // in clock ticks since boot
	zombie          bool
	exiting         bool // on its way out, not yet a zombie
	kthread         bool // a kernel thread
}

// ended reports whether process pid has ended: it is no more, or a
// zombie. A process of another user that runs has not. (Its pid is not
// reused while a process is in a session, or group, that pid names.)
func ended(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	ids, ok := procIDsOf(pid)
	return ok && ids.zombie
}

// lineage is pid and its ancestors, as far as they can be told.
func lineage(pid int) map[int]bool {
	out := map[int]bool{pid: true}
	for p := os.Getppid(); p > 1 && !out[p]; {
		out[p] = true
		ids, ok := procIDsOf(p)
		if !ok {
			break
		}
		p = ids.ppid
	}
	return out
}

// dirBelow returns the name of the directory right below under, a
// directory ending in "/", in p, a path /proc gives (with " (deleted)"
// after it when it was removed since), or "" when p is not in one.
func dirBelow(p, under string) string {
	p = strings.TrimSuffix(p, " (deleted)")
	rest, ok := strings.CutPrefix(p, under)
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// givesOther reports whether vars give a variable of want, each
// "name=value", another value: the process is another's.
func givesOther(vars, want [][]byte) bool {
	for _, w := range want {
		i := bytes.IndexByte(w, '=')
		if i < 0 {
			continue
		}
		name := w[:i+1]
		for _, v := range vars {
			if bytes.HasPrefix(v, name) && !bytes.Equal(v, w) {
				return true
			}
		}
	}
	return false
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
// those of them still running (Find again, with the same query), since
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
	// The processes found are followed to their end, also once again no
	// longer finds them: one found with the others of its session, after
	// those have ended, or one on its way out, whose memory (and with it
	// the environment Find knows it by) and working directory are gone
	// before it shows as a zombie. Its start time tells it from a process
	// that took its pid since.
	type followed struct {
		Found
		start uint64
	}
	var follow []followed
	for _, p := range found {
		if ids, ok := procIDsOf(p.PID); ok && !ids.zombie {
			follow = append(follow, followed{p, ids.start})
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
		for _, f := range follow {
			if ids, ok := procIDsOf(f.PID); ok && !ids.zombie && ids.start == f.start &&
				!slices.ContainsFunc(left, func(p Found) bool { return p.PID == f.PID }) {
				left = append(left, f.Found)
			}
		}
		if len(left) == 0 && !anyAlive(groups) {
			return nil
		}
		if time.Now().After(deadline) {
			if killed {
				n := len(slices.DeleteFunc(left, onItsWay))
				if n == 0 {
					return nil // only exiting, or zombies in a group: none runs
				}
				return fmt.Errorf("%d processes still run after SIGKILL", n)
			}
			signal(left, syscall.SIGKILL)
			killed, deadline = true, time.Now().Add(2*time.Second)
		}
		time.Sleep(wait) // polling other processes' exit, which has no event to wait on
	}
}

// onItsWay reports whether p, a process found, is exiting (which may
// take a while, waiting for a file system) or a zombie.
func onItsWay(p Found) bool {
	ids, ok := procIDsOf(p.PID)
	return ok && (ids.zombie || ids.exiting)
}

func anyAlive(groups map[int]bool) bool {
	for g := range groups {
		if groupAlive(g) {
			return true
		}
	}
	return false
}
