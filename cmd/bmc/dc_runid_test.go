package main

// bmc run writes the run's id on stdout, one line, as soon as the run
// exists, so that RUN=$(bmc run x.yaml) and a second terminal have it;
// with --events - stdout carries the events only.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/emulator"
)

// markerWriter is a stdout that records, at each write, whether the
// marker file (which the run's task creates first thing) was there.
type markerWriter struct {
	mu      sync.Mutex
	marker  string
	b       strings.Builder
	started []bool // per write: had the task started
}

func (w *markerWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := os.Stat(w.marker)
	w.started = append(w.started, err == nil)
	return w.b.Write(p)
}

// dcMarkerSpec writes a one-task spec whose task creates marker, and
// returns its path.
func dcMarkerSpec(t *testing.T, dir, marker string) string {
	t.Helper()
	spec := filepath.Join(dir, "marker.yaml")
	src := fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: marker
tasks:
  - id: touch
    run: touch "$MARKER"
    env: {MARKER: %q}
`, marker)
	if err := os.WriteFile(spec, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestDcRunPrintsRunID(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	marker := filepath.Join(dir, "started")
	spec := dcMarkerSpec(t, dir, marker)
	stdout := &markerWriter{marker: marker}
	var stderr strings.Builder
	code := run(context.Background(), []string{"run", "--state-dir", state, "--progress", "none", spec}, strings.NewReader(""), stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	id, _ := onlyRun(t, state)
	if got := stdout.b.String(); got != id+"\n" {
		t.Errorf("stdout %q, want the run id %q on a line", got, id)
	}
	if len(stdout.started) != 1 || stdout.started[0] {
		t.Errorf("stdout written %d times, the task started before each: %v; want once, before the task started", len(stdout.started), stdout.started)
	}

	// A resume was given the run's id: it writes none.
	code, out, serr := bmcRun(t, "resume", "--state-dir", state, "--progress", "none", id)
	if code != 0 || out != "" {
		t.Errorf("resume: exit %d, stdout %q, want none\n%s", code, out, serr)
	}
}

// TestDcRunEventsStdoutID: with --events -, stdout is the event stream
// and nothing else; its events carry the run's id.
func TestDcRunEventsStdoutID(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	spec := dcMarkerSpec(t, dir, filepath.Join(dir, "started"))
	code, out, serr := bmcRun(t, "run", "--state-dir", state, "--progress", "none", "--events", "-", spec)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, serr)
	}
	id, _ := onlyRun(t, state)
	sc := bufio.NewScanner(strings.NewReader(out))
	n := 0
	for sc.Scan() {
		var e struct {
			RunID string `json:"runId"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.RunID != id {
			t.Errorf("stdout line %q: not an event of run %s (%v)", sc.Text(), id, err)
		}
		n++
	}
	if n == 0 {
		t.Errorf("stdout has no event")
	}
}

// TestDcBatchRunPrintsRunID: on Azure Batch too, bmc run writes the id
// once, followed or detached (which wrote it already, when submitted),
// and not with --events -.
func TestDcBatchRunPrintsRunID(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	for _, tc := range []struct {
		name   string
		args   []string
		wantID bool
	}{
		{"followed", nil, true},
		{"detached", []string{"--detach"}, true},
		{"events to stdout", []string{"--events", "-"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			args := []string{"run", "--backend", "azurebatch", "--pool", confPool, "--poll-interval", "100ms", "--state-dir", state, "--progress", "none", "--pool-identity", f.identity}
			args = append(append(args, tc.args...), "../../examples/hello.yaml")
			var stdout, stderr strings.Builder
			if code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr.String())
			}
			id, _ := onlyRun(t, state)
			if _, err := azurebatch.WaitJobDone(t.Context(), f.client, id, 50*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			out := stdout.String()
			switch {
			case tc.wantID && out != id+"\n":
				t.Errorf("stdout %q, want the run id %q on a line, once", out, id)
			case !tc.wantID && strings.Contains(out, id+"\n"):
				t.Errorf("stdout %q: the id on a line of its own, beside the events", out)
			}
		})
	}
}
