package executor

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
)

// scriptedNative is a NativeBackend whose polls answer from a script:
// poll n returns polls[n] (then nothing). Cancel records itself.
type scriptedNative struct {
	mu        sync.Mutex
	submitErr error
	polls     []func() (PollResult, error)
	n         int
	cancels   int
	onCancel  func()
}

func (s *scriptedNative) Capabilities() planner.Capabilities {
	return planner.Capabilities{Name: "native", NativeDependencies: true}
}

func (s *scriptedNative) Submit(context.Context, *planner.Plan, *RunInfo) error { return s.submitErr }

func (s *scriptedNative) Poll(context.Context) (PollResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= len(s.polls) {
		return PollResult{}, nil
	}
	f := s.polls[s.n]
	s.n++
	return f()
}

func (s *scriptedNative) Cancel(context.Context) error {
	s.mu.Lock()
	s.cancels++
	f := s.onCancel
	s.mu.Unlock()
	if f != nil {
		f()
	}
	return nil
}

func updates(us ...TaskUpdate) func() (PollResult, error) {
	return func() (PollResult, error) { return PollResult{Updates: us}, nil }
}

// nativePlan: a -> b; group g (g-1, g-2) -> d; e alone.
func nativePlan() *planner.Plan {
	prog := &compiler.Program{Name: "n", Tasks: []compiler.Task{
		{ID: "a", Run: "true"}, {ID: "e", Run: "true"},
		{ID: "g-1", Group: "g", Run: "true"}, {ID: "g-2", Group: "g", Run: "true"},
		{ID: "b", Run: "true", DependsOn: []string{"a"}},
		{ID: "d", Run: "true", DependsOnGroups: []string{"g"}},
		{ID: "d2", Run: "true", DependsOn: []string{"d"}},
	}, Groups: []compiler.Group{{ID: "g", Members: []string{"g-1", "g-2"}}}}
	return planner.New(prog, planner.Capabilities{Name: "native", NativeDependencies: true}, nil)
}

