package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
	"github.com/google/go-cmp/cmp"
)

// mockBackend is a Backend made of functions, so that each test says only
// what it needs. RunTaskFn is called concurrently, one call per attempt.
type mockBackend struct {
	CapabilitiesFn func() planner.Capabilities
	RunTaskFn      func(ctx context.Context, a *Attempt) Result
}

var _ Backend = (*mockBackend)(nil)

func (m *mockBackend) Capabilities() planner.Capabilities {
	if m.CapabilitiesFn == nil {
		return planner.Capabilities{Name: "mock"}
	}
	return m.CapabilitiesFn()
}

func (m *mockBackend) RunTask(ctx context.Context, a *Attempt) Result {
	return m.RunTaskFn(ctx, a)
}

func succeeded() Result {
	now := time.Now()
	return Result{State: Succeeded, ExitCode: codePtr(0), Start: now, End: now}
}

func failed(code int) Result {
	now := time.Now()
	return Result{State: Failed, ExitCode: codePtr(code), Reason: fmt.Sprintf("exit code %d", code), Start: now, End: now}
}

// eventLog records a run's events. notify, if set, is called with each
// event from the executor's goroutine, before the next one is made.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	notify func(Event)
}

func (l *eventLog) Event(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	if l.notify != nil {
		l.notify(e)
	}
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// startedTasks lists task ids in the order their attempts started.
func (l *eventLog) startedTasks() []string {
	var out []string
	for _, e := range l.all() {
		if e.Type == EventTaskStarted {
			out = append(out, e.Task)
		}
	}
	return out
}

func compileSpec(t testing.TB, src string, params map[string]any) *compiler.Program {
	t.Helper()
	p, diags := compiler.Compile("spec.yaml", []byte(src), compiler.Options{Params: params})
	if len(diags) > 0 {
		t.Fatalf("compile: %v", diags)
	}
	return p
}

func planSpec(t testing.TB, src string) *planner.Plan {
	t.Helper()
	return planner.New(compileSpec(t, src, nil), planner.Capabilities{Name: "mock", Slots: 64}, nil)
}

func testRun(t testing.TB) *RunInfo {
	return &RunInfo{ID: "w-run-1", Workload: "w", Dir: t.TempDir(), Storage: "file:///store"}
}

// outcomeOf returns the outcome of the task with id.
func outcomeOf(t testing.TB, p *planner.Plan, o *Outcome, id string) TaskOutcome {
	t.Helper()
	for i, tk := range p.Program.Tasks {
		if tk.ID == id {
			return o.Tasks[i]
		}
	}
	t.Fatalf("no task %q", id)
	return TaskOutcome{}
}

// checkCounts checks that the outcome's counts agree with its tasks and
// that every task is over.
func checkCounts(t testing.TB, o *Outcome) {
	t.Helper()
	var c Counts
	c.Total = len(o.Tasks)
	for _, tk := range o.Tasks {
		switch tk.State {
		case Succeeded:
			c.Succeeded++
		case Failed:
			c.Failed++
		case Skipped:
			c.Skipped++
		case Canceled:
			c.Cancelled++
		default:
			t.Errorf("a task ended %q", tk.State)
		}
	}
	if diff := cmp.Diff(c, o.Counts); diff != "" {
		t.Errorf("Counts disagree with the tasks' states (-tasks +counts):\n%s", diff)
	}
	if o.Counts.Done() != o.Counts.Total {
		t.Errorf("Counts.Done() = %d, want Total %d", o.Counts.Done(), o.Counts.Total)
	}
}

func runTasks(t testing.TB, p *planner.Plan, be Backend, opts Options) *Outcome {
	t.Helper()
	o, err := RunTasks(context.Background(), p, be, testRun(t), nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, o)
	return o
}

func independentTasks(n int, slots func(i int) int) string {
	var b strings.Builder
	b.WriteString("apiVersion: bmc/v1\nkind: Workload\nname: wide\ntasks:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {id: t%02d, run: \"true\", slots: %d}\n", i, slots(i))
	}
	return b.String()
}

// TestSlotsBound runs more tasks than slots, holding each attempt until a
// full wave has started, and checks that the slots in use never exceed
// Options.Slots, counted both where the backend runs attempts and in the
// scheduler's own events.
func TestSlotsBound(t *testing.T) {
	const slots, tasks = 3, 12
	p := planSpec(t, independentTasks(tasks, func(int) int { return 1 }))

	var cur, peak, started atomic.Int32
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stopWaiting := context.AfterFunc(ctx, func() { mu.Lock(); cond.Broadcast(); mu.Unlock() })
	defer stopWaiting()

	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		n := cur.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		// Wait for the rest of this attempt's wave, so that the run
		// really has `slots` attempts in flight at once.
		mu.Lock()
		k := started.Add(1) - 1
		cond.Broadcast()
		wave := min(tasks, (k/slots+1)*slots)
		for started.Load() < wave && ctx.Err() == nil {
			cond.Wait()
		}
		mu.Unlock()
		cur.Add(-1)
		if ctx.Err() != nil {
			return failed(99)
		}
		return succeeded()
	}}
	var inUse, maxInUse int
	events := &eventLog{notify: func(e Event) {
		switch e.Type {
		case EventTaskStarted:
			inUse++
		case EventTaskFinished, EventTaskRetrying:
			inUse--
		}
		maxInUse = max(maxInUse, inUse)
	}}
	o := runTasks(t, p, be, Options{Slots: slots, Events: events})
	if ctx.Err() != nil {
		t.Fatalf("the run never had %d attempts in flight at once", slots)
	}
	if o.Counts.Succeeded != tasks {
		t.Fatalf("%d of %d tasks succeeded", o.Counts.Succeeded, tasks)
	}
	if got := peak.Load(); got != slots {
		t.Errorf("at most %d attempts ran at once, want exactly %d", got, slots)
	}
	if maxInUse > slots {
		t.Errorf("the scheduler had %d attempts started at once, above %d slots", maxInUse, slots)
	}
}

