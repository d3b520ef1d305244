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
// folder (specDir) before anything runs, the tasks' and the finalize
// step's: each must be there, a file may not land on the working
// directory itself (path: ./), and two of a task's inputs may land on one
// path only if both are folders, which are merged. Otherwise the task
// would fail as it starts, maybe hours into the run, or an input would
// silently replace another.
//
// stat is os.Stat, or a stand-in for tests: the planner does no I/O of
// its own. Tasks in done are not checked, as they do not run again. A
// file missing for many tasks (a matrix group sharing one) is told once,
// naming the first of them.
//
// SpecInputs does not look into folders: SpecInputsWalk does.
func SpecInputs(prog *compiler.Program, done map[string]bool, specDir string, stat func(string) (fs.FileInfo, error)) []Check {
	return SpecInputsWalk(prog, done, specDir, stat, nil)
}

// SpecInputsWalk is SpecInputs looking into the folders among a task's
// inputs, with readDir (os.ReadDir, or a stand-in), where another of its
// spec-relative inputs lands among their files: a file two inputs would
// put at one path (two merged folders holding one file, a file landing
// on a folder's), or a file where a folder needs a folder, is an error
// too, which staging would otherwise find as the task starts. Each
// folder is read once, however many tasks name it; a nil readDir reads
// none.
func SpecInputsWalk(prog *compiler.Program, done map[string]bool, specDir string, stat func(string) (fs.FileInfo, error), readDir func(string) ([]fs.DirEntry, error)) []Check {
	var out []Check
	type seen struct {
		task  string
		input int // of task, 1 for its first
		n     int
		dir   bool
		err   error
	}
	files := map[string]*seen{}
	var order []string
	trees := map[string][]treeEntry{}
	for _, t := range inputSteps(prog, done) {
		type landing struct {
			from string
			dir  bool
		}
		var (
			landed map[string]landing
			spec   []specLanding
		)
		for k, in := range t.Inputs {
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
				s = &seen{task: t.ID, input: k + 1}
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
			if clean == "." && !s.dir {
				// Staging would rename the file onto the working
				// directory itself, and fail as the task starts.
				out = append(out, Check{Severity: Error, Task: t.ID, Input: k + 1, Message: fmt.Sprintf(
					"input %s is a file, and its path %s is the working directory itself: give it a file name (path: %s) or leave path out",
					in.From, in.Path, path.Base(filepath.ToSlash(in.From)))})
				continue
			}
			spec = append(spec, specLanding{from: in.From, path: clean, dir: s.dir})
			if first, dup := landed[clean]; dup {
				if !first.dir || !s.dir {
					out = append(out, Check{Severity: Error, Task: t.ID, Input: k + 1, Message: fmt.Sprintf(
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
		if readDir != nil && len(spec) > 1 {
			list := func(from string) []treeEntry {
				tree, ok := trees[from]
				if !ok {
					src := from
					if !filepath.IsAbs(src) {
						src = filepath.Join(specDir, filepath.FromSlash(src))
					}
					tree = walkTree(readDir, src, "")
					trees[from] = tree
				}
				return tree
			}
			for _, msg := range clashes(spec, list) {
				out = append(out, Check{Severity: Error, Task: t.ID, Message: msg})
			}
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
		out = append(out, Check{Severity: Error, Task: s.task, Input: s.input, Message: msg})
	}
	return out
}

// inputStep is a task, or the finalize step, with its inputs.
type inputStep struct {
	ID     string
	Inputs []compiler.Input
}

// inputSteps are the steps whose inputs are checked: the tasks not in
// done, and the finalize step, which runs every time, on a resume too.
func inputSteps(prog *compiler.Program, done map[string]bool) []inputStep {
	steps := make([]inputStep, 0, len(prog.Tasks)+1)
	for _, t := range prog.Tasks {
		if !done[t.ID] {
			steps = append(steps, inputStep{t.ID, t.Inputs})
		}
	}
	if f := &prog.Finalize; len(f.Inputs) > 0 {
		steps = append(steps, inputStep{compiler.FinalizeID, f.Inputs})
	}
	return steps
}

// SpecInputFolders checks what the folders among the spec-relative
// inputs hold, reading each once with readDir (os.ReadDir, or a
// stand-in) and looking at each symbolic link in them with stat (os.Stat,
// or a stand-in, which follows links). Staging, on either backend, copies
// or uploads a folder's regular files and folders, and a link to a file
// as that file; it fails the task as it starts on anything else:
//
//   - a link to a folder, which it does not follow: that keeps what a
//     task gets the same on both backends, a folder linked twice from
//     being staged twice, and a link out of the folder or around a loop
//     from taking anything with it. Such a folder is brought by an input
//     of its own in the link's stead, landing at the link's path;
//   - a link to nothing, or one that loops;
//   - a file that is not a regular file (a socket, a pipe, a device).
//
// Each input folder is told once, at its first task's input, naming the
// first such entry in name order and how many more there are. A folder
// SpecInputs finds missing or unreadable is left to it; tasks in done are
// not checked.
func SpecInputFolders(prog *compiler.Program, done map[string]bool, specDir string, stat func(string) (fs.FileInfo, error), readDir func(string) ([]fs.DirEntry, error)) []Check {
	var out []Check
	seen := map[string]bool{}
	for _, t := range inputSteps(prog, done) {
		for k, in := range t.Inputs {
			if in.Kind != compiler.InputFile || in.From == "" || seen[in.From] {
				continue
			}
			seen[in.From] = true
			src := in.From
			if !filepath.IsAbs(src) {
				src = filepath.Join(specDir, filepath.FromSlash(src))
			}
			if fi, err := stat(src); err != nil || !fi.IsDir() {
				continue
			}
			var first, why string
			n := 0
			walkUnstageable(readDir, stat, src, "", func(rel, reason string) {
				if n++; n == 1 {
					first, why = rel, reason
				}
			})
			if n == 0 {
				continue
			}
			msg := fmt.Sprintf("input %s holds %s, %s", in.From, first, why)
			if n > 1 {
				msg += fmt.Sprintf(" (and %d more that cannot be staged)", n-1)
			}
			if why == linkToFolder {
				msg += fmt.Sprintf(": replace the link with the folder itself, or remove it and bring the folder as an input of its own (from: <the folder>, path: %s)", path.Join(path.Clean(in.Path), first))
			}
			out = append(out, Check{Severity: Error, Task: t.ID, Input: k + 1, Message: msg})
		}
	}
	return out
}

const linkToFolder = "a symbolic link to a folder, which staging does not follow"

// walkUnstageable calls bad for each entry below the folder dir (rel
// below the input's), depth first in name order, that staging cannot
// bring, with why. Links are looked at, not followed. A folder that
// cannot be read is left out: staging says why.
func walkUnstageable(readDir func(string) ([]fs.DirEntry, error), stat func(string) (fs.FileInfo, error), dir, rel string, bad func(rel, why string)) {
	entries, err := readDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		r, p := path.Join(rel, e.Name()), filepath.Join(dir, e.Name())
		switch t := e.Type(); {
		case t.IsDir():
			walkUnstageable(readDir, stat, p, r, bad)
		case t&fs.ModeSymlink != 0:
			fi, err := stat(p)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				bad(r, "a symbolic link to nothing")
			case err != nil:
				bad(r, "a symbolic link that cannot be followed: "+statError(err))
			case fi.IsDir():
				bad(r, linkToFolder)
			case !fi.Mode().IsRegular():
				bad(r, "a symbolic link to something not a regular file, which staging cannot copy")
			}
		case !t.IsRegular():
			bad(r, "which is not a regular file or folder, and staging cannot copy it")
		}
	}
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

// specLanding is where a spec-relative input of a task lands.
type specLanding struct {
	from, path string
	dir        bool
}

// treeEntry is a file or folder below a folder input, by its
// slash-separated path below it.
type treeEntry struct {
	rel string
	dir bool
}

// walkTree lists the folder dir, rel below the input's, depth first in
// name order. A folder that cannot be read is left out: staging says
// why.
func walkTree(readDir func(string) ([]fs.DirEntry, error), dir, rel string) []treeEntry {
	entries, err := readDir(dir)
	if err != nil {
		return nil
	}
	var out []treeEntry
	for _, e := range entries {
		r := path.Join(rel, e.Name())
		out = append(out, treeEntry{rel: r, dir: e.IsDir()})
		if e.IsDir() {
			out = append(out, walkTree(readDir, filepath.Join(dir, e.Name()), r)...)
		}
	}
	return out
}

// clashes are the messages for a task's spec-relative inputs that would
// put a file where another puts one, or where another needs a folder:
// one for each pair of inputs, in the inputs' order. A folder is listed
// only when another input lands among its files; two inputs landing on
// one path not both folders are told by SpecInputs already.
func clashes(spec []specLanding, list func(from string) []treeEntry) []string {
	overlaps := func(i int) bool {
		for j, o := range spec {
			if j != i && (o.path == spec[i].path || within(o.path, spec[i].path) || within(spec[i].path, o.path)) {
				return true
			}
		}
		return false
	}
	type claim struct {
		i   int
		dir bool
	}
	type pair struct{ a, b int }
	type clash struct {
		path      string
		file, dir int // for a file where a folder is needed; -1 for two files
		more      int
	}
	claims := map[string]claim{}
	found := map[pair]*clash{}
	var order []pair
	for i, in := range spec {
		if !overlaps(i) {
			continue
		}
		var entries []treeEntry
		for p := path.Dir(in.path); p != "." && p != "/"; p = path.Dir(p) {
			entries = append(entries, treeEntry{rel: p, dir: true})
		}
		entries = append(entries, treeEntry{rel: in.path, dir: in.dir})
		if in.dir {
			for _, e := range list(in.from) {
				entries = append(entries, treeEntry{rel: path.Join(in.path, e.rel), dir: e.dir})
			}
		}
		for _, e := range entries {
			c, ok := claims[e.rel]
			if !ok {
				claims[e.rel] = claim{i: i, dir: e.dir}
				continue
			}
			if c.i == i || c.dir && e.dir {
				continue
			}
			if first := spec[c.i]; first.path == in.path && !(first.dir && in.dir) {
				continue // told already: both land on one path
			}
			k := pair{c.i, i}
			if f, ok := found[k]; ok {
				f.more++
				continue
			}
			f := &clash{path: e.rel, file: -1, dir: -1}
			switch {
			case !c.dir && e.dir:
				f.file, f.dir = c.i, i
			case c.dir && !e.dir:
				f.file, f.dir = i, c.i
			}
			found[k] = f
			order = append(order, k)
		}
	}
	var out []string
	for _, k := range order {
		f := found[k]
		a, b := spec[k.a].from, spec[k.b].from
		if f.file < 0 {
			more := ""
			if f.more > 0 {
				more = fmt.Sprintf(" (and %d more)", f.more)
			}
			out = append(out, fmt.Sprintf("inputs %s and %s both put a file at %s%s: one would replace the other (give each a path of its own)", a, b, f.path, more))
			continue
		}
		out = append(out, fmt.Sprintf("inputs %s and %s cannot both land: %s puts a file at %s, where %s needs a folder (give each a path of its own)",
			a, b, spec[f.file].from, f.path, spec[f.dir].from))
	}
	return out
}

// within reports whether p is below dir.
func within(p, dir string) bool {
	return dir == "." || strings.HasPrefix(p, dir+"/")
}
