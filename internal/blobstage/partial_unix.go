//go:build unix

package blobstage

import (
	"errors"
	"syscall"
)

// processGone reports whether no process has the id pid. A process of
// another user (EPERM) or a zombie still counts as there.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
