package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
)

// TestAzureBatchLogsAndTimeout runs one spec on both backends with
// --logs: the finalize step's stdout.txt and stderr.txt land beside the
// tasks' logs on Batch as they do locally, and a task with timeout and
// retries is retried locally but not on Batch, whose exit code for it is
// the one Batch documents.
func TestAzureBatchLogsAndTimeout(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	spec := filepath.Join(f.dir, "logs.yaml")
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: logs
tasks:
  - {id: greet, run: "echo hello; echo note >&2"}
  - {id: slow, run: "sleep 30", timeout: 1s, retries: 1}
finalize:
  run: echo finalized; echo finalize-note >&2
`), 0o644)

	type side struct {
		code int
		out  string
		id   string
		logs map[string]string // path below the run's logs -> content
		body executor.CallbackBody
	}
	result := func(code int, out, state string) side {
		s := side{code: code, out: out}
		var dir string
		s.id, dir = onlyRun(t, state)
		b, err := os.ReadFile(filepath.Join(dir, executor.SummaryFile))
		if err == nil {
			err = json.Unmarshal(b, &s.body)
		}
		if err != nil {
			t.Fatal(err)
		}
		loc, _ := blobstage.ParseURL("az://runlogs/" + s.id + "/")
		dst := filepath.Join(t.TempDir(), "logs")
		if _, err := f.store.Download(t.Context(), loc, dst); err != nil {
			t.Fatalf("logs of %s: %v", s.id, err)
		}
		s.logs = readTree(t, dst)
		return s
	}
	lstate := filepath.Join(f.dir, "local")
	lcode, lout, lerr := bmcRun(t, "run", "--state-dir", lstate, "--progress", "none", "--logs", "az://runlogs/", spec)
	local := result(lcode, lout+lerr, lstate)
	bstate := filepath.Join(f.dir, "batch")
	bcode, bout := f.batchRun(t, context.Background(), bstate, "--logs", "az://runlogs/", spec)
	batch := result(bcode, bout, bstate)
	// The finalize step run here rather than on the pool uploads its logs
	// the same way.
	cstate := filepath.Join(f.dir, "client")
	ccode, cout := f.batchRun(t, context.Background(), cstate, "--logs", "az://runlogs/", "--finalize-on", "client", spec)
	client := result(ccode, cout, cstate)

	for name, s := range map[string]side{"local": local, "azurebatch": batch, "azurebatch, finalize on the client": client} {
		if s.code != exitFailed {
			t.Errorf("%s: exit %d\n%s", name, s.code, s.out)
		}
		want := map[string]string{
			"greet/stdout.txt": "hello\n", "greet/stderr.txt": "note\n",
			"finalize/stdout.txt": "finalized\n", "finalize/stderr.txt": "finalize-note\n",
		}
		got := map[string]string{}
		for k, v := range s.logs {
			if _, ok := want[k]; ok {
				got[k] = v
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: logs under az://runlogs/%s/ (-want +got):\n%s\nall: %v", name, s.id, diff, s.logs)
		}
	}

	// The timed-out task: retried once locally, ended on Batch.
	type failure struct {
		ExitCode *int
		Reason   string
		Attempts int
	}
	failed := func(b executor.CallbackBody) failure {
		for _, ft := range b.Failed {
			if ft.ID == "slow" {
				return failure{ft.ExitCode, ft.Reason, ft.Attempts}
			}
		}
		return failure{}
	}
	code := func(n int) *int { return &n }
	if diff := cmp.Diff(failure{code(143), "timed out after 1s: process group killed", 2}, failed(local.body)); diff != "" {
		t.Errorf("local (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(failure{code(-1073741510), "timed out after 1s", 1}, failed(batch.body)); diff != "" {
		t.Errorf("azurebatch (-want +got):\n%s\n%s", diff, batch.out)
	}
}