// TestSlotsCountTaskSlots mixes one-, two- and three-slot tasks: the sum of
// the slots of the running attempts stays within the bound.
func TestSlotsCountTaskSlots(t *testing.T) {
	const slots = 4
	p := planSpec(t, independentTasks(16, func(i int) int { return i%3 + 1 }))
	var cur, peak atomic.Int32
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		n := cur.Add(int32(a.Task.Slots))
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		for range 100 {
			// Give the other attempts a chance to overlap with this one.
			runtime.Gosched()
		}
		cur.Add(-int32(a.Task.Slots))
		return succeeded()
	}}
	slotsOf := map[string]int{}
	for _, tk := range p.Program.Tasks {
		slotsOf[tk.ID] = tk.Slots
	}
	var inUse, maxInUse int
	events := &eventLog{notify: func(e Event) {
		switch e.Type {
		case EventTaskStarted:
			inUse += slotsOf[e.Task]
		case EventTaskFinished, EventTaskRetrying:
			inUse -= slotsOf[e.Task]
		}
		maxInUse = max(maxInUse, inUse)
	}}
	o := runTasks(t, p, be, Options{Slots: slots, Events: events})
	if o.Counts.Succeeded != 16 {
		t.Fatalf("%d tasks succeeded", o.Counts.Succeeded)
	}
	if got := peak.Load(); got > slots {
		t.Errorf("%d slots in use at once, above %d", got, slots)
	}
	if maxInUse > slots {
		t.Errorf("the scheduler started attempts taking %d slots at once, above %d", maxInUse, slots)
	}
}

// TestTaskWiderThanSlots: a task that can never fit fails without running
// and its dependents are skipped.
func TestTaskWiderThanSlots(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: wide, run: "true", slots: 4}
  - {id: after, run: "true", dependsOn: [wide]}
  - {id: other, run: "true"}
`)
	var ran sync.Map
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		ran.Store(a.Task.ID, true)
		return succeeded()
	}}
	o := runTasks(t, p, be, Options{Slots: 2, KeepGoing: true})
	if _, ok := ran.Load("wide"); ok {
		t.Error("the task wider than the slots ran")
	}
	w := outcomeOf(t, p, o, "wide")
	if w.State != Failed || !strings.Contains(w.Reason, "takes 4 slots") {
		t.Errorf("wide: %s %q", w.State, w.Reason)
	}
	if a := outcomeOf(t, p, o, "after"); a.State != Skipped || a.Reason != "skipped: upstream wide failed" {
		t.Errorf("after: %s %q", a.State, a.Reason)
	}
	if s := outcomeOf(t, p, o, "other").State; s != Succeeded {
		t.Errorf("other: %s", s)
	}
}

// TestTaskWiderThanSlotsStopsRun: without KeepGoing, a task failed for
// not fitting the slots is a failure like any other: no new task starts.
func TestTaskWiderThanSlotsStopsRun(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: wide, run: "true", slots: 4}
  - {id: after, run: "true", dependsOn: [wide]}
  - {id: other, run: "true"}
`)
	var ran sync.Map
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		ran.Store(a.Task.ID, true)
		return succeeded()
	}}
	o := runTasks(t, p, be, Options{Slots: 2})
	if _, ok := ran.Load("other"); ok {
		t.Error("other started after wide failed")
	}
	if tk := outcomeOf(t, p, o, "other"); tk.State != Skipped || !strings.Contains(tk.Reason, "wide failed") {
		t.Errorf("other: %s %q, want skipped naming wide", tk.State, tk.Reason)
	}
}

// TestCriticalPathFirst: with one slot, the head of the longest chain
// starts before independent short tasks that come first by id.
func TestCriticalPathFirst(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a1, run: "true"}
  - {id: a2, run: "true"}
  - {id: a3, run: "true"}
  - {id: z1, run: "true"}
  - {id: z2, run: "true", dependsOn: [z1]}
  - {id: z3, run: "true", dependsOn: [z2]}
  - {id: z4, run: "true", dependsOn: [z3]}
