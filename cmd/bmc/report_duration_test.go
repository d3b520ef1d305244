package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/executor"
)

// TestReportDurationCountsFinalize: the time a run is reported to have
// taken covers its finalize step, which ran after the tasks.
func TestReportDurationCountsFinalize(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "dur.yaml")
	if err := os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: dur
tasks:
  - {id: t, run: "true"}
finalize:
  run: sleep 0.2
`), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	code, _, serr := bmcRun(t, "run", "--state-dir", state, "--progress", "none", spec)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, serr)
	}
	m := regexp.MustCompile(`succeeded in (\S+):`).FindStringSubmatch(serr)
	if m == nil {
		t.Fatalf("no duration in\n%s", serr)
	}
	took, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatal(err)
	}
	_, recs := journalOf(t, state)
	var step time.Duration
	for _, r := range recs {
		if r.Type == executor.RecordFinalizeFinished {
			var d executor.FinalizeData
			json.Unmarshal(r.Data, &d)
			step = r.Time.Sub(d.Start)
		}
	}
	if step <= 0 || took < step {
		t.Errorf("reported %s, but the finalize step alone took %s", took, step)
	}
}
