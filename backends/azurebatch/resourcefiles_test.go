package azurebatch

// A task's resourceFiles list is limited in size (RequestEntityTooLarge):
// a local directory staged as TreeLayout places it comes with one resource
// file per file mode and lands where the local backend puts it; a task
// still over the limit is refused before anything is submitted.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/planner"
)

var testStaging = blobstage.Location{Container: "bmc", Path: "staging/"}

// writeTree writes files (path -> content) below dir; a path ending in
// "*" is written executable, without the star.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, "*") {
			p, mode = strings.TrimSuffix(p, "*"), 0o755
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
}

// stageDir stages a local directory as a backend does: each file named by
// its content, then placed by TreeLayout when tree is set. blobs gets
// every blob written.
func stageDir(t testing.TB, dir string, tree bool, blobs map[blobstage.Location][]byte) []StagedFile {
	t.Helper()
	var files []StagedFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		loc := testStaging.Join("sha256/" + hex.EncodeToString(sum[:]))
		rel, _ := filepath.Rel(dir, p)
		if rel == "." { // a single file
			rel = ""
		}
		files = append(files, StagedFile{Rel: filepath.ToSlash(rel), Loc: loc, Mode: fi.Mode()})
		blobs[loc] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !tree {
		return files
	}
	out := TreeLayout(testStaging, files)
	for _, f := range out {
		if f.Rel == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Rel)))
		if err != nil {
			t.Fatal(err)
		}
		blobs[f.Loc] = b
	}
	return out
}

func TestTreeLayout(t *testing.T) {
	loc := func(s string) blobstage.Location { return testStaging.Join("sha256/" + s) }
	files := []StagedFile{
		{Rel: "sub/b.sh", Loc: loc("bb"), Mode: 0o755},
		{Rel: "a.txt", Loc: loc("aa"), Mode: 0o644},
		{Rel: "sub/c.txt", Loc: loc("cc"), Mode: 0o644},
	}
	got := TreeLayout(testStaging, files)
	if len(got) != 3 || got[0].Rel != "a.txt" || got[1].Rel != "sub/b.sh" || got[2].Rel != "sub/c.txt" {
		t.Fatalf("layout %+v: want the files in path order", got)
	}
	root := strings.TrimSuffix(got[0].Group.Path, "0644/")
	if !strings.HasPrefix(root, "staging/tree/") || len(root) != len("staging/tree/")+64+1 {
		t.Fatalf("group %s: want staging/tree/<sha256>/0644/", got[0].Group)
	}
	for _, f := range got {
		want := blobstage.Location{Container: "bmc", Path: root + fileMode(f.Mode) + "/"}
		if f.Group != want || f.Loc != want.Join(f.Rel) {
			t.Errorf("%s: group %s, loc %s; want %s and the file below it", f.Rel, f.Group, f.Loc, want)
		}
	}
	// The same tree in another order lands at the same place; a change
	// of content, mode or path anywhere moves all of it.
	slices.Reverse(files)
	if again := TreeLayout(testStaging, files); !cmp.Equal(again, got) {
		t.Errorf("the same tree placed differently:\n%v\n%v", again, got)
	}
	for name, edit := range map[string]func([]StagedFile){
		"content": func(fs []StagedFile) { fs[0].Loc = loc("changed") },
		"mode":    func(fs []StagedFile) { fs[1].Mode = 0o600 },
		"path":    func(fs []StagedFile) { fs[2].Rel = "renamed.txt" },
	} {
		changed := slices.Clone(files)
		edit(changed)
		if g := TreeLayout(testStaging, changed); strings.HasPrefix(g[0].Group.Path, root) {
			t.Errorf("a changed %s keeps the tree at %s", name, root)
		}
	}
	// A single file is no directory's.
	one := []StagedFile{{Loc: loc("aa"), Mode: 0o644}}
	if g := TreeLayout(testStaging, one); !cmp.Equal(g, one) {
		t.Errorf("a single file placed: %+v", g)
	}
	if g := TreeLayout(testStaging, nil); len(g) != 0 {
		t.Errorf("no files placed: %+v", g)
	}
}

