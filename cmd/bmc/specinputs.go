package main

// What a resume tells of the run's surroundings as they were when it
// started (executor.Start): inputs beside the spec changed since, and a
// project that moved with its state directory.

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
)

// noteRunStart writes a new run's start record into its directory dir:
// where its state directory is, and the fingerprints of its inputs named
// by a path, from a spec in specDir. bmc run calls it once the run's
// directory is made, before any task runs; a resume (resuming) keeps the
// record of the run's start. A record that cannot be written is warned
// of: the run goes on, but resuming it cannot tell which inputs changed.
func noteRunStart(w io.Writer, dir, state, specDir string, prog *compiler.Program, resuming bool) {
	if resuming {
		return
	}
	if err := executor.WriteStart(dir, executor.NewStart(state, specDir, prog)); err != nil {
		fmt.Fprintf(w, "bmc: warning: %v: bmc resume cannot tell which inputs beside the spec change meanwhile\n", err)
	}
}

// maxInputWarnings is how many changed inputs a resume names, one line
// each; the rest are counted.
const maxInputWarnings = 10

// warnChangedInputs warns of each input named by a path that changed
// since the run in dir started, as its start record tells: tasks that
// succeeded in the first session used it as it was, tasks a resume runs
// use it as it is now, and one run mixes the two. prog is the run's program, done its tasks
// that succeeded, specDir where its spec is now; now, the spec compiled
// again (nil if it was not), tells where each input is written. The
// resume goes on: a script fixed to resume a run is such a change, made
// on purpose. A run with no record (started before bmc kept one) gets no
// warning.
func warnChangedInputs(w io.Writer, dir, id string, prog *compiler.Program, done map[string]bool, specDir string, now *compiler.Program) {
	s, ok, err := executor.ReadStart(dir)
	if err != nil {
		fmt.Fprintf(w, "bmc: warning: %v: which inputs beside the spec changed since run %s started is not known\n", err, id)
		return
	}
	if !ok || len(s.Inputs) == 0 {
		return
	}
	changes := s.Changes(specDir)
	if len(changes) == 0 {
		return
	}
	type users struct {
		ran, again []string
		finalize   bool
		pos        string
	}
	of := make(map[string]*users, len(changes))
	for _, c := range changes {
		of[c.From] = &users{}
	}
	for _, t := range prog.Tasks {
		for _, in := range t.Inputs {
			if u := of[in.From]; u != nil && in.Kind == compiler.InputFile {
				if done[t.ID] {
					u.ran = appendOnce(u.ran, t.ID)
				} else {
					u.again = appendOnce(u.again, t.ID)
				}
			}
		}
	}
	for _, in := range prog.Finalize.Inputs {
		if u := of[in.From]; u != nil && in.Kind == compiler.InputFile {
			u.finalize = true
		}
	}
	if now != nil {
		locate := func(i int, inputs []compiler.Input) {
			for k, in := range inputs {
				if u := of[in.From]; u != nil && u.pos == "" && in.Kind == compiler.InputFile {
					if pos, ok := now.InputPos(i, k); ok {
						u.pos = pos.String() + ": "
					}
				}
			}
		}
		for i := range now.Tasks {
			locate(i, now.Tasks[i].Inputs)
		}
		locate(-1, now.Finalize.Inputs)
	}
	for n, c := range changes {
		if n == maxInputWarnings {
			fmt.Fprintf(w, "bmc: warning: and %d more inputs changed since run %s started\n", len(changes)-n, id)
			break
		}
		u := of[c.From]
		again := ""
		switch {
		case len(u.again) > 0 && u.finalize:
			again = tasksList(u.again) + " and the finalize step"
		case len(u.again) > 0:
			again = tasksList(u.again)
		case u.finalize:
			again = "the finalize step"
		}
		// A task that succeeded may have done so in a session after the
		// change: it is not said to have used the input as it was.
		var who string
		if len(u.ran) > 0 {
			verb := "is"
			if len(u.ran) > 1 {
				verb = "are"
			}
			who = fmt.Sprintf("%s, which succeeded, %s not run again; ", tasksList(u.ran), verb)
		}
		if again != "" {
			who += fmt.Sprintf("bmc resume runs %s with it as it is now", again)
		} else {
			who += "bmc resume runs nothing else that uses it"
		}
		fmt.Fprintf(w, "bmc: warning: %sinput %s changed since run %s started (%s): %s\n", u.pos, terminalSafe(c.From), id, terminalSafe(c.What), who)
	}
}

func appendOnce(list []string, id string) []string {
	if n := len(list); n > 0 && list[n-1] == id {
		return list // a task naming the input twice
	}
	return append(list, id)
}

// runSpecPath is where a resume reads the run's spec, and the inputs
// beside it. A run whose state directory is not where it was when the
// run started moved with its project (or a copy of it): its spec is
// looked for at the same place in the project's new folder, and read
// there if it is there, which note says. If it is not, the spec is read
// where the run started; if it is in neither place, that is the error.
// A spec that was outside the project, and a run that did not move, are
// read where the run started.
func runSpecPath(dir, state string, meta executor.Meta) (spec, note string, err error) {
	from, to, moved := movedRun(dir, state, meta)
	if !moved {
		return meta.Spec, "", nil
	}
	rel, err := filepath.Rel(filepath.Dir(from), meta.Spec)
	if err != nil || !filepath.IsLocal(rel) {
		return meta.Spec, "", nil
	}
	here := filepath.Join(filepath.Dir(to), rel)
	if here == meta.Spec {
		return meta.Spec, "", nil
	}
	if isFile(here) {
		return here, fmt.Sprintf("run %s moved from %s to %s: its spec, and the inputs beside it, are read at %s", meta.ID, from, to, here), nil
	}
	if isFile(meta.Spec) {
		return meta.Spec, fmt.Sprintf("run %s moved from %s to %s, but its spec is not at %s: it is read where the run started, at %s", meta.ID, from, to, here, meta.Spec), nil
	}
	return "", "", &exitError{code: exitFailed, err: fmt.Errorf("run %s moved from %s to %s, and its spec is neither at %s, where the move puts it, nor at %s, where the run started", meta.ID, from, to, here, meta.Spec)}
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// movedRun tells whether the run in dir, found in the state directory
// state, has moved since it started: its start record, or the local
// store it recorded (for a run that predates the record, on the local
// store), names another state directory. from is that one, to the
// state directory now, both absolute. A run with neither record is
// taken not to have moved.
func movedRun(dir, state string, meta executor.Meta) (from, to string, moved bool) {
	if s, ok, _ := executor.ReadStart(dir); ok && s.StateDir != "" {
		from = s.StateDir
	} else if u, err := url.Parse(meta.Storage); err == nil && u.Scheme == "file" {
		// The local store is always the state directory's storage/.
		if store := filepath.FromSlash(u.Path); filepath.Base(store) == "storage" {
			from = filepath.Dir(store)
		}
	}
	if from == "" {
		return "", "", false
	}
	to, err := filepath.Abs(state)
	if err != nil {
		return "", "", false
	}
	if sameDir(from, to) {
		return "", "", false
	}
	return from, to, true
}

// sameDir reports whether the paths a and b name one folder: the same
// path, or another way to it (a link).
func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
