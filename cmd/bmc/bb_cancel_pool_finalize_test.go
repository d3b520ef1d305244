package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
)

// TestBbSecondCancelCutsPoolFinalize: a first Ctrl-C while the finalize
// step runs on the pool lets it finish; a second cuts it and the
// callback short, as it says it will: the job manager task is
// terminated, the step ends cancelled (its process stopped), no callback
// goes, and the run, whose tasks all succeeded, is reported failed.
// The job manager task reports the step and the callback cut short; one
// that Batch kills at once reports nothing, and bmc tells the same.
func TestBbSecondCancelCutsPoolFinalize(t *testing.T) {
	for _, killed := range []bool{false, true} {
		t.Run(fmt.Sprintf("killed=%v", killed), func(t *testing.T) { bbSecondCancel(t, killed) })
	}
}

func bbSecondCancel(t *testing.T, killed bool) {
	o := emulator.Options{}
	if killed {
		o.KillGrace = -1 // SIGKILL at once: the job manager task cannot report
	}
	f := newBatchFixture(t, o)
	state := filepath.Join(f.dir, "state")
	d := filepath.Join(f.dir, "cut")
	os.MkdirAll(d, 0o755)
	pidFile, release, fin := filepath.Join(d, "step.pid"), filepath.Join(d, "release"), filepath.Join(d, "fin")
	spec := filepath.Join(d, "spec.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: cut
tasks:
  - {id: one, run: "true"}
finalize:
  run: |
    echo $$ > %s
    while [ ! -e %s ]; do sleep 0.05; done
    echo x >> %s
  callback: {url: "%s/hook", timeout: 20s, retries: 1, secretEnv: BMC_CALLBACK_SECRET}
`, pidFile, release, fin, f.hook.srv.URL)), 0o644)
	p := bmcProcess(t, f.dir, "run", "--backend", "azurebatch", "--pool", confPool, "--pool-identity", f.identity, "--finalize-on", "pool",
		"--poll-interval", "100ms", "--state-dir", state, "--progress", "none", spec)
	stderr, err := p.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Process.Kill(); os.WriteFile(release, nil, 0o644) })
	out := lines(stderr)
	step := childPID(t, pidFile)
	var seen strings.Builder
	p.Process.Signal(os.Interrupt)
	waitLine(t, out, "cancel again to cut them short", &seen)
	p.Process.Signal(os.Interrupt)
	for l := range out {
		seen.WriteString(l + "\n")
	}
	p.Wait()
	code := p.ProcessState.ExitCode()
	text := seen.String()
	if code != exitFailed || strings.Contains(text, "bmc: canceled") || !strings.Contains(text, "finalize cancelled") {
		t.Errorf("bmc run: exit %d, want %d, the finalize step cut short\n%s", code, exitFailed, text)
	}
	if !killed && running(step) {
		t.Errorf("the finalize step on the pool (pid %d) still runs", step)
	}
	if n := len(f.hook.received()); n != 0 {
		t.Errorf("%d callbacks, want none: the second cancel cuts the callback short", n)
	}
	if got := fileWords(t, fin); len(got) != 0 {
		t.Errorf("the finalize step finished: %q", got)
	}
	id, dir := onlyRun(t, state)
	st, err := executor.LoadState(dir)
	if err != nil || st.Status != "failed" || st.Finalize == nil || st.Finalize.State != executor.Canceled || st.Callback == nil || st.Callback.Delivered {
		t.Errorf("state %+v (finalize %+v, callback %+v) %v", st, st.Finalize, st.Callback, err)
	}
	if j, err := f.client.GetJob(t.Context(), id); err != nil || j.State != azurebatch.JobStateCompleted {
		t.Errorf("job %+v %v, want it ended", j, err)
	}
	noSecrets(t, "bmc run", text)
	if strings.Contains(text, "conformance-secret") {
		t.Error("bmc run shows the callback secret")
	}
	if killed && (st.Finalize == nil || st.Finalize.Reason != "the finalize task on the pool was terminated by a second cancel") {
		t.Errorf("finalize %+v, want it cut short by the second cancel", st.Finalize)
	}
}