`)
	be := &mockBackend{RunTaskFn: func(context.Context, *Attempt) Result { return succeeded() }}
	events := &eventLog{}
	runTasks(t, p, be, Options{Slots: 1, Events: events})
	got := events.startedTasks()
	// z1 (4 to go), z2 (3), z3 (2) lead; then the ties at priority 1 go
	// by program order.
	if len(got) != 7 || !slices.Equal(got[:3], []string{"z1", "z2", "z3"}) {
		t.Errorf("start order %v, want z1 z2 z3 first", got)
	}
	rest := slices.Clone(got[3:])
	slices.Sort(rest)
	if !slices.Equal(rest, []string{"a1", "a2", "a3", "z4"}) {
		t.Errorf("start order %v", got)
	}
}

func TestRetries(t *testing.T) {
	spec := func(retries int) string {
		return fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - id: flaky
    retries: %d
    run: echo attempt ${{ task.attempt }}
  - {id: after, run: "true", dependsOn: [flaky]}
`, retries)
	}
	tests := []struct {
		name         string
		retries      int
		failures     int // attempts that fail before one succeeds
		noRetry      bool
		wantState    State
		wantAttempts int
	}{
		{"succeeds on the third attempt", 2, 2, false, Succeeded, 3},
		{"fails after two attempts", 1, 100, false, Failed, 2},
		{"no retries", 0, 100, false, Failed, 1},
		{"NoRetry is final", 3, 100, true, Failed, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planSpec(t, spec(tt.retries))
			var mu sync.Mutex
			var numbers []int
			var scripts []string
			be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
				if a.Task.ID != "flaky" {
					return succeeded()
				}
				mu.Lock()
				numbers = append(numbers, a.Number)
				scripts = append(scripts, a.Task.Run)
				mu.Unlock()
				if a.Number <= tt.failures {
					r := failed(3)
					r.NoRetry = tt.noRetry
					return r
				}
				return succeeded()
			}}
			events := &eventLog{}
			o := runTasks(t, p, be, Options{Slots: 2, Events: events})
			f := outcomeOf(t, p, o, "flaky")
			if f.State != tt.wantState || f.Attempts != tt.wantAttempts {
				t.Errorf("flaky: %s after %d attempts, want %s after %d", f.State, f.Attempts, tt.wantState, tt.wantAttempts)
			}
			var want []int
			var wantScripts []string
			for i := 1; i <= tt.wantAttempts; i++ {
				want = append(want, i)
				wantScripts = append(wantScripts, fmt.Sprintf("echo attempt %d", i))
			}
			if !slices.Equal(numbers, want) {
				t.Errorf("attempt numbers %v, want %v", numbers, want)
			}
			if !slices.Equal(scripts, wantScripts) {
				t.Errorf("scripts %q, want ${{ task.attempt }} filled in: %q", scripts, wantScripts)
			}
			retrying := 0
			for _, e := range events.all() {
				if e.Type == EventTaskRetrying {
					retrying++
				}
			}
			if retrying != tt.wantAttempts-1 {
				t.Errorf("%d retrying events, want %d", retrying, tt.wantAttempts-1)
			}
			after := outcomeOf(t, p, o, "after")
			if tt.wantState == Succeeded && after.State != Succeeded {
				t.Errorf("after: %s", after.State)
			}
			if tt.wantState == Failed {
				if after.State != Skipped || after.Reason != "skipped: upstream flaky failed" {
					t.Errorf("after: %s %q", after.State, after.Reason)
				}
				if f.ExitCode == nil || *f.ExitCode != 3 || f.Reason != "exit code 3" {
					t.Errorf("flaky: exit code %v, reason %q", f.ExitCode, f.Reason)
				}
			}
		})
	}
}

const groupSpec = `apiVersion: bmc/v1
kind: Workload
name: w
params:
  s: {default: [s1, s2, s3]}
tasks:
  - {id: prep, run: "true"}
  - id: work
    matrix: {s: "${{ params.s }}"}
    dependsOn: [prep]
    run: "true"
  - {id: merge, run: "true", dependsOn: [work]}
  - {id: publish, run: "true", dependsOn: [merge]}
  - {id: side, run: "true"}
`

// failing returns a backend on which the named tasks fail and everything
// else succeeds, recording which tasks ran.
func failing(ran *sync.Map, ids ...string) *mockBackend {
	return &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		ran.Store(a.Task.ID, true)
		if slices.Contains(ids, a.Task.ID) {
			return failed(2)
		}
		return succeeded()
	}}
}

