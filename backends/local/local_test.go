package local

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/planner"
	"github.com/google/go-cmp/cmp"
)

// fixture is a prepared run on a local backend with a local blob store.
type fixture struct {
	be      *Backend
	run     *executor.RunInfo
	store   blobstage.Store
	storage string // the store's root folder
	specDir string
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	f := &fixture{storage: filepath.Join(t.TempDir(), "storage"), specDir: t.TempDir()}
	if o.Store == nil {
		o.Store = blobstage.NewLocal(f.storage)
	}
	f.store = o.Store
	if o.KillGrace == 0 {
		o.KillGrace = 2 * time.Second
	}
	f.be = New(o)
	f.run = &executor.RunInfo{ID: "w-260301120000-ab", Workload: "w", Dir: t.TempDir(), SpecDir: f.specDir, Storage: f.store.URL()}
	if err := f.be.Prepare(context.Background(), f.run); err != nil {
		t.Fatal(err)
	}
	// Prepare has bmc's threads yield to tasks; give later tests the
	// process as it was, whether or not this one calls Cleanup.
	t.Cleanup(f.be.stopYielding)
	return f
}

func (f *fixture) taskDir(id string) string { return TaskDir(f.run.Dir, id) }
func (f *fixture) wd(id string) string      { return filepath.Join(f.taskDir(id), "wd") }

