package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkSchedulerChain measures the executor's own cost per task on a
// chain, with a backend that finishes every attempt at once and the
// journal on: what bmc adds to each task before any process runs.
func BenchmarkSchedulerChain(b *testing.B) {
	benchChain(b, Options{Slots: 2})
}

// BenchmarkSchedulerChainEvents is BenchmarkSchedulerChain with an
// --events stream (to /dev/null): what the events add to each task.
func BenchmarkSchedulerChainEvents(b *testing.B) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	benchChain(b, Options{Slots: 2, Events: NewJSONSink(null)})
}

// benchChain runs a chain of 1,000 tasks with opts, each attempt finished
// at once, a fresh journal for every run, and reports the time per task.
func benchChain(b *testing.B, opts Options) {
	var spec strings.Builder
	spec.WriteString("apiVersion: bmc/v1\nkind: Workload\nname: chain\ntasks:\n  - {id: t0, command: [\"true\"]}\n")
	const n = 1000
	for i := 1; i < n; i++ {
		fmt.Fprintf(&spec, "  - {id: t%d, dependsOn: [t%d], command: [\"true\"]}\n", i, i-1)
	}
	plan := planSpec(b, spec.String())
	be := &mockBackend{RunTaskFn: func(context.Context, *Attempt) Result { return succeeded() }}
	for b.Loop() {
		dir := b.TempDir()
		j, err := OpenJournal(filepath.Join(dir, JournalFile))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := RunTasks(context.Background(), plan, be, &RunInfo{ID: "r", Dir: dir}, j, opts); err != nil {
			b.Fatal(err)
		}
		j.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/task")
}
