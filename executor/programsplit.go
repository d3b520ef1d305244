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
	s := taskScan{split: true}
	done, err := s.scan(b, func(raw []byte) bool {
		tasks = append(tasks, raw) // b is one piece: raw is a slice of it
		return true
	})
	switch {
	case err != nil:
		return nil, nil, err
	case !done && s.inTasks:
		return nil, nil, errors.New("not a program: the list of tasks does not end")
	case !done:
		return nil, nil, errNoTasks
	}
	rest = make([]byte, 0, s.open+1+len(b)-s.close)
	rest = append(append(rest, b[:s.open+1]...), b[s.close:]...)
	return rest, tasks, nil
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