func (f *fixture) runTask(t *testing.T, task *compiler.Task, number int) executor.Result {
	t.Helper()
	return f.be.RunTask(context.Background(), &executor.Attempt{Run: f.run, Task: task, Number: number})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// blobs lists the store's blobs under container with their contents, by
// downloading the whole container: the same for every kind of store.
func (f *fixture) blobs(t *testing.T, container string) map[string]string {
	t.Helper()
	out := map[string]string{}
	root := t.TempDir()
	if _, err := f.store.Download(context.Background(), blobstage.Location{Container: container}, root); err != nil {
		if errors.Is(err, blobstage.ErrNotFound) {
			return out
		}
		t.Fatal(err)
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkState(t *testing.T, res executor.Result, want executor.State) {
	t.Helper()
	if res.State != want {
		t.Fatalf("state %s (%s), want %s", res.State, res.Reason, want)
	}
}

func TestCapabilities(t *testing.T) {
	be := New(Options{Slots: 3, Packages: []Package{{Name: "Aligner", Version: "2.1.0", Dir: "/a"}, {Name: "aligner", Dir: "/b"}, {Name: "tools", Version: "1", Dir: "/c"}}})
	got := be.Capabilities()
	want := planner.Capabilities{Name: "local", Slots: 3, Packages: true, AvailablePackages: map[string][]string{"aligner": {"2.1.0", ""}, "tools": {"1"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Capabilities (-want +got):\n%s", diff)
	}
	if c := New(Options{}).Capabilities(); c.Slots != 1 || c.Containers || c.NativeDependencies {
		t.Errorf("defaults: %+v", c)
	}
}

func TestRunScript(t *testing.T) {
	f := newFixture(t, Options{KeepWorkdirs: true})
	res := f.runTask(t, &compiler.Task{ID: "hello", Run: "echo hello\necho oops >&2\npwd -P > where.txt"}, 1)
	checkState(t, res, executor.Succeeded)
	if res.ExitCode == nil || *res.ExitCode != 0 || res.Reason != "" || res.NoRetry {
		t.Errorf("result %+v", res)
	}
	if res.Start.IsZero() || res.End.Before(res.Start) {
		t.Errorf("start %v, end %v", res.Start, res.End)
	}
	// The logs sit next to the working directory, not in it.
	if got := readFile(t, filepath.Join(f.taskDir("hello"), "stdout.txt")); got != "hello\n" {
		t.Errorf("stdout.txt %q", got)
	}
	if got := readFile(t, filepath.Join(f.taskDir("hello"), "stderr.txt")); got != "oops\n" {
		t.Errorf("stderr.txt %q", got)
	}
	wd, _ := filepath.EvalSymlinks(f.wd("hello"))
	if got := strings.TrimSpace(readFile(t, filepath.Join(f.wd("hello"), "where.txt"))); got != wd {
		t.Errorf("ran in %q, want %q", got, wd)
	}

	for _, tt := range []struct {
		name, script string
		code         int
		reason       string
	}{
		{"exit code", "exit 3", 3, "exit code 3"},
		{"errexit", "false\necho not reached > reached", 1, "exit code 1"},
		{"nounset", "echo $BMC_SURELY_UNSET_VARIABLE > reached", 1, "exit code 1"},
		{"pipefail", "false | true\necho not reached > reached", 1, "exit code 1"},
		{"signal", "kill -KILL $$", 137, "killed by SIGKILL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := strings.ReplaceAll(tt.name, " ", "-")
			res := f.runTask(t, &compiler.Task{ID: id, Run: tt.script}, 1)
			checkState(t, res, executor.Failed)
			if res.ExitCode == nil || *res.ExitCode != tt.code || res.Reason != tt.reason {
				t.Errorf("exit code %v, reason %q; want %d, %q", res.ExitCode, res.Reason, tt.code, tt.reason)
			}
			if res.NoRetry {
				t.Error("a failing command is marked NoRetry")
			}
			if exists(filepath.Join(f.wd(id), "reached")) {
				t.Error("the script went on after a failure: not run with bash -euo pipefail")
			}
		})
	}
}

func TestRunCommand(t *testing.T) {
	f := newFixture(t, Options{})
	// argv, no shell: nothing is split or expanded.
	res := f.runTask(t, &compiler.Task{ID: "argv", Command: []string{"printf", "%s|", "a b", "$HOME", "*"}}, 1)
	checkState(t, res, executor.Succeeded)
	if got := readFile(t, filepath.Join(f.taskDir("argv"), "stdout.txt")); got != "a b|$HOME|*|" {
		t.Errorf("stdout %q", got)
	}
	res = f.runTask(t, &compiler.Task{ID: "sh", Command: []string{"sh", "-c", `echo "$1-$2"; exit 4`, "sh", "x y", "z"}}, 1)
	checkState(t, res, executor.Failed)
	if *res.ExitCode != 4 || readFile(t, filepath.Join(f.taskDir("sh"), "stdout.txt")) != "x y-z\n" {
		t.Errorf("exit %d, stdout %q", *res.ExitCode, readFile(t, filepath.Join(f.taskDir("sh"), "stdout.txt")))
	}
	res = f.runTask(t, &compiler.Task{ID: "missing", Command: []string{"bmc-no-such-program-here"}}, 1)
	checkState(t, res, executor.Failed)
	if res.ExitCode == nil || *res.ExitCode != 127 || !strings.Contains(res.Reason, "bmc-no-such-program-here") {
		t.Errorf("missing program: exit %v, reason %q", res.ExitCode, res.Reason)
	}
}

// envOf runs a task that prints its environment and returns it.
func envOf(t *testing.T, f *fixture, a *executor.Attempt) map[string]string {
	t.Helper()
	a.Task.Command = []string{"env", "-0"}
	res := f.be.RunTask(context.Background(), a)
	checkState(t, res, executor.Succeeded)
	env := map[string]string{}
	for _, kv := range strings.Split(readFile(t, filepath.Join(f.taskDir(a.Task.ID), "stdout.txt")), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if _, dup := env[k]; dup {
				t.Errorf("%s is set twice", k)
			}
			env[k] = v
		}
	}
	return env
}

func TestEnvironment(t *testing.T) {
	pkgA, pkgB, pkgC := t.TempDir(), t.TempDir(), t.TempDir()
	// Set before the backend exists: it reads bmc's environment once.
	t.Setenv("BMC_TEST_OUTER", "from bmc")
	t.Setenv("BMC_TEST_OVERRIDDEN", "from bmc")
	f := newFixture(t, Options{
		PoolID: "genome-pool",
		Packages: []Package{
			{Name: "aligner", Version: "2.1.0", Dir: pkgA},
			{Name: "my-tool", Version: "1.0-beta.2", Dir: pkgB},
			{Name: "ref.data", Dir: pkgC},
		},
	})
	task := &compiler.Task{
		ID: "env-task",
		Env: map[string]string{
			"FOO":                 "bar baz",
			"BMC_TEST_OVERRIDDEN": "from the task",
			"AZ_BATCH_TASK_ID":    "spoofed", // Batch's own variables win
		},
		Packages: []compiler.Package{{Name: "aligner", Version: "2.1.0"}, {Name: "my-tool"}, {Name: "ref.data"}},
	}
	env := envOf(t, f, &executor.Attempt{Run: f.run, Task: task, Number: 2})
	taskDir := f.taskDir("env-task")
	want := map[string]string{
		"AZ_BATCH_TASK_ID":                                  "env-task",
		"AZ_BATCH_JOB_ID":                                   f.run.ID,
		"AZ_BATCH_TASK_WORKING_DIR":                         filepath.Join(taskDir, "wd"),
		"AZ_BATCH_TASK_DIR":                                 taskDir,
		"AZ_BATCH_NODE_ROOT_DIR":                            f.run.Dir,
		"AZ_BATCH_NODE_SHARED_DIR":                          filepath.Join(f.run.Dir, "shared"),
		"AZ_BATCH_NODE_STARTUP_DIR":                         filepath.Join(f.run.Dir, "startup"),
		"AZ_BATCH_POOL_ID":                                  "genome-pool",
		"AZ_BATCH_NODE_ID":                                  "local-node",
		"AZ_BATCH_ACCOUNT_NAME":                             "local",
		"AZ_BATCH_ACCOUNT_URL":                              "",
		"AZ_BATCH_NODE_IS_DEDICATED":                        "true",
		"AZ_BATCH_NODE_MOUNTS_DIR":                          filepath.Join(f.run.Dir, "fsmounts"),
		"AZ_BATCH_CERTIFICATES_DIR":                         filepath.Join(taskDir, "certs"),
		"AZ_BATCH_TASK_RESERVED_EPHEMERAL_DISK_SPACE_BYTES": "0",
		"BMC_RUN_ID":                                        f.run.ID,
		"BMC_WORKLOAD":                                      "w",
		"BMC_TASK_ATTEMPT":                                  "2",
		"FOO":                                               "bar baz",
		"BMC_TEST_OUTER":                                    "from bmc",
		"BMC_TEST_OVERRIDDEN":                               "from the task",
		// '.' and '-' become '_' in names and versions.
		"AZ_BATCH_APP_PACKAGE_aligner_2_1_0":      pkgA,
		"AZ_BATCH_APP_PACKAGE_my_tool_1_0_beta_2": pkgB,
		"AZ_BATCH_APP_PACKAGE_my_tool":            pkgB, // referenced without a version
		"AZ_BATCH_APP_PACKAGE_ref_data":           pkgC,
	}
	for k, v := range want {
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("%s = %q (set: %v), want %q", k, got, ok, v)
		}
	}
	for _, k := range []string{"AZ_BATCH_APP_PACKAGE_aligner", "BMC_RUN_SUMMARY"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s is set (%q)", k, v)
		}
	}
	// Every variable Batch gives every task but a start task, and no
	// other AZ_BATCH_ one: those of multi-instance tasks, job preparation
	// and authentication tokens have nothing to stand for here.
	for k := range env {
		if strings.HasPrefix(k, "AZ_BATCH_") {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected %s", k)
			}
		}
	}
	// The shared directory exists for tasks to use.
	if fi, err := os.Stat(env["AZ_BATCH_NODE_SHARED_DIR"]); err != nil || !fi.IsDir() {
		t.Errorf("shared dir: %v", err)
	}
	if f.be.opts.PoolID != "genome-pool" || New(Options{}).opts.PoolID != "local" {
		t.Error("pool id default")
	}
}

