package emulator

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// envOf parses `env` output.
func envOf(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestTaskEnvironment(t *testing.T) {
	aligner, tool := t.TempDir(), t.TempDir()
	e := newEnv(t, Options{TaskTokens: true, Packages: []Package{
		{Name: "aligner", Version: "2.1.0", Dir: aligner},
		{Name: "Tool-X", Dir: tool},
	}})
	pool := poolBody("p", 1, 1)
	pool["applicationPackageReferences"] = []map[string]any{{"applicationId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Batch/batchAccounts/a/applications/Tool-X"}}
	e.c.must(201, "POST", "/pools", pool)
	e.job("Job-1", "p", map[string]any{"commonEnvironmentSettings": []map[string]any{
		{"name": "FROM_JOB", "value": "job"}, {"name": "BOTH", "value": "job"}}})
	e.addTasks("Job-1", taskBody("Task-1", "/usr/bin/env", map[string]any{
		"environmentSettings":          []map[string]any{{"name": "BOTH", "value": "task"}, {"name": "EMPTY"}},
		"applicationPackageReferences": []map[string]any{{"applicationId": "aligner"}},
		"authenticationTokenSettings":  map[string]any{"access": []string{"job"}},
	}), taskBody("no-package", "true", map[string]any{
		"applicationPackageReferences": []map[string]any{{"applicationId": "aligner", "version": "9.9"}},
		"constraints":                  map[string]any{"maxTaskRetryCount": 3},
	}))
	tk := e.waitTask("Job-1", "Task-1", TaskCompleted)
	if tk.ExecutionInfo.Result != ResultSuccess {
		t.Fatalf("env task: %+v %+v", tk.ExecutionInfo, tk.ExecutionInfo.FailureInfo)
	}
	env := envOf(string(e.c.must(200, "GET", "/jobs/Job-1/tasks/Task-1/files/stdout.txt", nil).body))
	root := env["AZ_BATCH_NODE_ROOT_DIR"]
	taskDir := filepath.Join(root, "workitems", "Job-1", "job-1", "Task-1")
	want := map[string]string{
		"AZ_BATCH_ACCOUNT_NAME":              "emulator",
		"AZ_BATCH_ACCOUNT_URL":               e.ts.URL,
		"AZ_BATCH_POOL_ID":                   "p",
		"AZ_BATCH_NODE_ID":                   tk.NodeInfo.NodeID,
		"AZ_BATCH_NODE_IS_DEDICATED":         "true",
		"AZ_BATCH_NODE_SHARED_DIR":           filepath.Join(root, "shared"),
		"AZ_BATCH_NODE_STARTUP_DIR":          filepath.Join(root, "startup"),
		"AZ_BATCH_NODE_MOUNTS_DIR":           filepath.Join(root, "fsmounts"),
		"AZ_BATCH_JOB_ID":                    "Job-1",
		"AZ_BATCH_TASK_ID":                   "Task-1",
		"AZ_BATCH_TASK_DIR":                  taskDir,
		"AZ_BATCH_TASK_WORKING_DIR":          filepath.Join(taskDir, "wd"),
		"AZ_BATCH_CERTIFICATES_DIR":          filepath.Join(taskDir, "certs"),
		"PWD":                                "",
		"FROM_JOB":                           "job",
		"BOTH":                               "task",
		"EMPTY":                              "",
		"AZ_BATCH_APP_PACKAGE_aligner_2_1_0": aligner,
		"AZ_BATCH_APP_PACKAGE_aligner":       aligner,
		"AZ_BATCH_APP_PACKAGE_Tool_X":        tool,
		"AZ_BATCH_APP_PACKAGE_tool_x":        tool,
		"AZ_BATCH_TASK_RESERVED_EPHEMERAL_DISK_SPACE_BYTES": "0",
	}
	for k, v := range want {
		if k == "PWD" {
			continue
		}
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("%s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	if env["PATH"] == "" {
		t.Error("PATH is not passed on")
	}
	for k := range env {
		if strings.HasPrefix(k, "AZURE_") {
			t.Errorf("the emulator's own %s leaked into the task", k)
		}
	}

	// The task's token (with Options.TaskTokens) reaches its own job and
	// nothing else.
	token := env["AZ_BATCH_AUTHENTICATION_TOKEN"]
	if token == "" {
		t.Fatal("no AZ_BATCH_AUTHENTICATION_TOKEN")
	}
	bearer := func(target string) int {
		return e.c.send(req{method: "GET", target: target, tamper: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }}).status
	}
	if s := bearer("/jobs/job-1/tasks"); s != 200 {
		t.Errorf("token on its job: %d", s)
	}
	e.job("other", "p", nil)
	if s := bearer("/jobs/other"); s != 403 {
		t.Errorf("token on another job: %d", s)
	}

	np := e.waitTask("Job-1", "no-package", TaskCompleted)
	if fi := np.ExecutionInfo.FailureInfo; fi == nil || fi.Code != "ApplicationPackageError" || np.ExecutionInfo.ExitCode != nil || np.ExecutionInfo.RetryCount != 0 {
		t.Errorf("missing package: %+v %+v", np.ExecutionInfo, np.ExecutionInfo.FailureInfo)
	}
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`prog a  b`, []string{"prog", "a", "b"}},
		{`/bin/sh -c "echo $HOME | wc"`, []string{"/bin/sh", "-c", "echo $HOME | wc"}},
		{`sh -c 'it"s'`, []string{"sh", "-c", `it"s`}},
		{`a\ b "c\"d" ''`, []string{"a b", `c"d`, ""}},
	} {
		got, err := splitCommandLine(tc.in)
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s: got %q %v, want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`a 'b`, `a "b`, ``, `   `} {
		if _, err := splitCommandLine(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestTaskFiles(t *testing.T) {
	e := newEnv(t, Options{})
	e.pool("p", 1, 1)
	e.job("j", "p", nil)
	e.addTasks("j", taskBody("t", sh(`printf 'hello world\n'; echo oops >&2; mkdir -p out; echo a > out/a.txt; echo bb > b.txt`), nil))
	e.waitTask("j", "t", TaskCompleted)

	r := e.c.must(200, "GET", "/jobs/j/tasks/t/files/stdout.txt", nil)
	if string(r.body) != "hello world\n" || r.header.Get("Content-Type") != "application/octet-stream" ||
		r.header.Get("ocp-batch-file-isdirectory") != "false" || !strings.HasSuffix(r.header.Get("ocp-batch-file-url"), "/jobs/j/tasks/t/files/stdout.txt") ||
		r.header.Get("ocp-creation-time") == "" || r.header.Get("Last-Modified") == "" {
		t.Errorf("stdout: %q %v", r.body, r.header)
	}
	if r := e.c.must(200, "GET", "/jobs/j/tasks/t/files/stderr.txt", nil); string(r.body) != "oops\n" {
		t.Errorf("stderr: %q", r.body)
	}
	if r := e.c.must(200, "GET", "/jobs/j/tasks/t/files/wd/out/a.txt", nil); string(r.body) != "a\n" {
		t.Errorf("wd/out/a.txt: %q", r.body)
	}
	if r := e.c.must(200, "GET", "/jobs/j/tasks/t/files/wd%2Fout%2Fa.txt", nil); string(r.body) != "a\n" {
		t.Errorf("encoded slashes: %q", r.body)
	}
	for _, tc := range []struct{ rng, want string }{{"bytes=0-4", "hello"}, {"bytes=6-", "world\n"}, {"bytes=-3", "ld\n"}, {"bytes=6-100", "world\n"}} {
		r := e.c.send(req{method: "GET", target: "/jobs/j/tasks/t/files/stdout.txt", header: http.Header{"ocp-range": {tc.rng}}})
		if r.status != 200 || string(r.body) != tc.want {
			t.Errorf("ocp-range %s: %s", tc.rng, r)
		}
	}
	if r := e.c.send(req{method: "GET", target: "/jobs/j/tasks/t/files/stdout.txt", header: http.Header{"ocp-range": {"bytes=50-60"}}}); r.status != 416 {
		t.Errorf("range beyond the end: %s", r)
	}
	h := e.c.must(200, "HEAD", "/jobs/j/tasks/t/files/stdout.txt", nil)
	if h.header.Get("Content-Length") != "12" || h.header.Get("ocp-batch-file-mode") != "0100644" || len(h.body) != 0 {
		t.Errorf("HEAD: %v", h.header)
	}
	if h := e.c.must(200, "HEAD", "/jobs/j/tasks/t/files/wd", nil); h.header.Get("ocp-batch-file-isdirectory") != "true" {
		t.Errorf("HEAD on a directory: %v", h.header)
	}

	names := func(target string) (out []string) {
		for target != "" {
			page := decode[NodeFileList](t, e.c.must(200, "GET", target, nil))
			for _, f := range page.Value {
				out = append(out, f.Name)
			}
			target = page.NextLink
		}
		return out
	}
	if got := strings.Join(names("/jobs/j/tasks/t/files"), " "); got != "stderr.txt stdout.txt wd" {
		t.Errorf("list: %s", got)
	}
	if got := strings.Join(names("/jobs/j/tasks/t/files?recursive=true&maxresults=2"), " "); got != "stderr.txt stdout.txt wd wd/b.txt wd/out wd/out/a.txt" {
		t.Errorf("recursive list: %s", got)
	}
	if got := strings.Join(names("/jobs/j/tasks/t/files?recursive=true&$filter=startswith(name,'wd/out')"), " "); got != "wd/out wd/out/a.txt" {
		t.Errorf("filtered list: %s", got)
	}

	e.c.must(200, "DELETE", "/jobs/j/tasks/t/files/wd/b.txt", nil)
	if r := e.c.do("GET", "/jobs/j/tasks/t/files/wd/b.txt", nil); r.status != 404 || errorCode(t, r) != "FileNotFound" {
		t.Errorf("deleted file: %s", r)
	}
	if r := e.c.do("DELETE", "/jobs/j/tasks/t/files/wd/out", nil); r.status != 409 {
		t.Errorf("delete a non-empty directory: %s", r)
	}
	e.c.must(200, "DELETE", "/jobs/j/tasks/t/files/wd/out?recursive=true", nil)
	if r := e.c.do("GET", "/jobs/j/tasks/t/files/%2E%2E%2F%2E%2E%2Fx", nil); r.status != 400 {
		t.Errorf("escape: %s", r)
	}
	if r := e.c.do("GET", "/jobs/j/tasks/t/files/wd", nil); r.status != 400 {
		t.Errorf("GET a directory: %s", r)
	}

	e.job("idle", "nopool", nil)
	e.addTasks("idle", taskBody("never", "true", nil))
	if r := e.c.do("GET", "/jobs/idle/tasks/never/files/stdout.txt", nil); r.status != 404 || errorCode(t, r) != "FileNotFound" {
		t.Errorf("a task that never ran: %s", r)
	}

	// Deleting the job deletes its files.
	dir := filepath.Join(e.srv.root, "nodes", e.task("j", "t").NodeInfo.NodeID, "workitems", "j")
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	e.c.must(202, "DELETE", "/jobs/j", nil)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("job directory after delete: %v", err)
	}
}
