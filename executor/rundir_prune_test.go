package executor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newPruneRun makes a run directory with a task's files in it, and a
// symbolic link out of it to a file that is not the run's (an output in
// the local blob store).
func newPruneRun(t *testing.T, state, id string) (dir, outside string) {
	t.Helper()
	prog := compileSpec(t, groupSpec, nil)
	dir, err := CreateRun(state, newMeta(id, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), prog)
	if err != nil {
		t.Fatal(err)
	}
	testWrite(t, filepath.Join(dir, "tasks", "prep", "wd", "big.dat"), strings.Repeat("x", 64<<10))
	testWrite(t, filepath.Join(dir, "tasks", "prep", "stdout.txt"), "hello\n")
	outside = filepath.Join(state, "storage", "res", "out.txt")
	testWrite(t, outside, "the user's\n")
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(dir, "tasks", "prep", "wd", "res")); err != nil {
		t.Fatal(err)
	}
	return dir, outside
}

func TestRemoveRun(t *testing.T) {
	state := t.TempDir()
	dir, outside := newPruneRun(t, state, "w-260301120000-ab")
	keep, _ := newPruneRun(t, state, "w-260301120001-cd")
	checked := false
	err := RemoveRun(dir, func() error {
		checked = true
		// The lock is held while the run is checked and removed: a
		// resume that comes now finds the run in progress.
		if pid, held := LockHolder(dir); !held || pid != os.Getpid() {
			t.Errorf("lock holder %d, %v during the check", pid, held)
		}
		if _, err := Lock(dir); err == nil {
			t.Error("the run could be locked again during its removal")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Error("check was not called")
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run directory still there: %v", err)
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "the user's\n" {
		t.Errorf("a file a link in the run pointed to was touched: %q, %v", b, err)
	}
	ids, err := ListRunIDs(state)
	if err != nil || len(ids) != 1 || ids[0] != filepath.Base(keep) {
		t.Errorf("runs left: %v, %v; want only %s", ids, err, filepath.Base(keep))
	}
	if rs, err := Remnants(state); err != nil || len(rs) != 0 {
		t.Errorf("remnants %v, %v", rs, err)
	}
	// A resume of the run removed finds none.
	if _, err := Lock(dir); err == nil {
		t.Error("a removed run could be locked")
	}
}

// A run a bmc process drives is left alone, whole.
func TestRemoveRunInProgress(t *testing.T) {
	state := t.TempDir()
	prog := compileSpec(t, groupSpec, nil)
	dir, unlock, err := CreateRunLocked(state, newMeta("w-260301120000-ab", time.Now()), prog)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	err = RemoveRun(dir, func() error {
		t.Error("check called on a run in progress")
		return nil
	})
	if !errors.Is(err, ErrRunInProgress) {
		t.Fatalf("err = %v, want ErrRunInProgress", err)
	}
	if !strings.Contains(err.Error(), "in progress") {
		t.Errorf("message %q", err)
	}
	for _, f := range []string{MetaFile, ProgramFile, LockFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if pid, held := LockHolder(dir); !held || pid != os.Getpid() {
		t.Errorf("lock holder %d, %v: the driver's lock was disturbed", pid, held)
	}
}

// A check that refuses leaves the run whole, its lock free.
func TestRemoveRunCheckRefuses(t *testing.T) {
	state := t.TempDir()
	dir, _ := newPruneRun(t, state, "w-260301120000-ab")
	refused := errors.New("changed")
	if err := RemoveRun(dir, func() error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("err = %v", err)
	}
	if ids, _ := ListRunIDs(state); len(ids) != 1 {
		t.Errorf("runs %v", ids)
	}
	if _, held := LockHolder(dir); held {
		t.Error("lock still held")
	}
}

// A removal cut short between the rename and the end leaves a remnant no
// one takes for a run, which RemoveRemnant removes.
func TestRemnants(t *testing.T) {
	state := t.TempDir()
	dir, _ := newPruneRun(t, state, "w-260301120000-ab")
	gone := filepath.Join(RunsDir(state), ".w-260301120000-ab.removing")
	if err := os.Rename(dir, gone); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(gone, MetaFile))
	testMkdir(t, filepath.Join(RunsDir(state), ".removing")) // not a remnant: no id
	if ids, _ := ListRunIDs(state); len(ids) != 0 {
		t.Errorf("a remnant is listed as a run: %v", ids)
	}
	rs, err := Remnants(state)
	if err != nil || len(rs) != 1 || rs[0].ID != "w-260301120000-ab" || rs[0].Dir != gone {
		t.Fatalf("remnants %+v, %v", rs, err)
	}
	// Another removal at work on it is left to it.
	unlock, err := Lock(gone)
	if err != nil {
		t.Fatal(err)
	}
	if err := RemoveRemnant(rs[0]); !errors.Is(err, ErrRunInProgress) {
		t.Errorf("err = %v, want ErrRunInProgress", err)
	}
	unlock()
	if err := RemoveRemnant(rs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("remnant still there: %v", err)
	}
	if rs, _ := Remnants(state); len(rs) != 0 {
		t.Errorf("remnants %v", rs)
	}
}

func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	testWrite(t, filepath.Join(dir, "a", "one"), strings.Repeat("x", 100<<10))
	one := DiskUsage(dir)
	if one < 100<<10 {
		t.Fatalf("usage %d of a file of %d bytes", one, 100<<10)
	}
	// A second link to the file takes no more space.
	if err := os.Link(filepath.Join(dir, "a", "one"), filepath.Join(dir, "a", "again")); err != nil {
		t.Fatal(err)
	}
	if n := DiskUsage(dir); n != one {
		t.Errorf("usage %d with the file linked twice, %d once", n, one)
	}
	testWrite(t, filepath.Join(dir, "two"), strings.Repeat("y", 100<<10))
	if n := DiskUsage(dir); n < one+100<<10 {
		t.Errorf("usage %d with a second file of %d bytes, %d without", n, 100<<10, one)
	}
	// A link out of dir is not followed.
	other := t.TempDir()
	testWrite(t, filepath.Join(other, "big"), strings.Repeat("z", 1<<20))
	before := DiskUsage(dir)
	if err := os.Symlink(other, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if n := DiskUsage(dir); n >= before+1<<20 {
		t.Errorf("usage %d: a link out of the directory was followed", n)
	}
}
