package azurebatch

// Every attempt of a task starts with its inputs as the local backend
// stages them. Batch downloads a task's resource files once per node: a
// retry on the same node (and a recovery retry after a reboot) finds
// the working directory as the failed attempt left it, its inputs
// deleted or changed and the prefix inputs' downloads moved away.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/planner"
)

const retrySpec = `apiVersion: bmc/v1
kind: Workload
name: again
pool: {id: p}
tasks:
  - id: t
    retries: 3
    inputs:
      - {from: "az://raw/a.fq", path: in/a.fq}
      - {from: "az://raw/dir/", path: reads}
      - {from: "az://raw/dir/"}
      - {from: "https://example.org/x.txt?sig=1", path: x.txt}
      - {from: data/f.txt, path: f.txt}
      - {from: data/tools, path: tools}
    run: eval "$ACT"
`

// spoil is what a failing attempt does to the inputs of retrySpec's
// task: it changes, deletes, replaces and appends to them, and leaves a
// file of its own beside them.
const spoil = `echo changed > in/a.fq; rm -rf reads; rm r1.txt; echo more >> sub/r2.txt
rm x.txt; mkdir x.txt; chmod u+w f.txt; echo changed > f.txt; echo changed > tools/bin/a.sh
chmod u+w tools/ro.txt; echo more >> tools/ro.txt; chmod 0444 tools/ro.txt; rm -rf tools/empty
echo left > left.txt; exit 3`

// retryBlobs are the blobs and URLs retrySpec's inputs name.
func retryBlobs() (map[blobstage.Location][]byte, map[string][]byte) {
	return map[blobstage.Location][]byte{
			{Container: "raw", Path: "a.fq"}:           []byte("@r\nACGT\n"),
			{Container: "raw", Path: "dir/r1.txt"}:     []byte("r1\n"),
			{Container: "raw", Path: "dir/sub/r2.txt"}: []byte("r2\n"),
		}, map[string][]byte{
			"https://example.org/x.txt?sig=1": []byte("x\n"),
		}
}

