package emulator

import (
	"io/fs"
	"syscall"
	"time"
)

// creationTime is a task file's creationTime: its birth time.
func creationTime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Birthtimespec.Sec, st.Birthtimespec.Nsec)
	}
	return fi.ModTime()
}
