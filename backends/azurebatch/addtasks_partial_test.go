package azurebatch

// Adding tasks against the emulator's partial fault, which answers
// servererror for some tasks of an add-collection request and adds some
// of those all the same, as Batch may.

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/emulator"
)

// TestAddTasksPartialFault: a task answered servererror but added is
// found there when sent again (TaskExists after a resubmission) and
// counts as added, once; the job ends up holding every task exactly once.
func TestAddTasksPartialFault(t *testing.T) {
	e := newEmu(t, emulator.Options{Instant: true, Faults: &emulator.Faults{Partial: 0.3, Seed: 7}})
	e.pool(t, "p", 1, 4)
	ctx := t.Context()
	if err := e.c.CreateJob(ctx, BatchJobCreateOptions{ID: "j", PoolInfo: BatchPoolInfo{PoolID: "p"}}); err != nil {
		t.Fatal(err)
	}
	var tasks []BatchTaskCreateOptions
	for i := range 250 {
		tasks = append(tasks, BatchTaskCreateOptions{ID: fmt.Sprintf("t-%03d", i), CommandLine: "/bin/true"})
	}
	res, err := e.c.AddTasks(ctx, "j", tasks, 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != len(tasks) || len(res.Failures) != 0 {
		t.Fatalf("added %d of %d, failures %v", res.Added, len(tasks), res.Failures)
	}
	// The path under test: tasks the fault reported failed but added.
	if res.Existing == 0 || res.Stats.Resubmitted <= res.Existing {
		t.Errorf("%d found existing after %d resubmitted: the fault should both add some tasks it fails and leave some out", res.Existing, res.Stats.Resubmitted)
	}
	seen := map[string]int{}
	for tk, err := range e.c.ListTasks(ctx, "j", ListOptions{Select: "id"}) {
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.ToLower(tk.ID)]++
	}
	for _, tk := range tasks {
		if n := seen[tk.ID]; n != 1 {
			t.Errorf("%s is in the job %d times", tk.ID, n)
		}
	}
	if len(seen) != len(tasks) {
		t.Errorf("the job holds %d tasks, want %d", len(seen), len(tasks))
	}
	t.Logf("%d tasks: %d resubmitted, %d of them found added", len(tasks), res.Stats.Resubmitted, res.Existing)
}

// TestAddTasksPartialFaultGivenUp: with no resubmission left, a task the
// fault failed is given up whether or not it was added; the error lists
// both kinds, and only the job says which were added.
func TestAddTasksPartialFaultGivenUp(t *testing.T) {
	e := newEmu(t, emulator.Options{Instant: true, Faults: &emulator.Faults{Partial: 0.5, Seed: 3}})
	e.pool(t, "p", 1, 4)
	cred, err := NewSharedKeyCredential(e.s.Account(), e.s.Key())
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(e.srv.URL, cred, Options{MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := c.CreateJob(ctx, BatchJobCreateOptions{ID: "j", PoolInfo: BatchPoolInfo{PoolID: "p"}}); err != nil {
		t.Fatal(err)
	}
	var tasks []BatchTaskCreateOptions
	for i := range 40 {
		tasks = append(tasks, BatchTaskCreateOptions{ID: fmt.Sprintf("t-%02d", i), CommandLine: "/bin/true"})
	}
	res, _ := c.AddTasks(ctx, "j", tasks, 1)
	have := map[string]bool{}
	for tk, err := range c.ListTasks(ctx, "j", ListOptions{Select: "id"}) {
		if err != nil {
			t.Fatal(err)
		}
		have[tk.ID] = true
	}
	var given, givenAdded int
	for _, f := range res.Failures {
		given++
		if have[f.TaskID] {
			givenAdded++
		}
	}
	if given == 0 || givenAdded == 0 || givenAdded == given {
		t.Errorf("%d tasks given up, %d of them in the job: want some of each", given, givenAdded)
	}
	if len(have) != res.Added+givenAdded {
		t.Errorf("the job holds %d tasks; %d added and %d given up but there", len(have), res.Added, givenAdded)
	}
}
