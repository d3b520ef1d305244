package executor

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	noTasks    = "not a program: no list of tasks"
	endsEarly  = "not a program: no list of tasks (the file ends early)"
	notObject  = "a task is not a JSON object"
	invalid    = "not a program: invalid JSON"
	listNotEnd = "not a program: the list of tasks does not end"
)

// scanProgramCases are programs' JSON for the tasks scanner, each with
// the tasks in it and what scanTasks and SplitProgram say of it. The two
// differ only where their errors always have.
var scanProgramCases = []struct {
	name, text string
	tasks      []string
	rest       string // SplitProgram's, when it finds the list
	scanErr    string
	splitErr   string
}{
	{
		name:  "plain",
		text:  `{"apiVersion":"bmc/v1","tasks":[{"id":"a"},{"id":"b","run":"echo \"}]{[\" \\ done"}],"name":"w"}`,
		tasks: []string{`{"id":"a"}`, `{"id":"b","run":"echo \"}]{[\" \\ done"}`},
		rest:  `{"apiVersion":"bmc/v1","tasks":[],"name":"w"}`,
	},
	{
		name:  "tasks keys nested deeper",
		text:  `{"params":{"tasks":[{"id":"fake"}]},"x":[{"tasks":[{}]}],"labels":{"tasks":"[{\"id\":\"y\"}]"},"tasks":[{"id":"a","matrix":{"tasks":[{"id":"inner"}]}}]}`,
		tasks: []string{`{"id":"a","matrix":{"tasks":[{"id":"inner"}]}}`},
		rest:  `{"params":{"tasks":[{"id":"fake"}]},"x":[{"tasks":[{}]}],"labels":{"tasks":"[{\"id\":\"y\"}]"},"tasks":[]}`,
	},
	{
		name:  "tasks as a value, not a key",
		text:  `{"name":"tasks","x":["tasks",[{}]],"tasks":[{}]}`,
		tasks: []string{`{}`},
		rest:  `{"name":"tasks","x":["tasks",[{}]],"tasks":[]}`,
	},
	{
		name:  "keys with escapes",
		text:  `{"ta\"sks":[{"id":"no"}],"tasks\\":[{"id":"no"}],"\"tasks\"":[{}],"tasks":[{"id":"yes"}]}`,
		tasks: []string{`{"id":"yes"}`},
		rest:  `{"ta\"sks":[{"id":"no"}],"tasks\\":[{"id":"no"}],"\"tasks\"":[{}],"tasks":[]}`,
	},
	{
		name:  "escaped backslashes before quotes",
		text:  `{"tasks":[{"run":"a\\"},{"run":"\\\"]}"},{"run":"\\\\"}]}`,
		tasks: []string{`{"run":"a\\"}`, `{"run":"\\\"]}"}`, `{"run":"\\\\"}`},
		rest:  `{"tasks":[]}`,
	},
	{
		name: "empty list",
		text: `{"tasks":[],"finalize":{"run":"true"}}`,
		rest: `{"tasks":[],"finalize":{"run":"true"}}`,
	},
	{
		name:  "indented",
		text:  "{\n  \"tasks\" : [\n    {\"id\": \"a\"} ,\n\t{ }\r\n  ]\n}\n",
		tasks: []string{`{"id": "a"}`, `{ }`},
		rest:  "{\n  \"tasks\" : []\n}\n",
	},
	{
		name:  "what follows the list is not read",
		text:  `{"tasks":[{"id":"a"}],"x":[}}}`,
		tasks: []string{`{"id":"a"}`},
		rest:  `{"tasks":[],"x":[}}}`,
	},
	{name: "empty", text: ``, scanErr: noTasks, splitErr: noTasks},
	{name: "a list, not an object", text: `[{"id":"a"}]`, scanErr: noTasks, splitErr: noTasks},
	{name: "no tasks", text: `{"name":"w","x":[{"tasks":[{}]}]}`, scanErr: noTasks, splitErr: noTasks},
	{name: "tasks not a list", text: `{"tasks":{"id":"a"}}`, scanErr: noTasks, splitErr: noTasks},
	{name: "a task a string", text: `{"tasks":[{"id":"a"},"b"]}`, scanErr: notObject, splitErr: notObject},
	{name: "a task a list", text: `{"tasks":[[{}]]}`, scanErr: notObject, splitErr: notObject},
	{name: "a number between tasks", text: `{"tasks":[{"id":"a"} 7]}`, scanErr: invalid, splitErr: notObject},
	{name: "a colon between tasks", text: `{"tasks":[{"id":"a"}:{}]}`, scanErr: invalid, splitErr: notObject},
	{name: "null for a task", text: `{"tasks":[null]}`, scanErr: invalid, splitErr: notObject},
	{name: "the list does not end", text: `{"name":"x","tasks":[{"id":"a"},{"id":"b","run":"tr`, scanErr: endsEarly, splitErr: listNotEnd},
	{name: "the list ends early, a task whole", text: `{"tasks":[{"id":"a"},`, scanErr: endsEarly, splitErr: listNotEnd},
	{name: "ends before the list", text: `{"name":"x","tas`, scanErr: endsEarly, splitErr: noTasks},
}

