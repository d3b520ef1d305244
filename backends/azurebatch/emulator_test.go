package azurebatch

// The backend against the project's Batch emulator, in process on
// loopback: submission and following a run, with and without faults, and
// the control-plane load of a 100,000-task fan-in.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// emu is an emulator serving on loopback, with request counts.
type emu struct {
	s   *emulator.Server
	srv *httptest.Server
	c   *Client

	mu       sync.Mutex
	requests map[string]int // by "METHOD kind"
	bytesIn  atomic.Int64
	// adding and maxAdding count add-collection requests in flight.
	adding, maxAdding atomic.Int32
}

func newEmu(t testing.TB, o emulator.Options) *emu {
	t.Helper()
	s, err := emulator.New(o)
	if err != nil {
		t.Fatal(err)
	}
	e := &emu{s: s, requests: map[string]int{}}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.requests[r.Method+" "+kind(r.URL.Path)]++
		e.mu.Unlock()
		if r.ContentLength > 0 {
			e.bytesIn.Add(r.ContentLength)
		}
		if strings.HasSuffix(r.URL.Path, "/addtaskcollection") {
			n := e.adding.Add(1)
			defer e.adding.Add(-1)
			for m := e.maxAdding.Load(); n > m && !e.maxAdding.CompareAndSwap(m, n); m = e.maxAdding.Load() {
			}
		}
		s.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		e.srv.Close()
		s.Close()
	})
	cred, err := NewSharedKeyCredential(s.Account(), s.Key())
	if err != nil {
		t.Fatal(err)
	}
	e.c, err = New(e.srv.URL, cred, Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 20 * time.Millisecond, MaxRetries: 10})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// kind names the operation of a path: jobs/x/tasks -> tasks.
func kind(p string) string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(segs) >= 3 && segs[0] == "jobs":
		return segs[2]
	case len(segs) == 2:
		return segs[0] + "/id"
	}
	return segs[0]
}

func (e *emu) count(k string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests[k]
}

