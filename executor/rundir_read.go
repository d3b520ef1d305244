package executor

// Reading a run's program without decoding it whole. The program of a
// sweep of 100,000 tasks is tens of megabytes of JSON, and decoding it
// takes seconds and hundreds of megabytes: bmc logs needs one of its
// tasks, bmc status their ids, bmc runs their number. These read the
// file once, in pieces, following only the structure of its JSON, and
// decode no more than the tasks asked for.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bmc-dev/bmc/compiler"
)

// ReadTask reads one task of the program a run executes. ok is false
// when the program has no task of that id.
func ReadTask(dir, id string) (t *compiler.Task, ok bool, err error) {
	path := filepath.Join(dir, ProgramFile)
	var derr error
	err = eachTaskJSON(path, func(raw []byte) bool {
		if tid, ok := plainTaskID(raw); ok && string(tid) != id {
			return true
		}
		if tid, terr := taskID(raw); terr != nil || tid != id {
			derr = terr
			return derr == nil
		}
		t = new(compiler.Task)
		derr = decodeNumbers(raw, t)
		return false
	})
	if err == nil && derr != nil {
		err = fmt.Errorf("read %s: %w", path, derr)
	}
	if err != nil {
		return nil, false, err
	}
	return t, t != nil, nil
}

// ReadTaskIDs reads the ids of the tasks of the program a run executes,
// in the program's order.
func ReadTaskIDs(dir string) ([]string, error) {
	path := filepath.Join(dir, ProgramFile)
	var (
		ids  []string
		derr error
	)
	err := eachTaskJSON(path, func(raw []byte) bool {
		var id string
		id, derr = taskID(raw)
		ids = append(ids, id)
		return derr == nil
	})
	if err == nil && derr != nil {
		err = fmt.Errorf("read %s: %w", path, derr)
	}
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// CountTasks counts the tasks of the program a run executes.
func CountTasks(dir string) (int, error) {
	path := filepath.Join(dir, ProgramFile)
	n := 0
	if err := eachTaskJSON(path, func([]byte) bool { n++; return true }); err != nil {
		return 0, err
	}
	return n, nil
}

// taskID is the id of the task whose JSON raw is.
func taskID(raw []byte) (string, error) {
	if id, ok := plainTaskID(raw); ok {
		return string(id), nil
	}
	var t struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", err
	}
	return t.ID, nil
}

// plainTaskID is the id of the task whose JSON raw is, as bmc writes it:
// first, as a plain string. ok is false for anything else, which is for
// the decoder to read.
func plainTaskID(raw []byte) (id []byte, ok bool) {
	rest, ok := bytes.CutPrefix(raw, []byte(`{"id":"`))
	if !ok {
		return nil, false
	}
	for i, c := range rest {
		if c == '"' {
			return rest[:i], true
		}
		if c < 0x20 || c == '\\' || c >= 0x80 {
			break // an escape, or text the decoder may read otherwise
		}
	}
	return nil, false
}

// errNoTasks is the error of a program in which no list of tasks is found.
var errNoTasks = errors.New("not a program: no list of tasks")

// eachTaskJSON calls fn with the JSON of each element of the "tasks" list
// of the program at path, in order, until fn returns false. It follows
// strings and nesting only, and checks no more of the JSON than that:
// what is read of a task is decoded by the caller, which finds any fault
// in it. raw is valid only during the call.
func eachTaskJSON(path string, fn func(raw []byte) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err // says the path
	}
	defer f.Close()
	if err := scanTasks(f, 256<<10, fn); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// scanTasks is eachTaskJSON on r, read size bytes at a time.
func scanTasks(r io.Reader, size int, fn func(raw []byte) bool) error {
	var (
		buf       = make([]byte, size)
		depth     int
		inStr     bool
		esc       bool
		started   bool   // the top-level object has begun
		expectKey bool   // the next string at depth 1 is a key
		inKey     bool   // the string being read is a key at depth 1
		keyStart  int    // where the key being read starts in buf
		key       []byte // the last key read at depth 1
		inTasks   bool   // inside the tasks list
		elem      []byte // the element read so far, when it spans reads
		elemStart = -1   // where the element starts in buf, -1 if none
	)
	for {
		n, rerr := io.ReadFull(r, buf)
		chunk := buf[:n]
		keyStart = 0 // a key that went on from the read before
		if elemStart >= 0 && n > 0 {
			elemStart = 0 // went on from the read before
		}
		for i := 0; i < len(chunk); i++ {
			c := chunk[i]
			if inStr {
				switch {
				case esc:
					esc = false
				case c == '\\':
					esc = true
				case c == '"':
					inStr = false
					if inKey {
						key = append(key, chunk[keyStart:i]...)
						inKey, expectKey = false, false
					}
				}
				continue
			}
			switch c {
			case ' ', '\t', '\n', '\r':
			case '"':
				if inTasks && depth == 2 {
					return errors.New("a task is not a JSON object")
				}
				inStr = true
				if depth == 1 && expectKey {
					key, keyStart, inKey = key[:0], i+1, true
				}
			case '{', '[':
				if !started {
					if c != '{' {
						return errNoTasks
					}
					started, expectKey = true, true
					depth++
					continue
				}
				if depth == 1 && c == '[' && string(key) == "tasks" {
					inTasks = true
				} else if inTasks && depth == 2 {
					if c != '{' {
						return errors.New("a task is not a JSON object")
					}
					elemStart = i
				}
				depth++
			case '}', ']':
				depth--
				switch {
				case depth < 1:
					return errNoTasks
				case inTasks && depth == 2 && elemStart >= 0:
					var raw []byte
					if len(elem) > 0 {
						elem = append(elem, chunk[:i+1]...)
						raw = elem
					} else {
						raw = chunk[elemStart : i+1]
					}
					elem, elemStart = elem[:0], -1
					if !fn(raw) {
						return nil
					}
				case inTasks && depth == 1:
					return nil // the list is over: the rest is not needed
				}
			case ',':
				if depth == 1 {
					expectKey = true
				}
			default:
				if !started || inTasks && depth == 2 {
					return errors.New("not a program: invalid JSON")
				}
			}
		}
		if inKey {
			key = append(key, chunk[keyStart:]...)
		}
		if elemStart >= 0 {
			elem = append(elem, chunk[elemStart:]...)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			if started {
				return fmt.Errorf("%w (the file ends early)", errNoTasks)
			}
			return errNoTasks
		}
		if rerr != nil {
			return rerr
		}
	}
}
