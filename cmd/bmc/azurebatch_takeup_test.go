package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
)

// takeUpSpec is a run whose task waits for the file go, counting its
// starts in ran, and whose finalize step here counts its own in fin.
func takeUpSpec(t *testing.T, f *batchFixture, name string) (spec, started, goFile, ran, fin string) {
	t.Helper()
	started, goFile = filepath.Join(f.dir, name+".started"), filepath.Join(f.dir, name+".go")
	ran, fin = filepath.Join(f.dir, name+".ran"), filepath.Join(f.dir, name+".fin")
	spec = filepath.Join(f.dir, name+".yaml")
	err := os.WriteFile(spec, []byte(fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: %s
tasks:
  - {id: wait, run: "echo x >> %s; touch %s; while [ ! -e %s ]; do sleep 0.05; done"}
  - {id: after, dependsOn: [wait], run: "true"}
finalize:
  run: |
    grep -o '"status": *"[a-z]*"' "$BMC_RUN_SUMMARY" | head -1 | tr -d ' ' >> %s
  callback: {url: "%s/hook", timeout: 20s, retries: 1, secretEnv: BMC_CALLBACK_SECRET}
`, name, ran, started, goFile, fin, f.hook.srv.URL)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return spec, started, goFile, ran, fin
}

// startKilled starts bmc run on spec finalizing here, waits for started to
// appear, and kills bmc with SIGKILL: the run goes on on Batch with no
// one following it.
func startKilled(t *testing.T, f *batchFixture, state, spec, started string, args ...string) string {
	t.Helper()
	args = append([]string{"run", "--backend", "azurebatch", "--pool", confPool, "--poll-interval", "100ms", "--finalize-on", "client", "--state-dir", state, "--progress", "none", spec}, args...)
	p := bmcProcess(t, f.dir, args...)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the task to start", 60*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
	p.Process.Signal(syscall.SIGKILL)
	p.Wait()
	id, _ := onlyRun(t, state)
	return id
}

func fileWords(t *testing.T, p string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func hookBodies(t *testing.T, h *hookEndpoint) []executor.CallbackBody {
	t.Helper()
	var out []executor.CallbackBody
	for _, c := range h.received() {
		var b executor.CallbackBody
		if err := json.Unmarshal(c.body, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestAzureBatchResumeTakesUp: a run whose bmc was killed goes on on
// Batch; bmc resume follows it to its end without submitting anything
// again, then runs the finalize step and sends the callback here. A
// second resume finds it over.
func TestAzureBatchResumeTakesUp(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	state := filepath.Join(f.dir, "state")
	spec, started, goFile, ran, fin := takeUpSpec(t, f, "takeup")
	id := startKilled(t, f, state, spec, started)
	if n := len(f.hook.received()); n != 0 {
		t.Fatalf("%d callbacks before the resume", n)
	}
	os.WriteFile(goFile, nil, 0o644)
	code, out, serr := bmcRun(t, "resume", "--state-dir", state, "--progress", "plain", id)
	if code != 0 || !strings.Contains(serr, "taking up run "+id) || !strings.Contains(serr, "2 succeeded, 0 failed, 0 skipped, 0 cancelled of 2") {
		t.Fatalf("resume: exit %d\n%s%s", code, out, serr)
	}
	if got := fileWords(t, ran); len(got) != 1 {
		t.Errorf("the task started %d times, want once", len(got))
	}
	if got := fileWords(t, fin); len(got) != 1 || !strings.Contains(got[0], "succeeded") {
		t.Errorf("finalize step runs: %q", got)
	}
	bodies := hookBodies(t, f.hook)
	if len(bodies) != 1 || bodies[0].Status != executor.CallbackSucceeded || bodies[0].Tasks.Succeeded != 2 {
		t.Fatalf("callbacks %+v", bodies)
	}
	if calls := f.hook.received(); calls[0].header.Get("Idempotency-Key") != id || !strings.HasPrefix(calls[0].header.Get("X-Bmc-Signature"), "sha256=") {
		t.Errorf("callback headers %v", calls[0].header)
	}
	if _, sout, _ := bmcRun(t, "status", "--state-dir", state, id); !strings.Contains(sout, ": succeeded") {
		t.Errorf("status:\n%s", sout)
	}
	// Over, and delivered: nothing is left to do.
	code, _, serr = bmcRun(t, "resume", "--state-dir", state, id)
	if code != exitFailed || !strings.Contains(serr, "is over (succeeded), and its outcome was delivered") {
		t.Errorf("second resume: exit %d\n%s", code, serr)
	}
	if n := len(f.hook.received()); n != 1 {
		t.Errorf("%d callbacks after the second resume", n)
	}
}

// TestAzureBatchCancelTakesUp: bmc cancel of a run whose finalize step
// was this machine's, and whose bmc was killed, stops its tasks on Batch
// and runs the finalize step and the callback (cancelled) here.
func TestAzureBatchCancelTakesUp(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	state := filepath.Join(f.dir, "state")
	spec, started, _, ran, fin := takeUpSpec(t, f, "gone")
	id := startKilled(t, f, state, spec, started)
	code, out, serr := bmcRun(t, "cancel", "--state-dir", state, id)
	if code != 0 || !strings.Contains(out, "cancelling run "+id+" on Azure Batch, whose bmc process is gone") {
		t.Fatalf("cancel: exit %d\n%s%s", code, out, serr)
	}
	j, err := f.client.GetJob(t.Context(), id)
	if err != nil || j.State != azurebatch.JobStateCompleted {
		t.Errorf("job %+v %v", j, err)
	}
	if got := fileWords(t, ran); len(got) != 1 {
		t.Errorf("the task started %d times, want once", len(got))
	}
	if got := fileWords(t, fin); len(got) != 1 || !strings.Contains(got[0], "cancelled") {
		t.Errorf("finalize step runs: %q", got)
	}
	bodies := hookBodies(t, f.hook)
	if len(bodies) != 1 || bodies[0].Status != executor.CallbackCancelled || bodies[0].Tasks.Cancelled != 2 {
		t.Fatalf("callbacks %+v", bodies)
	}
	if _, sout, _ := bmcRun(t, "status", "--state-dir", state, id); !strings.Contains(sout, ": cancelled") {
		t.Errorf("status:\n%s", sout)
	}
	if code, _, serr := bmcRun(t, "cancel", "--state-dir", state, id); code != exitFailed || !strings.Contains(serr, "not in progress") {
		t.Errorf("second cancel: exit %d\n%s", code, serr)
	}
}

// TestAzureBatchResumeSendsCallback: a run finalized here whose callback
// was refused gets it again from bmc resume, without its finalize step
// or any task running again.
func TestAzureBatchResumeSendsCallback(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	state := filepath.Join(f.dir, "state")
	spec, _, goFile, ran, fin := takeUpSpec(t, f, "again")
	os.WriteFile(goFile, nil, 0o644)
	f.hook.answer(http.StatusBadRequest)
	code, out := f.batchRun(t, context.Background(), state, "--finalize-on", "client", spec)
	id, _ := onlyRun(t, state)
	if code != exitFailed || !regexp.MustCompile(`not delivered: bmc resume `+id+` .*sends it again`).MatchString(out) {
		t.Fatalf("exit %d\n%s", code, out)
	}
	f.hook.answer(http.StatusOK)
	code, sout, serr := bmcRun(t, "resume", "--state-dir", state, id)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s%s", code, sout, serr)
	}
	bodies := hookBodies(t, f.hook)
	if len(bodies) != 2 || bodies[1].Status != executor.CallbackSucceeded || bodies[1].Tasks.Succeeded != 2 {
		t.Fatalf("callbacks %+v", bodies)
	}
	if got := fileWords(t, ran); len(got) != 1 {
		t.Errorf("the task started %d times, want once", len(got))
	}
	if got := fileWords(t, fin); len(got) != 1 {
		t.Errorf("the finalize step ran %d times, want once", len(got))
	}
	st, err := executor.LoadState(filepath.Join(executor.RunsDir(state), id))
	if err != nil || st.Status != "succeeded" || st.Callback == nil || !st.Callback.Delivered {
		t.Errorf("state %+v %v", st, err)
	}
}

// TestAzureBatchResumeRedacted: a run that kept no secrets, on a pool
// and identity given by flags, is taken up with its secret given again;
// without it, resume says which --set it needs.
func TestAzureBatchResumeRedacted(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	state := filepath.Join(f.dir, "state")
	started, goFile := filepath.Join(f.dir, "red.started"), filepath.Join(f.dir, "red.go")
	spec := filepath.Join(f.dir, "red.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: red
params:
  hook: {}
tasks:
  - {id: wait, run: "touch %s; while [ ! -e %s ]; do sleep 0.05; done"}
finalize:
  callback: {url: "${{ params.hook }}", timeout: 20s, retries: 1}
`, started, goFile)), 0o644)
	hook := f.hook.srv.URL + "/hook?sig=HOOKSIG0secret"
	id := startKilled(t, f, state, spec, started, "--pool-identity", fixtureIdentity, "--set", "hook="+hook)
	os.WriteFile(goFile, nil, 0o644)
	code, _, serr := bmcRun(t, "resume", "--state-dir", state, id)
	if code != exitFailed || !strings.Contains(serr, "--set hook=") {
		t.Fatalf("resume without the secret: exit %d\n%s", code, serr)
	}
	code, sout, serr := bmcRun(t, "resume", "--state-dir", state, "--set", "hook="+hook, id)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s%s", code, sout, serr)
	}
	calls := f.hook.received()
	if len(calls) != 1 || calls[0].query != "sig=HOOKSIG0secret" {
		t.Fatalf("callbacks %+v", calls)
	}
	noSecrets(t, "resume output", sout+serr)
	noSecretsInDir(t, filepath.Join(executor.RunsDir(state), id))
}

