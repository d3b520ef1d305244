package executor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A run can be found only once its creator holds its lock: a bmc cancel
// or resume that finds it then does not take it for an interrupted run.
func TestCreateRunLockedBeforeVisible(t *testing.T) {
	state := t.TempDir()
	prog := compileSpec(t, groupSpec, nil)
	meta := newMeta("w-260301120000-ab", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	dir := filepath.Join(RunsDir(state), meta.ID)
	checked := false
	writeRunFile = func(name string, b []byte, mode fs.FileMode) error {
		if strings.HasPrefix(filepath.Base(name), MetaFile) {
			if _, held := LockHolder(dir); !held {
				t.Errorf("%s written with the run's lock free", name)
			}
			checked = true
		}
		return os.WriteFile(name, b, mode)
	}
	t.Cleanup(func() { writeRunFile = os.WriteFile })
	dir, unlock, err := CreateRunLocked(state, meta, prog)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if !checked {
		t.Fatal("the meta data was not written through writeRunFile")
	}
	if pid, held := LockHolder(dir); !held || pid != os.Getpid() {
		t.Errorf("lock holder %d, %v; want this process", pid, held)
	}
	if found, err := FindRun(state, meta.ID); err != nil || found != dir {
		t.Errorf("FindRun = %q, %v; want %q", found, err, dir)
	}
}

// A run that cannot be written (a full disk) leaves no half-made run
// directory, and the error names the file.
func TestCreateRunWriteFails(t *testing.T) {
	for _, file := range []string{ProgramFile, MetaFile} {
		t.Run(file, func(t *testing.T) {
			state := t.TempDir()
			prog := compileSpec(t, groupSpec, nil)
			meta := newMeta("w-260301120000-ab", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			writeRunFile = func(name string, b []byte, mode fs.FileMode) error {
				if strings.HasPrefix(filepath.Base(name), file) {
					// As a full disk does: the file is made, and left empty.
					os.WriteFile(name, nil, mode)
					return &fs.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
				}
				return os.WriteFile(name, b, mode)
			}
			t.Cleanup(func() { writeRunFile = os.WriteFile })
			_, _, err := CreateRunLocked(state, meta, prog)
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("CreateRunLocked: %v, want no space left", err)
			}
			if !strings.Contains(err.Error(), filepath.Join(RunsDir(state), meta.ID, file)) {
				t.Errorf("%q does not name the file", err)
			}
			if ents, err := os.ReadDir(RunsDir(state)); err != nil || len(ents) != 0 {
				t.Errorf("runs directory after the failure: %v, %v; want it empty", ents, err)
			}
			if _, err := FindRun(state, "latest"); !errors.Is(err, ErrNoRun) {
				t.Errorf("FindRun latest: %v, want no run", err)
			}
		})
	}
}

// Damaged meta data is reported with the file it is in.
func TestReadMetaDamaged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, MetaFile)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMeta(dir); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadMeta of an empty %s: %v; want an error naming it", MetaFile, err)
	}
}
