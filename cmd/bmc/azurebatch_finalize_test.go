package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
)

// TestAzureBatchFinalizeNeedsIdentity: Batch gives tasks no
// authentication tokens any more, so the finalize step on the pool needs
// the pool's managed identity. Without one, auto finalizes here, and
// --finalize-on pool and --detach are refused before anything is made.
func TestAzureBatchFinalizeNeedsIdentity(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	f.identity = ""
	state := filepath.Join(f.dir, "state")
	for _, args := range [][]string{{"--finalize-on", "pool"}, {"--detach"}} {
		code, out := f.batchRun(t, context.Background(), state, append(args, "../../examples/hello.yaml")...)
		if code != exitFailed || !strings.Contains(out, "pool.identity or with --pool-identity") || !strings.Contains(out, "--finalize-on client") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	if ids, _ := executor.ListRunIDs(state); len(ids) != 0 {
		t.Errorf("refused runs left runs %v", ids)
	}
	code, out := f.batchRun(t, context.Background(), state, "../../examples/hello.yaml")
	if code != 0 || !strings.Contains(out, "finalize on the client (the run names no pool identity") {
		t.Errorf("auto without an identity: exit %d\n%s", code, out)
	}
	// With the identity, the job manager task asks for no authentication
	// token, and reaches Batch with the identity.
	f.identity = fixtureIdentity
	state = filepath.Join(f.dir, "state2")
	code, out = f.batchRun(t, context.Background(), state, "--detach", "../../examples/hello.yaml")
	if code != 0 {
		t.Fatalf("--detach with an identity: exit %d\n%s", code, out)
	}
	id, _ := onlyRun(t, state)
	j, err := azurebatch.WaitJobDone(t.Context(), f.client, id, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(j.JobManagerTask)
	if strings.Contains(string(b), "authenticationTokenSettings") {
		t.Errorf("the job manager task asks for a token: %s", b)
	}
	nr, err := azurebatch.ReadNodeResult(t.Context(), f.client, id)
	if err != nil || nr.Error != "" || nr.Status != executor.CallbackSucceeded {
		t.Errorf("the finalize step on the pool: %+v, %v", nr, err)
	}
}

// TestAzureBatchCancelBeforeFinalizeStarts: a run cancelled while its
// finalize task waits for a node of the pool (here a pool of no nodes)
// is not left disabled for ever: the job is ended, and the finalize step
// and the callback run here, reporting the run cancelled.
func TestAzureBatchCancelBeforeFinalizeStarts(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	err := f.client.CreatePool(t.Context(), azurebatch.BatchPoolCreateOptions{
		ID: "empty", VMSize: "Standard_D4s_v5", TaskSlotsPerNode: azurebatch.Ptr(int32(4)), TargetDedicatedNodes: azurebatch.Ptr(int32(0)),
		VirtualMachineConfiguration: &azurebatch.VirtualMachineConfiguration{NodeAgentSKUID: "batch.node.ubuntu 24.04",
			ImageReference: azurebatch.BatchVMImageReference{Publisher: "canonical", Offer: "ubuntu-24_04-lts", SKU: "server", Version: "latest"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(f.dir, "waits.yaml")
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: waits
params:
  hook: {}
tasks:
  - {id: one, run: "true"}
finalize:
  run: echo finalized
  callback: {url: "${{ params.hook }}/hook", secretEnv: BMC_CALLBACK_SECRET, timeout: 20s, retries: 2}
`), 0o644)
	state := filepath.Join(f.dir, "state")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out := f.batchRun(t, ctx, state, "--set", "hook="+f.hook.srv.URL, "--pool", "empty", spec)
		done <- result{code, out}
	}()
	// Cancel once every task is added.
	deadline := time.Now().Add(60 * time.Second)
	for submitted := false; !submitted; {
		if ids, _ := executor.ListRunIDs(state); len(ids) == 1 {
			j, err := f.client.GetJob(t.Context(), ids[0])
			submitted = err == nil && j.OnAllTasksComplete == azurebatch.AllTasksCompleteTerminateJob
		}
		select {
		case r := <-done:
			t.Fatalf("bmc run ended before it was cancelled: exit %d\n%s", r.code, r.out)
		case <-time.After(50 * time.Millisecond): // the poll interval
		}
		if time.Now().After(deadline) {
			t.Fatal("the run was never submitted")
		}
	}
	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("bmc run still waits after the cancel")
	}
	if r.code != exitCanceled || !strings.Contains(r.out, "the finalize step runs here") {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitCanceled, r.out)
	}
	calls := f.hook.received()
	if len(calls) != 1 {
		t.Fatalf("%d callbacks, want 1\n%s", len(calls), r.out)
	}
	var body executor.CallbackBody
	json.Unmarshal(calls[0].body, &body)
	if body.Status != executor.CallbackCancelled {
		t.Errorf("callback %+v", body)
	}
	id, dir := onlyRun(t, state)
	st, err := executor.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "cancelled" || st.Finalize == nil || st.Finalize.State != executor.Succeeded {
		t.Errorf("run %s: status %s, finalize %+v\n%s", id, st.Status, st.Finalize, r.out)
	}
	j, err := f.client.GetJob(t.Context(), id)
	if err != nil || (j.State != azurebatch.JobStateCompleted && j.State != azurebatch.JobStateTerminating) {
		t.Errorf("job after the cancel: %+v %v", j, err)
	}
	// The finalize step ran here: its logs are read here, not on Batch.
	if code, out, serr := bmcRun(t, "logs", "--state-dir", state, id, "finalize"); code != 0 || out != "finalized\n" {
		t.Errorf("logs finalize: exit %d %q %s", code, out, serr)
	}
}

// TestAzureBatchBmcPackageLowerCase: with bmc from an application
// package whose id has capitals, the job manager task finds the package
// even when Batch spells its variable in lower case.
func TestAzureBatchBmcPackageLowerCase(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(dir, "bmc")); err != nil {
		t.Fatal(err)
	}
	f := newBatchFixture(t, emulator.Options{LowerPackageVars: true, Packages: []emulator.Package{{Name: "BmcTool", Version: "1.0", Dir: dir}}})
	state := filepath.Join(f.dir, "state")
	code, out := f.batchRun(t, context.Background(), state, "--detach", "--bmc-package", "BmcTool@1.0", "../../examples/hello.yaml")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	id, _ := onlyRun(t, state)
	if _, err := azurebatch.WaitJobDone(t.Context(), f.client, id, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	nr, err := azurebatch.ReadNodeResult(t.Context(), f.client, id)
	if err != nil || nr.Status != executor.CallbackSucceeded {
		t.Errorf("the finalize step on the pool: %+v, %v", nr, err)
	}
}
