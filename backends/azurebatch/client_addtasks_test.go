package azurebatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func makeTasks(n, commandBytes int) []BatchTaskCreateOptions {
	tasks := make([]BatchTaskCreateOptions, n)
	for i := range tasks {
		cmd := ScriptCommandLine("echo "+strings.Repeat("x", commandBytes), "t")
		tasks[i] = BatchTaskCreateOptions{
			ID:                  fmt.Sprintf("task-%04d", i),
			CommandLine:         cmd,
			EnvironmentSettings: []EnvironmentSetting{{Name: "I", Value: fmt.Sprint(i)}},
			Constraints:         &BatchTaskConstraints{MaxTaskRetryCount: Ptr[int32](2), MaxWallClockTime: "PT2H"},
		}
		if i > 0 {
			tasks[i].DependsOn = &BatchTaskDependencies{TaskIDs: []string{tasks[0].ID}}
		}
	}
	return tasks
}

// collectionSizes lists, per add-collection request, its task count and
// body size.
func collectionSizes(t *testing.T, f *fakeBatch) (counts []int, sizes []int) {
	t.Helper()
	for _, r := range f.requests() {
		if !strings.HasSuffix(r.Path, "/addtaskcollection") {
			continue
		}
		var g BatchTaskGroup
		if err := json.Unmarshal(r.Body, &g); err != nil {
			t.Fatal(err)
		}
		counts = append(counts, len(g.Value))
		sizes = append(sizes, len(r.Body))
	}
	return counts, sizes
}

// storeHandler answers add-collections from store, with fault deciding
// per request (n counts from 0) and per task.
func storeHandler(f *fakeBatch, store *taskStore, fault func(n int, id string) itemFault) func(w http.ResponseWriter, r *http.Request, body []byte) {
	var count atomic.Int32
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		n := int(count.Add(1)) - 1
		var fl func(string) itemFault
		if fault != nil {
			fl = func(id string) itemFault { return fault(n, id) }
		}
		f.writeJSON(w, 200, "BatchCreateTaskCollectionResult", store.add(f, jobOf(r.URL.Path), body, fl))
	}
}

func TestAddTasksChunksByCount(t *testing.T) {
	f := newFakeBatch(t)
	store := newTaskStore()
	f.handle(storeHandler(f, store, nil))
	c, _ := f.client(Options{})
	tasks := makeTasks(250, 10)
	res, err := c.AddTasks(context.Background(), "run-1", tasks, 1)
	if err != nil {
		t.Fatal(err)
	}
	counts, _ := collectionSizes(t, f)
	if diff := cmp.Diff([]int{100, 100, 50}, counts); diff != "" {
		t.Errorf("collection sizes (-want +got):\n%s", diff)
	}
	// With one request in flight the collections go in input order.
	var first []string
	for _, r := range f.requests() {
		var g BatchTaskGroup
		json.Unmarshal(r.Body, &g)
		first = append(first, g.Value[0].ID)
	}
	if diff := cmp.Diff([]string{"task-0000", "task-0100", "task-0200"}, first); diff != "" {
		t.Errorf("first task of each collection (-want +got):\n%s", diff)
	}
	store.checkExactlyOnce(t, tasks)
	want := AddTasksResult{Added: 250, Stats: AddTasksStats{Requests: 3, BytesSent: res.Stats.BytesSent}}
	if diff := cmp.Diff(&want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	var sent int64
	for _, r := range f.requests() {
		sent += int64(len(r.Body))
	}
	if res.Stats.BytesSent != sent {
		t.Errorf("BytesSent = %d, the server received %d", res.Stats.BytesSent, sent)
	}
}

func TestAddTasksChunksBySize(t *testing.T) {
	f := newFakeBatch(t)
	store := newTaskStore()
	f.handle(storeHandler(f, store, nil))
	c, _ := f.client(Options{})
	tasks := makeTasks(40, 90_000) // ~90 kB each: 11 fit under 1 MB
	res, err := c.AddTasks(context.Background(), "run-1", tasks, 2)
	if err != nil {
		t.Fatal(err)
	}
	counts, sizes := collectionSizes(t, f)
	largest := 0
	total := 0
	for i, s := range sizes {
		if s >= 1_000_000 {
			t.Errorf("collection %d is %d bytes; must stay under 1 MB", i, s)
		}
		largest = max(largest, s)
		total += counts[i]
	}
	if largest < 900_000 {
		t.Errorf("largest collection %d bytes; want them filled close to 1 MB", largest)
	}
	if total != 40 || len(counts) != 4 {
		t.Errorf("collections %v; want 40 tasks in 4", counts)
	}
	store.checkExactlyOnce(t, tasks)
	if res.Added != 40 {
		t.Errorf("Added = %d", res.Added)
	}
}

func TestAddTasksHalvesOnRequestBodyTooLarge(t *testing.T) {
	f := newFakeBatch(t)
	store := newTaskStore()
	const limit = 300_000 // a service stricter than the client's guess
	inner := storeHandler(f, store, nil)
	var refused atomic.Int32
	f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if len(body) >= limit {
			refused.Add(1)
			writeBatchError(w, http.StatusRequestEntityTooLarge, CodeRequestBodyTooLarge, "The request body is too large and exceeds the maximum permissible limit.")
			return
		}
		inner(w, r, body)
	})
	c, _ := f.client(Options{})
	tasks := makeTasks(20, 45_000) // ~900 kB in all: one collection of 20, refused
	res, err := c.AddTasks(context.Background(), "run-1", tasks, 1)
	if err != nil {
		t.Fatal(err)
	}
	store.checkExactlyOnce(t, tasks)
	// 20 -> 10+10 -> 5+5+5+5: three refusals (20, 10, 10), four accepted.
	if res.Stats.Splits != 3 || refused.Load() != 3 || res.Stats.Requests != 7 {
		t.Errorf("stats %+v, %d refused; want 3 splits, 3 refusals, 7 requests", res.Stats, refused.Load())
	}
	if res.Added != 20 || res.Existing != 0 || len(res.Failures) != 0 {
		t.Errorf("result %+v", res)
	}
}

