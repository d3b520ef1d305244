package executor

// A run's start record: where its state directory was, and a fingerprint
// of each input named by a path (beside the spec, or absolute), taken as
// the run started. A resume reads it to say which of those inputs have
// changed since: tasks that succeeded used them as they were, tasks run
// again use them as they are now, and one run would mix the two unsaid.
// The fingerprint is each file's size and modification time: reading a
// reference genome of gigabytes to hash it would cost every run more
// than its tasks may take.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/bmc-dev/bmc/compiler"
)

// StartFile is the run directory's start record. A run started before
// bmc kept one has none: nothing is compared then.
const StartFile = "start.json"

// MaxStartEntries caps the files and folder entries a start record
// fingerprints, all inputs together: a folder of a million files is not
// walked whole at every start. What lies beyond it (later inputs, and
// later entries of a big folder) is not compared, and the record counts
// it in Unrecorded.
const MaxStartEntries = 10000

// startEntries is MaxStartEntries; tests lower it.
var startEntries = MaxStartEntries

// Start is a run's start record.
type Start struct {
	// StateDir is the state directory's absolute path when the run
	// started: a run found elsewhere has moved with its project.
	StateDir string `json:"stateDir"`
	// Inputs are the path inputs of the tasks and the finalize step, each
	// once, in the program's order.
	Inputs []InputPrint `json:"inputs,omitempty"`
	// Unrecorded counts the inputs and folder entries left out for
	// MaxStartEntries (at least: a big folder is not read to its end).
	Unrecorded int `json:"unrecorded,omitempty"`
}

// InputPrint is an input's fingerprint: a file's size and modification
// time, or a folder's with those of the files and folders in it.
type InputPrint struct {
	From string `json:"from"`
	FilePrint
	// Entries are a folder's files and folders, below it, depth first in
	// name order, as many as MaxStartEntries left room for (Partial says
	// some were left out: of a folder too big, those the system listed
	// first). A resume compares these, and the folders' times, which
	// change as entries are added or removed.
	Entries []EntryPrint `json:"entries,omitempty"`
	Partial bool         `json:"partial,omitempty"`
}

// FilePrint is a file's size and modification time, or a folder's
// modification time, which changes as entries are added to it or removed.
type FilePrint struct {
	Dir   bool  `json:"dir,omitempty"`
	Size  int64 `json:"size,omitempty"`
	MTime int64 `json:"mtime"` // Unix nanoseconds
}

// EntryPrint is a file or folder in a folder input, by its slash
// separated path below the input.
type EntryPrint struct {
	Path string `json:"path"`
	FilePrint
}

func printOf(fi fs.FileInfo) FilePrint {
	p := FilePrint{Dir: fi.IsDir(), MTime: fi.ModTime().UnixNano()}
	if !p.Dir {
		p.Size = fi.Size()
	}
	return p
}

// NewStart takes the start record of a run of prog from a spec in
// specDir, with its state directory at state. It stats each path input
// once, and walks folders, up to MaxStartEntries in all; an input that
// cannot be read is left out (the plan's checks tell of it). A program
// with no path inputs costs a pass over its tasks' inputs, no more.
func NewStart(state, specDir string, prog *compiler.Program) *Start {
	s := &Start{StateDir: state}
	if abs, err := filepath.Abs(state); err == nil {
		s.StateDir = abs
	}
	room := startEntries
	seen := map[string]bool{}
	note := func(in compiler.Input) {
		if in.Kind != compiler.InputFile || in.From == "" || seen[in.From] {
			return
		}
		seen[in.From] = true
		if room == 0 {
			s.Unrecorded++
			return
		}
		src := inputPath(specDir, in.From)
		fi, err := os.Stat(src)
		if err != nil {
			return
		}
		ip := InputPrint{From: in.From, FilePrint: printOf(fi)}
		room--
		if ip.Dir {
			left := walkPrints(src, "", &room, &ip.Entries)
			ip.Partial = left > 0
			s.Unrecorded += left
		}
		s.Inputs = append(s.Inputs, ip)
	}
	for i := range prog.Tasks {
		for _, in := range prog.Tasks[i].Inputs {
			note(in)
		}
	}
	for _, in := range prog.Finalize.Inputs {
		note(in)
	}
	return s
}

// inputPath is where a path input is read: from as it is if absolute,
// else in the spec's folder.
func inputPath(specDir, from string) string {
	if filepath.IsAbs(from) {
		return from
	}
	return filepath.Join(specDir, filepath.FromSlash(from))
}

