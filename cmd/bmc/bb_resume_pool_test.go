package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
)

// bbPoolHeldSpec is a run of two quick tasks whose finalize step, on the
// pool, holds until the file release appears, having made started; it
// counts its ends in fin.
func bbPoolHeldSpec(t *testing.T, f *batchFixture, name string) (spec, started, release, fin string) {
	t.Helper()
	d := filepath.Join(f.dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	started, release, fin = filepath.Join(d, "started"), filepath.Join(d, "release"), filepath.Join(d, "fin")
	spec = filepath.Join(d, "spec.yaml")
	err := os.WriteFile(spec, []byte(fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: %s
tasks:
  - {id: one, run: "true"}
  - {id: two, dependsOn: [one], run: "true"}
finalize:
  run: |
    touch %s
    while [ ! -e %s ]; do sleep 0.05; done
    echo x >> %s
  callback: {url: "%s/hook", timeout: 20s, retries: 1, secretEnv: BMC_CALLBACK_SECRET}
`, name, started, release, fin, f.hook.srv.URL)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return spec, started, release, fin
}

// TestBbResumePoolFinalizeNotStopped: bmc resume of a run whose finalize
// step is the pool's, after its bmc was killed, follows the job and waits
// for the pool's report: it does not stop the pool's finalize step, which
// under the emulator is a process of this machine with the run's id and
// AZ_BATCH_TASK_ID=finalize.
func TestBbResumePoolFinalizeNotStopped(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	state := filepath.Join(f.dir, "state")
	spec, started, release, fin := bbPoolHeldSpec(t, f, "poolup")
	p := bmcProcess(t, f.dir, "run", "--backend", "azurebatch", "--pool", confPool, "--pool-identity", f.identity, "--finalize-on", "pool",
		"--poll-interval", "100ms", "--state-dir", state, "--progress", "none", spec)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the finalize step on the pool to start", 60*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
	p.Process.Signal(syscall.SIGKILL)
	p.Wait()
	id, _ := onlyRun(t, state)

	r := bmcProcess(t, f.dir, "resume", "--state-dir", state, "--progress", "none", id)
	pipe, err := r.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	// Once it says it takes the run up, whatever it stops is stopped: the
	// step may end then.
	var serr strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		serr.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "taking up run "+id) {
			break
		}
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		serr.WriteString(sc.Text() + "\n")
	}
	code := 0
	if err := r.Wait(); err != nil {
		code = r.ProcessState.ExitCode()
	}
	out := serr.String()
	if code != 0 || strings.Contains(out, "stopped ") || !strings.Contains(out, "2 succeeded, 0 failed, 0 skipped, 0 cancelled of 2") {
		t.Fatalf("resume: exit %d\n%s", code, out)
	}
	if got := fileWords(t, fin); len(got) != 1 {
		t.Errorf("the finalize step on the pool ended %d times, want once", len(got))
	}
	bodies := hookBodies(t, f.hook)
	if len(bodies) != 1 || bodies[0].Status != executor.CallbackSucceeded || bodies[0].Tasks.Succeeded != 2 {
		t.Fatalf("callbacks %+v", bodies)
	}
	st, err := executor.LoadState(filepath.Join(executor.RunsDir(state), id))
	if err != nil || st.Status != "succeeded" || st.Finalize == nil || st.Finalize.State != executor.Succeeded {
		t.Errorf("state %+v %v", st, err)
	}
}
