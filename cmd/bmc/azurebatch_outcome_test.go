package main

// How runs on Azure Batch end, and what bmc runs, bmc status and bmc
// cancel say of them: a submission Batch did not take whole, a run that
// could not start, a detached run, a run that is over.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/azurite"
)

// TestAzureBatchSubmitFailure: when Batch keeps failing to add some tasks,
// bmc gives them up and stops the job; the run failed (exit 1), not
// cancelled, and the callback from the pool, the journal and bmc status
// list the tasks that were not submitted, with why.
func TestAzureBatchSubmitFailure(t *testing.T) {
	// Nine add-collection items in ten fail with servererror: some tasks
	// fail every resubmission (about 30s of backoff).
	f := newBatchFixture(t, emulator.Options{Faults: &emulator.Faults{Partial: 0.9, Seed: 5}})
	spec := filepath.Join(f.dir, "partial.yaml")
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: partial
params:
  hook: {}
tasks:
  - id: w
    matrix: {a: [0, 1, 2, 3, 4, 5]}
    run: echo ${{ matrix.a }}
  - {id: sum, dependsOn: [w], run: echo sum}
finalize:
  run: echo finalized
  callback: {url: "${{ params.hook }}/hook", secretEnv: BMC_CALLBACK_SECRET, timeout: 20s, retries: 2}
`), 0o644)
	state := filepath.Join(f.dir, "state")
	code, out := f.batchRun(t, context.Background(), state, "--set", "hook="+f.hook.srv.URL, spec)
	if code != exitFailed || !strings.Contains(out, "not every task could be added, so the run is stopped and reported failed") || strings.Contains(out, "submitted 7 tasks") || strings.Contains(out, "after 0 attempts") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	id, dir := onlyRun(t, state)
	have := map[string]bool{}
	for tk, err := range f.client.ListTasks(t.Context(), id, azurebatch.ListOptions{Select: "id"}) {
		if err != nil {
			t.Fatal(err)
		}
		have[tk.ID] = true
	}
	var missing []string
	for _, tk := range []string{"sum", "w-0", "w-1", "w-2", "w-3", "w-4", "w-5"} {
		if !have[tk] {
			missing = append(missing, tk)
		}
	}
	if len(missing) == 0 {
		t.Fatalf("every task was added: the faults did not fail the submission\n%s", out)
	}
	t.Logf("not submitted: %v", missing)

	// The callback, from the finalize step on the pool.
	calls := f.hook.received()
	if len(calls) != 1 {
		t.Fatalf("%d callbacks, want 1\n%s", len(calls), out)
	}
	var body executor.CallbackBody
	if err := json.Unmarshal(calls[0].body, &body); err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, ft := range body.Failed {
		failed = append(failed, ft.ID)
		if ft.ExitCode != nil || !strings.HasPrefix(ft.Reason, "not submitted: InternalError: ") {
			t.Errorf("callback: failed %s: exit code %v, %q", ft.ID, ft.ExitCode, ft.Reason)
		}
	}
	slices.Sort(failed)
	if body.Status != executor.CallbackFailed || !slices.Equal(failed, missing) || body.Tasks.Cancelled+body.Tasks.Succeeded+body.Tasks.Skipped+len(missing) != 7 {
		t.Errorf("callback %s %+v, failed %v; not submitted %v", body.Status, body.Tasks, failed, missing)
	}

	// The journal, and bmc status, which reads it.
	st, err := executor.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "failed" {
		t.Errorf("journaled %s", st.Status)
	}
	for _, tk := range missing {
		if ts := st.Tasks[tk]; ts == nil || ts.State != executor.Failed || !strings.HasPrefix(ts.Reason, "not submitted: ") {
			t.Errorf("journal: %s %+v", tk, ts)
		}
	}
	for tk, ts := range st.Tasks {
		if ts.State == executor.Canceled && !strings.Contains(ts.Reason, "could not be submitted") {
			t.Errorf("journal: %s cancelled, without saying why: %q", tk, ts.Reason)
		}
	}
	code, sout, serr := bmcRun(t, "status", "--state-dir", state, id)
	if code != 0 || !strings.Contains(sout, ": failed\n") || !strings.Contains(sout, "not submitted: InternalError") {
		t.Errorf("status: exit %d\n%s%s", code, sout, serr)
	}
}

// TestAzureBatchSetupErrors: a run that cannot start on Batch, for what is
// the user's to fix (credentials, endpoint, pool, storage account, a
// local input), exits 1 and says why. A failure bmc checks for before it
// makes the run leaves no run; one found later leaves a run journaled
// failed, which bmc cancel says is not in progress.
func TestAzureBatchSetupErrors(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	hello := filepath.Join(f.dir, "hello.yaml")
	os.WriteFile(hello, []byte(`apiVersion: bmc/v1
kind: Workload
name: hello
tasks:
  - {id: greet, run: echo hello}
`), 0o644)
	narrow := filepath.Join(f.dir, "narrow.yaml")
	os.WriteFile(narrow, []byte(`apiVersion: bmc/v1
kind: Workload
name: narrow
pool:
  id: `+confPool+`
  vmSize: Standard_D4s_v5
  image: {publisher: canonical, offer: ubuntu-24_04-lts, sku: server}
  nodeAgentSku: batch.node.ubuntu 24.04
  nodes: {dedicated: 2}
  slotsPerNode: 2
tasks:
  - {id: greet, run: echo hello}
`), 0o644)
	otherKey := base64.StdEncoding.EncodeToString([]byte("not the emulator's key, but a key"))
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no endpoint", map[string]string{"AZURE_BATCH_ENDPOINT": ""}, []string{hello}, "AZURE_BATCH_ENDPOINT is not set"},
		{"wrong key", map[string]string{"AZURE_BATCH_ACCESS_KEY": otherKey}, []string{hello}, "Azure Batch refused bmc's credentials (check AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY"},
		{"no such pool", nil, []string{"--pool", "nope", hello}, "pool nope does not exist, and bmc cannot create it"},
		{"pool mismatch", nil, []string{narrow}, "exists with taskSlotsPerNode 4, but the spec asks for 2"},
		{"wrong storage key", map[string]string{"AZURE_STORAGE_CONNECTION_STRING": strings.Replace(f.cs, azurite.Key, otherKey, 1)}, []string{hello}, "storage account http://127.0.0.1:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			state := filepath.Join(t.TempDir(), "state")
			code, out := f.batchRun(t, context.Background(), state, c.args...)
			if code != exitFailed || !strings.Contains(out, c.want) {
				t.Errorf("exit %d, want %d saying %q\n%s", code, exitFailed, c.want, out)
			}
			noSecrets(t, "bmc run output", out)
			if ids, _ := executor.ListRunIDs(state); len(ids) != 0 {
				t.Errorf("runs %v left behind", ids)
			}
		})
	}

	// A local input that is not there is an error of the plan: nothing
	// is made, on Batch or here.
	missing := filepath.Join(f.dir, "missing.yaml")
	os.WriteFile(missing, []byte(`apiVersion: bmc/v1
kind: Workload
name: missing
tasks:
  - {id: read, inputs: [{from: not-there.txt}], run: cat not-there.txt}
`), 0o644)
	state := filepath.Join(f.dir, "state")
	code, out := f.batchRun(t, context.Background(), state, missing)
	if code != exitFailed || !strings.Contains(out, "read: input not-there.txt is not there: ") || !strings.Contains(out, "nothing was run") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if ids, _ := executor.ListRunIDs(state); len(ids) != 0 {
		t.Errorf("runs %v left behind", ids)
	}
}

// detachedRun submits a two-task run with --detach and returns its id
// once Batch has ended its job.
func (f *batchFixture) detachedRun(t *testing.T, state string, beforeEnd func(id string)) string {
	t.Helper()
	spec := filepath.Join(f.dir, "two.yaml")
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: two
tasks:
  - {id: one, run: echo one}
  - {id: two, dependsOn: [one], run: echo two}
finalize:
  run: echo finalized
`), 0o644)
	if code, out := f.batchRun(t, context.Background(), state, "--detach", spec); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	id, _ := onlyRun(t, state)
	if beforeEnd != nil {
		beforeEnd(id)
	}
	j, err := azurebatch.WaitJobDone(t.Context(), f.client, id, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if j.ExecutionInfo == nil || j.ExecutionInfo.TerminateReason != "JMComplete" {
		t.Fatalf("job ended %+v", j.ExecutionInfo)
	}
	return id
}

