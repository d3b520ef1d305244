//go:build !linux && !darwin

package emulator

import (
	"io/fs"
	"time"
)

// creationTime is a task file's creationTime: its modification time,
// where stat gives no better.
func creationTime(fi fs.FileInfo) time.Time { return fi.ModTime() }