func TestSkippedDependentsNameTheRootCause(t *testing.T) {
	tests := []struct {
		name string
		fail string
		want map[string]string // id -> state or skip reason
	}{
		{
			name: "member of a group",
			fail: "work-s2",
			want: map[string]string{
				"prep": "succeeded", "work-s1": "succeeded", "work-s2": "failed", "work-s3": "succeeded", "side": "succeeded",
				"merge": "skipped: upstream work-s2 failed", "publish": "skipped: upstream work-s2 failed",
			},
		},
		{
			name: "upstream of a group",
			fail: "prep",
			want: map[string]string{
				"prep": "failed", "side": "succeeded",
				"work-s1": "skipped: upstream prep failed", "work-s2": "skipped: upstream prep failed", "work-s3": "skipped: upstream prep failed",
				"merge": "skipped: upstream prep failed", "publish": "skipped: upstream prep failed",
			},
		},
		{
			name: "downstream of a group",
			fail: "merge",
			want: map[string]string{
				"prep": "succeeded", "work-s1": "succeeded", "work-s2": "succeeded", "work-s3": "succeeded", "side": "succeeded",
				"merge": "failed", "publish": "skipped: upstream merge failed",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planSpec(t, groupSpec)
			var ran sync.Map
			events := &eventLog{}
			o := runTasks(t, p, failing(&ran, tt.fail), Options{Slots: 2, KeepGoing: true, Events: events})
			got := map[string]string{}
			for i, tk := range p.Program.Tasks {
				s := string(o.Tasks[i].State)
				if o.Tasks[i].State == Skipped {
					s = o.Tasks[i].Reason
					if _, ok := ran.Load(tk.ID); ok {
						t.Errorf("%s was skipped but ran", tk.ID)
					}
				}
				got[tk.ID] = s
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			// One skipped event per skipped task, with the same reason.
			skipped := map[string]string{}
			for _, e := range events.all() {
				if e.Type == EventTaskSkipped {
					if _, dup := skipped[e.Task]; dup {
						t.Errorf("%s skipped twice", e.Task)
					}
					skipped[e.Task] = e.Reason
				}
			}
			for id, s := range tt.want {
				if strings.HasPrefix(s, "skipped") && skipped[id] != s {
					t.Errorf("%s: skipped event reason %q, want %q", id, skipped[id], s)
				}
			}
		})
	}
}

// A task whose attempt fails once the run is stopping is not retried,
// and its reason says so.
func TestNoRetryWhileStopping(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: bad, run: "true"}
  - {id: flaky, run: "true", retries: 2}
`)
	release := make(chan struct{})
	be := &mockBackend{RunTaskFn: func(ctx context.Context, a *Attempt) Result {
		if a.Task.ID == "flaky" {
			<-release
		}
		return failed(1)
	}}
	events := &eventLog{notify: func(e Event) {
		if e.Type == EventTaskFinished && e.Task == "bad" {
			close(release)
		}
	}}
	o := runTasks(t, p, be, Options{Slots: 2, Events: events})
	got := outcomeOf(t, p, o, "flaky")
	if got.State != Failed || got.Attempts != 1 || got.Reason != "exit code 1; not retried: run stopped after bad failed (use --keep-going to run independent tasks)" {
		t.Errorf("flaky: %+v", got)
	}
}

// TestFailFast: by default, once a task has failed no new attempt starts;
// the attempt already running finishes; everything left is skipped with a
// reason naming the failure. KeepGoing runs what does not depend on it.
func TestFailFast(t *testing.T) {
	// bad and long lead (each has a dependent), so with two slots they
	// start first; the rest wait.
	const spec = `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: bad, run: "true"}
  - {id: bad-next, run: "true", dependsOn: [bad]}
  - {id: long, run: "true"}
  - {id: long-next, run: "true", dependsOn: [long]}
  - {id: a, run: "true"}
  - {id: b, run: "true"}
`
	for _, keepGoing := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepGoing=%v", keepGoing), func(t *testing.T) {
			p := planSpec(t, spec)
			release := map[string]chan struct{}{"bad": make(chan struct{}), "long": make(chan struct{})}
			startedCh := make(chan string, 16)
			var longCtxErr error
			be := &mockBackend{RunTaskFn: func(ctx context.Context, a *Attempt) Result {
				startedCh <- a.Task.ID
				if ch, ok := release[a.Task.ID]; ok {
					<-ch
				}
				if a.Task.ID == "long" {
					longCtxErr = ctx.Err()
				}
				if a.Task.ID == "bad" {
					return failed(1)
				}
				return succeeded()
			}}
			var failedAt atomic.Int32
			failedAt.Store(-1)
			badFailed := make(chan struct{})
			var n atomic.Int32
			events := &eventLog{notify: func(e Event) {
				n.Add(1)
				if e.Type == EventTaskFinished && e.Task == "bad" {
					failedAt.Store(n.Load())
					close(badFailed)
				}
			}}
			done := make(chan *Outcome)
			go func() {
				o, err := RunTasks(context.Background(), p, be, testRun(t), nil, Options{Slots: 2, KeepGoing: keepGoing, Events: events})
				if err != nil {
					t.Error(err)
				}
				done <- o
			}()
			first := []string{<-startedCh, <-startedCh}
			slices.Sort(first)
			if !slices.Equal(first, []string{"bad", "long"}) {
				t.Fatalf("first attempts %v, want bad and long", first)
			}
			close(release["bad"])
			<-badFailed
			close(release["long"])
			o := <-done
			checkCounts(t, o)
			if longCtxErr != nil {
				t.Errorf("the running attempt was cancelled by the failure: %v", longCtxErr)
			}
			if s := outcomeOf(t, p, o, "long").State; s != Succeeded {
				t.Errorf("long: %s, want it to finish", s)
			}
			if r := outcomeOf(t, p, o, "bad-next").Reason; r != "skipped: upstream bad failed" {
				t.Errorf("bad-next: %q", r)
			}
			after := events.all()[failedAt.Load():]
			if !keepGoing {
				for _, e := range after {
					if e.Type == EventTaskStarted {
						t.Errorf("%s started after bad failed", e.Task)
					}
				}
				for _, id := range []string{"long-next", "a", "b"} {
					o := outcomeOf(t, p, o, id)
					if o.State != Skipped || !strings.Contains(o.Reason, "bad failed") || o.Attempts != 0 {
						t.Errorf("%s: %s after %d attempts, %q; want skipped naming bad", id, o.State, o.Attempts, o.Reason)
					}
				}
				if o.Counts.Skipped != 4 || o.Counts.Failed != 1 || o.Counts.Succeeded != 1 {
					t.Errorf("counts %+v", o.Counts)
				}
			} else {
				for _, id := range []string{"long-next", "a", "b"} {
					if s := outcomeOf(t, p, o, id).State; s != Succeeded {
						t.Errorf("%s: %s, want it run with KeepGoing", id, s)
					}
				}
				if o.Counts.Skipped != 1 || o.Counts.Failed != 1 || o.Counts.Succeeded != 4 {
					t.Errorf("counts %+v", o.Counts)
				}
			}
		})
	}
}

// TestCancel: cancelling the run's context reaches the running attempts;
// tasks not started end cancelled; no retry follows a cancelled attempt.
func TestCancel(t *testing.T) {
	const spec = `apiVersion: bmc/v1
