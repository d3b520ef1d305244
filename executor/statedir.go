package executor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// stateGitignore keeps a whole state directory out of git: it is usually
// made inside the repository the specs live in, and git add -A must not
// take in runs (logs, working directories) or the local blob store's
// outputs. Git reads "*" as everything here, the .gitignore too.
const stateGitignore = "# Made by bmc: runs and the local blob store are not for git.\n*\n"

// EnsureStateDir makes the state directory if it is not there, with a
// .gitignore that ignores all of it, unless it has a .gitignore already.
// A state directory made before bmc wrote one gets one too; but a
// directory that holds anything other than bmc's own (runs, storage, and
// emulator, where the README keeps the Batch emulator's data and account
// key) is someone's folder given as --state-dir, whose files git must
// still see, and gets none.
func EnsureStateDir(state string) error {
	ents, err := os.ReadDir(state)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(state, 0o755); err != nil {
			return fmt.Errorf("create state directory: %w", err)
		}
		ents = nil
	} else if err != nil {
		return fmt.Errorf("read state directory: %w", err)
	}
	for _, e := range ents {
		if n := e.Name(); n != "runs" && n != "storage" && n != "emulator" {
			return nil // a .gitignore already, or not bmc's alone
		}
	}
	path := filepath.Join(state, ".gitignore")
	// O_EXCL: two bmc processes making the state directory at once, or a
	// .gitignore made since it was read, leave the one that is there.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	_, err = f.WriteString(stateGitignore)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create state directory: write %s: %w", path, err)
	}
	return nil
}
