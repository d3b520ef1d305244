package emulator

import (
	"io/fs"
	"syscall"
	"time"
)

// creationTime is a task file's creationTime: Linux keeps no birth time in
// stat, so its inode change time stands in for it.
func creationTime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return fi.ModTime()
}