// retryTree writes retrySpec's local inputs below specDir: a file, read
// only, and a folder with an executable, a read-only file and an empty
// folder.
func retryTree(t testing.TB, specDir string) {
	t.Helper()
	writeTree(t, filepath.Join(specDir, "data"), map[string]string{"f.txt": "f\n", "tools/a.txt": "a\n", "tools/bin/a.sh*": "#!/bin/sh\n", "tools/ro.txt": "ro\n"})
	for _, p := range []string{"f.txt", "tools/ro.txt"} {
		if err := os.Chmod(filepath.Join(specDir, "data", p), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(specDir, "data", "tools", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// batchNode is a task's directory on a node, as Batch lays it out.
type batchNode struct{ taskDir, wd string }

func newBatchNode(t *testing.T) batchNode {
	d := t.TempDir()
	n := batchNode{taskDir: d, wd: filepath.Join(d, "wd")}
	if err := os.Mkdir(n.wd, 0o755); err != nil {
		t.Fatal(err)
	}
	return n
}

// download brings tk's resource files into the working directory, as
// Batch does before the task's first attempt on a node.
func (n batchNode) download(t *testing.T, tk BatchTaskCreateOptions, blobs map[blobstage.Location][]byte, web map[string][]byte) {
	t.Helper()
	put := func(p string, b []byte, mode string) {
		full := filepath.Join(n.wd, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Remove(full)
		var m uint32 = 0o770
		if mode != "" {
			fmt.Sscanf(mode, "%o", &m)
		}
		if err := os.WriteFile(full, b, 0o600); err != nil {
			t.Fatal(err)
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
		if p, err = url.PathUnescape(p); err != nil {
			t.Fatal(err)
		}
		return blobstage.Location{Container: c, Path: p}
	}
	for _, rf := range tk.ResourceFiles {
		switch {
		case web[rf.HTTPURL] != nil:
			put(rf.FilePath, web[rf.HTTPURL], rf.FileMode)
		case rf.HTTPURL != "":
			b, ok := blobs[locOf(rf.HTTPURL)]
			if !ok {
				t.Fatalf("no blob %s", locOf(rf.HTTPURL))
			}
			put(rf.FilePath, b, rf.FileMode)
		default:
			c := locOf(rf.StorageContainerURL).Container
			for l, b := range blobs {
				if l.Container == c && strings.HasPrefix(l.Path, rf.BlobPrefix) {
					put(under(rf.FilePath, l.Path), b, rf.FileMode)
				}
			}
		}
	}
}

// under is name below dir, a resource file's filePath.
func under(dir, name string) string { return strings.TrimPrefix(dir+"/"+name, "./") }

// kept are the names in the task directory that start with ".bmc".
func (n batchNode) kept() []string {
	m, _ := filepath.Glob(filepath.Join(n.taskDir, ".bmc*"))
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

// attempt runs tk's command line in the working directory, with what
// the task's script does in $ACT, and returns its exit code and output.
func (n batchNode) attempt(t *testing.T, tk BatchTaskCreateOptions, act string) (int, string) {
	t.Helper()
	argv, err := SplitCommandLine(tk.CommandLine)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = n.wd
	cmd.Env = append(os.Environ(), "AZ_BATCH_TASK_DIR="+n.taskDir, "AZ_BATCH_TASK_WORKING_DIR="+n.wd, "ACT="+act)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	case err != nil:
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestRetryRestoresInputs runs retrySpec's task's attempts as a node
// would: an attempt after one that spoiled the inputs finds them as the
// first attempt did, with what that attempt wrote beside them, whether
// Batch downloaded the resource files again (on the same node, or on
// another) or not; and no attempt finds bmc's own files in its working
// directory.
func TestRetryRestoresInputs(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	specDir := t.TempDir()
	retryTree(t, specDir)
	blobs, web := retryBlobs()
	staged := map[string][]StagedFile{
		"data/f.txt": stageDir(t, filepath.Join(specDir, "data", "f.txt"), true, blobs),
		"data/tools": stageDir(t, filepath.Join(specDir, "data", "tools"), true, blobs),
	}
	dirs := map[string]StagedDirs{"data/tools": {Rels: []string{"empty"}}}
	_, m := mapOne(t, retrySpec, fakeLocator{}, MapOptions{Staged: staged, Dirs: dirs})
	tk := m.Tasks[0]

	// The first attempt, on a node of its own, gives what every attempt
	// must find: the inputs, where and as the local backend puts them.
	first := newBatchNode(t)
	first.download(t, tk, blobs, web)
	if code, out := first.attempt(t, tk, "true"); code != 0 {
		t.Fatalf("first attempt: exit %d\n%s", code, out)
	}
	want := listTree(t, first.wd)
	for _, f := range []string{"0770 in/a.fq = @r\nACGT\n", "0770 reads/sub/r2.txt = r2\n", "0770 r1.txt = r1\n", "0770 x.txt = x\n",
		"0444 f.txt = f\n", "0644 tools/a.txt = a\n", "0755 tools/bin/a.sh = #!/bin/sh\n", "0444 tools/ro.txt = ro\n", "dir tools/empty"} {
		if !slices.Contains(want, f) {
			t.Fatalf("the first attempt lacks %q:\n%s", f, strings.Join(want, "\n"))
		}
	}
	if slices.ContainsFunc(want, func(f string) bool { return strings.Contains(f, ".bmc") }) {
		t.Errorf("bmc's files are in the working directory:\n%s", strings.Join(want, "\n"))
	}
	// A script that succeeds is not run again: it keeps nothing.
	if kept := first.kept(); len(kept) > 0 {
		t.Errorf("a successful attempt left %q", kept)
	}
	// What the spoiling attempt wrote beside the inputs stays, as Batch
	// leaves it.
	withLeft := append(slices.Clone(want), "left.txt = left\n")
	slices.Sort(withLeft)

	n := newBatchNode(t)
	n.download(t, tk, blobs, web)
	for i, step := range []struct {
		download bool
		want     []string
	}{
		{false, withLeft}, // a retry on the same node, which Batch leaves as it was
		{true, withLeft},  // the same node again, had Batch downloaded the files again
	} {
		if code, out := n.attempt(t, tk, spoil); code != 3 {
			t.Fatalf("spoiling attempt %d: exit %d, want the script's 3\n%s", i, code, out)
		}
		if kept := n.kept(); !slices.Equal(kept, []string{".bmc-files", ".bmc-in"}) {
			t.Fatalf("a failed attempt kept %q", kept)
		}
		if step.download {
			n.download(t, tk, blobs, web)
		}
		// Fails too, after its first lines: Batch runs it again.
		if code, out := n.attempt(t, tk, "exit 5"); code != 5 {
			t.Fatalf("attempt after spoiling %d: exit %d, want the script's 5\n%s", i, code, out)
		}
		got := listTree(t, n.wd)
		for i, f := range got {
			if _, rest, ok := strings.Cut(f, " "); ok && strings.HasPrefix(rest, "left.txt ") {
				got[i] = rest // its mode is the umask's
			}
		}
		slices.Sort(got)
		if d := cmp.Diff(step.want, got); d != "" {
			t.Errorf("attempt after spoiling %d (downloaded again: %v), working directory (-want +got):\n%s", i, step.download, d)
		}
	}

	if code, out := n.attempt(t, tk, "true"); code != 0 {
		t.Fatalf("last attempt: exit %d\n%s", code, out)
	}
	if kept := n.kept(); len(kept) > 0 {
		t.Errorf("the attempt that succeeded left %q", kept)
	}

	// On another node Batch downloads them again, into a directory of
	// their own.
	other := newBatchNode(t)
	other.download(t, tk, blobs, web)
	if code, out := other.attempt(t, tk, "true"); code != 0 {
		t.Fatalf("another node: exit %d\n%s", code, out)
	}
	if d := cmp.Diff(want, listTree(t, other.wd)); d != "" {
		t.Errorf("another node, working directory (-want +got):\n%s", d)
	}
}

// TestRetryInputsArgv: a command given as argv with inputs that land in
// place is wrapped to restore them on the host; in a container it is
// left as it is, as its image need not have bash.
func TestRetryInputsArgv(t *testing.T) {
	const spec = `apiVersion: bmc/v1
kind: Workload
name: argv
pool: {id: p}
tasks:
  - id: argv
    command: [cat, a.fq]
    inputs: [{from: "az://raw/a.fq"}]
  - id: script
    run: cat a.fq
    inputs: [{from: "az://raw/a.fq"}]
`
	for _, boxed := range []bool{false, true} {
		src := spec
		if boxed {
			src = strings.ReplaceAll(src, `inputs: [{from: "az://raw/a.fq"}]`, `inputs: [{from: "az://raw/a.fq"}]`+"\n    container: {image: \"img:1\"}")
		}
		_, m := mapOne(t, src, fakeLocator{}, MapOptions{})
		for _, tk := range m.Tasks {
			argv, err := SplitCommandLine(tk.CommandLine)
			if err != nil {
				t.Fatal(err)
			}
			wrapped := argv[0] == "/bin/bash" && strings.Contains(argv[4], "/.bmc-files")
			if want := !boxed || tk.ID == "script"; wrapped != want {
				t.Errorf("%s (in a container: %v): command line %q restores its inputs: %v, want %v", tk.ID, boxed, tk.CommandLine, wrapped, want)
			}
			if boxed && tk.ID == "argv" && !slices.Equal(argv, []string{"cat", "a.fq"}) {
				t.Errorf("%s in a container: command line %q", tk.ID, tk.CommandLine)
			}
			if boxed || tk.ID != "argv" {
				continue
			}
			if _, err := exec.LookPath("bash"); err != nil {
				continue
			}
			// Run twice on one node, the file gone in between.
			blobs, web := retryBlobs()
			n := newBatchNode(t)
			n.download(t, tk, blobs, web)
			for i := range 2 {
				if code, out := n.attempt(t, tk, ""); code != 0 || out != "@r\nACGT\n" {
					t.Errorf("attempt %d: exit %d, %q", i, code, out)
				}
				os.Remove(filepath.Join(n.wd, "a.fq"))
			}
		}
	}
}

// TestRetryInputsOnEmulator runs a task whose first attempt spoils its
// inputs and fails through the backend on the emulator, which, as
// Batch, downloads the resource files once per node: the retry runs
// with the inputs as they came, and its **/* output holds no file of
// bmc's own.
func TestRetryInputsOnEmulator(t *testing.T) {
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
	blobs, _ := retryBlobs()
	for l, b := range blobs {
		if err := st.Put(t.Context(), l, b); err != nil {
			t.Fatal(err)
		}
	}
	specDir := t.TempDir()
	retryTree(t, specDir)
	prog := compile(t, `apiVersion: bmc/v1
kind: Workload
name: again
pool: {id: p}
tasks:
  - id: t
    retries: 2
    inputs:
      - {from: "az://raw/a.fq", path: in/a.fq}
      - {from: "az://raw/dir/", path: reads}
      - {from: data/f.txt, path: f.txt}
      - {from: data/tools, path: tools}
    run: |
      if [ ! -e ../spoiled ]; then
        touch ../spoiled
        rm -rf in reads f.txt tools/a.txt; echo changed > tools/bin/a.sh; exit 3
      fi
      cat in/a.fq reads/sub/r2.txt f.txt tools/a.txt tools/bin/a.sh > seen.txt
    outputs:
      - {path: "**/*", to: "az://res/again/", when: always}
`, nil)
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 1)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "again-run", Workload: prog.Name, SpecDir: specDir}
	be := NewBackend(BackendOptions{Client: e.c, Storage: st, Staging: testStaging})
	o, err := executor.RunNative(t.Context(), plan, be, run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Tasks[0]; got.State != executor.Succeeded || got.Attempts != 2 {
		t.Fatalf("%s after %d attempts (%s), want succeeded after 2", got.State, got.Attempts, got.Reason)
	}
	bt, err := e.c.GetTask(t.Context(), run.ID, "t")
	if err != nil {
		t.Fatal(err)
	}
	if ei := bt.ExecutionInfo; ei == nil || ei.RetryCount != 1 {
		t.Fatalf("execution %+v, want one retry", bt.ExecutionInfo)
	}
	rc, err := e.c.GetTaskFile(t.Context(), run.ID, "t", "wd/seen.txt", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	seen, _ := io.ReadAll(rc)
	rc.Close()
	if want := "@r\nACGT\nr2\nf\na\n#!/bin/sh\n"; string(seen) != want {
		t.Errorf("the retry read %q, want %q", seen, want)
	}
	names := listBlobs(t, st, blobstage.Location{Container: "res", Path: "again/"})
	if want := []string{"f.txt", "in/a.fq", "reads/r1.txt", "reads/sub/r2.txt", "seen.txt", "tools/a.txt", "tools/bin/a.sh", "tools/ro.txt"}; !slices.Equal(names, want) {
		t.Errorf("the retry uploaded %q, want %q", names, want)
	}
}

// listBlobs lists the names of the blobs below a prefix.
func listBlobs(t *testing.T, st *Storage, prefix blobstage.Location) []string {
	t.Helper()
	var out []string
	pager := st.svc.NewContainerClient(prefix.Container).NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix.Path})
	for pager.More() {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			out = append(out, strings.TrimPrefix(*b.Name, prefix.Path))
		}
	}
	slices.Sort(out)
	return out
}

// TestRetryFinalizeStepInputs: the finalize step on the pool runs in the
// job manager task, which Batch retries and downloads the resource files
// of only once per node: a run after one that spoiled the step's
// spec-relative inputs finds them as they came, its setup moving them
// into place again, with what the run before wrote beside them.
func TestRetryFinalizeStepInputs(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	prog := compile(t, finalizeInputsSpec, nil)
	prog.Finalize.Inputs = prog.Finalize.Inputs[:2]
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "fin-1", Workload: "fin"}
	tree := TreeLayout(blobstage.Location{Container: "bmc-staging", Path: ""}, []StagedFile{
		{Rel: "a.txt", Loc: blobstage.Location{Container: "bmc-staging", Path: "sha256/a"}, Mode: 0o444},
	})
	opt := MapOptions{
		Staged: map[string][]StagedFile{
			"summarize.sh": {{Loc: blobstage.Location{Container: "bmc-staging", Path: "sha256/s"}, Mode: 0o755}},
			"lib":          tree,
		},
	}
	rfs, setup, err := FinalizeInputs(plan, run, fakeLocator{}, opt)
	if err != nil {
		t.Fatal(err)
	}
	// Batch brings them into the step's directory as the job manager
	// task starts on a node.
	root := t.TempDir()
	taskDir := filepath.Join(root, "task")
	wd := filepath.Join(taskDir, "wd")
	bodies := map[string]string{"sha256/s": "#!/bin/bash\ncat tools/a.txt\n"}
	for _, rf := range rfs {
		var p, body string
		switch {
		case rf.HTTPURL != "":
			u, _ := url.Parse(rf.HTTPURL)
			p, body = rf.FilePath, bodies[strings.TrimPrefix(u.Path, "/bmc-staging/")]
		default:
			p, body = under(rf.FilePath, tree[0].Loc.Path), "A\n"
		}
		full := filepath.Join(wd, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		mode := uint32(0o770)
		fmt.Sscanf(rf.FileMode, "%o", &mode)
		if err := os.WriteFile(full, []byte(body), os.FileMode(mode)); err != nil {
			t.Fatal(err)
		}
		os.Chmod(full, os.FileMode(mode))
	}
	step := &nodeStep{wd: wd, taskDir: taskDir, setup: setup}
	task := &compiler.Task{ID: FinalizeTaskID, Inputs: prog.Finalize.Inputs,
		Run: "if [ ! -e ../../spoiled ]; then touch ../../spoiled; chmod u+w tools/a.txt; echo spoiled > tools/a.txt; rm summarize.sh; echo left > left.txt; exit 3; fi\n./summarize.sh; cat left.txt"}
	attempt := func() executor.Result {
		return step.RunTask(context.Background(), &executor.Attempt{Run: run, Task: task, Number: 1, Finalize: true})
	}
	if res := attempt(); res.State != executor.Failed || res.ExitCode == nil || *res.ExitCode != 3 {
		t.Fatalf("spoiling run: %s %v %s, want the script's exit 3", res.State, res.ExitCode, res.Reason)
	}
	// Batch runs the job manager task again on the same node, with no
	// download.
	if res := attempt(); res.State != executor.Succeeded {
		t.Fatalf("run after it: %s %s", res.State, res.Reason)
	}
	b, _ := os.ReadFile(filepath.Join(taskDir, filepath.FromSlash(NodeStepLog("stdout"))))
	if want := "A\nleft\n"; string(b) != want {
		t.Errorf("the run after read %q, want %q", b, want)
	}
	fi, err := os.Stat(filepath.Join(wd, NodeStepDir, "tools", "a.txt"))
	if err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("tools/a.txt: %v, %v; want mode 0444", fi, err)
	}
}
