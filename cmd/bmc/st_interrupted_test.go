package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/backends/local"
	"github.com/bmc-dev/bmc/executor"
)

// stStatus is what bmc status -o json says of a run's tasks.
type stStatus struct {
	Status string          `json:"status"`
	Counts executor.Counts `json:"tasks"`
	Tasks  []struct {
		ID          string `json:"id"`
		State       string `json:"state"`
		Reason      string `json:"reason"`
		Interrupted bool   `json:"interrupted"`
	} `json:"taskStates"`
	Leftovers []local.Leftover `json:"leftovers"`
}

// stStatusOf runs bmc status on the latest run of state, in text and in
// JSON, with extra arguments.
func stStatusOf(t *testing.T, state string, args ...string) (string, stStatus) {
	t.Helper()
	code, text, serr := bmcRun(t, append([]string{"status", "latest", "--state-dir", state}, args...)...)
	if code != 0 {
		t.Fatalf("bmc status %s: exit %d\n%s", strings.Join(args, " "), code, serr)
	}
	code, js, serr := bmcRun(t, append([]string{"status", "latest", "--state-dir", state, "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("bmc status -o json %s: exit %d\n%s", strings.Join(args, " "), code, serr)
	}
	var doc stStatus
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatalf("bmc status -o json: %v\n%s", err, js)
	}
	return text, doc
}

// stTaskOf is the state and reason of task id in doc, "" if not listed.
func stTaskOf(doc stStatus, id string) (state, reason string, interrupted bool) {
	for _, ts := range doc.Tasks {
		if ts.ID == id {
			return ts.State, ts.Reason, ts.Interrupted
		}
	}
	return "", "", false
}

// TestStInterruptedStanding: after bmc is killed with SIGKILL while task
// slow runs, bmc status shows slow running as long as a process of it
// runs, and then pending, to run again on resume: nothing cancelled it.
// The text, its counts line, --state and the JSON agree. bmc cancel still
// ends it cancelled.
func TestStInterruptedStanding(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	_, state, child, _ := killedMidTask(t)

	text, doc := stStatusOf(t, state)
	if !regexp.MustCompile(`(?m)^slow +running +1 +- +- +interrupted: bmc stopped while it ran; 2 processes of it still run$`).MatchString(text) {
		t.Errorf("while its process runs, the table:\n%s", text)
	}
	if !strings.Contains(text, "\ntasks: 1 succeeded, 0 failed, 0 skipped, 0 cancelled, 1 running, 0 pending of 2\n") {
		t.Errorf("while its process runs, the counts:\n%s", text)
	}
	if st, reason, in := stTaskOf(doc, "slow"); st != "running" || reason != "interrupted: bmc stopped while it ran" || !in {
		t.Errorf("while its process runs, JSON: slow %s (%s), interrupted %v; want running", st, reason, in)
	}
	if doc.Status != "interrupted" || doc.Counts.Running != 1 || doc.Counts.Cancelled != 0 || len(doc.Leftovers) != 2 {
		t.Errorf("while its process runs, JSON: status %s, counts %+v, leftovers %v", doc.Status, doc.Counts, doc.Leftovers)
	}
	text, doc = stStatusOf(t, state, "--state", "running")
	if !regexp.MustCompile(`(?m)^slow +running `).MatchString(text) || len(doc.Tasks) != 1 || doc.Tasks[0].ID != "slow" {
		t.Errorf("--state running lists:\n%s%+v", text, doc.Tasks)
	}
	if text, doc = stStatusOf(t, state, "--state", "cancelled"); strings.Contains(text, "\nslow ") || len(doc.Tasks) != 0 {
		t.Errorf("--state cancelled lists:\n%s%+v", text, doc.Tasks)
	}

	// Its processes stopped, as bmc resume and bmc cancel stop them.
	ids, err := executor.ListRunIDs(state)
	if err != nil || len(ids) != 1 {
		t.Fatalf("runs %v, %v", ids, err)
	}
	dir := filepath.Join(executor.RunsDir(state), ids[0])
	st, err := executor.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ls, err := local.StopLeftovers(dir, st.WasRunning, 0); err != nil || len(ls) != 2 {
		t.Fatalf("stopped %v, %v: want slow's 2 processes", ls, err)
	}
	if running(child) {
		t.Fatalf("slow's child %d still runs", child)
	}
	text, doc = stStatusOf(t, state)
	if !regexp.MustCompile(`(?m)^slow +pending +1 +- +- +interrupted: bmc stopped while it ran; runs again on resume$`).MatchString(text) {
		t.Errorf("with nothing of it running, the table:\n%s", text)
	}
	if !strings.Contains(text, "\ntasks: 1 succeeded, 0 failed, 0 skipped, 0 cancelled, 0 running, 1 pending of 2\n") {
		t.Errorf("with nothing of it running, the counts:\n%s", text)
	}
	if st, _, in := stTaskOf(doc, "slow"); st != "pending" || !in || doc.Counts.Pending != 1 || doc.Counts.Cancelled != 0 || len(doc.Leftovers) != 0 {
		t.Errorf("with nothing of it running, JSON: slow %s, interrupted %v, counts %+v, leftovers %v", st, in, doc.Counts, doc.Leftovers)
	}
	if text, doc = stStatusOf(t, state, "--state", "pending"); !regexp.MustCompile(`(?m)^slow +pending `).MatchString(text) || len(doc.Tasks) != 1 {
		t.Errorf("--state pending lists:\n%s%+v", text, doc.Tasks)
	}

	// bmc cancel ends it cancelled, as before.
	if out, err := bmcProcess(t, t.TempDir(), "cancel", "latest", "--state-dir", state).CombinedOutput(); err != nil {
		t.Fatalf("bmc cancel: %v\n%s", err, out)
	}
	text, doc = stStatusOf(t, state)
	if !regexp.MustCompile(`(?m)^slow +cancelled +1 +- +\S+ +cancelled: bmc stopped while it ran, then the run was cancelled$`).MatchString(text) ||
		!strings.Contains(text, "\ntasks: 1 succeeded, 0 failed, 0 skipped, 1 cancelled, 0 running, 0 pending of 2\n") {
		t.Errorf("after bmc cancel, the table:\n%s", text)
	}
	if st, _, _ := stTaskOf(doc, "slow"); st != "cancelled" || doc.Status != "cancelled" || doc.Counts.Cancelled != 1 {
		t.Errorf("after bmc cancel, JSON: run %s, slow %s, counts %+v", doc.Status, st, doc.Counts)
	}
}

// TestStInterruptedResume: a task bmc status shows running after its bmc
// was killed is stopped and run again by bmc resume, as before.
func TestStInterruptedResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir, state, child, _ := killedMidTask(t)
	if text, _ := stStatusOf(t, state); !regexp.MustCompile(`(?m)^slow +running `).MatchString(text) {
		t.Errorf("before resume, the table:\n%s", text)
	}
	os.WriteFile(filepath.Join(dir, "again"), nil, 0o644)
	out, err := bmcProcess(t, dir, "resume", "latest", "--state-dir", state, "--progress", "none").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "bmc: stopped 2 processes of run leftover-") {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if running(child) {
		t.Errorf("the killed attempt's child %d still runs after resume", child)
	}
	text, doc := stStatusOf(t, state)
	if !regexp.MustCompile(`(?m)^slow +succeeded +2 +0 `).MatchString(text) || doc.Status != "succeeded" || doc.Counts.Succeeded != 2 {
		t.Errorf("after resume:\n%s%+v", text, doc)
	}
}
