package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPlanLongEnv: a variable too long for any program to be given is a
// plan error, at the task, and nothing runs.
func TestPlanLongEnv(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "long.yaml")
	big := strings.Repeat("x", 200_000)
	os.WriteFile(spec, []byte("apiVersion: bmc/v1\nkind: Workload\nname: long\ntasks:\n  - id: t\n    run: \"true\"\n    env: {BIG: \""+big+"\"}\n"), 0o644)
	code, sout, _ := bmcRun(t, "plan", spec)
	if code != exitFailed || !regexp.MustCompile(`error: +\S+long\.yaml:5:9: t: env BIG: its value \(200000 bytes\) is longer than a program can be given`).MatchString(sout) {
		t.Errorf("plan: exit %d\n%s", code, sout)
	}
	state := filepath.Join(dir, "state")
	code, _, serr := bmcRun(t, "run", "--state-dir", state, "--progress", "none", spec)
	if code != exitFailed || !strings.Contains(serr, "nothing was run") {
		t.Errorf("run: exit %d\n%s", code, serr)
	}
	if _, err := os.Stat(filepath.Join(state, "runs")); err == nil {
		t.Errorf("a run directory was made")
	}
}
