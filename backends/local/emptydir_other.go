//go:build !linux

package local

import (
	"errors"
	"io"
	"os"
)

// isEmptyDir reports whether dir has no entries.
func isEmptyDir(dir string) (bool, error) {
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return false, err // a link a task put there is not empty: Cleanup sees to it
	}
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}