func (e *emu) pool(t testing.TB, id string, nodes, slots int) {
	t.Helper()
	err := e.c.CreatePool(t.Context(), BatchPoolCreateOptions{
		ID: id, VMSize: "Standard_D4s_v5",
		VirtualMachineConfiguration: &VirtualMachineConfiguration{
			ImageReference: BatchVMImageReference{Publisher: "canonical", Offer: "ubuntu-24_04-lts", SKU: "server", Version: "latest"},
			NodeAgentSKUID: "batch.node.ubuntu 24.04"},
		TargetDedicatedNodes: Ptr(int32(nodes)), TaskSlotsPerNode: Ptr(int32(slots)),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runPlan submits prog and follows it to its end.
func runPlan(t testing.TB, e *emu, prog *compiler.Program, opt BackendOptions, nopt executor.NativeOptions) (*executor.Outcome, *Backend, SubmitStats) {
	t.Helper()
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: prog.Name + "-run", Workload: prog.Name}
	var stats SubmitStats
	opt.Client = e.c
	opt.OnSubmitted = func(s SubmitStats) { stats = s }
	be := NewBackend(opt)
	if nopt.PollInterval == 0 {
		nopt.PollInterval = 20 * time.Millisecond
	}
	o, err := executor.RunNative(t.Context(), plan, be, run, nil, nopt)
	if err != nil {
		t.Fatal(err)
	}
	return o, be, stats
}

// TestEmulatorRun follows a real (not instant) run: a failure retried
// then final, its dependents blocked and reported skipped with the root
// cause, a fan-in behind barriers, a task on the other side of the graph
// unaffected.
func TestEmulatorRun(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 2, 4)
	prog := fanIn(30)
	prog.Name = "real"
	prog.Tasks = append(prog.Tasks,
		compiler.Task{ID: "bad", Run: "echo no >&2; exit 3", Retries: 1, Slots: 1},
		compiler.Task{ID: "after-bad", Run: "true", Slots: 1, DependsOn: []string{"bad"}},
		compiler.Task{ID: "after-after", Run: "true", Slots: 1, DependsOn: []string{"after-bad"}},
		compiler.Task{ID: "slow", Run: "sleep 5", Timeout: compiler.Duration(300 * time.Millisecond), Slots: 1},
	)
	o, be, stats := runPlan(t, e, prog, BackendOptions{DependencyChars: 100, ListOverlap: -1}, executor.NativeOptions{})
	if stats.Barriers == 0 {
		t.Errorf("no barriers with a dependency limit of 100")
	}
	want := map[string]struct {
		state    executor.State
		attempts int
		reason   string
	}{
		"bad":         {executor.Failed, 2, "exit code 3"},
		"after-bad":   {executor.Skipped, 0, "skipped: upstream bad failed"},
		"after-after": {executor.Skipped, 0, "skipped: upstream bad failed"},
		"slow":        {executor.Failed, 1, "timed out after 300ms"},
		"gather":      {executor.Succeeded, 1, ""},
		"both":        {executor.Succeeded, 1, ""},
	}
	for i, pt := range prog.Tasks {
		got := o.Tasks[i]
		w, ok := want[pt.ID]
		if !ok {
			w.state, w.attempts = executor.Succeeded, 1
		}
		if got.State != w.state || got.Attempts != w.attempts || got.Reason != w.reason {
			t.Errorf("%s: %s after %d attempts (%q), want %s after %d (%q)", pt.ID, got.State, got.Attempts, got.Reason, w.state, w.attempts, w.reason)
		}
	}
	if c := o.Counts; c.Succeeded != len(prog.Tasks)-4 || c.Failed != 2 || c.Skipped != 2 || o.Canceled {
		t.Errorf("counts %+v, cancelled %v", c, o.Canceled)
	}
	// Following lists only what changed: about one listing of each task
	// however many polls it took.
	if st := be.Stats(); st.ListRequests > st.Polls || st.Listed > 2*(stats.Tasks+stats.Barriers) || st.Polls < 3 {
		t.Errorf("%d list calls in %d polls listed %d tasks, for %d", st.ListRequests, st.Polls, st.Listed, stats.Tasks+stats.Barriers)
	}
	// The job was marked submitted and set to end once its tasks are.
	j, err := e.c.GetJob(t.Context(), "real-run")
	if err != nil {
		t.Fatal(err)
	}
	if metaValue(j.Metadata, MetaSubmitted) != SubmittedAll || j.OnAllTasksComplete != AllTasksCompleteTerminateJob {
		t.Errorf("job metadata %+v, onAllTasksComplete %s", j.Metadata, j.OnAllTasksComplete)
	}
}

// TestEmulatorCancel: cancelling terminates the job; running tasks are
// reported cancelled, waiting ones cancelled before they started.
func TestEmulatorCancel(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 1, 2)
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: "cancel", Pool: &compiler.Pool{ID: "p"}, Tasks: []compiler.Task{
		{ID: "long", Run: "sleep 30", Slots: 1},
		{ID: "next", Run: "true", Slots: 1, DependsOn: []string{"long"}},
	}}
	plan := planner.New(prog, Capabilities(nil), nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	events := make(chan executor.Event, 64)
	be := NewBackend(BackendOptions{Client: e.c})
	done := make(chan *executor.Outcome, 1)
	go func() {
		o, err := executor.RunNative(ctx, plan, be, &executor.RunInfo{ID: "cancel-run", Workload: "cancel"}, nil,
			executor.NativeOptions{PollInterval: 20 * time.Millisecond, Events: executor.SinkFunc(func(ev executor.Event) { events <- ev })})
		if err != nil {
			t.Error(err)
		}
		done <- o
	}()
wait:
	for {
		select {
		case ev := <-events:
			if ev.Type == executor.EventTaskStarted && ev.Task == "long" {
				break wait
			}
		case o := <-done:
			t.Fatalf("the run ended before its task started: %+v", o)
		}
	}
	cancel()
	// RunNative emits until it returns; the rest of its events are not
	// needed.
	drained := make(chan struct{})
	go func() {
		for range events {
		}
		close(drained)
	}()
	o := <-done
	close(events)
	<-drained
	if o == nil {
		return
	}
	if !o.Canceled || o.Tasks[0].State != executor.Canceled || o.Tasks[1].State != executor.Canceled ||
		o.Tasks[1].Reason != "cancelled before it started" {
		t.Errorf("cancelled %v, tasks %+v", o.Canceled, o.Tasks)
	}
	j, err := e.c.GetJob(t.Context(), "cancel-run")
	if err != nil {
		t.Fatal(err)
	}
	if j.State != JobStateCompleted && j.State != JobStateTerminating {
		t.Errorf("job %s after a cancel", j.State)
	}
}

