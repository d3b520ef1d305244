package local

import "golang.org/x/sys/unix"

// isEmptyDir reports whether dir has no entries, with one open and one
// read of the directory.
func isEmptyDir(dir string) (bool, error) {
	// Not through a link: a directory a task replaced with one is not
	// empty, and Cleanup sees to it.
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	var buf [512]byte
	for {
		n, err := unix.Getdents(fd, buf[:])
		if err != nil {
			return false, err
		}
		if n <= 0 {
			return true, nil
		}
		if _, _, names := unix.ParseDirent(buf[:n], -1, nil); len(names) > 0 {
			return false, nil // ParseDirent leaves out "." and ".."
		}
	}
}
