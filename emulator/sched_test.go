package emulator

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gate is a file tasks wait for, so a test decides when they finish.
type gate struct{ path string }

func newGate(t *testing.T) *gate { return &gate{path: filepath.Join(t.TempDir(), "gate")} }

func (g *gate) open(t *testing.T) {
	if err := os.WriteFile(g.path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// task is a task that runs until the gate opens, then exits with code.
// It marks its start with the file <gate>.<task id>.
func (g *gate) task(id string, code int, extra map[string]any) map[string]any {
	b := taskBody(id, sh(fmt.Sprintf(`touch "$GATE.$AZ_BATCH_TASK_ID"; while [ ! -e "$GATE" ]; do sleep 0.02; done; exit %d`, code)), extra)
	env, _ := b["environmentSettings"].([]map[string]any)
	b["environmentSettings"] = append(env, map[string]any{"name": "GATE", "value": g.path})
	return b
}

// started waits until the process of gated task id is running.
func (g *gate) started(t *testing.T, id string) {
	waitFor(t, id+" to start", 30*time.Second, func() bool {
		_, err := os.Stat(g.path + "." + id)
		return err == nil
	})
}

func TestRetries(t *testing.T) {
	e := newEnv(t, Options{})
	e.pool("p", 1, 4)
	e.job("j", "p", nil)
	counter := func(n int) string {
		return sh(fmt.Sprintf(`f="$AZ_BATCH_NODE_SHARED_DIR/$AZ_BATCH_TASK_ID.n"; n=$(cat "$f" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$f"; echo "attempt $n"; [ $n -ge %d ]`, n))
	}
	e.addTasks("j",
		taskBody("always", sh("exit 3"), map[string]any{"constraints": map[string]any{"maxTaskRetryCount": 2}}),
		taskBody("third-time", counter(3), map[string]any{"constraints": map[string]any{"maxTaskRetryCount": 5}}),
		taskBody("unlimited", counter(4), map[string]any{"constraints": map[string]any{"maxTaskRetryCount": -1}}),
		taskBody("no-retries", counter(2), nil),
	)
	for _, tc := range []struct {
		id      string
		retries int32
		exit    int32
		result  TaskResult
	}{
		{"always", 2, 3, ResultFailure},
		{"third-time", 2, 0, ResultSuccess},
		{"unlimited", 3, 0, ResultSuccess},
		{"no-retries", 0, 1, ResultFailure},
	} {
		tk := e.waitTask("j", tc.id, TaskCompleted)
		ei := tk.ExecutionInfo
		if ei.RetryCount != tc.retries || *ei.ExitCode != tc.exit || ei.Result != tc.result {
			t.Errorf("%s: retries %d exit %d result %s, want %+v", tc.id, ei.RetryCount, *ei.ExitCode, ei.Result, tc)
		}
		if tc.retries > 0 && ei.LastRetryTime == nil {
			t.Errorf("%s: no lastRetryTime", tc.id)
		}
		if tc.result == ResultFailure && (ei.FailureInfo == nil || ei.FailureInfo.Category != UserError || ei.FailureInfo.Code != "FailureExitCode") {
			t.Errorf("%s: failureInfo %+v", tc.id, ei.FailureInfo)
		}
		if tc.result == ResultSuccess && ei.FailureInfo != nil {
			t.Errorf("%s: failureInfo on success %+v", tc.id, ei.FailureInfo)
		}
		if tk.PreviousState != TaskRunning || tk.NodeInfo == nil || tk.NodeInfo.PoolID != "p" {
			t.Errorf("%s: previous state %s node %+v", tc.id, tk.PreviousState, tk.NodeInfo)
		}
	}
	out := e.c.must(200, "GET", "/jobs/j/tasks/third-time/files/stdout.txt", nil)
	if string(out.body) != "attempt 3\n" {
		t.Errorf("stdout of the last attempt: %q", out.body)
	}
}

func TestWallClockTimeout(t *testing.T) {
	e := newEnv(t, Options{KillGrace: 200 * time.Millisecond})
	e.pool("p", 1, 1)
	e.job("j", "p", nil)
	start := time.Now()
	e.addTasks("j", taskBody("slow", sh("sleep 30"), map[string]any{"constraints": map[string]any{"maxWallClockTime": "PT0.5S", "maxTaskRetryCount": 3}}))
	tk := e.waitTask("j", "slow", TaskCompleted)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %v", d)
	}
	ei := tk.ExecutionInfo
	if ei.RetryCount != 0 || ei.Result != ResultFailure || ei.FailureInfo == nil || ei.FailureInfo.Code != "TaskEnded" ||
		ei.FailureInfo.Category != ServerError || ei.ExitCode == nil || *ei.ExitCode == 0 {
		t.Errorf("timed out task: %+v %+v", ei, ei.FailureInfo)
	}
	if d := ei.EndTime.Sub(ei.StartTime.Time); d < 500*time.Millisecond {
		t.Errorf("ran %v, less than its limit", d)
	}
}

func TestDependencies(t *testing.T) {
	e := newEnv(t, Options{})
	e.pool("p", 2, 4)
	e.job("j", "p", map[string]any{"usesTaskDependencies": true})
	dep := func(ids ...string) map[string]any {
		return map[string]any{"dependsOn": map[string]any{"taskIds": ids}}
	}
	rng := func(a, b int) map[string]any {
		return map[string]any{"dependsOn": map[string]any{"taskIdRanges": []map[string]any{{"start": a, "end": b}}}}
	}
	satisfy3 := map[string]any{"exitConditions": map[string]any{
		"exitCodes": []map[string]any{{"code": 3, "exitOptions": map[string]any{"dependencyAction": "satisfy"}}}}}
	block0 := map[string]any{"exitConditions": map[string]any{
		"exitCodes": []map[string]any{{"code": 0, "exitOptions": map[string]any{"dependencyAction": "block"}}}}}
	e.addTasks("j",
		taskBody("waits-for-later", "true", dep("later")), // the parent is added afterwards
		taskBody("fails", sh("exit 1"), nil),
		taskBody("blocked", "true", dep("fails")),
		taskBody("blocked-too", "true", dep("blocked")),
		taskBody("fails-but-satisfies", sh("exit 3"), satisfy3),
		taskBody("runs", "true", dep("FAILS-BUT-SATISFIES")),
		taskBody("succeeds-but-blocks", "true", block0),
		taskBody("blocked-by-success", "true", dep("succeeds-but-blocks")),
		taskBody("1", "true", nil),
		taskBody("2", "true", nil),
		taskBody("003", "true", nil),
		taskBody("after-range", "true", rng(1, 3)),
		taskBody("5", "true", nil),
		taskBody("06", sh("exit 1"), nil),
		taskBody("blocked-by-range", "true", rng(5, 6)),
		taskBody("waits-for-9", "true", rng(9, 9)),
	)
	e.addTasks("j", taskBody("later", "true", nil))
	e.c.must(200, "PATCH", "/jobs/j", map[string]any{"onAllTasksComplete": "terminatejob"})

	done := []string{"later", "waits-for-later", "fails", "fails-but-satisfies", "runs", "succeeds-but-blocks",
		"1", "2", "003", "after-range", "5", "06"}
	for _, id := range done {
		e.waitTask("j", id, TaskCompleted)
	}
	blocked := []string{"blocked", "blocked-too", "blocked-by-success", "blocked-by-range", "waits-for-9"}
	for _, id := range blocked {
		if tk := e.task("j", id); tk.State != TaskActive || tk.ExecutionInfo.StartTime != nil {
			t.Errorf("%s should stay active, never started: %s %+v", id, tk.State, tk.ExecutionInfo)
		}
	}
	if c := e.counts("j").TaskCounts; c.Active != int32(len(blocked)) || c.Completed != int32(len(done)) || c.Running != 0 {
		t.Errorf("counts %+v", c)
	}
	// Blocked tasks are active, so not every task is complete: the job
	// stays active, as on Batch.
	if j := e.jobState("j"); j.State != JobActive {
		t.Errorf("job %s with blocked tasks", j.State)
	}

	// Task 9 arriving releases the last range dependent; terminating the
	// blocked ones completes the job.
	e.addTasks("j", taskBody("09", "true", nil))
	e.waitTask("j", "waits-for-9", TaskCompleted)
	for _, id := range blocked[:4] {
		e.c.must(204, "POST", "/jobs/j/tasks/"+id+"/terminate", nil)
		tk := e.task("j", id)
		if tk.State != TaskCompleted || tk.ExecutionInfo.FailureInfo.Code != "TaskEnded" || tk.ExecutionInfo.ExitCode != nil {
			t.Errorf("terminated %s: %+v", id, tk.ExecutionInfo)
		}
	}
	j := e.jobState("j")
	if j.State != JobCompleted || j.ExecutionInfo.TerminateReason != "AllTasksComplete" {
		t.Errorf("job %s %+v", j.State, j.ExecutionInfo)
	}
}

func TestExitConditions(t *testing.T) {
	for _, tc := range []struct {
		name string
		ec   *ExitConditions
		o    outcome
		want ExitOptions
	}{
		{"success by default", nil, outcome{exit: int32Ptr(0)}, ExitOptions{JobAction: JobActionNone, DependencyAction: Satisfy}},
		{"failure by default", nil, outcome{exit: int32Ptr(1), failure: &TaskFailureInfo{}}, ExitOptions{JobAction: JobActionTerminate, DependencyAction: Block}},
		{"default does not cover 0", &ExitConditions{Default: &ExitOptions{DependencyAction: Block}}, outcome{exit: int32Ptr(0)},
			ExitOptions{JobAction: JobActionNone, DependencyAction: Satisfy}},
		{"exit code 0 listed", &ExitConditions{ExitCodes: []ExitCodeMapping{{Code: int32Ptr(0), ExitOptions: &ExitOptions{JobAction: JobActionTerminate}}}},
			outcome{exit: int32Ptr(0)}, ExitOptions{JobAction: JobActionTerminate, DependencyAction: Satisfy}},
		{"range", &ExitConditions{ExitCodeRanges: []ExitCodeRangeMapping{{Start: int32Ptr(4), End: int32Ptr(6), ExitOptions: &ExitOptions{DependencyAction: Satisfy}}}},
			outcome{exit: int32Ptr(5), failure: &TaskFailureInfo{}}, ExitOptions{JobAction: JobActionTerminate, DependencyAction: Satisfy}},
		{"code before range", &ExitConditions{
			ExitCodes:      []ExitCodeMapping{{Code: int32Ptr(5), ExitOptions: &ExitOptions{JobAction: JobActionNone}}},
			ExitCodeRanges: []ExitCodeRangeMapping{{Start: int32Ptr(4), End: int32Ptr(6), ExitOptions: &ExitOptions{JobAction: JobActionDisable}}}},
			outcome{exit: int32Ptr(5), failure: &TaskFailureInfo{}}, ExitOptions{JobAction: JobActionNone, DependencyAction: Block}},
		{"default for other codes", &ExitConditions{Default: &ExitOptions{DependencyAction: Satisfy}},
			outcome{exit: int32Ptr(9), failure: &TaskFailureInfo{}}, ExitOptions{JobAction: JobActionTerminate, DependencyAction: Satisfy}},
		{"pre-processing", &ExitConditions{PreProcessingError: &ExitOptions{DependencyAction: Satisfy}, Default: &ExitOptions{JobAction: JobActionNone}},
			outcome{pre: true, failure: &TaskFailureInfo{}}, ExitOptions{JobAction: JobActionTerminate, DependencyAction: Satisfy}},
		{"upload error falls back to fileUploadError", &ExitConditions{FileUploadError: &ExitOptions{DependencyAction: Satisfy}},
			outcome{exit: int32Ptr(0), upload: true, failure: &TaskFailureInfo{}}, ExitOptions{JobAction: JobActionTerminate, DependencyAction: Satisfy}},
		{"exit code beats fileUploadError", &ExitConditions{FileUploadError: &ExitOptions{DependencyAction: Satisfy},
			ExitCodes: []ExitCodeMapping{{Code: int32Ptr(0), ExitOptions: &ExitOptions{DependencyAction: Block}}}},
			outcome{exit: int32Ptr(0), upload: true, failure: &TaskFailureInfo{}}, ExitOptions{JobAction: JobActionTerminate, DependencyAction: Block}},
	} {
		if got := exitOptions(tc.ec, tc.o); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestJobActions(t *testing.T) {
	e := newEnv(t, Options{})
	e.pool("p", 1, 2)
	e.job("terminate", "p", map[string]any{"onTaskFailure": "performexitoptionsjobaction"})
	e.addTasks("terminate", taskBody("ok", sh("exit 4"), map[string]any{"exitConditions": map[string]any{
		"exitCodeRanges": []map[string]any{{"start": 3, "end": 5, "exitOptions": map[string]any{"jobAction": "none"}}}}}))
	e.waitTask("terminate", "ok", TaskCompleted)
	if j := e.jobState("terminate"); j.State != JobActive {
		t.Errorf("jobAction none: job %s", j.State)
	}
	e.addTasks("terminate", taskBody("bad", sh("exit 1"), nil))
	j := e.waitJob("terminate", JobCompleted)
	if j.ExecutionInfo.TerminateReason != "TaskFailed" || j.OnTaskFailure != FailurePerformJobAction {
		t.Errorf("job %+v", j.ExecutionInfo)
	}

	e.job("noaction", "p", nil)
	e.addTasks("noaction", taskBody("bad", sh("exit 1"), nil))
	e.waitTask("noaction", "bad", TaskCompleted)
	if j := e.jobState("noaction"); j.State != JobActive {
		t.Errorf("onTaskFailure noaction: job %s", j.State)
	}
}

func TestSlots(t *testing.T) {
	e := newEnv(t, Options{})
	g := newGate(t)
	e.pool("spread", 2, 2)
	e.c.must(201, "POST", "/pools", func() map[string]any {
		b := poolBody("pack", 2, 2)
		b["taskSchedulingPolicy"] = map[string]any{"nodeFillType": "pack"}
		return b
	}())
	e.job("s", "spread", nil)
	e.job("k", "pack", nil)
	var gated []map[string]any
	for i := range 5 {
		gated = append(gated, g.task(fmt.Sprintf("t%d", i), 0, nil))
	}
	e.addTasks("s", gated...)
	e.addTasks("s", g.task("wide", 0, map[string]any{"requiredSlots": 3}))
	e.addTasks("k", g.task("a", 0, nil), g.task("b", 0, nil))

	waitFor(t, "4 running in the spread pool", 30*time.Second, func() bool { return e.counts("s").TaskCounts.Running == 4 })
	waitFor(t, "2 running in the pack pool", 30*time.Second, func() bool { return e.counts("k").TaskCounts.Running == 2 })
	c := e.counts("s")
	if c.TaskCounts.Active != 2 || c.TaskSlotCounts.Running != 4 || c.TaskSlotCounts.Active != 4 {
		t.Errorf("spread counts: %+v", c)
	}
	perNode := map[string]int{}
	running, _ := e.listAll("/jobs/s/tasks?$filter=" + "state%20eq%20%27running%27")
	for _, tk := range running {
		perNode[tk.NodeInfo.NodeID]++
	}
	if len(perNode) != 2 {
		t.Errorf("spread: tasks per node %v", perNode)
	}
	if a, b := e.task("k", "a"), e.task("k", "b"); a.NodeInfo.NodeID != b.NodeInfo.NodeID {
		t.Errorf("pack: a on %s, b on %s", a.NodeInfo.NodeID, b.NodeInfo.NodeID)
	}

	g.open(t)
	for i := range 5 {
		e.waitTask("s", fmt.Sprintf("t%d", i), TaskCompleted)
	}
	// A task asking for more slots than a node has never runs.
	if tk := e.task("s", "wide"); tk.State != TaskActive {
		t.Errorf("wide task: %s", tk.State)
	}
}

func TestMaxParallelTasks(t *testing.T) {
	e := newEnv(t, Options{})
	g := newGate(t)
	e.pool("p", 1, 8)
	e.job("j", "p", map[string]any{"maxParallelTasks": 2})
	e.addTasks("j", g.task("a", 0, nil), g.task("b", 0, nil), g.task("c", 0, nil))
	waitFor(t, "2 running", 30*time.Second, func() bool { return e.counts("j").TaskCounts.Running == 2 })
	if c := e.counts("j").TaskCounts; c.Active != 1 {
		t.Errorf("counts %+v", c)
	}
	g.open(t)
	waitFor(t, "all done", 30*time.Second, func() bool { return e.counts("j").TaskCounts.Completed == 3 })
}

func TestTerminateAndDelete(t *testing.T) {
	e := newEnv(t, Options{KillGrace: 200 * time.Millisecond})
	g := newGate(t)
	e.pool("p", 1, 2)
	e.job("j", "p", map[string]any{"usesTaskDependencies": true})
	e.addTasks("j", g.task("run", 0, nil), g.task("stop", 0, nil), taskBody("child", "true", map[string]any{"dependsOn": map[string]any{"taskIds": []string{"stop"}}}))
	g.started(t, "stop")
	e.c.must(204, "POST", "/jobs/j/tasks/stop/terminate", nil)
	tk := e.waitTask("j", "stop", TaskCompleted)
	if fi := tk.ExecutionInfo.FailureInfo; fi == nil || fi.Code != "TaskEnded" || fi.Category != UserError || tk.ExecutionInfo.ExitCode == nil {
		t.Errorf("terminated: %+v", tk.ExecutionInfo)
	}
	if c := e.task("j", "child"); c.State != TaskActive {
		t.Errorf("child of a terminated task: %s", c.State)
	}

	// Deleting a running task stops it.
	e.c.must(200, "DELETE", "/jobs/j/tasks/run", nil)
	if r := e.c.do("GET", "/jobs/j/tasks/run", nil); r.status != 404 {
		t.Errorf("deleted task: %s", r)
	}

	// Terminating a job stops what runs and leaves what waits.
	e.job("k", "p", nil)
	e.addTasks("k", g.task("x", 0, nil), g.task("y", 0, nil), g.task("z", 0, nil))
	waitFor(t, "2 running", 30*time.Second, func() bool { return e.counts("k").TaskCounts.Running == 2 })
	e.c.must(202, "POST", "/jobs/k/terminate", nil)
	j := e.waitJob("k", JobCompleted)
	if j.ExecutionInfo.TerminateReason != "UserTerminate" {
		t.Errorf("reason %q", j.ExecutionInfo.TerminateReason)
	}
	c := e.counts("k").TaskCounts
	if c.Completed != 2 || c.Active != 1 || c.Failed != 2 {
		t.Errorf("after terminate: %+v", c)
	}

	e.c.must(202, "DELETE", "/jobs/k", nil)
	waitFor(t, "job k gone", 30*time.Second, func() bool { return e.c.do("GET", "/jobs/k", nil).status == 404 })
}

func TestJobManager(t *testing.T) {
	e := newEnv(t, Options{KillGrace: 200 * time.Millisecond})
	g := newGate(t)
	e.pool("p", 1, 2)
	// An exclusive job manager holds the whole node: the job's other task
	// waits until it has finished.
	e.job("excl", "p", map[string]any{"jobManagerTask": map[string]any{
		"id": "jm", "commandLine": sh(`while [ ! -e "$GATE" ]; do sleep 0.02; done`), "killJobOnCompletion": false,
		"environmentSettings": []map[string]any{{"name": "GATE", "value": g.path}},
	}})
	e.addTasks("excl", taskBody("after", "true", nil))
	e.waitTask("excl", "jm", TaskRunning)
	if tk := e.task("excl", "after"); tk.State != TaskActive {
		t.Errorf("a task ran beside an exclusive job manager: %s", tk.State)
	}
	g.open(t)
	e.waitTask("excl", "after", TaskCompleted)
	if j := e.jobState("excl"); j.State != JobActive {
		t.Errorf("killJobOnCompletion false: job %s", j.State)
	}

	// killJobOnCompletion (the default) ends the job when the manager
	// completes, stopping what still runs.
	g2 := newGate(t)
	e.job("kill", "p", map[string]any{"jobManagerTask": map[string]any{
		"id": "manager", "commandLine": sh(`while [ ! -e "$GATE" ]; do sleep 0.02; done`), "runExclusive": false,
		"environmentSettings": []map[string]any{{"name": "GATE", "value": g2.path}},
	}})
	e.addTasks("kill", taskBody("forever", sh("sleep 30"), nil))
	e.waitTask("kill", "forever", TaskRunning)
	g2.open(t)
	j := e.waitJob("kill", JobCompleted)
	if j.ExecutionInfo.TerminateReason != "JMComplete" {
		t.Errorf("reason %q", j.ExecutionInfo.TerminateReason)
	}
	if tk := e.task("kill", "forever"); tk.State != TaskCompleted || tk.ExecutionInfo.FailureInfo.Code != "TaskEnded" {
		t.Errorf("task of a killed job: %s %+v", tk.State, tk.ExecutionInfo)
	}
	if tk := e.task("kill", "manager"); tk.ExecutionInfo.Result != ResultSuccess {
		t.Errorf("manager: %+v", tk.ExecutionInfo)
	}
}

func TestJobWallClockAndDisable(t *testing.T) {
	e := newEnv(t, Options{KillGrace: 200 * time.Millisecond})
	e.pool("p", 1, 1)
	e.job("j", "p", map[string]any{"constraints": map[string]any{"maxWallClockTime": "PT1S"}})
	e.addTasks("j", taskBody("slow", sh("sleep 30"), nil), taskBody("waiting", "true", nil))
	j := e.waitJob("j", JobCompleted)
	if j.ExecutionInfo.TerminateReason != "MaxWallClockTimeExpiry" {
		t.Errorf("reason %q", j.ExecutionInfo.TerminateReason)
	}
	if tk := e.task("j", "waiting"); tk.State != TaskActive {
		t.Errorf("waiting task: %s", tk.State)
	}

	g := newGate(t)
	e.job("d", "p", nil)
	e.addTasks("d", g.task("a", 0, nil))
	e.waitTask("d", "a", TaskRunning)
	e.c.must(202, "POST", "/jobs/d/disable", map[string]any{"disableTasks": "requeue"})
	e.waitJob("d", JobDisabled)
	tk := e.waitTask("d", "a", TaskActive)
	if tk.ExecutionInfo.RequeueCount != 1 || tk.ExecutionInfo.LastRequeueTime == nil {
		t.Errorf("requeued: %+v", tk.ExecutionInfo)
	}
	g.open(t)
	e.c.must(202, "POST", "/jobs/d/enable", nil)
	e.waitTask("d", "a", TaskCompleted)
}

func TestPoolLater(t *testing.T) {
	e := newEnv(t, Options{})
	e.job("j", "later", nil)
	e.addTasks("j", taskBody("a", "true", nil))
	if tk := e.task("j", "a"); tk.State != TaskActive {
		t.Fatalf("ran without a pool: %s", tk.State)
	}
	e.pool("later", 1, 1)
	e.waitTask("j", "a", TaskCompleted)

	// Deleting a pool requeues what runs on it.
	g := newGate(t)
	e.addTasks("j", g.task("b", 0, nil))
	e.waitTask("j", "b", TaskRunning)
	e.c.must(202, "DELETE", "/pools/later", nil)
	tk := e.waitTask("j", "b", TaskActive)
	if tk.ExecutionInfo.RequeueCount != 1 {
		t.Errorf("requeue count %d", tk.ExecutionInfo.RequeueCount)
	}
	waitFor(t, "pool gone", 30*time.Second, func() bool { return e.c.do("GET", "/pools/later", nil).status == 404 })
	g.open(t)
	e.pool("later", 1, 1)
	e.waitTask("j", "b", TaskCompleted)
}

func TestAutoPool(t *testing.T) {
	e := newEnv(t, Options{Instant: true})
	spec := poolBody("", 1, 1)
	delete(spec, "id")
	e.job("j", "", map[string]any{"poolInfo": map[string]any{"autoPoolSpecification": map[string]any{
		"autoPoolIdPrefix": "auto", "poolLifetimeOption": "job", "pool": spec}}})
	j := e.jobState("j")
	if !strings.HasPrefix(j.ExecutionInfo.PoolID, "auto_") {
		t.Fatalf("auto pool id %q", j.ExecutionInfo.PoolID)
	}
	e.c.must(200, "GET", "/pools/"+j.ExecutionInfo.PoolID, nil)
	e.addTasks("j", taskBody("a", "true", nil))
	e.c.must(202, "POST", "/jobs/j/terminate", nil)
	if r := e.c.do("GET", "/pools/"+j.ExecutionInfo.PoolID, nil); r.status != 404 {
		t.Errorf("auto pool outlived its job: %s", r)
	}
}