kind: Workload
name: w
defaults: {retries: 3}
tasks:
  - {id: r1, run: "true"}
  - {id: r1-next, run: "true", dependsOn: [r1]}
  - {id: r2, run: "true"}
  - {id: r2-next, run: "true", dependsOn: [r2]}
  - {id: later1, run: "true"}
  - {id: later2, run: "true"}
`
	// r2's backend reports a plain failure when stopped: the executor
	// still knows it was cancelled.
	for _, reportAs := range []State{Canceled, Failed} {
		t.Run(string(reportAs), func(t *testing.T) {
			p := planSpec(t, spec)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			started := make(chan string, 16)
			var retries atomic.Int32
			var sawCancel sync.Map
			be := &mockBackend{RunTaskFn: func(ctx context.Context, a *Attempt) Result {
				if a.Number > 1 {
					retries.Add(1)
				}
				started <- a.Task.ID
				<-ctx.Done()
				sawCancel.Store(a.Task.ID, true)
				r := Result{State: reportAs, Reason: "stopped", Start: time.Now(), End: time.Now()}
				if reportAs == Failed {
					r.ExitCode = codePtr(143)
				}
				return r
			}}
			done := make(chan *Outcome)
			go func() {
				o, err := RunTasks(ctx, p, be, testRun(t), nil, Options{Slots: 2})
				if err != nil {
					t.Error(err)
				}
				done <- o
			}()
			first := []string{<-started, <-started}
			cancel()
			o := <-done
			checkCounts(t, o)
			if !o.Canceled {
				t.Error("Outcome.Canceled is false")
			}
			if got := retries.Load(); got != 0 {
				t.Errorf("%d retries after cancel", got)
			}
			for _, id := range first {
				if _, ok := sawCancel.Load(id); !ok {
					t.Errorf("%s did not see its context cancelled", id)
				}
				if tk := outcomeOf(t, p, o, id); tk.State != Canceled || tk.Attempts != 1 {
					t.Errorf("%s: %s after %d attempts, want cancelled after 1", id, tk.State, tk.Attempts)
				}
			}
			for i, tk := range p.Program.Tasks {
				if slices.Contains(first, tk.ID) {
					continue
				}
				// Whether any of these got an attempt depends on whether
				// the scheduler sees the cancellation or a result first;
				// TestNoAttemptStartsAfterCancel pins that down.
				if o.Tasks[i].State != Canceled {
					t.Errorf("%s: %s, want cancelled", tk.ID, o.Tasks[i].State)
				}
			}
			if o.Counts.Cancelled != len(p.Program.Tasks) {
				t.Errorf("counts %+v", o.Counts)
			}
		})
	}
}

// TestNoAttemptStartsAfterCancel: once the run's context is cancelled, no
// new attempt starts, even when a result is taken before the cancellation.
func TestNoAttemptStartsAfterCancel(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, run: "true"}
  - {id: a-next, run: "true", dependsOn: [a]}
  - {id: b, run: "true"}
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var calls []string
	be := &mockBackend{RunTaskFn: func(ctx context.Context, a *Attempt) Result {
		mu.Lock()
		calls = append(calls, a.Task.ID)
		mu.Unlock()
		if ctx.Err() != nil {
			return Result{State: Canceled, Reason: "cancelled"}
		}
		if a.Task.ID == "a" {
			// a succeeded, and the cancellation comes before its result
			// is taken and the next tasks are started.
			cancel()
		}
		return succeeded()
	}}
	o, err := RunTasks(ctx, p, be, testRun(t), nil, Options{Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, o)
	if !slices.Equal(calls, []string{"a"}) {
		t.Errorf("RunTask called for %v, want only a", calls)
	}
	for _, id := range []string{"a-next", "b"} {
		if tk := outcomeOf(t, p, o, id); tk.State != Canceled || tk.Attempts != 0 || tk.Reason != "cancelled before it started" {
			t.Errorf("%s: %s after %d attempts (%q), want cancelled before it started", id, tk.State, tk.Attempts, tk.Reason)
		}
	}
}

// TestResume: tasks an earlier attempt of the run completed are not run
// again, count as succeeded, and release their dependents, groups
// included. (The done tasks here have no dependent whose every upstream
// is done; that case is TestResumeRunsReleasedTaskOnce.)
func TestResume(t *testing.T) {
	prog := compileSpec(t, groupSpec, nil)
	done := map[string]bool{"work-s1": true, "work-s2": true}
	p := planner.New(prog, planner.Capabilities{Name: "mock"}, done)
	var mu sync.Mutex
	var ran []string
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		mu.Lock()
		ran = append(ran, a.Task.ID)
		mu.Unlock()
		return succeeded()
	}}
	events := &eventLog{}
	o := runTasks(t, p, be, Options{Slots: 1, Events: events})
	slices.Sort(ran)
	if want := []string{"merge", "prep", "publish", "side", "work-s3"}; !slices.Equal(ran, want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
	if o.Ran != 5 {
		t.Errorf("Ran = %d, want 5", o.Ran)
	}
	if o.Counts.Succeeded != len(prog.Tasks) {
		t.Errorf("counts %+v", o.Counts)
	}
	for id := range done {
		if tk := outcomeOf(t, p, o, id); tk.State != Succeeded || tk.Attempts != 0 {
			t.Errorf("%s: %s after %d attempts", id, tk.State, tk.Attempts)
		}
	}
	// merge waited only for work-s3, the group's one member left.
	order := events.startedTasks()
	if slices.Index(order, "merge") < slices.Index(order, "work-s3") {
		t.Errorf("merge started before work-s3: %v", order)
	}
	for _, e := range events.all() {
		if e.Task != "" && done[e.Task] {
			t.Errorf("event %s for %s, which was done before", e.Type, e.Task)
		}
	}
}

// TestResumeRunsReleasedTaskOnce: on a resume, a task whose upstream tasks
// all succeeded before runs once.
func TestResumeRunsReleasedTaskOnce(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec string
		done map[string]bool
	}{
		{"chain", `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, run: "true"}
  - {id: b, run: "true", dependsOn: [a]}
