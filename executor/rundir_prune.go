package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrRunInProgress is what RemoveRun's error for a run that a bmc process
// drives is (errors.Is).
var ErrRunInProgress = errors.New("run in progress")

// inProgressError is Lock's error for a run whose lock is held, which
// says which process holds it.
type inProgressError struct{ err error }

func (e *inProgressError) Error() string        { return e.err.Error() }
func (e *inProgressError) Is(target error) bool { return target == ErrRunInProgress }

// removingSuffix ends the hidden name a run directory is given while it is
// removed: .<run-id>.removing, in the runs directory.
const removingSuffix = ".removing"

// RemoveRun removes a run directory whole, holding the run's lock
// throughout, unless a bmc process drives the run (ErrRunInProgress). A
// bmc resume or cancel of the run either took the lock first, and the run
// is left alone, or finds no run: never one with part of its files gone.
// check, called with the lock held, may still refuse: what it read of the
// run before it was locked may be out of date.
//
// The directory is renamed out of the way before its files are removed, so
// that a removal cut short (bmc killed) leaves no broken run, only a
// hidden directory that RemoveRemnant removes. RemoveRun never follows a
// symbolic link out of the run directory.
func RemoveRun(dir string, check func() error) error {
	dir = filepath.Clean(dir)
	id := filepath.Base(dir)
	unlock, err := Lock(dir)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return err // no lock file could be opened: no run here
		}
		return &inProgressError{err}
	}
	defer unlock()
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	gone := filepath.Join(filepath.Dir(dir), "."+id+removingSuffix)
	if err := os.Rename(dir, gone); err != nil {
		return fmt.Errorf("remove run %s: %w", id, err)
	}
	// Its meta data first: with it, the hidden directory would be listed
	// as a run until it is gone.
	if err := os.Remove(filepath.Join(gone, MetaFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove run %s: %w", id, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove run %s: %w", id, err)
	}
	return nil
}

// Remnant is what a removal of a run that was cut short left: a hidden
// directory in the runs directory, and the run's id.
type Remnant struct {
	Dir, ID string
}

// Remnants lists what removals of runs that were cut short left in a
// state directory. No run can be found in them (bmc runs, resume).
func Remnants(state string) ([]Remnant, error) {
	ents, err := os.ReadDir(RunsDir(state))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Remnant
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() && strings.HasPrefix(n, ".") && strings.HasSuffix(n, removingSuffix) && len(n) > 1+len(removingSuffix) {
			out = append(out, Remnant{Dir: filepath.Join(RunsDir(state), n), ID: n[1 : len(n)-len(removingSuffix)]})
		}
	}
	return out, nil
}

// RemoveRemnant removes what a removal of a run that was cut short left,
// unless another removal of it is at work (ErrRunInProgress).
func RemoveRemnant(r Remnant) error {
	unlock, err := Lock(r.Dir)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return err
		}
		return &inProgressError{fmt.Errorf("run %s is being removed by another bmc process", r.ID)}
	}
	defer unlock()
	if err := os.RemoveAll(r.Dir); err != nil {
		return fmt.Errorf("remove run %s: %w", r.ID, err)
	}
	return nil
}

// DiskUsage is the disk space the files under dir take, as du counts it
// (a file linked twice in it is counted once), or their sizes where the
// system does not say. What cannot be read is left out: the figure is for
// people.
func DiskUsage(dir string) int64 {
	var n int64
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			n += fi.Size()
			return nil
		}
		k := inode{uint64(st.Dev), uint64(st.Ino)}
		if st.Nlink > 1 {
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		n += int64(st.Blocks) * 512
		return nil
	})
	return n
}
