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
	buf := make([]byte, size)
	var s taskScan
	for {
		n, rerr := io.ReadFull(r, buf)
		if done, err := s.scan(buf[:n], fn); done || err != nil {
			return err // the list is over, or fn stopped: the rest is not needed
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			if s.depth > 0 { // the program's object has begun
				return fmt.Errorf("%w (the file ends early)", errNoTasks)
			}
			return errNoTasks
		}
		if rerr != nil {
			return rerr
		}
	}
}

var (
	errNotObject = errors.New("a task is not a JSON object")
	errInvalid   = errors.New("not a program: invalid JSON")
)

// taskScan finds the elements of the "tasks" list of a program's JSON,
// given in pieces, one after the other: it keeps what it must know of
// the pieces before. It follows strings and nesting only, for the
// program's readers (scanTasks) and SplitProgram alike.
type taskScan struct {
	// split is set for SplitProgram, which keeps its own ways: other
	// text than a string or a list where a task should be is "a task is
	// not a JSON object"; outside the program's object, only a list or
	// an end out of place is a fault, other text is skipped, and an
	// object that ends with no tasks is followed by the next.
	split bool

	depth     int
	inStr     bool
	esc       bool
	expectKey bool   // the next string at depth 1 is a key
	inKey     bool   // the string being read is a key at depth 1
	keyStart  int    // where that key starts in the piece being read
	key       []byte // the last key read at depth 1
	inTasks   bool   // inside the tasks list
	inElem    bool   // inside an element of the tasks list
	elem      []byte // the element read so far, when it spans pieces

	off   int // where the next piece starts in the JSON
	open  int // where the tasks list's [ is in the JSON
	close int // where its ] is, once done
}

// scan reads the next piece of the JSON, calling fn with each element
// of the tasks list that ends in it: raw is a slice of chunk if the
// element is all in it, and valid only during the call. done is true
// when the list is over (s.close is set) or fn returned false; nothing
// more is to be read then, nor after an error.
func (s *taskScan) scan(chunk []byte, fn func(raw []byte) bool) (done bool, err error) {
	// This loop reads every byte of the program: what it needs at every
	// byte is in locals while it runs, kept in s at the end of the
	// piece; the rest, needed outside the tasks, stays in s.
	depth, inStr, esc, inTasks := s.depth, s.inStr, s.esc, s.inTasks
	elemStart := -1 // where the element starts in chunk, -1 if none
	if s.inElem {
		elemStart = 0 // went on from the piece before
	}
	s.keyStart = 0 // a key that went on from the piece before
	for i := 0; i < len(chunk); i++ {
		c := chunk[i]
		if inStr {
			if esc {
				esc = false
				continue
			}
			// Most of a program is strings: on to the next quote or
			// backslash, in a loop of its own.
			for c != '"' && c != '\\' && i+1 < len(chunk) {
				i++
				c = chunk[i]
			}
			switch c {
			case '\\':
				esc = true
			case '"':
				inStr = false
				if s.inKey {
					s.key = append(s.key, chunk[s.keyStart:i]...)
					s.inKey, s.expectKey = false, false
				}
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
		case '"':
			if inTasks && depth == 2 {
				return false, errNotObject
			}
			inStr = true
			if depth == 1 && s.expectKey {
				s.key, s.keyStart, s.inKey = s.key[:0], i+1, true
			}
		case '{', '[':
			switch {
			case depth == 0:
				if c != '{' {
					return false, errNoTasks
				}
				s.expectKey = true
			case depth == 1 && c == '[' && string(s.key) == "tasks":
				inTasks, s.open = true, s.off+i
			case inTasks && depth == 2:
				if c != '{' {
					return false, errNotObject
				}
				elemStart = i
			}
			depth++
		case '}', ']':
			depth--
			switch {
			case depth < 1: // the program's object ends, with no tasks
				if !s.split {
					return false, errNoTasks
				}
				if depth < 0 {
					return false, errInvalid
				}
			case inTasks && depth == 2 && elemStart >= 0:
				raw := chunk[elemStart : i+1]
				if len(s.elem) > 0 {
					s.elem = append(s.elem, raw...)
					raw = s.elem
				}
				s.elem, elemStart = s.elem[:0], -1
				if !fn(raw) {
					return true, nil
				}
			case inTasks && depth == 1:
				s.close = s.off + i
				return true, nil
			}
		case ',':
			if depth == 1 {
				s.expectKey = true
			}
		default:
			switch {
			case inTasks && depth == 2:
				// Between the tasks, anything but a comma (a number,
				// null, a colon) is not a program's JSON.
				if s.split {
					return false, errNotObject
				}
				return false, errInvalid
			case depth == 0 && !s.split:
				return false, errInvalid // before the program's object
			}
		}
	}
	if s.inKey {
		s.key = append(s.key, chunk[s.keyStart:]...)
	}
	if elemStart >= 0 {
		s.elem = append(s.elem, chunk[elemStart:]...)
	}
	s.depth, s.inStr, s.esc, s.inTasks = depth, inStr, esc, inTasks
	s.inElem = elemStart >= 0
	s.off += len(chunk)
	return false, nil
}