`, map[string]bool{"a": true}},
		{"group", groupSpec, map[string]bool{"prep": true, "work-s1": true, "work-s2": true, "work-s3": true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prog := compileSpec(t, tt.spec, nil)
			p := planner.New(prog, planner.Capabilities{Name: "mock"}, tt.done)
			var mu sync.Mutex
			runs := map[string]int{}
			be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
				mu.Lock()
				runs[a.Task.ID]++
				mu.Unlock()
				return succeeded()
			}}
			o := runTasks(t, p, be, Options{Slots: 2})
			for id, n := range runs {
				if n != 1 {
					t.Errorf("%s ran %d times", id, n)
				}
				if tt.done[id] {
					t.Errorf("%s ran though done", id)
				}
			}
			if len(runs)+len(tt.done) != len(prog.Tasks) {
				t.Errorf("ran %v", runs)
			}
			if o.Counts.Succeeded != len(prog.Tasks) {
				t.Errorf("counts %+v", o.Counts)
			}
		})
	}
}

// TestResumeAllDone: nothing left to run ends at once.
func TestResumeAllDone(t *testing.T) {
	prog := compileSpec(t, groupSpec, nil)
	done := map[string]bool{}
	for _, tk := range prog.Tasks {
		done[tk.ID] = true
	}
	p := planner.New(prog, planner.Capabilities{Name: "mock"}, done)
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		t.Errorf("%s ran", a.Task.ID)
		return succeeded()
	}}
	o := runTasks(t, p, be, Options{Slots: 2})
	if o.Ran != 0 || o.Counts.Succeeded != len(prog.Tasks) {
		t.Errorf("Ran %d, counts %+v", o.Ran, o.Counts)
	}
}

func TestJournalRecords(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - id: ok
    run: "true"
    outputs:
      - {path: out.txt, to: "az://results/${{ run.id }}/"}
  - {id: flaky, run: "true", retries: 1}
  - {id: bad, run: "true"}
  - {id: after, run: "true", dependsOn: [bad]}
`)
	run := testRun(t)
	j, err := OpenJournal(filepath.Join(run.Dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		switch {
		case a.Task.ID == "ok":
			r := succeeded()
			r.Outputs = []string{a.Task.Outputs[0].To}
			return r
		case a.Task.ID == "flaky" && a.Number == 1, a.Task.ID == "bad":
			return failed(7)
		}
		return succeeded()
	}}
	o, err := RunTasks(context.Background(), p, be, run, j, Options{Slots: 1, KeepGoing: true})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, o)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadJournal(filepath.Join(run.Dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || recs[0].Type != RecordRunStarted {
		t.Fatalf("first record %+v, want run-started", recs)
	}
	var start struct {
		Backend             string
		Slots, Tasks, ToRun int
	}
	if err := json.Unmarshal(recs[0].Data, &start); err != nil {
		t.Fatal(err)
	}
	if start.Backend != "mock" || start.Slots != 1 || start.Tasks != 4 || start.ToRun != 4 {
		t.Errorf("run-started data %s", recs[0].Data)
	}
	type line struct {
		Type, Task, State, Reason string
		Attempt                   int
		ExitCode                  int
	}
	var got []line
	for _, r := range recs[1:] {
		l := line{Type: r.Type, Task: r.Task, State: r.State, Reason: r.Reason, Attempt: r.Attempt, ExitCode: -1}
		if r.ExitCode != nil {
			l.ExitCode = *r.ExitCode
		}
		if r.Time.IsZero() {
			t.Errorf("record %+v has no time", r)
		}
		got = append(got, l)
	}
	byTask := map[string][]line{}
	for _, l := range got {
		byTask[l.Task] = append(byTask[l.Task], l)
	}
	want := map[string][]line{
		"ok": {
			{Type: RecordTaskStarted, Task: "ok", Attempt: 1, ExitCode: -1},
			{Type: RecordTaskFinished, Task: "ok", State: "succeeded", Attempt: 1, ExitCode: 0},
		},
		"flaky": {
			{Type: RecordTaskStarted, Task: "flaky", Attempt: 1, ExitCode: -1},
			{Type: RecordTaskFinished, Task: "flaky", State: "failed", Reason: "exit code 7", Attempt: 1, ExitCode: 7},
			{Type: RecordTaskStarted, Task: "flaky", Attempt: 2, ExitCode: -1},
			{Type: RecordTaskFinished, Task: "flaky", State: "succeeded", Attempt: 2, ExitCode: 0},
		},
		"bad": {
			{Type: RecordTaskStarted, Task: "bad", Attempt: 1, ExitCode: -1},
			{Type: RecordTaskFinished, Task: "bad", State: "failed", Reason: "exit code 7", Attempt: 1, ExitCode: 7},
		},
		"after": {
			{Type: RecordTaskSkipped, Task: "after", State: "skipped", Reason: "skipped: upstream bad failed", ExitCode: -1},
		},
	}
	if diff := cmp.Diff(want, byTask); diff != "" {
		t.Errorf("journal (-want +got):\n%s", diff)
	}
	for _, r := range recs {
		if r.Task == "ok" && r.Type == RecordTaskFinished {
			if !strings.Contains(string(r.Data), `"az://results/w-run-1/"`) {
				t.Errorf("ok's outputs not journaled: %s", r.Data)
			}
		}
	}
	// The journal replays to the same outcome.
	st, err := LoadState(run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, tk := range p.Program.Tasks {
		ts := st.Tasks[tk.ID]
		if ts == nil || ts.State != o.Tasks[i].State {
			t.Errorf("%s: journal says %+v, run said %s", tk.ID, ts, o.Tasks[i].State)
		}
	}
	if !slices.Equal(st.Tasks["ok"].Outputs, []string{"az://results/w-run-1/"}) {
		t.Errorf("ok outputs %v", st.Tasks["ok"].Outputs)
	}
}

// TestEventCounts: the counts carried by events add up, and the last event
// has every task done.
func TestEventCounts(t *testing.T) {
	p := planSpec(t, groupSpec)
	var ran sync.Map
	events := &eventLog{}
	o := runTasks(t, p, failing(&ran, "work-s1"), Options{Slots: 2, KeepGoing: true, Events: events})
	evs := events.all()
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	last := evs[len(evs)-1]
	if last.Counts.Done() != last.Counts.Total || last.Counts.Total != len(p.Program.Tasks) {
		t.Errorf("last event counts %+v: not every task done", last.Counts)
	}
	if diff := cmp.Diff(o.Counts, last.Counts); diff != "" {
		t.Errorf("last event counts differ from the outcome's (-outcome +event):\n%s", diff)
	}
	kinds := map[EventType]int{}
	prevDone := 0
	for _, e := range evs {
		kinds[e.Type]++
		if e.RunID != "w-run-1" || e.Time.IsZero() {
			t.Errorf("event %+v lacks run id or time", e)
		}
		c := e.Counts
		// run-started is checked in TestRunStartedEventCounts.
		if sum := c.Succeeded + c.Failed + c.Running + c.Skipped + c.Cancelled + c.Pending; sum != c.Total && e.Type != EventRunStarted {
			t.Errorf("%s %s: counts %+v add up to %d, not %d", e.Type, e.Task, c, sum, c.Total)
		}
		if c.Done() < prevDone {
			t.Errorf("%s %s: done went down from %d to %d", e.Type, e.Task, prevDone, c.Done())
		}
		prevDone = c.Done()
	}
	want := map[EventType]int{
		EventRunStarted:   1,
		EventTaskStarted:  5, // all but merge and publish
		EventTaskFinished: 5,
		EventTaskSkipped:  2,
	}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("event kinds (-want +got):\n%s", diff)
	}
}

// TestEventCountsDuringRetry: a task waiting for its next attempt is
// pending; the counts of the retrying event must still add up to the total.
func TestEventCountsDuringRetry(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: flaky, run: "true", retries: 1}
  - {id: other, run: "true"}
`)
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		if a.Task.ID == "flaky" && a.Number == 1 {
			return failed(1)
		}
		return succeeded()
	}}
	events := &eventLog{}
	runTasks(t, p, be, Options{Slots: 1, Events: events})
	for _, e := range events.all() {
		if e.Type == EventRunStarted {
			continue // TestRunStartedEventCounts
		}
		c := e.Counts
		if sum := c.Succeeded + c.Failed + c.Running + c.Skipped + c.Cancelled + c.Pending; sum != c.Total {
			t.Errorf("%s %s: counts %+v add up to %d, not %d", e.Type, e.Task, c, sum, c.Total)
		}
	}
}

// TestRunStartedEventCounts: the first event already has every task in a
// bucket: pending, or succeeded when an earlier attempt of the run did it.
func TestRunStartedEventCounts(t *testing.T) {
	prog := compileSpec(t, groupSpec, nil)
	p := planner.New(prog, planner.Capabilities{Name: "mock"}, map[string]bool{"side": true})
	be := &mockBackend{RunTaskFn: func(context.Context, *Attempt) Result { return succeeded() }}
	events := &eventLog{}
	runTasks(t, p, be, Options{Slots: 1, Events: events})
	first := events.all()[0]
	want := Counts{Total: 7, Succeeded: 1, Pending: 6}
	if first.Type != EventRunStarted || first.Counts != want {
		t.Errorf("first event %s with counts %+v, want run-started with %+v", first.Type, first.Counts, want)
	}
}

func TestProgressEvents(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: slow, run: "true"}
`)
	progressSeen := make(chan struct{})
	var once sync.Once
	be := &mockBackend{RunTaskFn: func(context.Context, *Attempt) Result {
		// Finish only once a progress event has been sent.
		<-progressSeen
		return succeeded()
	}}
	events := &eventLog{notify: func(e Event) {
		if e.Type != EventProgress {
			return
		}
		// The first is sent while the task runs; the ticker may send more
		// between its end and the run's.
		once.Do(func() {
			if e.Counts.Running != 1 {
				t.Errorf("first progress counts %+v, want one running", e.Counts)
			}
			close(progressSeen)
		})
		if c := e.Counts; c.Total != 1 || c.Running+c.Succeeded != 1 {
			t.Errorf("progress counts %+v, want the task running or succeeded", c)
		}
	}}
	runTasks(t, p, be, Options{Slots: 1, Events: events, Progress: time.Millisecond})
}

