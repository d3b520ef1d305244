//go:build unix

package blobstage

import (
	"errors"
	"syscall"

	"github.com/bmc-dev/bmc/internal/procrun"
)

// processGone reports whether no process has the id pid. A process of
// another user (EPERM) or a zombie still counts as there.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// processStart is when the process pid started, where that can be told
// (Linux). A variable for tests.
var processStart = procrun.Started