// TestUnScanTasksSplitAgree: scanTasks, read in pieces of every size,
// and SplitProgram, given the whole, find the same tasks in the same
// programs, and the same faults.
func TestUnScanTasksSplitAgree(t *testing.T) {
	for _, tc := range scanProgramCases {
		t.Run(tc.name, func(t *testing.T) {
			text := []byte(tc.text)
			rest, tasks, err := SplitProgram(text)
			if msg := errText(err); msg != tc.splitErr {
				t.Errorf("SplitProgram: error %q, want %q", msg, tc.splitErr)
			}
			if err == nil {
				if string(rest) != tc.rest {
					t.Errorf("SplitProgram: rest %s, want %s", rest, tc.rest)
				}
				if d := cmp.Diff(tc.tasks, strs(tasks)); d != "" {
					t.Errorf("SplitProgram (-want +got):\n%s", d)
				}
				for i, raw := range tasks {
					if at := cap(text) - cap(raw); len(raw) == 0 || &text[at] != &raw[0] {
						t.Errorf("SplitProgram: task %d is not a slice of its input", i)
					}
				}
			}
			if (err == nil) != (tc.scanErr == "") {
				t.Errorf("SplitProgram says %v, scanTasks %q", err, tc.scanErr)
			}
			for size := 1; size <= len(text)+1; size++ {
				var got []string
				err := scanTasks(bytes.NewReader(text), size, func(raw []byte) bool {
					got = append(got, string(raw))
					return true
				})
				if msg := errText(err); msg != tc.scanErr {
					t.Fatalf("scanTasks, %d bytes at a time: error %q, want %q", size, msg, tc.scanErr)
				}
				if err == nil && !cmp.Equal(tc.tasks, got) {
					t.Fatalf("scanTasks, %d bytes at a time (-want +got):\n%s", size, cmp.Diff(tc.tasks, got))
				}
				// Stopped after the first task, it reads no more.
				if err == nil && len(tc.tasks) > 0 {
					got = nil
					err := scanTasks(bytes.NewReader(text), size, func(raw []byte) bool {
						got = append(got, string(raw))
						return false
					})
					if err != nil || !cmp.Equal(tc.tasks[:1], got) {
						t.Fatalf("scanTasks stopped, %d bytes at a time: %q, %v", size, got, err)
					}
				}
			}
		})
	}
}

// TestUnScanTasksListEndStops: once the list of tasks is over, scanTasks
// reads no more, and a fault past it is not its.
func TestUnScanTasksListEndStops(t *testing.T) {
	const list = `{"name":"w","tasks":[{"id":"a"},{"id":"b"}]`
	text := list + `,"finalize":{"run":"true"}}`
	for size := 1; size <= len(text)+1; size++ {
		var got []string
		r := &failAfter{r: strings.NewReader(text), n: len(list)}
		err := scanTasks(r, size, func(raw []byte) bool {
			got = append(got, string(raw))
			return true
		})
		if err != nil || len(got) != 2 {
			t.Fatalf("%d bytes at a time: %q, %v", size, got, err)
		}
	}
	// Before the list's end, the reader's fault is scanTasks's.
	r := &failAfter{r: strings.NewReader(text), n: len(list) - 1}
	if err := scanTasks(r, 4, func([]byte) bool { return true }); !errors.Is(err, errRead) {
		t.Errorf("a read failing in the list: %v", err)
	}
}

// TestUnScanOutsideObject: outside the program's object, where no
// program bmc writes has anything, each keeps its own ways: scanTasks
// refuses any text, SplitProgram skips it and reads the next object
// when the first ends with no tasks, for a decoder to refuse the rest.
func TestUnScanOutsideObject(t *testing.T) {
	for _, tc := range []struct{ text, scanErr, splitErr, rest string }{
		{text: `x{"tasks":[{}]}`, scanErr: invalid, rest: `x{"tasks":[]}`},
		{text: `{"a":1}{"tasks":[{}]}`, scanErr: noTasks, rest: `{"a":1}{"tasks":[]}`},
		{text: `"s"{"tasks":[{}]}`, rest: `"s"{"tasks":[]}`},
		{text: `}{"tasks":[{}]}`, scanErr: noTasks, splitErr: invalid},
		{text: "\x00\x00", scanErr: invalid, splitErr: noTasks},
	} {
		rest, _, err := SplitProgram([]byte(tc.text))
		if msg := errText(err); msg != tc.splitErr || string(rest) != tc.rest {
			t.Errorf("SplitProgram(%q) = %q, %q; want %q, %q", tc.text, rest, msg, tc.rest, tc.splitErr)
		}
		for size := 1; size <= len(tc.text)+1; size++ {
			err := scanTasks(strings.NewReader(tc.text), size, func([]byte) bool { return true })
			if msg := errText(err); msg != tc.scanErr {
				t.Fatalf("scanTasks(%q), %d bytes at a time: %q, want %q", tc.text, size, msg, tc.scanErr)
			}
		}
	}
}

// TestUnScanAwkwardAgree: on a program as bmc writes it, with a task
// longer than a read, both find the tasks a decoder finds.
func TestUnScanAwkwardAgree(t *testing.T) {
	b, _, err := awkwardProgram().RedactedJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	_, split, err := SplitProgram(b)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := DecodeProgram(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(split) != len(whole.Tasks) {
		t.Fatalf("SplitProgram: %d tasks, want %d", len(split), len(whole.Tasks))
	}
	for _, size := range []int{1, 2, 3, 7, 64, 4096, 1 << 20, len(b) - 1, len(b)} {
		var got []string
		if err := scanTasks(bytes.NewReader(b), size, func(raw []byte) bool {
			got = append(got, string(raw))
			return true
		}); err != nil {
			t.Fatalf("%d bytes at a time: %v", size, err)
		}
		if d := cmp.Diff(strs(split), got); d != "" {
			t.Fatalf("%d bytes at a time (-SplitProgram +scanTasks):\n%s", size, d)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func strs(b [][]byte) []string {
	var s []string
	for _, x := range b {
		s = append(s, string(x))
	}
	return s
}

var errRead = errors.New("read fails")

// failAfter reads n bytes of r, then fails.
type failAfter struct {
	r io.Reader
	n int
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errRead
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}