func TestAddTasksSingleTaskTooLarge(t *testing.T) {
	f := newFakeBatch(t)
	store := newTaskStore()
	inner := storeHandler(f, store, nil)
	f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if len(body) >= 100_000 {
			writeBatchError(w, http.StatusRequestEntityTooLarge, CodeRequestBodyTooLarge, "too large")
			return
		}
		inner(w, r, body)
	})
	c, _ := f.client(Options{})
	tasks := makeTasks(3, 10)
	tasks[1].CommandLine = strings.Repeat("y", 150_000)
	res, err := c.AddTasks(context.Background(), "run-1", tasks, 1)
	var ae *AddTasksError
	if !errors.As(err, &ae) || len(ae.Failures) != 1 || ae.Failures[0].TaskID != "task-0001" || !HasCode(ae.Failures[0].Err, CodeRequestBodyTooLarge) {
		t.Fatalf("AddTasks = %v; want task-0001 failed as too large", err)
	}
	if res.Added != 2 {
		t.Errorf("Added = %d, want 2", res.Added)
	}
}

// TestAddTasksServerErrorItems: servererror items are resubmitted; those
// the service had in fact created come back TaskExists and count as
// added; every task is created exactly once.
func TestAddTasksServerErrorItems(t *testing.T) {
	for _, fault := range []itemFault{serverErrorSkipped, serverErrorApplied} {
		t.Run(fmt.Sprint(fault), func(t *testing.T) {
			f := newFakeBatch(t)
			store := newTaskStore()
			// On the first request, every third task fails.
			f.handle(storeHandler(f, store, func(n int, id string) itemFault {
				var i int
				fmt.Sscanf(id, "task-%d", &i)
				if n == 0 && i%3 == 0 {
					return fault
				}
				return addNormally
			}))
			c, w := f.client(Options{})
			tasks := makeTasks(30, 10)
			res, err := c.AddTasks(context.Background(), "run-1", tasks, 1)
			if err != nil {
				t.Fatal(err)
			}
			store.checkExactlyOnce(t, tasks)
			wantExisting := 0
			if fault == serverErrorApplied {
				wantExisting = 10
			}
			if res.Added != 30 || res.Existing != wantExisting || res.Stats.Resubmitted != 10 || res.Stats.Requests != 2 {
				t.Errorf("result %+v; want 30 added, %d existing, 10 resubmitted in 2 requests", res, wantExisting)
			}
			counts, _ := collectionSizes(t, f)
			if diff := cmp.Diff([]int{30, 10}, counts); diff != "" {
				t.Errorf("collections (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]time.Duration{time.Second}, w.get()); diff != "" {
				t.Errorf("waits before resubmitting (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAddTasksLostAnswer: the service applies a collection but the
// connection drops before the answer; the retried request finds every
// task there (TaskExists), which counts as added, once.
func TestAddTasksLostAnswer(t *testing.T) {
	f := newFakeBatch(t)
	store := newTaskStore()
	inner := storeHandler(f, store, nil)
	var n atomic.Int32
	f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if n.Add(1) == 1 {
			store.add(f, jobOf(r.URL.Path), body, nil)
			dropConnection(t, w)
			return
		}
		inner(w, r, body)
	})
	c, _ := f.client(Options{})
	tasks := makeTasks(100, 10)
	res, err := c.AddTasks(context.Background(), "run-1", tasks, 4)
	if err != nil {
		t.Fatal(err)
	}
	store.checkExactlyOnce(t, tasks)
	want := AddTasksResult{Added: 100, Existing: 100, Stats: AddTasksStats{Requests: 2, Retries: 1, BytesSent: res.Stats.BytesSent}}
	if diff := cmp.Diff(&want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

// TestAddTasksExistingTaskIsAFailure: TaskExists on a task's first
// sending means the id was taken before this call; it is reported, and
// the other tasks are added.
func TestAddTasksExistingTaskIsAFailure(t *testing.T) {
	f := newFakeBatch(t)
	store := newTaskStore()
	store.created["task-0002"] = 1
	var n atomic.Int32
	f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		res := store.add(f, jobOf(r.URL.Path), body, nil)
		if n.Add(1) == 1 {
			// And one task the service refuses outright.
			for i := range res.Value {
				if res.Value[i].TaskID == "task-0004" {
					res.Value[i] = BatchTaskCreateResult{Status: TaskAddClientError, TaskID: "task-0004", Error: &BatchError{Code: "InvalidPropertyValue", Message: &BatchErrorMessage{Value: "The value provided for one of the properties in the request body is invalid."}, Values: []BatchErrorDetail{{Key: "PropertyName", Value: "commandLine"}}}}
				}
			}
		}
		f.writeJSON(w, 200, "BatchCreateTaskCollectionResult", res)
	})
	c, _ := f.client(Options{})
	tasks := makeTasks(6, 10)
	res, err := c.AddTasks(context.Background(), "run-1", tasks, 2)
	var ae *AddTasksError
	if !errors.As(err, &ae) {
		t.Fatalf("AddTasks = %v, want an *AddTasksError", err)
	}
	if len(res.Failures) != 2 || res.Failures[0].TaskID != "task-0002" || res.Failures[1].TaskID != "task-0004" {
		t.Fatalf("failures %+v", res.Failures)
	}
	if !HasCode(res.Failures[0].Err, CodeTaskExists) || res.Failures[1].Err.Values["PropertyName"] != "commandLine" {
		t.Errorf("failure errors: %v; %v", res.Failures[0].Err, res.Failures[1].Err)
	}
	if res.Added != 4 || res.Existing != 0 || res.Stats.Resubmitted != 0 {
		t.Errorf("result %+v; want 4 added, nothing resubmitted", res)
	}
	if !strings.Contains(err.Error(), `2 of 6 tasks not added`) || !strings.Contains(err.Error(), `add task "task-0002" to job "run-1": TaskExists`) {
		t.Errorf("error text: %v", err)
	}
}

func TestAddTasksServerErrorExhausted(t *testing.T) {
	f := newFakeBatch(t)
	store := newTaskStore()
	f.handle(storeHandler(f, store, func(n int, id string) itemFault {
		if id == "task-0001" {
			return serverErrorSkipped
		}
		return addNormally
	}))
	c, w := f.client(Options{MaxRetries: 2})
	res, err := c.AddTasks(context.Background(), "run-1", makeTasks(3, 10), 1)
	var ae *AddTasksError
	if !errors.As(err, &ae) || len(res.Failures) != 1 || !HasCode(res.Failures[0].Err, "ServerBusy") {
		t.Fatalf("AddTasks = %v, %+v", err, res.Failures)
	}
	if res.Stats.Requests != 3 || res.Stats.Resubmitted != 2 || res.Added != 2 {
		t.Errorf("result %+v; want 3 requests, 2 resubmissions, 2 added", res)
	}
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second}, w.get()); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
}

// TestAddTasksMissingResult: a task the answer leaves out is resubmitted.
func TestAddTasksMissingResult(t *testing.T) {
	f := newFakeBatch(t)
	store := newTaskStore()
	var n atomic.Int32
	f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		res := store.add(f, jobOf(r.URL.Path), body, nil)
		if n.Add(1) == 1 {
			res.Value = res.Value[1:] // applied, but not reported
		}
		f.writeJSON(w, 200, "BatchCreateTaskCollectionResult", res)
	})
	c, _ := f.client(Options{})
	tasks := makeTasks(5, 10)
	res, err := c.AddTasks(context.Background(), "run-1", tasks, 1)
	if err != nil {
		t.Fatal(err)
	}
	store.checkExactlyOnce(t, tasks)
	if res.Added != 5 || res.Existing != 1 || res.Stats.Resubmitted != 1 {
		t.Errorf("result %+v", res)
	}
}

// TestAddTasksParallel: the server holds every request until four are in
// flight at once, so the test passes only if the client really keeps four
// going; it never sees more than the limit.
func TestAddTasksParallel(t *testing.T) {
	for _, parallel := range []int{4, 6} {
		t.Run(fmt.Sprint(parallel), func(t *testing.T) {
			f := newFakeBatch(t)
			store := newTaskStore()
			inner := storeHandler(f, store, nil)
			var arrived atomic.Int32
			allIn := make(chan struct{})
			var once sync.Once
			f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
				if arrived.Add(1) == int32(parallel) {
					once.Do(func() { close(allIn) })
				}
				select {
				case <-allIn:
				case <-time.After(10 * time.Second):
					t.Errorf("only %d requests arrived in flight; want %d", f.inflight.Load(), parallel)
					once.Do(func() { close(allIn) }) // fail once, not per request
				}
				inner(w, r, body)
			})
			c, _ := f.client(Options{})
			tasks := makeTasks(100*parallel*2, 10)
			res, err := c.AddTasks(context.Background(), "run-1", tasks, parallel)
			if err != nil {
				t.Fatal(err)
			}
			store.checkExactlyOnce(t, tasks)
			if got := f.maxInflight.Load(); got != int32(parallel) {
				t.Errorf("at most %d requests in flight, want exactly %d", got, parallel)
			}
			if res.Added != len(tasks) || res.Stats.Requests != 2*parallel {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestAddTasksStopsOnCallError(t *testing.T) {
	f := newFakeBatch(t)
	f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		writeBatchError(w, 404, "JobNotFound", "The specified job does not exist.")
	})
	c, _ := f.client(Options{})
	res, err := c.AddTasks(context.Background(), "gone", makeTasks(1000, 10), 1)
	if !IsNotFound(err) {
		t.Fatalf("AddTasks = %v, want not found", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests after the job was not found; want 1", n)
	}
	if res == nil || res.Added != 0 || len(res.Failures) != 0 {
		t.Errorf("result %+v", res)
	}
}

func TestAddTasksRejectsBadInput(t *testing.T) {
	f := newFakeBatch(t)
	c, _ := f.client(Options{})
	tasks := makeTasks(3, 10)
	tasks[2].ID = "TASK-0000"
	if _, err := c.AddTasks(context.Background(), "run-1", tasks, 2); err == nil || !strings.Contains(err.Error(), "case-insensitively") {
		t.Errorf("duplicate ids (by case): %v", err)
	}
	tasks[2].ID = ""
	if _, err := c.AddTasks(context.Background(), "run-1", tasks, 2); err == nil {
		t.Error("an empty id: no error")
	}
	res, err := c.AddTasks(context.Background(), "run-1", nil, 2)
	if err != nil || res.Added != 0 {
		t.Errorf("no tasks: %+v, %v", res, err)
	}
	if len(f.requests()) != 0 {
		t.Errorf("bad input was sent")
	}
}

func TestAddTasksCancelled(t *testing.T) {
	f := newFakeBatch(t)
	store := newTaskStore()
	ctx, cancel := context.WithCancel(context.Background())
	inner := storeHandler(f, store, nil)
	f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		cancel()
		inner(w, r, body)
	})
	c, _ := f.client(Options{})
	res, err := c.AddTasks(ctx, "run-1", makeTasks(500, 10), 1)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("AddTasks after cancel = %v", err)
	}
	if res.Added > 100 || len(f.requests()) > 1 {
		t.Errorf("kept going after cancel: %+v, %d requests", res, len(f.requests()))
	}
}