func TestPackageEnv(t *testing.T) {
	for _, tt := range []struct{ name, version, want string }{
		{"aligner", "2.1.0", "AZ_BATCH_APP_PACKAGE_aligner_2_1_0"},
		{"my-tool", "", "AZ_BATCH_APP_PACKAGE_my_tool"},
		{"Ref.Data", "v1-rc#2", "AZ_BATCH_APP_PACKAGE_Ref_Data_v1_rc_2"},
	} {
		if got := PackageEnv(tt.name, tt.version); got != tt.want {
			t.Errorf("PackageEnv(%q, %q) = %q, want %q", tt.name, tt.version, got, tt.want)
		}
	}
}

// TestPackageWithoutDefaultVersion: a package referenced without a
// version, given in two versions and neither as the default, is either
// refused at plan time or provided to the task; it must not pass the
// checks and then be missing when the task runs.
func TestPackageWithoutDefaultVersion(t *testing.T) {
	f := newFixture(t, Options{Packages: []Package{{Name: "tools", Version: "1", Dir: t.TempDir()}, {Name: "tools", Version: "2", Dir: t.TempDir()}}})
	prog, diags := compiler.Compile("spec.yaml", []byte(`apiVersion: bmc/v1
kind: Workload
name: w
packages:
  - {name: tools}
tasks:
  - {id: t, run: "true", packages: [tools]}
`), compiler.Options{})
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	plan := planner.New(prog, f.be.Capabilities(), nil)
	if len(plan.Errors()) > 0 {
		return // refused up front: fine
	}
	task := prog.Tasks[0]
	env := envOf(t, f, &executor.Attempt{Run: f.run, Task: &task, Number: 1})
	for k := range env {
		if strings.HasPrefix(k, "AZ_BATCH_APP_PACKAGE_tools") {
			return
		}
	}
	t.Errorf("the plan passed its checks, but the task got no AZ_BATCH_APP_PACKAGE_tools variable")
}

