package azurebatch

// Empty directories of a local directory input: blob storage holds files
// only, so no resource file brings them, and the task's first lines make
// them where the local backend's copy of the directory has them, named in
// the command line when they are few, read from a staged list otherwise.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/internal/testfs"
	"github.com/bmc-dev/bmc/planner"
)

// dirs marks paths as directories, for testfs.MkFiles.
func dirs(paths ...string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = p + "/"
	}
	return out
}

// manyDirs are n empty directories whose names together are more than a
// command line should carry.
func manyDirs(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("results/sample-%04d/an-output-directory-the-tool-expects", i))
	}
	return out
}

// stageEmptyDirs finds a directory's empty directories as stageLocal does
// and stages their list in blobs.
func stageEmptyDirs(t testing.TB, dir string, blobs map[blobstage.Location][]byte) StagedDirs {
	t.Helper()
	var e emptyDirs
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		e.add(filepath.ToSlash(rel), d.IsDir())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d := StagedDirs{Rels: e.rels()}
	if len(d.Rels) > 0 {
		list := dirList(d.Rels)
		sum := sha256.Sum256(list)
		d.List = testStaging.Join("sha256/" + hex.EncodeToString(sum[:]))
		blobs[d.List] = list
	}
	return d
}

func TestEmptyDirsFound(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.txt": "A", "sub/b.txt": "B"})
	testfs.MkFiles(t, dir, dirs("out", "deep/er/est", "with space", "sub/empty", "sub/full/x")...)
	writeTree(t, dir, map[string]string{"sub/full/x/c.txt": "C"})
	got := stageEmptyDirs(t, dir, map[blobstage.Location][]byte{}).Rels
	want := []string{"deep/er/est", "out", "sub/empty", "with space"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("empty directories (-want +got):\n%s", diff)
	}
	if got := stageEmptyDirs(t, t.TempDir(), map[blobstage.Location][]byte{}).Rels; len(got) != 0 {
		t.Errorf("an empty input: %q, want none (the input itself is made)", got)
	}
}

// TestMakeDirsCommandLine: the command that makes the empty directories,
// as the task's command line carries it, quoted for names with spaces and
// quotes; too many or too odd for the command line, they are read from
// their list, which a resource file brings; without a list that is an
// error.
func TestMakeDirsCommandLine(t *testing.T) {
	list := testStaging.Join("sha256/abc")
	for _, tc := range []struct {
		name string
		dst  string
		dirs StagedDirs
		want string // the script; "" for an error
		rf   bool   // the list comes as a resource file
	}{
		{"plain", "d", StagedDirs{Rels: []string{"out", "deep/er/est"}, List: list}, `mkdir -p -- 'd/out' 'd/deep/er/est'`, false},
		{"here", ".", StagedDirs{Rels: []string{"out"}}, `mkdir -p -- 'out'`, false},
		{"quoted", "in put", StagedDirs{Rels: []string{"with space", "it's", "-n", "a\nb"}, List: list},
			`mkdir -p -- 'in put/with space' 'in put/it'\''s' 'in put/-n' 'in put/a` + "\n" + `b'`, false},
		{"many", "d", StagedDirs{Rels: manyDirs(100), List: list},
			`while IFS= read -r -d '' bmc_dir; do mkdir -p -- 'd'/"$bmc_dir"; done < '.bmc-in/3.dirs'` + "\nunset bmc_dir", true},
		{"not utf-8", "d", StagedDirs{Rels: []string{"ok", "bad\xff"}, List: list},
			`while IFS= read -r -d '' bmc_dir; do mkdir -p -- 'd'/"$bmc_dir"; done < '.bmc-in/3.dirs'` + "\nunset bmc_dir", true},
		{"no list", "d", StagedDirs{Rels: manyDirs(100)}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &mapper{loc: fakeLocator{}}
			rf, script, err := m.makeDirs(3, tc.dst, tc.dirs)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), "100 empty directories") {
					t.Errorf("makeDirs = %q, %v; want an error", script, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if script != tc.want {
				t.Errorf("script\n%s\nwant\n%s", script, tc.want)
			}
			if len(script) > maxInlineDirsChars+200 {
				t.Errorf("the script is %d characters", len(script))
			}
			switch {
			case tc.rf && (rf == nil || rf.FilePath != ".bmc-in/3.dirs" || !strings.Contains(rf.HTTPURL, "/bmc/staging/sha256/abc?")):
				t.Errorf("resource file %+v, want the list's", rf)
			case !tc.rf && rf != nil:
				t.Errorf("resource file %+v, want none", rf)
			}
		})
	}
}

const emptyDirsSpec = `apiVersion: bmc/v1
kind: Workload
name: dirs
pool: {id: p}
tasks:
  - id: named
    inputs: [{from: data/d, path: d}]
    run: "true"
  - id: command
    inputs: [{from: data/d, path: x/y}]
    command: ["true"]
  - id: here
    inputs: [{from: data/d, path: .}]
    run: "true"
  - id: skeleton
    inputs: [{from: data/skeleton, path: s}]
    run: "true"
  - id: many
    inputs: [{from: data/one.txt, path: one.txt}, {from: data/many, path: m}]
    run: "true"
`