// TestEmulatorFaults: throttling with Retry-After, 5xx, connections
// dropped before and after the request is applied, and add-collection
// items failing with servererror; every task is created exactly once and
// the run completes.
func TestEmulatorFaults(t *testing.T) {
	e := newEmu(t, emulator.Options{Instant: true, Faults: &emulator.Faults{
		Throttle: 0.1, ServerError: 0.05, Reset: 0.05, Partial: 0.1, Seed: 11, RetryAfter: 0,
	}})
	e.pool(t, "p", 2, 8)
	prog := fanIn(1500)
	prog.Name = "faults"
	o, _, stats := runPlan(t, e, prog, BackendOptions{DependencyChars: 2000}, executor.NativeOptions{MaxPollErrors: 50})
	if c := o.Counts; c.Succeeded != len(prog.Tasks) || o.Canceled {
		t.Fatalf("counts %+v, cancelled %v", c, o.Canceled)
	}
	a := stats.AddTasks
	if a.Retries == 0 || a.Resubmitted == 0 {
		t.Errorf("no fault met: %+v", a)
	}
	// Exactly once: the job holds each task once, and each ran once.
	seen := map[string]int{}
	for tk, err := range e.c.ListTasks(t.Context(), "faults-run", ListOptions{Select: "id,executionInfo"}) {
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.ToLower(tk.ID)]++
		if tk.ExecutionInfo == nil || tk.ExecutionInfo.RetryCount != 0 {
			t.Errorf("%s: %+v", tk.ID, tk.ExecutionInfo)
		}
	}
	if len(seen) != stats.Tasks+stats.Barriers {
		t.Errorf("the job holds %d tasks, want %d + %d barriers", len(seen), stats.Tasks, stats.Barriers)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("task %s listed %d times", id, n)
		}
	}
	t.Logf("add: %d requests (%d retried), %d tasks resubmitted", a.Requests, a.Retries, a.Resubmitted)
}

// TestEmulatorLoad submits a 100,000-task fan-in (10,000 under the race
// detector) to the emulator in instant mode and follows it to the end:
// the tasks go in add-collection requests of 100 with several in flight,
// and following costs list requests in proportion to the tasks that
// changed, not to polls times tasks.
func TestEmulatorLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	n := 100_000
	if raceEnabled {
		n = 10_000
	}
	res := loadRun(t, n)
	t.Logf("%d tasks + %d barriers: submitted in %s (%.0f tasks/s), %d add requests (up to %d in flight), %d bytes; followed in %s: %d polls, %d list requests, %d tasks listed",
		res.tasks, res.barriers, res.submit.Round(time.Millisecond), res.rate, res.addRequests, res.inFlight, res.bytes, res.watch.Round(time.Millisecond), res.polls, res.listRequests, res.listed)
	if res.addRequests < (res.tasks+res.barriers)/MaxTasksPerCollection {
		t.Errorf("%d add requests for %d tasks", res.addRequests, res.tasks)
	}
	if res.inFlight < 4 {
		t.Errorf("at most %d add requests in flight, want at least 4", res.inFlight)
	}
	// Each task is listed about once (the overlap of successive listings
	// re-reads a few), however many polls it took.
	if res.listed > 2*(res.tasks+res.barriers)+1000 {
		t.Errorf("%d tasks listed to follow %d: listings are not incremental", res.listed, res.tasks+res.barriers)
	}
}

type loadResult struct {
	tasks, barriers, addRequests, polls, listRequests, listed, inFlight int
	bytes                                                               int64
	submit, watch                                                       time.Duration
	rate                                                                float64
}

func loadRun(t testing.TB, n int) loadResult {
	e := newEmu(t, emulator.Options{Instant: true})
	e.pool(t, "p", 4, 64)
	prog := fanIn(n)
	prog.Name = "load"
	start := time.Now()
	o, be, stats := runPlan(t, e, prog, BackendOptions{Parallel: 8}, executor.NativeOptions{PollInterval: 250 * time.Millisecond})
	total := time.Since(start)
	if o.Counts.Succeeded != len(prog.Tasks) {
		t.Fatalf("counts %+v", o.Counts)
	}
	ps := be.Stats()
	r := loadResult{
		tasks: stats.Tasks, barriers: stats.Barriers, addRequests: e.count("POST addtaskcollection"),
		bytes: stats.AddTasks.BytesSent, submit: stats.Elapsed, watch: total - stats.Elapsed,
		polls: ps.Polls, listRequests: e.count("GET tasks"), listed: ps.Listed, inFlight: int(e.maxAdding.Load()),
	}
	r.rate = float64(r.tasks+r.barriers) / r.submit.Seconds()
	return r
}

func BenchmarkEmulatorSubmit100k(b *testing.B) {
	for range b.N {
		r := loadRun(b, 100_000)
		b.ReportMetric(r.rate, "tasks/s")
		b.ReportMetric(float64(r.addRequests), "add-requests")
		b.ReportMetric(float64(r.inFlight), "max-in-flight")
		b.ReportMetric(float64(r.bytes), "bytes-sent")
		b.ReportMetric(float64(r.polls), "polls")
		b.ReportMetric(float64(r.listRequests), "list-requests")
		b.ReportMetric(float64(r.listed), "tasks-listed")
		b.ReportMetric(r.watch.Seconds(), "watch-s")
	}
}

