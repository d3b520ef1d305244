package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
)

// TestBbLogsSkippedTask: bmc logs of a task of a Batch run that never
// ran, skipped behind a failure, says what the journal says of it, as on
// the local backend, not that Batch has no log.
func TestBbLogsSkippedTask(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	spec := filepath.Join(f.dir, "skip.yaml")
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: skip
tasks:
  - {id: model, run: "exit 3"}
  - {id: publish, dependsOn: [model], run: "echo published"}
`), 0o644)
	state := filepath.Join(f.dir, "state")
	if code, out := f.batchRun(t, context.Background(), state, "--finalize-on", "client", spec); code != exitFailed {
		t.Fatalf("exit %d\n%s", code, out)
	}
	id, dir := onlyRun(t, state)
	st, err := executor.LoadState(dir)
	if err != nil || st.Tasks["publish"] == nil || st.Tasks["publish"].State != executor.Skipped {
		t.Fatalf("state %+v %v", st, err)
	}
	why := st.Tasks["publish"].Reason
	code, sout, serr := bmcRun(t, "logs", "--state-dir", state, id, "publish")
	if code != exitFailed || !strings.Contains(serr, "task publish has no logs in run "+id+": "+why) || strings.Contains(serr, "stdout.txt") {
		t.Errorf("logs: exit %d\n%s%s", code, sout, serr)
	}
	// A task that ran still shows its log from Batch.
	if code, sout, serr := bmcRun(t, "logs", "--state-dir", state, "--stderr", id, "model"); code != 0 {
		t.Errorf("logs of model: exit %d\n%s%s", code, sout, serr)
	}
}
