package blobstage

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Files being written are named
//
//	.bmc-partial-<writer>-<pid>-<random>
//
// where <writer> stands for the process table the writer's pid belongs to
// and <pid> is the writer's process id. A writer killed mid-transfer (kill
// -9, a power cut) leaves its file behind; the first write into a
// directory in each process sweeps the directory of such files:
//
//   - a file of this process table whose writer is gone is removed at
//     once: no process will rename it;
//   - any other, but this process's own, is removed once it has not been
//     written for staleAfter: that of another process table (another
//     machine sharing the folder, another container), whose writer cannot
//     be asked about; one with a name bmc no longer writes; and one whose
//     pid a later process has taken.
//
// A writer keeps its file fresh as it writes, so no live writer's file,
// here or anywhere, is removed, unless it has stalled for a day: several
// bmc processes may upload into one store at once. Where a process's
// start time can be read (Linux), a file of this process table whose pid
// is taken is removed at once if that process started after the file was
// last written, and kept, however old, if it did not: the writer is
// alive. A pid that cannot be checked counts as alive.
const staleAfter = 24 * time.Hour

// writerID stands for the process table this process's pid is looked up
// in: on Linux its boot and pid namespace, since containers sharing a
// machine (and its hostname, with host networking) have their own pids;
// elsewhere the host name. It is "" when neither can be read.
var writerID = sync.OnceValue(func() string {
	var id string
	boot, berr := os.ReadFile("/proc/sys/kernel/random/boot_id")
	ns, nerr := os.Readlink("/proc/self/ns/pid")
	if berr == nil && nerr == nil {
		id = strings.TrimSpace(string(boot)) + "/" + ns
	} else if h, err := os.Hostname(); err == nil && h != "" {
		id = "host/" + h
	} else {
		return ""
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return strconv.FormatUint(h.Sum64()>>24, 36) // 40 bits: a short name
})

// createTemp is os.CreateTemp with a chosen mode and the name above:
// CreateTemp always uses 0600, and a file renamed into place should get
// the mode an ordinary create would have given it. It first sweeps dir.
func createTemp(dir string, perm fs.FileMode) (*os.File, error) {
	sweepOnce(dir)
	prefix := tempPrefix + writerID() + "-" + strconv.Itoa(os.Getpid()) + "-"
	for range 100 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("cannot create a temporary file in %s", dir)
}

// swept holds the directories this process has swept: once each, as a
// directory an upload writes thousands of files into would otherwise be
// read thousands of times.
var swept sync.Map

func sweepOnce(dir string) {
	if _, done := swept.LoadOrStore(dir, struct{}{}); !done {
		sweep(dir, time.Now())
	}
}

// sweep removes the files of writers gone from dir, by the rule above.
// It is best effort: a file it cannot look at or remove stays, and the
// write that follows goes ahead.
func sweep(dir string, now time.Time) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(1024)
		for _, name := range names {
			if strings.HasPrefix(name, tempPrefix) && abandoned(filepath.Join(dir, name), name, now) {
				_ = os.Remove(filepath.Join(dir, name))
			}
		}
		if err != nil {
			return
		}
	}
}

// Sweep removes the partial files of writers that are gone from every
// folder of the store, by the rule above, which keeps every file a live
// writer may still rename: for a run taken up again (bmc resume, or bmc
// cancel of a run whose bmc was killed), whose killed uploads left files
// in folders it may not write into again. Links are not followed. It is
// best effort, as the sweep before a write is: a folder it cannot read
// is passed over. It stops when ctx is done.
func (l *Local) Sweep(ctx context.Context) error {
	return sweepTree(ctx, l.root, time.Now())
}

func sweepTree(ctx context.Context, dir string, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil
	}
	var sub []string
	for {
		entries, err := f.ReadDir(1024)
		for _, e := range entries {
			switch name := e.Name(); {
			case e.IsDir():
				sub = append(sub, filepath.Join(dir, name))
			case strings.HasPrefix(name, tempPrefix) && abandoned(filepath.Join(dir, name), name, now):
				_ = os.Remove(filepath.Join(dir, name))
			}
		}
		if err != nil {
			break
		}
	}
	f.Close()
	swept.Store(dir, struct{}{}) // nothing for this process's next write to do here
	for _, d := range sub {
		if err := sweepTree(ctx, d, now); err != nil {
			return err
		}
	}
	return nil
}

// abandoned reports whether the partial file at path, named name, was
// left by a writer that is gone.
func abandoned(path, name string, now time.Time) bool {
	writer, pid, ok := parseTemp(name)
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	if ok && writer == writerID() && writer != "" {
		if pid == os.Getpid() {
			return false
		}
		if processGone(pid) {
			return true
		}
		// The pid is taken: by the writer, or by a process that started
		// after the writer was gone. Where the process's start is known,
		// that tells, whatever the file's age: a live writer's file stays
		// however long it has waited for data. A killed writer not yet
		// reaped is gone.
		if started, ok := processStart(pid); ok {
			return started.IsZero() || started.After(fi.ModTime().Add(startSlack))
		}
	}
	return now.Sub(fi.ModTime()) >= staleAfter
}

// startSlack is how much later than a partial file was last written a
// process with its writer's pid must have started to be taken for
// another: a process's start time is known to a second or so, and the
// clock may have been set since.
const startSlack = time.Minute

// parseTemp splits a partial file's name into its writer and pid.
func parseTemp(name string) (writer string, pid int, ok bool) {
	parts := strings.Split(strings.TrimPrefix(name, tempPrefix), "-")
	if len(parts) != 3 {
		return "", 0, false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return "", 0, false
	}
	return parts[0], pid, true
}
