package executor

// Splitting a program's JSON into its tasks' JSON and the rest, for
// comparing a run's program with a spec compiled again task by task,
// byte for byte, without decoding 100,000 tasks that are the same.

import (
	"errors"

	"github.com/bmc-dev/bmc/compiler"
)

// SplitProgram splits the JSON of a program (a run's program.json, or a
// program encoded as bmc keeps it) into the JSON of each of its tasks,
// in order, and the rest: the program with an empty list of tasks, which
// decodes as the program less its tasks. The tasks' JSON are slices of
// b. Like the program's other readers, it follows strings and nesting
// only: what it returns is for a decoder to check.
func SplitProgram(b []byte) (rest []byte, tasks [][]byte, err error) {
	var (
		depth     int
		inStr     bool
		esc       bool
		expectKey bool
		keyStart  = -1
		key       []byte
		open      = -1 // where the tasks list's [ is
		elemStart = -1
	)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
				if keyStart >= 0 {
					key, keyStart, expectKey = b[keyStart:i], -1, false
				}
			}
			continue
		}
		switch c {
		case '"':
			if open >= 0 && depth == 2 {
				return nil, nil, errors.New("a task is not a JSON object")
			}
			inStr = true
			if depth == 1 && expectKey {
				keyStart = i + 1
			}
		case '{', '[':
			switch {
			case depth == 0:
				if c != '{' {
					return nil, nil, errNoTasks
				}
				expectKey = true
			case depth == 1 && c == '[' && string(key) == "tasks" && open < 0:
				open = i
			case open >= 0 && depth == 2:
				if c != '{' {
					return nil, nil, errors.New("a task is not a JSON object")
				}
				elemStart = i
			}
			depth++
		case '}', ']':
			depth--
			switch {
			case depth < 0:
				return nil, nil, errors.New("not a program: invalid JSON")
			case open >= 0 && depth == 2 && elemStart >= 0:
				tasks = append(tasks, b[elemStart:i+1])
				elemStart = -1
			case open >= 0 && depth == 1:
				rest = make([]byte, 0, open+1+len(b)-i)
				rest = append(append(rest, b[:open+1]...), b[i:]...)
				return rest, tasks, nil
			}
		case ',':
			if depth == 1 {
				expectKey = true
			}
		case ' ', '\t', '\n', '\r':
		default:
			// Between the tasks, anything but a comma (a number, null,
			// a colon) is not a program's JSON.
			if open >= 0 && depth == 2 {
				return nil, nil, errors.New("a task is not a JSON object")
			}
		}
	}
	if open >= 0 {
		return nil, nil, errors.New("not a program: the list of tasks does not end")
	}
	return nil, nil, errNoTasks
}

// DecodeProgram decodes a program's JSON as ReadProgram does, with its
// numbers kept as written.
func DecodeProgram(b []byte) (*compiler.Program, error) {
	var p compiler.Program
	if err := decodeNumbers(b, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// DecodeTask decodes a task's JSON as ReadProgram does.
func DecodeTask(b []byte) (*compiler.Task, error) {
	var t compiler.Task
	if err := decodeNumbers(b, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// TaskID is the id of the task whose JSON b is, decoded only if it is
// not written as bmc writes it.
func TaskID(b []byte) (string, error) { return taskID(b) }