// node stands in for a Batch node: it downloads a task's resource files
// from blobs into a fresh working directory as Batch does (a container
// resource file brings every blob under its prefix with its full name
// below filePath; fileMode applies to each file), then runs the task's
// command line there.
func node(t *testing.T, tk BatchTaskCreateOptions, blobs map[blobstage.Location][]byte) (wd string, out []byte, err error) {
	t.Helper()
	wd = t.TempDir()
	put := func(p string, b []byte, mode string) {
		full := filepath.Join(wd, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var m uint32 = 0o770
		if mode != "" {
			fmt.Sscanf(mode, "%o", &m)
		}
		if err := os.Chmod(full, os.FileMode(m)); err != nil {
			t.Fatal(err)
		}
	}
	locOf := func(raw string) blobstage.Location {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		c, p, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		p, err = url.PathUnescape(p)
		if err != nil {
			t.Fatal(err)
		}
		return blobstage.Location{Container: c, Path: p}
	}
	for _, rf := range tk.ResourceFiles {
		switch {
		case rf.HTTPURL != "":
			b, ok := blobs[locOf(rf.HTTPURL)]
			if !ok {
				t.Fatalf("%s: no blob %s", tk.ID, locOf(rf.HTTPURL))
			}
			put(rf.FilePath, b, rf.FileMode)
		case rf.StorageContainerURL != "":
			c := locOf(rf.StorageContainerURL).Container
			for l, b := range blobs {
				if l.Container == c && strings.HasPrefix(l.Path, rf.BlobPrefix) {
					put(filepath.Join(rf.FilePath, l.Path), b, rf.FileMode)
				}
			}
		}
	}
	argv, err := SplitCommandLine(tk.CommandLine)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = wd
	out, err = cmd.CombinedOutput()
	return wd, out, err
}

// listTree is every file below dir, with its mode, and every directory:
// "0644 a/b.txt = content", "dir a".
func listTree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			out = append(out, "dir "+rel)
			return nil
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%04o %s = %s", fi.Mode().Perm(), rel, b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

const dirInputSpec = `apiVersion: bmc/v1
kind: Workload
name: dirs
pool: {id: p}
tasks:
  - id: named
    inputs: [{from: data/d, path: d}]
    run: "true"
  - id: nested
    inputs: [{from: data/d, path: x/y}, {from: data/one.txt, path: x/one.txt}]
    command: ["true"]
  - id: here
    inputs: [{from: data/d, path: .}]
    run: "true"
  - id: empty
    inputs: [{from: data/empty, path: e}]
    run: "true"
  - id: default-path
    inputs: [{from: data/d}]
    run: "true"
`

// TestDirInputLayout: a local directory staged as TreeLayout places it
// comes with one resource file per file mode, and after the task's first
// lines its files are where the local backend puts them, with the same
// modes and contents, and nothing else is left in the working directory.
func TestDirInputLayout(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	specDir := t.TempDir()
	writeTree(t, filepath.Join(specDir, "data", "d"), map[string]string{
		"a.txt":              "A",
		"run.sh*":            "#!/bin/sh\necho hi\n",
		"sub/b.txt":          "B",
		"sub/deeper/c.sh*":   "C",
		"sub/it's a file.md": "quoted",
		".hidden":            "H",
	})
	writeTree(t, filepath.Join(specDir, "data"), map[string]string{"one.txt": "1"})
	if err := os.MkdirAll(filepath.Join(specDir, "data", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	blobs := map[blobstage.Location][]byte{}
	staged := map[string][]StagedFile{
		"data/d":       stageDir(t, filepath.Join(specDir, "data", "d"), true, blobs),
		"data/empty":   stageDir(t, filepath.Join(specDir, "data", "empty"), true, blobs),
		"data/one.txt": stageDir(t, filepath.Join(specDir, "data", "one.txt"), true, blobs),
	}
	if f := staged["data/one.txt"]; len(f) != 1 || f[0].Rel != "" {
		t.Fatalf("a single file staged as %+v", f)
	}
	prog := compile(t, dirInputSpec, nil)
	_, m := mapOne(t, dirInputSpec, fakeLocator{}, MapOptions{Staged: staged})
	for i, tk := range m.Tasks {
		t.Run(tk.ID, func(t *testing.T) {
			var containers int
			for _, rf := range tk.ResourceFiles {
				if rf.StorageContainerURL != "" {
					containers++
				}
			}
			want := 2 // one per mode: 0644 and 0755
			if tk.ID == "empty" {
				want = 0
			}
			if containers != want {
				t.Errorf("%d container resource files, want %d: %+v", containers, want, tk.ResourceFiles)
			}
			wd, out, err := node(t, tk, blobs)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			// The local backend copies each input into a working directory.
			local := t.TempDir()
			for _, in := range prog.Tasks[i].Inputs {
				if _, err := blobstage.CopyLocal(filepath.Join(specDir, in.From), filepath.Join(local, in.Path)); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(listTree(t, local), listTree(t, wd)); diff != "" {
				t.Errorf("working directory, local vs Batch (-local +batch):\n%s", diff)
			}
		})
	}
}

// bigDir writes n small files below dir, in subdirectories.
func bigDir(t testing.TB, dir string, n int) {
	t.Helper()
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("part-%02d/sample-%05d.fq", i%20, i)] = fmt.Sprint(i)
	}
	writeTree(t, dir, files)
}

const bigDirSpec = `apiVersion: bmc/v1
kind: Workload
name: big
pool: {id: p}
tasks:
  - id: reads
    inputs: [{from: data/reads, path: reads}, {from: data/ref.fa}]
    run: "true"
`

// TestDirInputScales: a directory of 3000 files staged as TreeLayout
// places it comes with one resource file, far under Batch's limit, and
// lands whole; staged file by file, it is more than Batch takes, and Map
// refuses the task, naming it and the input, before anything is created.
func TestDirInputScales(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	specDir := t.TempDir()
	bigDir(t, filepath.Join(specDir, "data", "reads"), 3000)
	writeTree(t, filepath.Join(specDir, "data"), map[string]string{"ref.fa": ">r\nACGT\n"})
	for _, tree := range []bool{true, false} {
		t.Run(fmt.Sprintf("tree=%v", tree), func(t *testing.T) {
			blobs := map[blobstage.Location][]byte{}
			staged := map[string][]StagedFile{
				"data/reads":  stageDir(t, filepath.Join(specDir, "data", "reads"), tree, blobs),
				"data/ref.fa": stageDir(t, filepath.Join(specDir, "data", "ref.fa"), tree, blobs),
			}
			prog := compile(t, bigDirSpec, nil)
			plan := planner.New(prog, Capabilities(prog.Pool), nil)
			run := &executor.RunInfo{ID: "big-261128000000-abc", Workload: prog.Name}
			m, err := Map(plan, run, fakeLocator{}, MapOptions{Staged: staged})
			if !tree {
				var re *ResourceFilesError
				if !errors.As(err, &re) || re.Task != "reads" || re.Input != "data/reads" || re.InputFiles != 3000 || re.Files != 3001 || re.Limit != MaxResourceFilesChars {
					t.Fatalf("Map = %+v, %v; want the task refused for data/reads", m, err)
				}
				if msg := err.Error(); !strings.Contains(msg, "RequestEntityTooLarge") || strings.Contains(msg, "SECRET") || strings.Contains(msg, "https://") {
					t.Errorf("error %q", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tk := m.Tasks[0]
			if len(tk.ResourceFiles) != 2 {
				t.Fatalf("%d resource files, want one for the directory and one for the file", len(tk.ResourceFiles))
			}
			if n := resourceFilesChars(tk.ResourceFiles); n > 1000 {
				t.Errorf("the resource files are %d characters", n)
			}
			wd, out, err := node(t, tk, blobs)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			local := t.TempDir()
			for _, in := range prog.Tasks[0].Inputs {
				if _, err := blobstage.CopyLocal(filepath.Join(specDir, in.From), filepath.Join(local, in.Path)); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(listTree(t, local), listTree(t, wd)); diff != "" {
				t.Errorf("working directory, local vs Batch (-local +batch):\n%s", diff)
			}
		})
	}
}

// TestDirInputStagedWrong: files that claim a group they are not below
// are an error, not a prefix that brings other blobs.
func TestDirInputStagedWrong(t *testing.T) {
	group := testStaging.Join("tree/abc/0644/")
	for name, f := range map[string]StagedFile{
		"not below": {Rel: "a.txt", Loc: testStaging.Join("sha256/aa"), Mode: 0o644, Group: group},
		"no rel":    {Loc: group.Join("a.txt"), Mode: 0o644, Group: group},
		"open":      {Rel: "a.txt", Loc: testStaging.Join("tree/abc/0644a.txt"), Mode: 0o644, Group: testStaging.Join("tree/abc/0644")},
	} {
		t.Run(name, func(t *testing.T) {
			prog := compile(t, dirInputSpec, nil)
			plan := planner.New(prog, Capabilities(prog.Pool), nil)
			staged := map[string][]StagedFile{"data/d": {f}, "data/one.txt": {{Loc: testStaging.Join("sha256/11"), Mode: 0o644}}, "data/empty": nil}
			if _, err := Map(plan, &executor.RunInfo{ID: "r"}, fakeLocator{}, MapOptions{Staged: staged}); err == nil || !strings.Contains(err.Error(), "input data/d") {
				t.Errorf("Map = %v", err)
			}
		})
	}
}

// manyInputs is a program whose tasks each read n blobs.
func manyInputs(tasks, n int) *compiler.Program {
	var ts []compiler.Task
	for k := range tasks {
		tk := compiler.Task{ID: fmt.Sprintf("sample-%d", k), Run: "true", Slots: 1}
		for i := range n {
			tk.Inputs = append(tk.Inputs, compiler.Input{Kind: compiler.InputBlob,
				From: fmt.Sprintf("az://reads/cohort-2026/batch-%03d/sample-%05d.fastq.gz", k, i), Path: fmt.Sprintf("in/%05d.fastq.gz", i)})
		}
		ts = append(ts, tk)
	}
	return checkProgram(ts...)
}

// TestCheckResourceFiles: bmc plan refuses a task whose resource files
// are more than Batch takes, naming the task and the input that brings
// the most; the tasks of a sweep sharing the input get one error.
func TestCheckResourceFiles(t *testing.T) {
	if errs := checksOf(planner.Error, Check(manyInputs(1, 20), CheckOptions{})); len(errs) != 0 {
		t.Errorf("20 inputs: %+v", errs)
	}
	// Many inputs, none bringing much: the error says so.
	prog := manyInputs(1, 200)
	prog.Tasks[0].Inputs = append(prog.Tasks[0].Inputs, compiler.Input{Kind: compiler.InputFile, From: "data/ref.fa", Path: "ref.fa"})
	errs := checksOf(planner.Error, Check(prog, CheckOptions{}))
	if len(errs) != 1 || errs[0].Task != "sample-0" || !strings.Contains(errs[0].Message, "its 201 resource files come to") ||
		!strings.Contains(errs[0].Message, "RequestEntityTooLarge") || !strings.Contains(errs[0].Message, "they come from 201 inputs") {
		t.Errorf("200 inputs: %+v", errs)
	}
	errs = checksOf(planner.Error, Check(manyInputs(5, 200), CheckOptions{}))
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "5 tasks (sample-0, sample-1, sample-2 and 2 more)") {
		t.Errorf("5 tasks of 200 inputs: %+v", errs)
	}
	// A sweep sharing its large input: one error for all.
	shared := manyInputs(4, 1)
	for i := range shared.Tasks {
		shared.Tasks[i].Inputs[0].From = "az://reads/shared.fastq.gz"
	}
	errs = checksOf(planner.Error, Check(shared, CheckOptions{ResourceFilesChars: 100}))
	if len(errs) != 1 || errs[0].Task != "" || !strings.Contains(errs[0].Message, "4 tasks (sample-0, sample-1, sample-2 and 1 more)") ||
		!strings.Contains(errs[0].Message, "input az://reads/shared.fastq.gz") {
		t.Errorf("a sweep: %+v", errs)
	}
	for _, c := range Check(manyInputs(1, 200), CheckOptions{}) {
		if strings.Contains(c.Message, "sig=") || strings.Contains(c.Message, "https://") {
			t.Errorf("a check quotes a URL: %s", c.Message)
		}
	}
}

// listing prints the working directory as the test compares it: each
// file and directory with its type and mode, then each file's SHA-256.
const listing = `find . -mindepth 1 -printf '%y %m %P\n' | LC_ALL=C sort
find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum`

// TestDirInputOnEmulator runs tasks with directory inputs on the
// emulator, staged in Azurite as TreeLayout places them: Batch's
// container resource files bring them, and each task's working directory
// is what the local backend makes of the same inputs. A task bringing a
// large directory file by file is refused, alone or in a collection,
// with RequestEntityTooLarge.
func TestDirInputOnEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Azurite")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	st, err := StorageFromConnectionString(azurite.Start(t), StorageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	specDir := t.TempDir()
	writeTree(t, filepath.Join(specDir, "data", "d"), map[string]string{
		"a.txt": "A", "run.sh*": "echo hi", "sub/b.txt": "B", "sub/deeper/c.sh*": "C", "sub/it's a file.md": "quoted", ".hidden": "H",
	})
	writeTree(t, filepath.Join(specDir, "data", "odd"), map[string]string{"a.txt": "A", "sub/dot.": "D", "x.": "X"})
	writeTree(t, filepath.Join(specDir, "data"), map[string]string{"one.txt": "1"})
	bigDir(t, filepath.Join(specDir, "data", "reads"), 300)
	if err := os.MkdirAll(filepath.Join(specDir, "data", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	staging := blobstage.Location{Container: "bmc", Path: "staging/"}
	stage := func(from string, tree bool) []StagedFile {
		t.Helper()
		src := filepath.Join(specDir, filepath.FromSlash(from))
		var files []StagedFile
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			loc, err := st.StageFile(ctx, staging, p)
			if err != nil {
				return err
			}
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			if rel == "." {
				rel = ""
			}
			files = append(files, StagedFile{Rel: filepath.ToSlash(rel), Loc: loc, Mode: fi.Mode()})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !tree {
			return files
		}
		files = TreeLayout(staging, files)
		for _, f := range files {
			if f.Rel == "" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(f.Rel)))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Put(ctx, f.Loc, b); err != nil {
				t.Fatal(err)
			}
		}
		return files
	}
	indented := "      " + strings.ReplaceAll(listing, "\n", "\n      ")
	spec := `apiVersion: bmc/v1
kind: Workload
name: dirs
pool: {id: p}
tasks:
  - id: named
    inputs: [{from: data/d, path: d}]
    run: |
` + indented + `
  - id: nested
    inputs: [{from: data/d, path: x/y}, {from: data/one.txt, path: x/one.txt}]
    command: [bash, -c, ` + strconvQuote(listing) + `]
  - id: here
    inputs: [{from: data/d, path: .}, {from: data/empty, path: e}]
    run: |
` + indented + `
  - id: reads
    inputs: [{from: data/reads}]
    run: |
` + indented + `
  - id: odd
    inputs: [{from: data/odd, path: o}]
    run: |
` + indented + `
`
	prog := compile(t, spec, nil)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "dirs-run", Workload: prog.Name}
	// Staged as a run stages them.
	be := NewBackend(BackendOptions{Storage: st, Staging: staging})
	staged := map[string][]StagedFile{}
	for _, from := range []string{"data/d", "data/one.txt", "data/empty", "data/reads", "data/odd"} {
		files, dirs, err := be.stageLocal(ctx, specDir, from)
		if err != nil {
			t.Fatal(err)
		}
		if len(dirs.Rels) > 0 {
			t.Fatalf("%s: empty directories %q", from, dirs.Rels)
		}
		staged[from] = files
	}
	if want := stage("data/d", true); !slices.EqualFunc(staged["data/d"], want, func(a, b StagedFile) bool { return a == b }) {
		t.Errorf("staged %+v, want %+v", staged["data/d"], want)
	}
	// Names a blob name cannot carry come alone, the rest as a tree.
	for _, f := range staged["data/odd"] {
		if alone := f.Group.Container == ""; alone != (f.Rel != "a.txt") {
			t.Errorf("data/odd: %s staged alone %v", f.Rel, alone)
		}
	}
	m, err := Map(plan, run, st, MapOptions{Staged: staged})
	if err != nil {
		t.Fatal(err)
	}

	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 4)
	if err := e.c.CreateJob(ctx, m.Job); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.AddTasks(ctx, m.Job.ID, m.Tasks, 1); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-tick.C:
		}
		c, err := e.c.GetTaskCounts(ctx, m.Job.ID)
		if err != nil {
			t.Fatal(err)
		}
		done = int(c.TaskCounts.Completed) == len(m.Tasks)
	}
	for i, pt := range prog.Tasks {
		t.Run(pt.ID, func(t *testing.T) {
			tk, err := e.c.GetTask(ctx, m.Job.ID, pt.ID)
			if err != nil {
				t.Fatal(err)
			}
			if x := tk.ExecutionInfo; x == nil || x.ExitCode == nil || *x.ExitCode != 0 {
				t.Fatalf("execution %+v", x)
			}
			sameWorkdir(t, e, m.Job.ID, prog.Tasks[i], specDir)
		})
	}

	// File by file, the large directory is more than Batch takes.
	staged["data/reads"] = stage("data/reads", false)
	m, err = Map(plan, &executor.RunInfo{ID: "dirs-files", Workload: prog.Name}, st, MapOptions{Staged: staged, ResourceFilesChars: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.c.CreateJob(ctx, m.Job); err != nil {
		t.Fatal(err)
	}
	res, err := e.c.AddTasks(ctx, m.Job.ID, m.Tasks, 1)
	var ae *AddTasksError
	if !errors.As(err, &ae) || len(res.Failures) != 1 || res.Failures[0].TaskID != "reads" ||
		!HasCode(res.Failures[0].Err, "RequestEntityTooLarge") || res.Added != len(m.Tasks)-1 {
		t.Errorf("AddTasks = %+v, %v; want reads refused with RequestEntityTooLarge", res, err)
	}
	ri := slices.IndexFunc(m.Tasks, func(tk BatchTaskCreateOptions) bool { return tk.ID == "reads" })
	err = e.c.AddTask(ctx, m.Job.ID, m.Tasks[ri])
	if !HasCode(err, "RequestEntityTooLarge") {
		t.Errorf("AddTask of reads = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "sig=") && !strings.Contains(err.Error(), "sig=REDACTED") {
		t.Errorf("the error carries a SAS: %v", err)
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestFakeStagedCountsGroups: bmc plan counts a local folder as the
// resource files a run stages it as: one per file mode, and one per file
// whose path a blob name cannot carry; a file, or a folder it cannot see,
// as one.
func TestFakeStagedCountsGroups(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "d"), map[string]string{
		"a.txt": "A", "sub/b.txt": "B", "run.sh*": "R", "tools/x.sh*": "X", `back\slash`: "S", "dot.": "D",
	})
	writeTree(t, dir, map[string]string{"one.txt": "1"})
	prog := &compiler.Program{Name: "w", Pool: &compiler.Pool{ID: "p"}, Tasks: []compiler.Task{{ID: "t", Run: "true", Inputs: []compiler.Input{
		{Kind: compiler.InputFile, From: "d", Path: "d"}, {Kind: compiler.InputFile, From: "one.txt", Path: "one.txt"},
		{Kind: compiler.InputFile, From: "missing", Path: "m"}}}}}
	got, _ := fakeStaged(prog, dir)
	groups, singles := map[string]bool{}, 0
	for _, f := range got["d"] {
		if f.Group.Container != "" {
			groups[f.Group.String()] = true
		} else {
			singles++
		}
	}
	if len(groups) != 2 || singles != 2 {
		t.Errorf("folder: %d groups, %d files alone; want 2 (0644, 0755) and 2 (a backslash, a final dot): %+v", len(groups), singles, got["d"])
	}
	if len(got["one.txt"]) != 1 || len(got["missing"]) != 1 {
		t.Errorf("file %+v, missing %+v", got["one.txt"], got["missing"])
	}
	if d, _ := fakeStaged(prog, ""); len(d["d"]) != 1 {
		t.Errorf("without the spec's directory: %+v", d)
	}
}

// TestTreeName: the paths a blob name carries as they are.
func TestTreeName(t *testing.T) {
	for rel, want := range map[string]bool{
		"a.txt": true, "sub/b.txt": true, ".hidden": true, "it's a file.md": true, "ü/ß": true,
		`back\slash`: false, "dot.": false, "dir./x": false, strings.Repeat("a", 769): false, strings.Repeat("a/", 201) + "x": false,
	} {
		if got := treeName(rel); got != want {
			t.Errorf("treeName(%q) = %v, want %v", rel, got, want)
		}
	}
}

// TestStageFileAtChanged: a file whose content is not what it was hashed
// as is not left under the name of that hash.
func TestStageFileAtChanged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Azurite")
	}
	st, err := StorageFromConnectionString(azurite.Start(t), StorageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := hashFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("new content"), 0o644); err != nil { // changed since
		t.Fatal(err)
	}
	loc := ContentLocation(blobstage.Location{Container: "bmc", Path: "staging/"}, sum)
	if err := st.StageFileAt(ctx, loc, p, sum); err == nil || !strings.Contains(err.Error(), "changed while it was being staged") {
		t.Fatalf("StageFileAt = %v", err)
	}
	if _, err := st.Get(ctx, loc); !errors.Is(err, blobstage.ErrNotFound) {
		t.Errorf("the blob named for the old content: %v, want not found", err)
	}
	// The file as hashed is staged.
	sum, _ = hashFile(p)
	loc = ContentLocation(blobstage.Location{Container: "bmc", Path: "staging/"}, sum)
	if err := st.StageFileAt(ctx, loc, p, sum); err != nil {
		t.Fatal(err)
	}
	if b, err := st.Get(ctx, loc); err != nil || string(b) != "new content" {
		t.Errorf("staged %q, %v", b, err)
	}
}

// TestStageBackslashName: a file name holding a backslash cannot reach a
// Batch node (it refuses such a filePath, and a blob name would read it
// as a directory): staging says so, naming the file.
func TestStageBackslashName(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "d"), map[string]string{"a.txt": "A", `sub/back\slash`: "S"})
	be := NewBackend(BackendOptions{})
	_, _, err := be.stageLocal(t.Context(), dir, "d")
	if err == nil || !strings.Contains(err.Error(), `back\slash: a file name holding a backslash cannot be brought to a Batch node`) {
		t.Errorf("stageLocal = %v", err)
	}
}

// sameWorkdir checks that a task's working directory on the emulator, as
// the listing its command printed to stdout shows it, is what the local
// backend makes of the same inputs; it returns the local listing.
func sameWorkdir(t *testing.T, e *emu, job string, task compiler.Task, specDir string) string {
	t.Helper()
	r, err := e.c.GetTaskFile(t.Context(), job, task.ID, "stdout.txt", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	local := t.TempDir()
	for _, in := range task.Inputs {
		if _, err := blobstage.CopyLocal(filepath.Join(specDir, in.From), filepath.Join(local, in.Path)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "-c", listing)
	cmd.Dir = local
	want, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(batch), "\n")); diff != "" {
		t.Errorf("working directory, local vs Batch (-local +batch):\n%s", diff)
	}
	return string(want)
}