// walkPrints appends the prints of the folder dir's entries, rel below
// the input, depth first in name order, while room lasts (see
// readDirUpTo), and returns how many it left out that it saw (a folder
// left out counts as one). Links are followed, as staging follows them
// to files; a link to a folder is not walked, as staging refuses it.
func walkPrints(dir, rel string, room *int, out *[]EntryPrint) int {
	ents, more, err := readDirUpTo(dir, *room+1)
	if err != nil {
		return 0
	}
	left := 0
	if more {
		left++ // at least
	}
	for _, e := range ents {
		if *room == 0 {
			left++
			continue
		}
		r, p := path.Join(rel, e.Name()), filepath.Join(dir, e.Name())
		fi, err := os.Stat(p)
		if err != nil {
			continue // a link to nothing: the plan's checks tell of it
		}
		*room--
		*out = append(*out, EntryPrint{Path: r, FilePrint: printOf(fi)})
		if fi.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			left += walkPrints(p, r, room, out)
		}
	}
	return left
}

// readDirUpTo reads at most n entries of the folder dir, sorted by name;
// more says it holds others. A folder of a million files is not read
// whole for the first few: it gives those the system lists first.
func readDirUpTo(dir string, n int) (ents []fs.DirEntry, more bool, err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	ents, err = f.ReadDir(n)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	if len(ents) == n {
		if next, err := f.ReadDir(1); err == nil && len(next) > 0 {
			more = true
		}
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int {
		switch {
		case a.Name() < b.Name():
			return -1
		case a.Name() > b.Name():
			return 1
		}
		return 0
	})
	return ents, more, nil
}

// WriteStart writes a new run's start record into its directory.
func WriteStart(dir string, s *Start) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("write start record: %w", err)
	}
	if err := writeRunFile(filepath.Join(dir, StartFile), b, 0o644); err != nil {
		return fmt.Errorf("write start record: %w", err)
	}
	return nil
}

// ReadStart reads a run's start record; ok is false for a run that has
// none (started before bmc kept one).
func ReadStart(dir string) (s *Start, ok bool, err error) {
	path := filepath.Join(dir, StartFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	s = new(Start)
	if err := json.Unmarshal(b, s); err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	return s, true, nil
}

// InputChange is a path input that differs from its fingerprint.
type InputChange struct {
	From string
	// What says how, as "now 31 bytes, was 20".
	What string
}

// Changes are the recorded inputs that now differ from their prints, as
// read with the spec in specDir (where the run's spec now is): changed,
// or a file become a folder. A folder tells its first change and how
// many more it has. An input gone is left to the plan's checks, which
// stop a resume that needs it.
func (s *Start) Changes(specDir string) []InputChange {
	var out []InputChange
	for _, ip := range s.Inputs {
		src := inputPath(specDir, ip.From)
		fi, err := os.Stat(src)
		if err != nil {
			continue // gone or unreadable: the plan's checks say so
		}
		now := printOf(fi)
		switch {
		case now.Dir && !ip.Dir:
			out = append(out, InputChange{From: ip.From, What: "a file then, it is now a folder"})
		case !now.Dir && ip.Dir:
			out = append(out, InputChange{From: ip.From, What: "a folder then, it is now a file"})
		case !now.Dir:
			if what := fileChange(now, ip.FilePrint); what != "" {
				out = append(out, InputChange{From: ip.From, What: what})
			}
		default:
			if what := folderChange(src, now, ip); what != "" {
				out = append(out, InputChange{From: ip.From, What: what})
			}
		}
	}
	return out
}

// fileChange says how a file differs from its print, "" if not.
func fileChange(now, was FilePrint) string {
	switch {
	case now.Size != was.Size:
		return fmt.Sprintf("now %d bytes, was %d", now.Size, was.Size)
	case now.MTime != was.MTime:
		return "modified " + time.Unix(0, now.MTime).UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return ""
}

// folderChange says how the folder src (now, as stat tells) differs
// from its print: its first change, in the print's order, and how many
// more there are; "" if none.
func folderChange(src string, now FilePrint, ip InputPrint) string {
	// A file saved anew (written aside, then renamed) changes its folder
	// too, and is better told by its own name: folders come last.
	var files, folders []string
	for _, e := range ip.Entries {
		fi, err := os.Stat(filepath.Join(src, filepath.FromSlash(e.Path)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			files = append(files, e.Path+" is gone")
		case err != nil:
		case fi.IsDir() && !e.Dir:
			files = append(files, e.Path+" is now a folder")
		case !fi.IsDir() && e.Dir:
			files = append(files, e.Path+" is now a file")
		case e.Dir && fi.ModTime().UnixNano() != e.MTime:
			folders = append(folders, "files were added to "+e.Path+", removed or replaced")
		case !e.Dir:
			if what := fileChange(printOf(fi), e.FilePrint); what != "" {
				files = append(files, e.Path+" "+what)
			}
		}
	}
	if now.MTime != ip.MTime {
		folders = append(folders, "files were added to it, removed or replaced")
	}
	all := append(files, folders...)
	switch len(all) {
	case 0:
		return ""
	case 1:
		return all[0]
	case 2:
		return all[0] + ", and 1 more change"
	}
	return fmt.Sprintf("%s, and %d more changes", all[0], len(all)-1)
}
