package main

// Comparing a run's program with its spec compiled again, as bmc plan
// --run and bmc resume do. A sweep's program is tens of megabytes of
// JSON: decoding it, or encoding and decoding the spec's again, to
// compare them field by field takes seconds. Each task is compared by
// its JSON, byte for byte, as the run directory keeps it; only tasks
// whose JSON differs are decoded, to tell whether they differ in more
// than their form.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/redact"
)

// keptJSON is a program's JSON as a run directory keeps it, in pieces:
// the program less its tasks, decoded, and each task's JSON.
type keptJSON struct {
	rest  *compiler.Program
	tasks [][]byte
	ids   []string
	byID  map[string]int // made by index
}

// index is where each task is in k, by id.
func (k *keptJSON) index() map[string]int {
	if k.byID == nil {
		k.byID = make(map[string]int, len(k.ids))
		for i, id := range k.ids {
			k.byID[id] = i
		}
	}
	return k.byID
}

func splitKept(b []byte) (*keptJSON, error) {
	rest, tasks, err := executor.SplitProgram(b)
	if err != nil {
		return nil, err
	}
	k := &keptJSON{tasks: tasks, ids: make([]string, len(tasks))}
	if k.rest, err = executor.DecodeProgram(rest); err != nil {
		return nil, err
	}
	for i, raw := range tasks {
		if k.ids[i], err = executor.TaskID(raw); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// programCompare is a run's program (was, its kept JSON) compared with a
// program compiled now.
type programCompare struct {
	was *keptJSON
	now *compiler.Program
	// rest is now less its tasks and groups, as a run directory would
	// keep it.
	rest *compiler.Program
	// same is, for each task of was, the index in now of the task whose
	// JSON, as encoded, is that of was byte for byte, -1 if none is:
	// decoded, was's would be now's.
	same []int
	// diff is what tasksDiff says.
	diff string
}

// compareKept compares the run's program, whose JSON was is, with now.
func compareKept(was []byte, now *compiler.Program) (*programCompare, error) {
	k, err := splitKept(was)
	if err != nil {
		return nil, err
	}
	return compareSplit(k, now)
}

// compareSplit is compareKept of the run's program split.
func compareSplit(was *keptJSON, now *compiler.Program) (*programCompare, error) {
	c := &programCompare{was: was, now: now, same: make([]int, len(was.tasks))}
	for i := range c.same {
		c.same[i] = -1
	}
	// kept is, for each task of now whose JSON is not was's, its JSON
	// as a run directory would keep it.
	kept, err := c.keptTasks()
	if err != nil {
		return nil, err
	}
	before := was.index()
	seen := make([]bool, len(was.ids))
	var changed, added []string
	for j := range now.Tasks {
		id := now.Tasks[j].ID
		i, ok := before[id]
		if !ok {
			added = append(added, id)
			continue
		}
		seen[i] = true
		if c.same[i] == j || bytes.Equal(was.tasks[i], kept[j]) {
			continue
		}
		if !sameTaskJSON(was.tasks[i], kept[j]) {
			changed = append(changed, id)
		}
	}
	var removed []string
	for i, id := range was.ids {
		if !seen[i] {
			removed = append(removed, id)
		}
	}
	slices.Sort(removed)
	var what []string
	if len(changed) > 0 {
		what = append(what, "changes "+tasksList(changed))
	}
	if len(added) > 0 {
		what = append(what, "adds "+tasksList(added))
	}
	if len(removed) > 0 {
		what = append(what, "drops "+tasksList(removed))
	}
	if redactedText(was.rest.Finalize) != redactedText(c.rest.Finalize) {
		what = append(what, "changes the finalize step or callback")
	}
	c.diff = strings.Join(what, "; ")
	return c, nil
}

// keptTasks finds the tasks of now whose JSON, as encoded, is that of
// the task of was of the same id (c.same), and returns the JSON of the
// others, by their index in now, as a run directory would keep them
// (Program.RedactedJSON); it sets c.rest. Tasks are encoded on every
// CPU, each on its own, not as one text of tens of megabytes: what the
// run directory keeps of a task is then its JSON with secrets left out,
// which taken out again are as they were. A program with SecretParams,
// whose values are left out of all of it, is encoded whole.
func (c *programCompare) keptTasks() ([][]byte, error) {
	p, idx := c.now, c.was.index()
	secret := p.SecretParams()
	// The rest less its groups too, which are the tasks' (a sweep's
	// lists 100,000 ids), and compared with them.
	r := *p
	r.Tasks, r.Groups = []compiler.Task{}, nil
	b, _, err := r.RedactedJSONOf(secret, false)
	if err != nil {
		return nil, err
	}
	if c.rest, err = executor.DecodeProgram(b); err != nil {
		return nil, err
	}
	kept := make([][]byte, len(p.Tasks))
	if len(secret) > 0 {
		b, _, err := p.RedactedJSONOf(secret, false)
		if err != nil {
			return nil, err
		}
		_, tasks, err := executor.SplitProgram(b)
		if err != nil {
			return nil, err
		}
		if len(tasks) != len(p.Tasks) {
			return nil, errors.New("the program's tasks are not all encoded")
		}
		return tasks, nil
	}
	errs := make([]error, len(p.Tasks))
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(p.Tasks)/1000+1)
	for w := range workers {
		wg.Go(func() {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			for j := w; j < len(p.Tasks); j += workers {
				t := &p.Tasks[j]
				buf.Reset()
				if errs[j] = enc.Encode(t); errs[j] != nil {
					continue
				}
				// Encoded as the run's: the task holds no secret either.
				if i, ok := idx[t.ID]; ok && bytes.Equal(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), c.was.tasks[i]) {
					c.same[i] = j
					continue
				}
				b, _, err := redact.JSON(t, false)
				kept[j], errs[j] = bytes.TrimSuffix(b, []byte("\n")), err
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return kept, nil
}

// whole says how now differs from the run's program in any of it, as
// "changes task a; changes param n": its workload, its tasks and
// finalize step (diff), its params (by name: a value may be a secret),
// pool, packages, storage and the rest; "" if only in what is left out
// of a run directory.
func (c *programCompare) whole() string {
	was, now := c.was.rest, c.rest
	if was.Name != now.Name {
		return "is of workload " + now.Name
	}
	var what []string
	if c.diff != "" {
		what = append(what, c.diff)
	}
	var params []string
	for k := range maps.Keys(was.Params) {
		if _, ok := now.Params[k]; !ok {
			params = append(params, k)
		}
	}
	for k, v := range now.Params {
		if w, ok := was.Params[k]; !ok || redactedText(w) != redactedText(v) {
			params = append(params, k)
		}
	}
	if len(params) > 0 {
		slices.Sort(params)
		what = append(what, "changes param"+plural(len(params))+" "+strings.Join(params, ", "))
	}
	for _, f := range []struct {
		name     string
		was, now any
	}{
		{"the pool", was.Pool, now.Pool},
		{"the packages", was.Packages, now.Packages},
		{"the storage", was.Storage, now.Storage},
		{"the logs prefix", was.Logs, now.Logs},
		{"the labels", was.Labels, now.Labels},
		{"the description", was.Description, now.Description},
		{"the apiVersion", was.APIVersion, now.APIVersion},
	} {
		if redactedText(f.was) != redactedText(f.now) {
			what = append(what, "changes "+f.name)
		}
	}
	return strings.Join(what, "; ")
}

// sameTaskJSON reports whether two tasks' JSON, which differ, are the
// same task but for their hashes (which a new signature for the same URL
// changes, and nothing else) or their form: decoded, they read the same.
func sameTaskJSON(a, b []byte) bool {
	if x, ok := lessHash(a); ok {
		if y, ok := lessHash(b); ok && bytes.Equal(x, y) {
			return true
		}
	}
	ta, err := executor.DecodeTask(a)
	if err != nil {
		return false
	}
	tb, err := executor.DecodeTask(b)
	if err != nil {
		return false
	}
	return taskText(*ta) == taskText(*tb)
}

// lessHash is a task's JSON less its hash, which bmc writes last; ok is
// false when it is not written so.
func lessHash(b []byte) ([]byte, bool) {
	i := bytes.LastIndex(b, []byte(`,"hash":"`))
	if i < 0 {
		return nil, false
	}
	h := b[i+len(`,"hash":"`):]
	end := bytes.IndexAny(h, `"\`)
	if end < 0 || h[end] != '"' || string(h[end+1:]) != "}" {
		return nil, false
	}
	return b[:i], true
}

// program is the run's program, as ReadProgram would read it. A task
// whose JSON is that of now's (c.same) is now's, not decoded again:
// decoded, it would be the same.
func (c *programCompare) program() (*compiler.Program, error) {
	p := *c.was.rest
	if c.allSame() {
		p.Tasks = c.now.Tasks
		return &p, nil
	}
	p.Tasks = make([]compiler.Task, len(c.was.tasks))
	for i, raw := range c.was.tasks {
		if j := c.same[i]; j >= 0 {
			p.Tasks[i] = c.now.Tasks[j]
			continue
		}
		t, err := executor.DecodeTask(raw)
		if err != nil {
			return nil, err
		}
		p.Tasks[i] = *t
	}
	return &p, nil
}

// allSame reports whether each task of the run's program is now's, in
// its place.
func (c *programCompare) allSame() bool {
	if len(c.same) != len(c.now.Tasks) {
		return false
	}
	for i, j := range c.same {
		if j != i {
			return false
		}
	}
	return true
}

// readKept reads the JSON of the program the run in dir executes.
func readKept(dir string) ([]byte, error) {
	return os.ReadFile(filepath.Join(dir, executor.ProgramFile))
}

// tasksDiff says how program now differs from program was, "" if in no
// way a resume would run differently: tasks added, dropped or changed in
// any field (what they run, and also where their outputs go, what they
// wait for, their retries, timeout and slots), and the finalize step and
// callback. Secrets do not count: a run directory keeps none, and a new
// signature for the same URL changes nothing. was is as a run directory
// keeps it (compareKept, given its JSON, does not encode it again).
func tasksDiff(was, now *compiler.Program) string {
	b, err := keptEncoding(was)
	if err != nil {
		return ""
	}
	c, err := compareKept(b, now)
	if err != nil {
		return ""
	}
	return c.diff
}

// keptEncoding is p, as a run directory keeps it already, encoded as bmc
// writes it.
func keptEncoding(p *compiler.Program) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encode program: %w", err)
	}
	return buf.Bytes(), nil
}