// finHeldSpec is a run of one quick task whose finalize step here holds
// on its first start until the file release appears, writing its pid to
// fin.pid; each start and each end is counted.
func finHeldSpec(t *testing.T, f *batchFixture, name, task string) (spec, started, release, starts, ends string) {
	t.Helper()
	d := filepath.Join(f.dir, name)
	os.MkdirAll(d, 0o755)
	started, release, starts, ends = filepath.Join(d, "started"), filepath.Join(d, "release"), filepath.Join(d, "starts"), filepath.Join(d, "ends")
	spec = filepath.Join(d, "spec.yaml")
	err := os.WriteFile(spec, []byte(fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: %s
tasks:
  - {id: t, run: %q}
finalize:
  run: |
    echo x >> %[3]s
    if [ "$(wc -l < %[3]s)" = 1 ]; then
      echo $$ > %[4]s/fin.pid
      while [ ! -e %[5]s ]; do sleep 0.05; done
    fi
    echo x >> %[6]s
  callback: {url: "%[7]s/hook", timeout: 20s, retries: 1, secretEnv: BMC_CALLBACK_SECRET}
`, name, task, starts, d, release, ends, f.hook.srv.URL)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return spec, filepath.Join(d, "fin.pid"), release, starts, ends
}

// killedInFinalize starts the run finalizing here, waits for its
// finalize step to hold, and kills bmc with SIGKILL; signal, when not
// nil, is sent to bmc once the task started, first.
func killedInFinalize(t *testing.T, f *batchFixture, state, spec, pidFile string, before func(p *os.Process)) (id string, finPID int) {
	t.Helper()
	p := bmcProcess(t, f.dir, "run", "--backend", "azurebatch", "--pool", confPool, "--poll-interval", "100ms", "--finalize-on", "client", "--state-dir", state, "--progress", "none", spec)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(p.Process)
	}
	finPID = childPID(t, pidFile)
	p.Process.Signal(syscall.SIGKILL)
	p.Wait()
	id, _ = onlyRun(t, state)
	return id, finPID
}

// TestAzureBatchTakeUpInFinalize: a run whose bmc was killed in its
// finalize step is taken up without a second copy of the step running
// beside the first: the old one is stopped. A cancel then keeps the
// outcome of tasks that had all ended.
func TestAzureBatchTakeUpInFinalize(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	for _, how := range []string{"resume", "cancel"} {
		t.Run(how, func(t *testing.T) {
			state := filepath.Join(f.dir, "state-"+how)
			spec, pidFile, _, starts, ends := finHeldSpec(t, f, "fin"+how, "true")
			id, old := killedInFinalize(t, f, state, spec, pidFile, nil)
			before := len(f.hook.received())
			code, sout, serr := bmcRun(t, how, "--state-dir", state, id)
			if code != 0 || !regexp.MustCompile(`stopped \d+ process(es)? of run `+id+` left running by a bmc process that is gone \(task finalize\)`).MatchString(serr) {
				t.Fatalf("%s: exit %d\n%s%s", how, code, sout, serr)
			}
			if running(old) {
				t.Errorf("the killed bmc's finalize step (pid %d) still runs", old)
			}
			if n, m := len(fileWords(t, starts)), len(fileWords(t, ends)); n != 2 || m != 1 {
				t.Errorf("finalize step started %d times and ended %d, want 2 and 1", n, m)
			}
			bodies := hookBodies(t, f.hook)[before:]
			if len(bodies) != 1 || bodies[0].Status != executor.CallbackSucceeded {
				t.Errorf("callbacks %+v, want one, succeeded: the tasks had all ended", bodies)
			}
		})
	}
}

// TestAzureBatchTakeUpCancelled: a run cancelled with Ctrl-C whose bmc
// was then killed in its finalize step is taken up as cancelled.
func TestAzureBatchTakeUpCancelled(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	state := filepath.Join(f.dir, "state")
	spec, pidFile, _, _, _ := finHeldSpec(t, f, "ctrlc", "touch "+filepath.Join(f.dir, "ctrlc.started")+"; sleep 60")
	id, _ := killedInFinalize(t, f, state, spec, pidFile, func(p *os.Process) {
		waitFor(t, "the task to start", 60*time.Second, func() bool { _, err := os.Stat(filepath.Join(f.dir, "ctrlc.started")); return err == nil })
		p.Signal(os.Interrupt)
	})
	code, sout, serr := bmcRun(t, "resume", "--state-dir", state, id)
	if code != exitCanceled {
		t.Fatalf("resume: exit %d, want %d\n%s%s", code, exitCanceled, sout, serr)
	}
	bodies := hookBodies(t, f.hook)
	if len(bodies) != 1 || bodies[0].Status != executor.CallbackCancelled || bodies[0].Tasks.Cancelled != 1 {
		t.Errorf("callbacks %+v, want one, cancelled", bodies)
	}
}

// TestAzureBatchCancelTakeUpCallbackFails: a cancel that takes a run up
// and cannot deliver its callback says so, exits 1, and says how to send
// it again.
func TestAzureBatchCancelTakeUpCallbackFails(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	state := filepath.Join(f.dir, "state")
	spec, started, _, _, _ := takeUpSpec(t, f, "cbfail")
	id := startKilled(t, f, state, spec, started)
	f.hook.answer(http.StatusInternalServerError)
	code, _, serr := bmcRun(t, "cancel", "--state-dir", state, id)
	if code != exitFailed || !strings.Contains(serr, "not delivered: bmc resume "+id) {
		t.Fatalf("cancel: exit %d\n%s", code, serr)
	}
	f.hook.answer(http.StatusOK)
	if code, _, serr := bmcRun(t, "resume", "--state-dir", state, id); code != exitCanceled {
		t.Errorf("resume: exit %d\n%s", code, serr)
	}
	if bodies := hookBodies(t, f.hook); len(bodies) != 3 || bodies[2].Status != executor.CallbackCancelled {
		t.Errorf("callbacks %+v", bodies)
	}
}

// TestAzureBatchTakeUpJobGone: a run whose job was deleted cannot be
// followed: resume says so and points at cancel, which ends it here.
func TestAzureBatchTakeUpJobGone(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	state := filepath.Join(f.dir, "state")
	spec, started, _, _, _ := takeUpSpec(t, f, "gone")
	id := startKilled(t, f, state, spec, started)
	if err := f.client.DeleteJob(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	code, _, serr := bmcRun(t, "resume", "--state-dir", state, id)
	if code != exitFailed || !strings.Contains(serr, "is not on Azure Batch") || !strings.Contains(serr, "bmc cancel "+id) {
		t.Fatalf("resume: exit %d\n%s", code, serr)
	}
	code, _, serr = bmcRun(t, "cancel", "--state-dir", state, id)
	if code != 0 || strings.Contains(serr, "404") || strings.Contains(serr, "while it was being submitted") {
		t.Fatalf("cancel: exit %d\n%s", code, serr)
	}
	bodies := hookBodies(t, f.hook)
	if len(bodies) != 1 || bodies[0].Status != executor.CallbackCancelled || bodies[0].Tasks.Cancelled != 2 {
		t.Errorf("callbacks %+v", bodies)
	}
}