// runsStatus is the run's status and counts as bmc runs lists them.
func runsStatus(t *testing.T, state, id string) (string, executor.Counts) {
	t.Helper()
	code, out, serr := bmcRun(t, "runs", "--state-dir", state, "--output", "json")
	var rows []runRow
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("runs: exit %d\n%s%s", code, out, serr)
	}
	for _, r := range rows {
		if r.ID == id {
			return r.Status, r.Counts
		}
	}
	t.Fatalf("runs does not list %s:\n%s", id, out)
	return "", executor.Counts{}
}

// TestAzureBatchRunsDetached: bmc runs, which asks no backend, shows a
// detached run as detached, not interrupted, while it runs and after;
// once bmc status has read its outcome from Batch, bmc runs shows that.
func TestAzureBatchRunsDetached(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	state := filepath.Join(f.dir, "state")
	id := f.detachedRun(t, state, func(id string) {
		if st, _ := runsStatus(t, state, id); st != "detached" {
			t.Errorf("runs: a run just submitted with --detach is %s", st)
		}
	})
	if st, _ := runsStatus(t, state, id); st != "detached" {
		t.Errorf("runs: a detached run whose outcome bmc has not read is %s", st)
	}
	if code, out, _ := bmcRun(t, "runs", "--state-dir", state); code != 0 || strings.Contains(out, "interrupted") {
		t.Errorf("runs: exit %d\n%s", code, out)
	}
	if code, out, serr := bmcRun(t, "status", "--state-dir", state, id); code != 0 || !strings.Contains(out, ": succeeded") {
		t.Fatalf("status: exit %d\n%s%s", code, out, serr)
	}
	if st, c := runsStatus(t, state, id); st != "succeeded" || c.Succeeded != 2 || c.Total != 2 {
		t.Errorf("runs after bmc status: %s %+v", st, c)
	}
	// bmc status now reads the journal, Batch's job gone or not.
	if err := f.client.DeleteJob(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if code, out, serr := bmcRun(t, "status", "--state-dir", state, id); code != 0 || !strings.Contains(out, ": succeeded") ||
		!strings.Contains(out, "finalize  succeeded") {
		t.Errorf("status from the journal: exit %d\n%s%s", code, out, serr)
	}
}

// TestAzureBatchCancelFinished: bmc cancel of a Batch run that is over
// says so and exits 1, as on the local backend, and leaves the job alone:
// whether Batch says the job ended, or the journal that the run did.
func TestAzureBatchCancelFinished(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	state := filepath.Join(f.dir, "state")
	id := f.detachedRun(t, state, nil)
	for _, when := range []string{"the job ended", "the journal has the run's end"} {
		code, out, serr := bmcRun(t, "cancel", "--state-dir", state, id)
		if code != exitFailed || !strings.Contains(serr, "run "+id+" is not in progress") || strings.Contains(out, "cancelling") {
			t.Errorf("cancel once %s: exit %d\n%s%s", when, code, out, serr)
		}
		j, err := f.client.GetJob(t.Context(), id)
		if err != nil || j.State != azurebatch.JobStateCompleted || j.ExecutionInfo.TerminateReason != "JMComplete" {
			t.Errorf("job after cancel: %+v %v", j, err)
		}
		// bmc status journals the run's end.
		if code, out, serr := bmcRun(t, "status", "--state-dir", state, id); code != 0 || !strings.Contains(out, ": succeeded") {
			t.Fatalf("status: exit %d\n%s%s", code, out, serr)
		}
	}
}
