package emulator

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWallClockExitCode: a task its maxWallClockTime ends completes with
// the exit code Batch documents, 0xC000013A as an int32, not its
// process's (143 for a shell stopped by SIGTERM), and is not retried.
func TestWallClockExitCode(t *testing.T) {
	e := newEnv(t, Options{KillGrace: 200 * time.Millisecond})
	e.pool("p", 1, 1)
	e.job("j", "p", nil)
	e.addTasks("j", taskBody("slow", sh(`trap "exit 143" TERM; sleep 30 & wait`),
		map[string]any{"constraints": map[string]any{"maxWallClockTime": "PT0.3S", "maxTaskRetryCount": 2}}))
	ei := e.waitTask("j", "slow", TaskCompleted).ExecutionInfo
	if ei.ExitCode == nil || uint32(*ei.ExitCode) != 0xC000013A {
		t.Errorf("exit code %s, want -1073741510 (0xC000013A)", exitText(ei.ExitCode))
	}
	if ei.RetryCount != 0 || ei.FailureInfo == nil || ei.FailureInfo.Category != ServerError || ei.FailureInfo.Code != "TaskEnded" {
		t.Errorf("retries %d, failureInfo %+v; want no retry and servererror/TaskEnded", ei.RetryCount, ei.FailureInfo)
	}
	wire := e.c.must(200, "GET", "/jobs/j/tasks/slow?$select=executionInfo", nil)
	if !strings.Contains(string(wire.body), `"exitCode":-1073741510`) {
		t.Errorf("on the wire: %s", wire.body)
	}
}

func exitText(code *int32) string {
	if code == nil {
		return "null"
	}
	return strconv.Itoa(int(*code))
}
