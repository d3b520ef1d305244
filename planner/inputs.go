package planner

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/bmc-dev/bmc/compiler"
)

// SpecInputs checks the inputs named by a path relative to the spec's
// folder (specDir) before anything runs: each must be there, and two of
// a task's inputs may land on one path only if both are folders, which
// are merged. Otherwise the task would fail as it starts, maybe hours
// into the run, or an input would silently replace another.
//
// stat is os.Stat, or a stand-in for tests: the planner does no I/O of
// its own. Tasks in done are not checked, as they do not run again. A
// file missing for many tasks (a matrix group sharing one) is told once,
// naming the first of them.
func SpecInputs(prog *compiler.Program, done map[string]bool, specDir string, stat func(string) (fs.FileInfo, error)) []Check {
	var out []Check
	type seen struct {
		task string
		n    int
		dir  bool
		err  error
	}
	files := map[string]*seen{}
	var order []string
	for _, t := range prog.Tasks {
		if done[t.ID] {
			continue
		}
		type landing struct {
			from string
			dir  bool
		}
		var landed map[string]landing
		for _, in := range t.Inputs {
			if in.Kind == compiler.InputBlobPrefix {
				// A prefix lands as a folder: a file may not share its path.
				if landed == nil {
					landed = map[string]landing{}
				}
				if _, dup := landed[path.Clean(in.Path)]; !dup {
					landed[path.Clean(in.Path)] = landing{from: in.From, dir: true}
				}
				continue
			}
			if in.Kind != compiler.InputFile || in.From == "" {
				continue
			}
			s, ok := files[in.From]
			if !ok {
				src := in.From
				if !filepath.IsAbs(src) {
					src = filepath.Join(specDir, filepath.FromSlash(src))
				}
				s = &seen{task: t.ID}
				fi, err := stat(src)
				if err != nil {
					s.err = err
				} else {
					s.dir = fi.IsDir()
				}
				files[in.From] = s
				order = append(order, in.From)
			}
			s.n++
			if s.err != nil {
				continue
			}
			clean := path.Clean(in.Path)
			if first, dup := landed[clean]; dup {
				if !first.dir || !s.dir {
					out = append(out, Check{Severity: Error, Task: t.ID, Message: fmt.Sprintf(
						"inputs %s and %s both land on %s, and %s: one would replace the other (give each a path of its own)",
						first.from, in.From, in.Path, notBothFolders(first.from, first.dir, in.From, s.dir))})
				}
				continue
			}
			if landed == nil {
				landed = map[string]landing{}
			}
			landed[clean] = landing{from: in.From, dir: s.dir}
		}
	}
	for _, from := range order {
		s := files[from]
		if s.err == nil {
			continue
		}
		why := "cannot be read"
		if errors.Is(s.err, fs.ErrNotExist) {
			why = "is not there"
		}
		msg := fmt.Sprintf("input %s %s: %s", from, why, statError(s.err))
		if s.n > 1 {
			msg += fmt.Sprintf(" (needed by %d tasks)", s.n)
		}
		out = append(out, Check{Severity: Error, Task: s.task, Message: msg})
	}
	return out
}

// notBothFolders says which of two inputs landing on one path is a file.
func notBothFolders(a string, aDir bool, b string, bDir bool) string {
	switch {
	case !aDir && !bDir:
		return "both are files"
	case !aDir:
		return a + " is a file"
	default:
		return b + " is a file"
	}
}

// statError is a stat error's message: the path and the reason, as the
// operating system words them, without the "stat" operation name.
func statError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + strings.TrimSpace(pe.Err.Error())
	}
	return err.Error()
}