// BenchmarkEmulatorWatch follows a run whose tasks really run (as
// processes of the emulator, 0.2s each on 128 slots) and complete over
// time, and reports what
// following it cost against what a full listing per poll would have.
func BenchmarkEmulatorWatch(b *testing.B) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("BMC_BENCH_WATCH_TASKS")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		e := newEmu(b, emulator.Options{})
		e.pool(b, "p", 4, 32)
		prog := fanIn(n)
		prog.Name = "watch"
		for i := range n {
			prog.Tasks[i].Run = "sleep 0.2"
		}
		o, be, stats := runPlan(b, e, prog, BackendOptions{}, executor.NativeOptions{PollInterval: 250 * time.Millisecond})
		if o.Counts.Succeeded != len(prog.Tasks) {
			b.Fatalf("counts %+v", o.Counts)
		}
		ps := be.Stats()
		all := stats.Tasks + stats.Barriers
		b.ReportMetric(float64(all), "tasks")
		b.ReportMetric(float64(ps.Polls), "polls")
		b.ReportMetric(float64(e.count("GET tasks")), "list-requests")
		b.ReportMetric(float64(ps.Listed), "tasks-listed")
		b.ReportMetric(float64(ps.Polls*((all+999)/1000)), "full-listing-requests")
	}
}

// TestEnsurePool: a pool that exists is reused when it matches, refused
// with a clear error when it does not, and created from the spec when it
// does not exist.
func TestEnsurePool(t *testing.T) {
	e := newEmu(t, emulator.Options{Instant: true})
	e.pool(t, "have", 1, 4)
	be := NewBackend(BackendOptions{Client: e.c})
	spec := func(id, vm string, slots int, identity string) *compiler.Program {
		return &compiler.Program{Name: "w", Pool: &compiler.Pool{ID: id, VMSize: vm, SlotsPerNode: slots, Dedicated: 1, Identity: identity,
			Image: &compiler.Image{Publisher: "canonical", Offer: "ubuntu-24_04-lts", SKU: "server"}, NodeAgentSKU: "batch.node.ubuntu 24.04"}}
	}
	ctx := t.Context()
	if err := be.EnsurePool(ctx, spec("have", "standard_d4s_v5", 4, "")); err != nil {
		t.Errorf("matching pool: %v", err)
	}
	var pm *PoolMismatchError
	if err := be.EnsurePool(ctx, spec("have", "Standard_D8s_v5", 4, "")); !errorsAs(err, &pm) || pm.Field != "vmSize" {
		t.Errorf("vmSize: %v", err)
	}
	if err := be.EnsurePool(ctx, spec("have", "Standard_D4s_v5", 8, "")); !errorsAs(err, &pm) || pm.Field != "taskSlotsPerNode" ||
		!strings.Contains(err.Error(), "pool have exists with taskSlotsPerNode 4, but the spec asks for 8") {
		t.Errorf("slots: %v", err)
	}
	// The pool has no identity: a run naming one would find neither its
	// storage nor, for the finalize step on the pool, Batch.
	if err := be.EnsurePool(ctx, spec("have", "Standard_D4s_v5", 4, "/subscriptions/s/id")); !errorsAs(err, &pm) || pm.Field != "identity" || pm.Have != "none" {
		t.Errorf("identity: %v", err)
	}
	if err := be.EnsurePool(ctx, spec("new-pool", "Standard_D2s_v5", 2, "")); err != nil {
		t.Fatal(err)
	}
	p, err := e.c.GetPool(ctx, "new-pool")
	if err != nil || p.VMSize != "Standard_D2s_v5" || p.TaskSlotsPerNode != 2 || p.TargetDedicatedNodes != 1 {
		t.Errorf("created %+v %v", p, err)
	}
	if err := be.EnsurePool(ctx, spec("other", "Standard_D2s_v5", 2, "/subscriptions/s/id")); err == nil || !strings.Contains(err.Error(), "Azure Resource Manager") {
		t.Errorf("a missing pool with an identity: %v", err)
	}
	if err := be.EnsurePool(ctx, &compiler.Program{Pool: &compiler.Pool{ID: "absent"}}); err == nil || !strings.Contains(err.Error(), "does not exist, and bmc cannot create it") {
		t.Errorf("a missing pool without a definition: %v", err)
	}
}

func errorsAs[T error](err error, target *T) bool { return errors.As(err, target) }