// processGone reports whether pid has exited (or is a zombie waiting to be
// reaped by whoever adopted it).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// waitFor polls cond until it holds or the deadline passes: for effects
// outside the test's control, such as a process exiting.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// backgroundPID reads the pid a script wrote, and makes sure the process
// does not outlive the test.
func backgroundPID(t *testing.T, path string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, path)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file %s: %v", path, err)
	}
	t.Cleanup(func() {
		if !processGone(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return pid
}

// The script starts a background child in the task's process group, notes
// its pid, says it is ready and waits.
const groupScript = "sleep 300 & echo $! > pid\necho ready > ready\nwait\n"

func TestTimeoutKillsProcessGroup(t *testing.T) {
	f := newFixture(t, Options{})
	task := &compiler.Task{ID: "slow", Run: groupScript, Timeout: compiler.Duration(time.Second)}
	res := f.runTask(t, task, 1)
	checkState(t, res, executor.Failed)
	if !strings.Contains(res.Reason, "timed out after 1s") {
		t.Errorf("reason %q", res.Reason)
	}
	if res.ExitCode == nil || *res.ExitCode == 0 {
		t.Errorf("exit code %v", res.ExitCode)
	}
	if !exists(filepath.Join(f.wd("slow"), "ready")) {
		t.Fatal("the script never got going; the timeout is too short for this machine")
	}
	pid := backgroundPID(t, filepath.Join(f.wd("slow"), "pid"))
	waitFor(t, "the background child to be killed with its group", func() bool { return processGone(pid) })
}

func TestCancelKillsProcessGroup(t *testing.T) {
	f := newFixture(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan executor.Result)
	go func() {
		done <- f.be.RunTask(ctx, &executor.Attempt{Run: f.run, Task: &compiler.Task{ID: "held", Run: groupScript}, Number: 1})
	}()
	waitFor(t, "the task to start", func() bool { return exists(filepath.Join(f.wd("held"), "ready")) })
	pid := backgroundPID(t, filepath.Join(f.wd("held"), "pid"))
	cancel()
	res := <-done
	checkState(t, res, executor.Canceled)
	if res.ExitCode != nil && *res.ExitCode == 0 {
		t.Errorf("exit code %d for a cancelled attempt", *res.ExitCode)
	}
	waitFor(t, "the background child to be killed with its group", func() bool { return processGone(pid) })

	// Already cancelled: nothing runs.
	res = f.be.RunTask(ctx, &executor.Attempt{Run: f.run, Task: &compiler.Task{ID: "late", Run: "touch ran"}, Number: 1})
	checkState(t, res, executor.Canceled)
	if exists(filepath.Join(f.wd("late"), "ran")) {
		t.Error("a task ran with a cancelled context")
	}
}

func TestRetryKeepsLogsAndGetsFreshWorkdir(t *testing.T) {
	f := newFixture(t, Options{})
	// Attempt 2 writes nothing: the logs keep the numbers of the attempts
	// that wrote them.
	task := &compiler.Task{ID: "flaky", Retries: 3, Run: `[ "$BMC_TASK_ATTEMPT" = 2 ] || { echo "out $BMC_TASK_ATTEMPT"; echo "err $BMC_TASK_ATTEMPT" >&2; }
test ! -e junk || { echo "stale working directory" >&2; exit 9; }
touch junk
[ "$BMC_TASK_ATTEMPT" = 4 ] || exit 1`}
	for n := 1; n <= 4; n++ {
		res := f.runTask(t, task, n)
		want := executor.Failed
		if n == 4 {
			want = executor.Succeeded
		}
		if res.State != want || (n < 4 && *res.ExitCode != 1) {
			t.Fatalf("attempt %d: %s (%s), want %s", n, res.State, res.Reason, want)
		}
	}
	dir := f.taskDir("flaky")
	for name, want := range map[string]string{
		"stdout.attempt-1.txt": "out 1\n", "stderr.attempt-1.txt": "err 1\n",
		"stdout.attempt-3.txt": "out 3\n", "stderr.attempt-3.txt": "err 3\n",
		"stdout.txt": "out 4\n", "stderr.txt": "err 4\n",
	} {
		if got := readFile(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if exists(filepath.Join(dir, "stdout.attempt-2.txt")) {
		t.Error("attempt 2 wrote nothing, yet has an archived log")
	}
}

// TestResumeAttemptGetsFreshWorkdir: a resumed run's first attempt of a
// task that failed before must start in an empty working directory, and
// must not overwrite the logs of the earlier attempt, even when the
// earlier session numbered its attempts otherwise.
func TestResumeAttemptGetsFreshWorkdir(t *testing.T) {
	f := newFixture(t, Options{})
	task := &compiler.Task{ID: "t", Run: "test ! -e junk || exit 9\ntouch junk\necho session $BMC_TASK_ATTEMPT >&2\nexit ${FAIL:-0}", Env: map[string]string{"FAIL": "1"}}
	if res := f.runTask(t, task, 1); res.State != executor.Failed || *res.ExitCode != 1 {
		t.Fatalf("first session: %s %s", res.State, res.Reason)
	}
	// bmc resume: same run directory, attempt 2.
	if res := f.runTask(t, task, 2); res.State != executor.Failed {
		t.Fatalf("resumed attempt: %s (%s): the working directory was not fresh", res.State, res.Reason)
	}
	// A session that numbered from 1 again, as bmc once did.
	task.Env = nil
	if res := f.runTask(t, task, 1); res.State != executor.Succeeded {
		t.Errorf("attempt numbered 1 again: %s (%s)", res.State, res.Reason)
	}
	dir := f.taskDir("t")
	for name, want := range map[string]string{
		"stderr.attempt-1.txt": "session 1\n",
		"stderr.attempt-2.txt": "session 2\n",
		"stderr.txt":           "session 1\n",
	} {
		if got := readFile(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestInputs(t *testing.T) {
	web := http.NewServeMux()
	web.HandleFunc("/ref.fa", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sig") != "secret" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		w.Write([]byte(">ref\nACGT\n"))
	})
	plain := httptest.NewServer(web)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(web)
	defer tlsSrv.Close()

	f := newFixture(t, Options{HTTP: tlsSrv.Client(), KeepWorkdirs: true})
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "raw", "s1.fq"), "@s1\nAC\n")
	writeFile(t, filepath.Join(src, "raw", "sub", "s2.fq"), "@s2\nGT\n")
	if _, err := f.store.Upload(context.Background(), src, "raw/**", blobstage.Location{Container: "raw", Path: ""}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(f.specDir, "data", "ref.fa"), ">local\n")
	writeFile(t, filepath.Join(f.specDir, "data", "dir", "a.txt"), "a\n")

	task := &compiler.Task{ID: "staged", Run: "true", Inputs: []compiler.Input{
		{From: "az://raw/s1.fq", Kind: compiler.InputBlob, Path: "in/one.fq"},
		{From: "az://raw/sub/", Kind: compiler.InputBlobPrefix, Path: "all"},
		{From: "data/ref.fa", Kind: compiler.InputFile, Path: "ref.fa"},
		{From: "data/dir", Kind: compiler.InputFile, Path: "copied"},
		{From: plain.URL + "/ref.fa?sig=secret", Kind: compiler.InputHTTP, Path: "web/plain.fa"},
		{From: tlsSrv.URL + "/ref.fa?sig=secret", Kind: compiler.InputHTTP, Path: "web/tls.fa"},
	}}
	res := f.runTask(t, task, 1)
	checkState(t, res, executor.Succeeded)
	for name, want := range map[string]string{
		"in/one.fq":    "@s1\nAC\n",
		"all/s2.fq":    "@s2\nGT\n",
		"ref.fa":       ">local\n",
		"copied/a.txt": "a\n",
		"web/plain.fa": ">ref\nACGT\n",
		"web/tls.fa":   ">ref\nACGT\n",
	} {
		if got := readFile(t, filepath.Join(f.wd("staged"), name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	// A missing input fails the attempt before the command runs, and a
	// retry cannot mend it.
	for _, tt := range []struct {
		name  string
		in    compiler.Input
		names string
	}{
		{"blob", compiler.Input{From: "az://raw/missing.fq", Kind: compiler.InputBlob, Path: "x"}, "az://raw/missing.fq"},
		{"prefix", compiler.Input{From: "az://raw/nothing/", Kind: compiler.InputBlobPrefix, Path: "x"}, "az://raw/nothing/"},
		{"file", compiler.Input{From: "data/missing.fa", Kind: compiler.InputFile, Path: "x"}, "data/missing.fa"},
		{"http", compiler.Input{From: plain.URL + "/gone?sig=secret", Kind: compiler.InputHTTP, Path: "x"}, plain.URL + "/gone"},
	} {
		t.Run("missing "+tt.name, func(t *testing.T) {
			id := "missing-" + tt.name
			task := &compiler.Task{ID: id, Retries: 3, Run: "touch marker", Inputs: []compiler.Input{tt.in}}
			res := f.runTask(t, task, 1)
			checkState(t, res, executor.Failed)
			if !res.NoRetry {
				t.Error("a missing input is retried")
			}
			if !strings.Contains(res.Reason, tt.names) {
				t.Errorf("reason %q does not name %s", res.Reason, tt.names)
			}
			if strings.Contains(res.Reason, "secret") {
				t.Errorf("reason %q leaks the query string", res.Reason)
			}
			if exists(filepath.Join(f.wd(id), "marker")) {
				t.Error("the command ran though an input was missing")
			}
		})
	}

	// An input that replaces a file another put in place fails the
	// attempt, whichever comes first; folders that hold no file in common
	// are merged.
	writeFile(t, filepath.Join(src, "pre", "ref.fa"), ">from the prefix\n")
	if _, err := f.store.Upload(context.Background(), src, "pre/*", blobstage.Location{Container: "raw", Path: "pre/"}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(f.specDir, "data", "other", "a.txt"), "other a\n")
	writeFile(t, filepath.Join(f.specDir, "data", "more", "b.txt"), "b\n")
	blob := compiler.Input{From: "az://raw/s1.fq", Kind: compiler.InputBlob, Path: "ref.fa"}
	prefix := compiler.Input{From: "az://raw/pre/", Kind: compiler.InputBlobPrefix, Path: "."}
	for name, inputs := range map[string][]compiler.Input{
		"file then prefix": {blob, prefix},
		"prefix then file": {prefix, blob},
		"folders":          {{From: "data/dir", Kind: compiler.InputFile, Path: "d"}, {From: "data/other", Kind: compiler.InputFile, Path: "d"}},
	} {
		t.Run("clash "+name, func(t *testing.T) {
			id := "clash-" + strings.ReplaceAll(name, " ", "-")
			res := f.runTask(t, &compiler.Task{ID: id, Run: "touch marker", Inputs: inputs}, 1)
			checkState(t, res, executor.Failed)
			if !res.NoRetry || !strings.Contains(res.Reason, "which input") || !strings.Contains(res.Reason, "each file needs a path of its own") {
				t.Errorf("reason %q (no retry %v)", res.Reason, res.NoRetry)
			}
			if exists(filepath.Join(f.wd(id), "marker")) {
				t.Error("the command ran though an input replaced another")
			}
		})
	}
	merged := &compiler.Task{ID: "merged", Run: "true", Inputs: []compiler.Input{
		{From: "data/dir", Kind: compiler.InputFile, Path: "d"}, {From: "data/more", Kind: compiler.InputFile, Path: "d"},
	}}
	checkState(t, f.runTask(t, merged, 1), executor.Succeeded)
	if readFile(t, filepath.Join(f.wd("merged"), "d", "a.txt")) != "a\n" || readFile(t, filepath.Join(f.wd("merged"), "d", "b.txt")) != "b\n" {
		t.Error("two folders were not merged")
	}
}

// TestOutputs runs against the local folder store and a blob account
// (Azurite): output patterns and when: conditions behave the same.
func TestOutputs(t *testing.T) {
	t.Run("local", func(t *testing.T) { testOutputs(t, nil) })
	t.Run("azurite", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts Azurite")
		}
		az, err := blobstage.NewFromConnectionString(azurite.Start(t), blobstage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		testOutputs(t, az)
	})
}

func testOutputs(t *testing.T, store blobstage.Store) {
	script := func(code int) string {
		return `mkdir -p out/x
echo a > a.txt; echo c1 > c1.txt; echo c22 > c22.txt; echo hidden > .hidden.txt
echo log > b.log; echo 1 > out/x/1.bam; echo 2 > out/2.bam
exit ` + strconv.Itoa(code)
	}
	outputs := func(prefix string) []compiler.Output {
		to := "az://res/" + prefix + "/"
		return []compiler.Output{
			{Pattern: "*.txt", To: to + "txt/", When: compiler.WhenSuccess},
			{Pattern: "out/**/*.bam", To: to + "bams/", When: compiler.WhenSuccess},
			{Pattern: "c?.txt", To: to + "q/", When: compiler.WhenSuccess},
			{Pattern: "b.log", To: to + "single.log", When: compiler.WhenSuccess},
			{Pattern: "a.txt", To: to + "onfail/", When: compiler.WhenFailure},
			{Pattern: "a.txt", To: to + "always/", When: compiler.WhenAlways},
			{Pattern: "nothing*.zip", To: to + "none/", When: compiler.WhenAlways},
		}
	}
	f := newFixture(t, Options{Store: store})

	res := f.runTask(t, &compiler.Task{ID: "ok", Run: script(0), Outputs: outputs("ok")}, 1)
	checkState(t, res, executor.Succeeded)
	want := map[string]string{
		"ok/txt/a.txt": "a\n", "ok/txt/c1.txt": "c1\n", "ok/txt/c22.txt": "c22\n",
		"ok/bams/x/1.bam": "1\n", "ok/bams/2.bam": "2\n",
		"ok/q/c1.txt":     "c1\n",
		"ok/single.log":   "log\n",
		"ok/always/a.txt": "a\n",
	}
	if diff := cmp.Diff(want, f.blobs(t, "res")); diff != "" {
		t.Errorf("blobs after success (-want +got):\n%s", diff)
	}
	wantLocs := []string{"az://res/ok/txt/", "az://res/ok/bams/", "az://res/ok/q/", "az://res/ok/single.log", "az://res/ok/always/"}
	if diff := cmp.Diff(wantLocs, res.Outputs); diff != "" {
		t.Errorf("Outputs (-want +got):\n%s", diff)
	}

	res = f.runTask(t, &compiler.Task{ID: "bad", Run: script(2), Outputs: outputs("bad")}, 1)
	checkState(t, res, executor.Failed)
	if res.Reason != "exit code 2" || res.NoRetry {
		t.Errorf("reason %q, NoRetry %v", res.Reason, res.NoRetry)
	}
	got := map[string]string{}
	for k, v := range f.blobs(t, "res") {
		if strings.HasPrefix(k, "bad/") {
			got[k] = v
		}
	}
	if diff := cmp.Diff(map[string]string{"bad/onfail/a.txt": "a\n", "bad/always/a.txt": "a\n"}, got); diff != "" {
		t.Errorf("blobs after failure (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"az://res/bad/onfail/", "az://res/bad/always/"}, res.Outputs); diff != "" {
		t.Errorf("Outputs (-want +got):\n%s", diff)
	}
}

// TestOutputUploadFailure: a failed upload fails an attempt whose command
// succeeded, without retry, and names the output.
func TestOutputUploadFailure(t *testing.T) {
	// A store whose root is a file cannot take any blob.
	root := filepath.Join(t.TempDir(), "not-a-dir")
	writeFile(t, root, "x")
	f := newFixture(t, Options{Store: blobstage.NewLocal(root)})
	res := f.runTask(t, &compiler.Task{ID: "up", Run: "echo data > result.txt", Outputs: []compiler.Output{
		{Pattern: "result.txt", To: "az://res/run/result.txt", When: compiler.WhenSuccess},
	}}, 1)
	checkState(t, res, executor.Failed)
	if !res.NoRetry {
		t.Error("an upload failure is retried")
	}
	if !strings.Contains(res.Reason, "result.txt") || !strings.Contains(res.Reason, "az://res/run/result.txt") {
		t.Errorf("reason %q", res.Reason)
	}
	if len(res.Outputs) != 0 {
		t.Errorf("Outputs %v", res.Outputs)
	}
	// The working directory of a failed attempt is kept for debugging.
	if !exists(filepath.Join(f.wd("up"), "result.txt")) {
		t.Error("the failed attempt's working directory is gone")
	}

	// No store at all is reported the same way.
	g := newFixture(t, Options{})
	g.be.opts.Store = nil
	res = g.runTask(t, &compiler.Task{ID: "nostore", Run: "echo > r.txt", Outputs: []compiler.Output{
		{Pattern: "r.txt", To: "az://res/r.txt", When: compiler.WhenAlways},
	}}, 1)
	if res.State != executor.Failed || !strings.Contains(res.Reason, "no blob store") {
		t.Errorf("without a store: %s %q", res.State, res.Reason)
	}
}

// A task that replaces its working directory with a link to elsewhere
// gets nothing from there uploaded, and Cleanup leaves what the link
// named as it was.
func TestWorkdirReplacedWithLink(t *testing.T) {
	f := newFixture(t, Options{})
	victim := t.TempDir()
	writeFile(t, filepath.Join(victim, "secret.txt"), "not the task's")
	res := f.runTask(t, &compiler.Task{ID: "swap", Run: "cd ..; rmdir wd; ln -s " + victim + " wd", Outputs: []compiler.Output{
		{Pattern: "*.txt", To: "az://res/swap/", When: compiler.WhenAlways},
	}}, 1)
	checkState(t, res, executor.Failed)
	if !strings.Contains(res.Reason, "replaced its working directory") || len(res.Outputs) != 0 {
		t.Errorf("reason %q, outputs %v", res.Reason, res.Outputs)
	}
	if exists(filepath.Join(f.storage, "res", "swap", "secret.txt")) {
		t.Error("a file outside the working directory was uploaded")
	}
	if err := f.be.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(victim, "secret.txt")) {
		t.Error("Cleanup emptied what the link named")
	}
}

func TestWorkdirCleanup(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run("keep="+strconv.FormatBool(keep), func(t *testing.T) {
			f := newFixture(t, Options{KeepWorkdirs: keep})
			checkState(t, f.runTask(t, &compiler.Task{ID: "good", Run: "echo x > f; mkdir -p d/e; echo y > d/e/g"}, 1), executor.Succeeded)
			checkState(t, f.runTask(t, &compiler.Task{ID: "bad", Run: "echo x > f; exit 1"}, 1), executor.Failed)
			// An empty working directory left by a succeeded task.
			checkState(t, f.runTask(t, &compiler.Task{ID: "empty", Run: "true"}, 1), executor.Succeeded)
			// The next task still starts in an empty directory of its own.
			checkState(t, f.runTask(t, &compiler.Task{ID: "next", Run: `test -z "$(ls -A)"; pwd -P > ../where; touch mine`}, 1), executor.Succeeded)
			if got := strings.TrimSpace(readFile(t, filepath.Join(f.taskDir("next"), "where"))); filepath.Base(got) != "wd" || filepath.Base(filepath.Dir(got)) != "next" {
				t.Errorf("next ran in %s", got)
			}
			if err := f.be.Cleanup(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Once the run is over, the working directories of succeeded
			// tasks are empty unless kept; logs stay.
			for _, id := range []string{"good", "empty", "next"} {
				entries, err := os.ReadDir(f.wd(id))
				if err != nil {
					t.Errorf("%s: wd after Cleanup: %v", id, err)
				}
				if empty := len(entries) == 0; empty == keep && id != "empty" {
					t.Errorf("%s: wd after Cleanup holds %d entries (keep=%v)", id, len(entries), keep)
				}
				if !exists(filepath.Join(f.taskDir(id), "stdout.txt")) {
					t.Errorf("%s: stdout.txt removed", id)
				}
			}
			if keep && !exists(filepath.Join(f.wd("good"), "f")) {
				t.Error("kept wd lost its files")
			}
			if !exists(filepath.Join(f.wd("bad"), "f")) {
				t.Error("wd of a failed task removed")
			}
		})
	}
}

// TestLeftoverProcessStaysOutOfOtherTasks: a process a succeeded task left
// running in the background must not find itself working in another
// task's working directory.
func TestLeftoverProcessStaysOutOfOtherTasks(t *testing.T) {
	f := newFixture(t, Options{})
	gate := filepath.Join(t.TempDir(), "gate")
	a := &compiler.Task{ID: "a", Env: map[string]string{"GATE": gate}, Run: `(while [ ! -e "$GATE" ]; do sleep 0.05; done; echo late > late.txt) > /dev/null 2>&1 &
echo $! > ../bgpid`}
	checkState(t, f.runTask(t, a, 1), executor.Succeeded)
	pid := backgroundPID(t, filepath.Join(f.taskDir("a"), "bgpid"))
	checkState(t, f.runTask(t, &compiler.Task{ID: "b", Run: "touch mine"}, 1), executor.Succeeded)
	writeFile(t, gate, "")
	waitFor(t, "a's background process to finish", func() bool { return processGone(pid) })
	if exists(filepath.Join(f.wd("b"), "late.txt")) {
		t.Error("a's leftover process wrote late.txt into b's working directory")
	}
}

func TestFinalizeAttempt(t *testing.T) {
	f := newFixture(t, Options{})
	summary := filepath.Join(f.run.Dir, executor.SummaryFile)
	writeFile(t, summary, `{"status": "failed"}`)
	a := &executor.Attempt{Run: f.run, Number: 1, Finalize: true, Summary: summary, Task: &compiler.Task{
		ID: compiler.FinalizeID, Run: `echo "$BMC_RUN_SUMMARY"; cat "$BMC_RUN_SUMMARY"; cp "$BMC_RUN_SUMMARY" copy.json`,
		Outputs: []compiler.Output{{Pattern: "copy.json", To: "az://res/summary.json", When: compiler.WhenAlways}},
	}}
	res := f.be.RunTask(context.Background(), a)
	checkState(t, res, executor.Succeeded)
	if got, want := readFile(t, filepath.Join(f.taskDir(compiler.FinalizeID), "stdout.txt")), summary+"\n"+`{"status": "failed"}`; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if got := f.blobs(t, "res")["summary.json"]; got != `{"status": "failed"}` {
		t.Errorf("uploaded summary %q", got)
	}
	// The finalize step's working directory is kept.
	if !exists(filepath.Join(f.wd(compiler.FinalizeID), "copy.json")) {
		t.Error("finalize wd removed")
	}
	// Ordinary tasks do not get the summary.
	env := envOf(t, f, &executor.Attempt{Run: f.run, Task: &compiler.Task{ID: "plain"}, Number: 1})
	if v, ok := env["BMC_RUN_SUMMARY"]; ok && os.Getenv("BMC_RUN_SUMMARY") == "" {
		t.Errorf("an ordinary task got BMC_RUN_SUMMARY=%q", v)
	}
}

func TestLogsUploaded(t *testing.T) {
	f := newFixture(t, Options{Logs: "az://logs/bmc/"})
	for _, tt := range []struct {
		id, script string
		state      executor.State
	}{
		{"good", "echo fine; echo note >&2", executor.Succeeded},
		{"bad", "echo partial; echo broken >&2; exit 5", executor.Failed},
	} {
		res := f.runTask(t, &compiler.Task{ID: tt.id, Run: tt.script}, 1)
		checkState(t, res, tt.state)
	}
	want := map[string]string{
		"bmc/" + f.run.ID + "/good/stdout.txt": "fine\n",
		"bmc/" + f.run.ID + "/good/stderr.txt": "note\n",
		"bmc/" + f.run.ID + "/bad/stdout.txt":  "partial\n",
		"bmc/" + f.run.ID + "/bad/stderr.txt":  "broken\n",
	}
	if diff := cmp.Diff(want, f.blobs(t, "logs")); diff != "" {
		t.Errorf("log blobs (-want +got):\n%s", diff)
	}
}

// TestConcurrentAttempts runs attempts of different tasks at once, as the
// executor does, under the race detector.
func TestConcurrentAttempts(t *testing.T) {
	f := newFixture(t, Options{Slots: 4, Logs: "az://logs/"})
	results := make(chan executor.Result)
	const n = 8
	for i := range n {
		id := "t" + strconv.Itoa(i)
		go func() {
			results <- f.be.RunTask(context.Background(), &executor.Attempt{Run: f.run, Number: 1, Task: &compiler.Task{
				ID: id, Run: "echo $AZ_BATCH_TASK_ID > out.txt",
				Outputs: []compiler.Output{{Pattern: "out.txt", To: "az://res/" + id + ".txt", When: compiler.WhenSuccess}},
			}})
		}()
	}
	for range n {
		checkState(t, <-results, executor.Succeeded)
	}
	blobs := f.blobs(t, "res")
	for i := range n {
		id := "t" + strconv.Itoa(i)
		if blobs[id+".txt"] != id+"\n" {
			t.Errorf("%s: %q", id, blobs[id+".txt"])
		}
	}
}

// threadPolicies returns the scheduling policies of bmc's threads, from
// field 41 of /proc/self/task/<tid>/stat.
func threadPolicies(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skip("no /proc/self/task")
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/stat")
		if err != nil {
			continue // the thread exited
		}
		s := string(b)
		out = append(out, strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[38])
	}
	return out
}

// TestTasksDoNotInheritYield: while a run is prepared, bmc's threads are
// under SCHED_BATCH (3), its tasks under the normal policy (0); Cleanup
// gives the threads their normal policy back.
func TestTasksDoNotInheritYield(t *testing.T) {
	for _, p := range threadPolicies(t) {
		if p != "0" {
			t.Skipf("the tests run under scheduling policy %s, not the normal one", p)
		}
	}
	f := newFixture(t, Options{KeepWorkdirs: true})
	for _, p := range threadPolicies(t) {
		if p != "3" {
			t.Errorf("a thread of bmc has policy %s during the run, want SCHED_BATCH (3)", p)
		}
	}
	res := f.runTask(t, &compiler.Task{ID: "policy", Run: `read -r -a f < /proc/$$/stat; echo "${f[40]}"`}, 1)
	checkState(t, res, executor.Succeeded)
	if got := strings.TrimSpace(readFile(t, filepath.Join(f.taskDir("policy"), "stdout.txt"))); got != "0" {
		t.Errorf("the task ran under policy %s, want the normal one (0)", got)
	}
	if err := f.be.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range threadPolicies(t) {
		if p != "0" {
			t.Errorf("a thread of bmc has policy %s after Cleanup, want the normal one (0)", p)
		}
	}
}

// The work an attempt leaves for while its task runs (the executor's
// prefetching, through Attempt.Started) is handed to another goroutine
// when a CPU is left over, so that it does not hold up the task; the
// attempt does not wait for it, and Cleanup does. With every CPU running
// a task it is done on the attempt's own goroutine, before the attempt
// ends.
func TestWorkWhileRunning(t *testing.T) {
	for _, procs := range []int{1, 2} {
		t.Run("procs="+strconv.Itoa(procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			f := newFixture(t, Options{})
			release := make(chan struct{})
			var prefetched bool // written by the work, read after Cleanup: -race checks the order
			started := func() {
				if procs > 1 {
					<-release // the attempt ends meanwhile
				}
				f.be.Prefetch(f.run, &compiler.Task{ID: "later"})
				prefetched = true
			}
			done := make(chan executor.Result, 1)
			go func() {
				done <- f.be.RunTask(context.Background(), &executor.Attempt{Run: f.run, Number: 1, Task: &compiler.Task{ID: "now", Command: []string{"true"}}, Started: started})
			}()
			select {
			case res := <-done:
				checkState(t, res, executor.Succeeded)
			case <-time.After(time.Minute): // a guard, not a synchronization
				close(release)
				t.Fatal("the attempt waited for the work left for while its task ran")
			}
			cleaned := make(chan error)
			go func() { cleaned <- f.be.Cleanup(context.Background()) }()
			close(release)
			if err := <-cleaned; err != nil {
				t.Fatal(err)
			}
			if !prefetched {
				t.Error("Cleanup returned before the work left for while the task ran")
			}
			if n := f.be.open.Load(); n != 0 {
				t.Errorf("%d log files left open after Cleanup", n)
			}
			if !exists(filepath.Join(f.taskDir("later"), "stdout.txt")) {
				t.Error("the later task was not prefetched")
			}
		})
	}
}
