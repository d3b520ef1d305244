package procrun

import (
	"bytes"
	"encoding/binary"
)

// parseProcArgs returns the environment from a macOS kern.procargs2
// buffer: a 32-bit argc, the executable's path, NUL padding, argc
// arguments, then the environment, each string NUL-terminated, the
// environment ending at an empty string (what follows is the kernel's own
// "apple" strings, not the environment). A buffer cut short yields what it
// holds.
func parseProcArgs(b []byte) [][]byte {
	if len(b) < 4 {
		return nil
	}
	argc := int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	next := func() ([]byte, bool) {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			s := b
			b = nil
			return s, len(s) > 0
		}
		s := b[:i]
		b = b[i+1:]
		return s, true
	}
	if _, ok := next(); !ok { // the executable's path
		return nil
	}
	for len(b) > 0 && b[0] == 0 { // padding
		b = b[1:]
	}
	for range argc {
		if _, ok := next(); !ok {
			return nil
		}
	}
	var env [][]byte
	for {
		s, ok := next()
		if !ok || len(s) == 0 {
			return env
		}
		env = append(env, s)
	}
}