// emptyDirsTree writes the inputs of emptyDirsSpec below specDir: a
// directory with files and empty directories (nested, with a space, with
// a quote), one of empty directories only, one of more empty directories
// than a command line should name, among them one whose name is not
// UTF-8, and a file.
func emptyDirsTree(t testing.TB, specDir string) {
	t.Helper()
	d := filepath.Join(specDir, "data", "d")
	writeTree(t, d, map[string]string{"a.txt": "A", "run.sh*": "R", "sub/b.txt": "B"})
	testfs.MkFiles(t, d, dirs("out", "deep/er/est", "with space", "it's empty", "sub/empty")...)
	testfs.MkFiles(t, filepath.Join(specDir, "data", "skeleton"), "a/", "b/c/")
	many := filepath.Join(specDir, "data", "many")
	writeTree(t, many, map[string]string{"README": "r"})
	testfs.MkFiles(t, many, dirs(append(manyDirs(60), "bad\xffname", "new\nline")...)...)
	writeTree(t, filepath.Join(specDir, "data"), map[string]string{"one.txt": "1"})
}

// TestEmptyDirsOnNode: after a task's first lines its working directory
// holds the empty directories of its directory inputs, as the local
// backend's copy of them does, named in the command line, or read from
// their list for an input with many.
func TestEmptyDirsOnNode(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	specDir := t.TempDir()
	emptyDirsTree(t, specDir)
	blobs := map[blobstage.Location][]byte{}
	staged := map[string][]StagedFile{}
	dirs := map[string]StagedDirs{}
	for _, from := range []string{"data/d", "data/skeleton", "data/many", "data/one.txt"} {
		src := filepath.Join(specDir, filepath.FromSlash(from))
		staged[from] = stageDir(t, src, true, blobs)
		if d := stageEmptyDirs(t, src, blobs); len(d.Rels) > 0 {
			dirs[from] = d
		}
	}
	if len(staged["data/skeleton"]) != 0 || len(dirs["data/skeleton"].Rels) != 2 {
		t.Fatalf("data/skeleton staged as %+v, %+v", staged["data/skeleton"], dirs["data/skeleton"])
	}
	prog := compile(t, emptyDirsSpec, nil)
	_, m := mapOne(t, emptyDirsSpec, fakeLocator{}, MapOptions{Staged: staged, Dirs: dirs})
	for i, tk := range m.Tasks {
		t.Run(tk.ID, func(t *testing.T) {
			lists := 0
			for _, rf := range tk.ResourceFiles {
				if strings.HasSuffix(rf.FilePath, ".dirs") {
					lists++
				}
			}
			if want := map[bool]int{true: 1}[tk.ID == "many"]; lists != want {
				t.Errorf("%d resource files bring a list of directories, want %d", lists, want)
			}
			if tk.ID == "named" {
				argv, err := SplitCommandLine(tk.CommandLine)
				if err != nil || len(argv) < 5 || !strings.Contains(argv[4], `mkdir -p -- 'd/deep/er/est' 'd/it'\''s empty' 'd/out' 'd/sub/empty' 'd/with space'`+"\n") {
					t.Errorf("command line %s: want the empty directories named", tk.CommandLine)
				}
			}
			wd, out, err := node(t, tk, blobs)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			local := t.TempDir()
			for _, in := range prog.Tasks[i].Inputs {
				if _, err := blobstage.CopyLocal(filepath.Join(specDir, in.From), filepath.Join(local, in.Path)); err != nil {
					t.Fatal(err)
				}
			}
			want := listTree(t, local)
			if diff := cmp.Diff(want, listTree(t, wd)); diff != "" {
				t.Errorf("working directory, local vs Batch (-local +batch):\n%s", diff)
			}
		})
	}
	// Planned as they will be staged: bmc plan finds the empty
	// directories too, and counts the list's resource file.
	_, fdirs := fakeStaged(prog, specDir)
	for from, d := range dirs {
		if !cmp.Equal(fdirs[from].Rels, d.Rels) || fdirs[from].List == (blobstage.Location{}) {
			t.Errorf("%s: planned %+v, staged %+v", from, fdirs[from], d)
		}
	}
	if len(fdirs) != len(dirs) {
		t.Errorf("planned %d inputs with empty directories, staged %d", len(fdirs), len(dirs))
	}
}

// TestEmptyDirsOnEmulator runs emptyDirsSpec through the backend on the
// emulator, its inputs staged in Azurite: each task's working directory,
// as its first command lists it, is what the local backend makes of the
// same inputs, empty directories and all.
func TestEmptyDirsOnEmulator(t *testing.T) {
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
	specDir := t.TempDir()
	emptyDirsTree(t, specDir)
	spec := strings.ReplaceAll(emptyDirsSpec, `run: "true"`, "run: |\n      "+strings.ReplaceAll(listing, "\n", "\n      "))
	spec = strings.ReplaceAll(spec, `command: ["true"]`, `command: [bash, -c, `+strconvQuote(listing)+`]`)
	prog := compile(t, spec, nil)

	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 4)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "dirs-run", Workload: prog.Name, SpecDir: specDir}
	be := NewBackend(BackendOptions{Client: e.c, Storage: st, Staging: testStaging})
	o, err := executor.RunNative(t.Context(), plan, be, run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if o.Counts.Succeeded != len(prog.Tasks) {
		t.Fatalf("counts %+v", o.Counts)
	}
	for i, pt := range prog.Tasks {
		t.Run(pt.ID, func(t *testing.T) {
			if want := sameWorkdir(t, e, run.ID, prog.Tasks[i], specDir); !strings.Contains(want, "d ") {
				t.Errorf("the local listing shows no directory:\n%s", want)
			}
		})
	}
}
