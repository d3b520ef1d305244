package local

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
)

// TestSweep4ResumeSweepsPartialUploads: a run taken up again, by bmc
// resume or bmc cancel of a run whose bmc was killed, sweeps the local
// store of the partial files killed uploads left, in folders no task of
// it writes into again, by the store's rule: a file another writer may
// still be writing (here, another machine's, written a moment ago) stays.
// A new run does not sweep folders it does not write into.
func TestSweep4ResumeSweepsPartialUploads(t *testing.T) {
	storage := filepath.Join(t.TempDir(), "storage")
	dir := filepath.Join(storage, "results", "run-1", "big")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A writer on another machine cannot be asked about: its file goes
	// once it has not been written for a day.
	abandoned := filepath.Join(dir, ".bmc-partial-elsewhere-4242-a")
	live := filepath.Join(dir, ".bmc-partial-elsewhere-4243-b")
	plant := func() {
		for _, p := range []string{abandoned, live} {
			if err := os.WriteFile(p, []byte("half a blob"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		old := time.Now().Add(-25 * time.Hour)
		if err := os.Chtimes(abandoned, old, old); err != nil {
			t.Fatal(err)
		}
	}
	names := func() []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	session := func(runDir string) {
		be := New(Options{Slots: 1, Store: blobstage.NewLocal(storage)})
		run := &executor.RunInfo{ID: "w-1", Workload: "w", Dir: runDir}
		if err := be.Prepare(context.Background(), run); err != nil {
			t.Fatal(err)
		}
		if err := be.Cleanup(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	plant()
	session(t.TempDir()) // a new run
	if got := names(); !slices.Contains(got, filepath.Base(abandoned)) {
		t.Errorf("a new run swept a folder it does not write into: %v", got)
	}

	runDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(runDir, "tasks", "big"), 0o755); err != nil {
		t.Fatal(err) // what the killed session left
	}
	session(runDir)
	if got := names(); !slices.Equal(got, []string{filepath.Base(live)}) {
		t.Errorf("store folder after the run was taken up again: %v, want only %s", got, filepath.Base(live))
	}
}