func codePtr(n int) *int { return &n }

// A journal that can no longer be written stops the run, says so once,
// and still hands back every task's outcome for the finalize step.
func TestRunStopsWhenJournalFails(t *testing.T) {
	plan := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, command: ["true"]}
  - {id: b, command: ["true"]}
  - {id: c, command: ["true"]}
`)
	run := testRun(t)
	var logs strings.Builder
	var logMu sync.Mutex
	run.Log = slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	j := mustOpen(t, filepath.Join(run.Dir, JournalFile))
	// The first task's run breaks the journal's file under it.
	be := journalBreaker(t, j)
	o, err := RunTasks(context.Background(), plan, be, run, j, Options{Slots: 1})
	if err != nil {
		t.Fatalf("RunTasks: %v (the outcome must survive a journal failure)", err)
	}
	checkCounts(t, o)
	if o.Counts.Skipped == 0 {
		t.Errorf("counts %+v: tasks still started after the journal failed", o.Counts)
	}
	for _, id := range []string{"b", "c"} {
		if to := outcomeOf(t, plan, o, id); to.State == Skipped && !strings.Contains(to.Reason, "journal could not be written") {
			t.Errorf("%s skipped with reason %q", id, to.Reason)
		}
	}
	logMu.Lock()
	n := strings.Count(logs.String(), "journal write failed")
	logMu.Unlock()
	if n != 1 {
		t.Errorf("journal failure logged %d times, want once:\n%s", n, logs.String())
	}
	j.Close()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// On a resume, a task's attempt numbers go on from its earlier session's,
// so that a number names one attempt of the run, while its retries start
// afresh; a task that did not start before starts at 1.
func TestResumeNumbersAttemptsOn(t *testing.T) {
	p := planSpec(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: flaky, run: "x ${{ task.attempt }}", retries: 1}
  - {id: fresh, run: "x ${{ task.attempt }}"}
`)
	prev := &RunState{Tasks: map[string]*TaskState{
		"flaky": {ID: "flaky", State: Failed, Attempts: 2},
	}}
	var mu sync.Mutex
	seen := map[string][]string{}
	be := &mockBackend{RunTaskFn: func(_ context.Context, a *Attempt) Result {
		mu.Lock()
		seen[a.Task.ID] = append(seen[a.Task.ID], fmt.Sprintf("%d:%s", a.Number, a.Task.Run))
		mu.Unlock()
		if a.Task.ID == "flaky" && a.Number == 3 {
			return failed(1)
		}
		return succeeded()
	}}
	o := runTasks(t, p, be, Options{Slots: 2, Previous: prev})
	want := map[string][]string{"flaky": {"3:x 3", "4:x 4"}, "fresh": {"1:x 1"}}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	if got := outcomeOf(t, p, o, "flaky"); got.State != Succeeded || got.Attempts != 4 {
		t.Errorf("flaky: %s after %d attempts, want succeeded after 4 in the run", got.State, got.Attempts)
	}
	if o.Ran != 2 {
		t.Errorf("Ran = %d, want 2", o.Ran)
	}
}

// journalBreaker is a backend whose tasks succeed and, as they run, leave
// the journal's file open read-only under it: every later write fails.
func journalBreaker(t *testing.T, j *Journal) *mockBackend {
	return &mockBackend{RunTaskFn: func(ctx context.Context, a *Attempt) Result {
		j.mu.Lock()
		ro, err := os.Open(j.path)
		if err == nil {
			j.f.Close()
			j.f = ro
		}
		j.mu.Unlock()
		if err != nil {
			t.Error(err)
		}
		return succeeded()
	}}
}