func TestRunNativeFollowsReports(t *testing.T) {
	plan := nativePlan()
	code3 := 3
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	be := &scriptedNative{polls: []func() (PollResult, error){
		updates(TaskUpdate{ID: "a", State: Running, Attempts: 1, Start: t0}, TaskUpdate{ID: "bmc-barrier-x", State: Running}),
		updates(TaskUpdate{ID: "a", State: Running, Attempts: 1}), // again: nothing new
		updates(
			TaskUpdate{ID: "a", State: Succeeded, Attempts: 1, ExitCode: codePtr(0), Start: t0, End: t0.Add(time.Second), Outputs: []string{"az://o/a"}},
			// Retried by the backend; the first attempt was never seen.
			TaskUpdate{ID: "g-1", State: Failed, Attempts: 2, ExitCode: &code3, Reason: "exit code 3"},
			TaskUpdate{ID: "e", State: Succeeded, Attempts: 1},
		),
		updates(TaskUpdate{ID: "b", State: Succeeded, Attempts: 1}, TaskUpdate{ID: "g-2", State: Succeeded, Attempts: 1},
			TaskUpdate{ID: "b", State: Failed, Attempts: 1}), // a report after the end changes nothing
	}}
	dir, o, log := runNativeJournaled(t, plan, be)
	got := nativeStates(plan, o)
	want := map[string]nativeState{
		"a": {Succeeded, 1, ""}, "e": {Succeeded, 1, ""}, "b": {Succeeded, 1, ""},
		"g-1": {Failed, 2, "exit code 3"}, "g-2": {Succeeded, 1, ""},
		"d": {Skipped, 0, "skipped: upstream g-1 failed"}, "d2": {Skipped, 0, "skipped: upstream g-1 failed"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}
	if want := (Counts{Total: 7, Succeeded: 4, Failed: 1, Skipped: 2}); o.Counts != want || o.Canceled || o.Ran != 5 {
		t.Errorf("counts %+v, cancelled %v, ran %d", o.Counts, o.Canceled, o.Ran)
	}
	if a := o.Tasks[0]; a.End.Sub(a.Start) != time.Second || len(a.Outputs) != 1 {
		t.Errorf("a: %+v", a)
	}
	// The journal reads back as the outcome, both attempts of g-1 in it.
	rs, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	for id, w := range want {
		ts := rs.Tasks[id]
		if ts == nil || ts.State != w.State || ts.Attempts != w.Attempts {
			t.Errorf("journal %s: %+v, want %+v", id, ts, w)
		}
	}
	var seq []string
	for _, e := range log.events {
		if e.Task == "g-1" {
			seq = append(seq, string(e.Type))
		}
	}
	if diff := cmp.Diff([]string{"task-started", "task-retrying", "task-started", "task-finished"}, seq); diff != "" {
		t.Errorf("g-1 events (-want +got):\n%s", diff)
	}
	if be.cancels != 0 {
		t.Errorf("%d cancels", be.cancels)
	}
}

func TestRunNativeCancel(t *testing.T) {
	plan := nativePlan()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	be := &scriptedNative{}
	stopped := false
	be.polls = []func() (PollResult, error){
		func() (PollResult, error) {
			cancel() // Ctrl-C while the first task runs
			return PollResult{Updates: []TaskUpdate{{ID: "a", State: Running, Attempts: 1}, {ID: "e", State: Succeeded, Attempts: 1}}}, nil
		},
		func() (PollResult, error) {
			if !stopped {
				t.Error("polled again before Cancel")
			}
			return PollResult{Updates: []TaskUpdate{{ID: "a", State: Canceled, Attempts: 1, Reason: "cancelled"}}}, nil
		},
	}
	be.onCancel = func() { stopped = true }
	o, err := RunNative(ctx, plan, be, &RunInfo{ID: "r"}, nil, NativeOptions{PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Canceled || be.cancels != 1 {
		t.Fatalf("cancelled %v, %d cancels", o.Canceled, be.cancels)
	}
	if o.Tasks[0].State != Canceled || o.Tasks[1].State != Succeeded || o.Tasks[4].Reason != "cancelled before it started" {
		t.Errorf("tasks %+v", o.Tasks)
	}
	if c := o.Counts; c.Cancelled != 6 || c.Succeeded != 1 || c.Pending != 0 || c.Running != 0 {
		t.Errorf("counts %+v", c)
	}
}

func TestRunNativeCancelledElsewhere(t *testing.T) {
	plan := nativePlan()
	be := &scriptedNative{polls: []func() (PollResult, error){
		func() (PollResult, error) {
			return PollResult{Updates: []TaskUpdate{{ID: "a", State: Succeeded, Attempts: 1}}, Cancelled: true}, nil
		},
	}}
	o, err := RunNative(t.Context(), plan, be, &RunInfo{ID: "r"}, nil, NativeOptions{PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Canceled || be.cancels != 1 || o.Tasks[0].State != Succeeded || o.Counts.Cancelled != 6 {
		t.Errorf("cancelled %v, %d cancels, counts %+v", o.Canceled, be.cancels, o.Counts)
	}
}

// TestRunNativeStop: after a cancel the backend never reports the running
// task stopped; a second interrupt (Stop) ends the wait.
func TestRunNativeStop(t *testing.T) {
	plan := nativePlan()
	ctx, cancel := context.WithCancel(t.Context())
	stop := make(chan struct{})
	be := &scriptedNative{polls: []func() (PollResult, error){updates(TaskUpdate{ID: "a", State: Running, Attempts: 1})}}
	be.onCancel = func() { close(stop) }
	cancel()
	o, err := RunNative(ctx, plan, be, &RunInfo{ID: "r"}, nil, NativeOptions{PollInterval: time.Hour, Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Canceled || o.Counts.Cancelled != 7 {
		t.Errorf("cancelled %v, counts %+v", o.Canceled, o.Counts)
	}
}

func TestRunNativePollErrors(t *testing.T) {
	plan := nativePlan()
	boom := errors.New("unreachable")
	fail := func() (PollResult, error) { return PollResult{}, boom }
	all := updates(
		TaskUpdate{ID: "a", State: Succeeded, Attempts: 1}, TaskUpdate{ID: "e", State: Succeeded, Attempts: 1},
		TaskUpdate{ID: "g-1", State: Succeeded, Attempts: 1}, TaskUpdate{ID: "g-2", State: Succeeded, Attempts: 1},
		TaskUpdate{ID: "b", State: Succeeded, Attempts: 1}, TaskUpdate{ID: "d", State: Succeeded, Attempts: 1},
		TaskUpdate{ID: "d2", State: Succeeded, Attempts: 1})
	// A few failures in a row are weathered.
	be := &scriptedNative{polls: []func() (PollResult, error){fail, fail, all}}
	o, err := RunNative(t.Context(), plan, be, &RunInfo{ID: "r"}, nil, NativeOptions{PollInterval: time.Millisecond, MaxPollErrors: 3})
	if err != nil || o.Counts.Succeeded != 7 {
		t.Fatalf("err %v, outcome %+v", err, o)
	}
	// Too many are not.
	be = &scriptedNative{polls: []func() (PollResult, error){fail, fail, fail, all}}
	_, err = RunNative(t.Context(), plan, be, &RunInfo{ID: "r"}, nil, NativeOptions{PollInterval: time.Millisecond, MaxPollErrors: 3})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "following the run") {
		t.Errorf("err = %v", err)
	}
	// A failed submission is the run's error.
	be = &scriptedNative{submitErr: boom}
	if _, err := RunNative(t.Context(), plan, be, &RunInfo{ID: "r"}, nil, NativeOptions{PollInterval: time.Millisecond}); !errors.Is(err, boom) {
		t.Errorf("submit: err = %v", err)
	}
}

func TestFillTask(t *testing.T) {
	tk := &compiler.Task{ID: "x", Run: "echo ${{ run.id }} ${{ task.attempt }}", Env: map[string]string{"S": "${{ run.storage }}"}}
	got := FillTask(tk, &RunInfo{ID: "r1", Workload: "w", Storage: "https://s"}, 1)
	if got.Run != "echo r1 1" || got.Env["S"] != "https://s" || tk.Env["S"] != "${{ run.storage }}" {
		t.Errorf("%+v", got)
	}
}

// TestRunNativeStoppedByBackend: a backend that stopped the run itself
// (tasks it could not take) makes a failed run, not a cancelled one. The
// tasks it names fail without an attempt, their dependents are skipped,
// and the tasks the stop ends say why, in the outcome, the journal and
// the events alike, each task ending once.
func TestRunNativeStoppedByBackend(t *testing.T) {
	plan := nativePlan()
	stop := &RunStop{Why: ": the run stopped because 1 of its tasks could not be submitted", Failed: map[string]string{"a": "not submitted: InternalError: busy"}}
	be := &scriptedNative{polls: []func() (PollResult, error){
		updates(TaskUpdate{ID: "e", State: Running, Attempts: 1}, TaskUpdate{ID: "g-1", State: Succeeded, Attempts: 1}),
		func() (PollResult, error) {
			return PollResult{Stopped: stop, Updates: []TaskUpdate{{ID: "e", State: Canceled, Attempts: 1, Reason: "cancelled"}}}, nil
		},
		func() (PollResult, error) { return PollResult{Stopped: stop}, nil }, // again: taken once
	}}
	dir, o, log := runNativeJournaled(t, plan, be)
	got := nativeStates(plan, o)
	want := map[string]nativeState{
		"a":   {Failed, 0, "not submitted: InternalError: busy"},
		"b":   {Skipped, 0, "skipped: upstream a failed"},
		"e":   {Canceled, 1, "cancelled" + stop.Why},
		"g-1": {Succeeded, 1, ""},
		"g-2": {Canceled, 0, "cancelled before it started" + stop.Why},
		"d":   {Canceled, 0, "cancelled before it started" + stop.Why},
		"d2":  {Canceled, 0, "cancelled before it started" + stop.Why},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}
	if o.Canceled || be.cancels != 0 {
		t.Errorf("cancelled %v, %d cancels: the backend stopped the run itself", o.Canceled, be.cancels)
	}
	if s := Summarize(plan, &RunInfo{ID: "r"}, o); s.Status != CallbackFailed {
		t.Errorf("status %s", s.Status)
	}
	ended := map[string][]State{}
	for _, e := range log.all() {
		if e.Type == EventTaskFinished || e.Type == EventTaskSkipped {
			ended[e.Task] = append(ended[e.Task], e.State)
		}
	}
	for id, w := range want {
		if w.State != Succeeded && (len(ended[id]) != 1 || ended[id][0] != w.State) {
			t.Errorf("%s: events %v, want one %s", id, ended[id], w.State)
		}
	}
	state, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	for id, w := range want {
		if ts := state.Tasks[id]; ts == nil || ts.State != w.State || ts.Reason != w.Reason {
			t.Errorf("journal: %s %+v, want %+v", id, ts, w)
		}
	}
}

// runNativeJournaled follows be's run of plan to its end, journaled in a
// run directory of its own, and returns the directory, the outcome and
// the events.
func runNativeJournaled(t *testing.T, plan *planner.Plan, be NativeBackend) (string, *Outcome, *eventLog) {
	t.Helper()
	dir := t.TempDir()
	j, err := OpenJournal(filepath.Join(dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	log := &eventLog{}
	o, err := RunNative(t.Context(), plan, be, &RunInfo{ID: "r", Dir: dir}, j, NativeOptions{PollInterval: time.Millisecond, Events: log})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	return dir, o, log
}

// nativeState is what a test checks of a task's outcome.
type nativeState struct {
	State    State
	Attempts int
	Reason   string
}

// nativeStates are the tasks' outcomes by id.
func nativeStates(plan *planner.Plan, o *Outcome) map[string]nativeState {
	got := map[string]nativeState{}
	for i, tk := range o.Tasks {
		got[plan.Program.Tasks[i].ID] = nativeState{tk.State, tk.Attempts, tk.Reason}
	}
	return got
}

// TestRunNativeCancelledElsewhereAsTasksEnd: the poll that hears of a
// cancel made elsewhere (bmc cancel, or Ctrl-C of a run finalized on the
// pool) also sees the last running tasks stopped by it: the run is
// cancelled, not failed. A cancel heard once every task had succeeded
// keeps the run's outcome, as on the local backend.
func TestRunNativeCancelledElsewhereAsTasksEnd(t *testing.T) {
	one := func() *planner.Plan {
		prog := &compiler.Program{Name: "n", Tasks: []compiler.Task{{ID: "a", Run: "sleep 120"}}}
		return planner.New(prog, planner.Capabilities{Name: "native", NativeDependencies: true}, nil)
	}
	for _, tc := range []struct {
		last      State
		cancelled bool
	}{{Canceled, true}, {Succeeded, false}} {
		t.Run(string(tc.last), func(t *testing.T) {
			be := &scriptedNative{polls: []func() (PollResult, error){
				updates(TaskUpdate{ID: "a", State: Running, Attempts: 1}),
				func() (PollResult, error) {
					return PollResult{Updates: []TaskUpdate{{ID: "a", State: tc.last, Attempts: 1}}, Cancelled: true}, nil
				},
			}}
			o, err := RunNative(t.Context(), one(), be, &RunInfo{ID: "r"}, nil, NativeOptions{PollInterval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if o.Canceled != tc.cancelled || o.Tasks[0].State != tc.last {
				t.Errorf("cancelled %v (want %v), task %s", o.Canceled, tc.cancelled, o.Tasks[0].State)
			}
		})
	}
}
