package emulator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	e1 := newEnv(t, Options{DataDir: dir})
	e1.pool("p", 1, 2)
	e1.job("j", "p", map[string]any{"usesTaskDependencies": true, "metadata": []map[string]any{{"name": "k", "value": "v"}}})
	e1.addTasks("j",
		taskBody("done", sh("echo done"), nil),
		taskBody("failed", sh("exit 1"), nil),
		taskBody("blocked", "true", map[string]any{"dependsOn": map[string]any{"taskIds": []string{"failed"}}}),
		taskBody("waits-for-1", "true", map[string]any{"dependsOn": map[string]any{"taskIdRanges": []map[string]any{{"start": 1, "end": 1}}}}),
		taskBody("interrupted", sh(`m="$AZ_BATCH_NODE_SHARED_DIR/seen"
if [ -e "$m" ]; then echo second run; exit 0; fi
echo first run; touch "$m"; sleep 30`), map[string]any{"constraints": map[string]any{"maxTaskRetryCount": 0}}),
	)
	e1.waitTask("j", "done", TaskCompleted)
	e1.waitTask("j", "failed", TaskCompleted)
	run := e1.waitTask("j", "interrupted", TaskRunning)
	marker := filepath.Join(dir, "nodes", run.NodeInfo.NodeID, "shared", "seen")
	waitFor(t, "the interrupted task to start its work", 30*time.Second, func() bool {
		_, err := os.Stat(marker)
		return err == nil
	})
	before := map[string]Task{}
	for _, id := range []string{"done", "failed", "blocked", "waits-for-1"} {
		before[id] = e1.task("j", id)
	}
	jobBefore := e1.jobState("j")
	key := e1.srv.Key()
	e1.close()

	e2 := newEnv(t, Options{DataDir: dir})
	if e2.srv.Key() != key {
		t.Errorf("the generated key was not kept")
	}
	p := decode[Pool](t, e2.c.must(200, "GET", "/pools/p", nil))
	if *p.CurrentDedicatedNodes != 1 || *p.TaskSlotsPerNode != 2 {
		t.Errorf("pool after restart: %+v", p)
	}
	j := e2.jobState("j")
	ignoreURLs := cmp.FilterPath(func(p cmp.Path) bool {
		s := p.String()
		return s == "URL" || s == "NodeInfo.NodeURL" || s == "NodeInfo.TaskRootDirectoryURL"
	}, cmp.Ignore())
	if diff := cmp.Diff(jobBefore, j, ignoreURLs); diff != "" {
		t.Errorf("job after restart (-before +after):\n%s", diff)
	}
	for id, b := range before {
		if diff := cmp.Diff(b, e2.task("j", id), ignoreURLs); diff != "" {
			t.Errorf("%s after restart (-before +after):\n%s", id, diff)
		}
	}
	// The task that was running is requeued, as after a node failure: it
	// runs again, with no retry counted.
	tk := e2.waitTask("j", "interrupted", TaskCompleted)
	if tk.ExecutionInfo.Result != ResultSuccess || tk.ExecutionInfo.RetryCount != 0 {
		t.Errorf("interrupted task: %+v", tk.ExecutionInfo)
	}
	if r := e2.c.must(200, "GET", "/jobs/j/tasks/interrupted/files/stdout.txt", nil); string(r.body) != "second run\n" {
		t.Errorf("stdout %q", r.body)
	}
	if r := e2.c.must(200, "GET", "/jobs/j/tasks/done/files/stdout.txt", nil); string(r.body) != "done\n" {
		t.Errorf("files of a task from before the restart: %q", r.body)
	}
	// Dependencies are still tracked.
	e2.addTasks("j", taskBody("1", "true", nil))
	e2.waitTask("j", "waits-for-1", TaskCompleted)
	if tk := e2.task("j", "blocked"); tk.State != TaskActive {
		t.Errorf("blocked after restart: %s", tk.State)
	}
	e2.job("gone", "p", nil)
	e2.c.must(202, "DELETE", "/jobs/gone", nil)
	e2.close()

	// A line torn by a crash at the end of the journal is ignored.
	f, err := os.OpenFile(filepath.Join(dir, journalName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"kind":"task","jobId":"j","task":{"wire":{"id":"tor`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	e3 := newEnv(t, Options{DataDir: dir})
	if r := e3.c.do("GET", "/jobs/gone", nil); r.status != 404 {
		t.Errorf("deleted job after restart: %s", r)
	}
	if c := e3.counts("j").TaskCounts; c.Completed != 5 || c.Active != 1 {
		t.Errorf("counts after the second restart: %+v", c)
	}
}

// A journal that is damaged before its last line is not silently
// half-loaded.
func TestPersistenceCorrupt(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, journalName), []byte("not json\n{\"kind\":\"pool\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{DataDir: dir}); err == nil {
		t.Fatal("loaded a corrupt journal")
	}
}

// A data directory the emulator makes gets a .gitignore of everything:
// it holds the account key, and is often made inside a repository. One
// that was there is left as it is.
func TestDataDirGitignore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo", ".bmc", "emulator")
	newEnv(t, Options{DataDir: dir})
	b, err := os.ReadFile(filepath.Join(dir, ".gitignore"))
	if err != nil || !strings.Contains(string(b), "\n*\n") {
		t.Fatalf(".gitignore %q, %v", b, err)
	}
	newEnv(t, Options{DataDir: dir}) // restarted on it
	// A folder made empty for it (mkdir emudata) is the emulator's as much
	// as one it makes itself.
	empty := t.TempDir()
	newEnv(t, Options{DataDir: empty})
	if b, err := os.ReadFile(filepath.Join(empty, ".gitignore")); err != nil || !strings.Contains(string(b), "\n*\n") {
		t.Errorf("empty data directory: .gitignore %q, %v", b, err)
	}
	mine := t.TempDir()
	if err := os.WriteFile(filepath.Join(mine, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	newEnv(t, Options{DataDir: mine})
	if _, err := os.Stat(filepath.Join(mine, ".gitignore")); err == nil {
		t.Error("a .gitignore was written in a folder that held files")
	}
}
