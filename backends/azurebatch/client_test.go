package azurebatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"
)

// TestOperations calls every operation once against the fake and checks
// the method, path, query and headers it sent; the fake checks signature,
// common headers and bodies against the spec.
func TestOperations(t *testing.T) {
	f := newFakeBatch(t)
	now := time.Now().UTC()
	f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		path := r.URL.EscapedPath()
		switch {
		case r.Method == "POST" && (path == "/pools" || path == "/jobs" || strings.HasSuffix(path, "/tasks")):
			w.WriteHeader(http.StatusCreated)
		case r.Method == "GET" && path == "/pools/genome-pool":
			f.writeJSON(w, 200, "", BatchPool{ID: "genome-pool", State: PoolStateActive, AllocationState: AllocationStateSteady, VMSize: "Standard_D4s_v5", TaskSlotsPerNode: 4, CurrentLowPriorityNodes: 3, Identity: &BatchPoolIdentity{Type: PoolIdentityUserAssigned, UserAssignedIdentities: []BatchUserAssignedIdentity{{ResourceID: "/id", ClientID: "c", PrincipalID: "p"}}}})
		case r.Method == "HEAD" && path == "/pools/genome-pool":
			w.WriteHeader(http.StatusOK)
		case r.Method == "HEAD":
			w.WriteHeader(http.StatusNotFound) // HEAD answers carry no body
		case r.Method == "DELETE" && strings.Count(path, "/") == 2, strings.HasSuffix(path, "/resize"), strings.HasPrefix(path, "/jobs/") && strings.HasSuffix(path, "/terminate") && strings.Count(path, "/") == 3:
			w.WriteHeader(http.StatusAccepted)
		case r.Method == "GET" && path == "/jobs/run-1":
			f.writeJSON(w, 200, "BatchJob", sampleJob("run-1", now))
		case r.Method == "PATCH":
			w.WriteHeader(http.StatusOK)
		case r.Method == "POST" && strings.HasSuffix(path, "/addtaskcollection"):
			f.writeJSON(w, 200, "BatchCreateTaskCollectionResult", BatchCreateTaskCollectionResult{Value: []BatchTaskCreateResult{{Status: TaskAddSuccess, TaskID: "b"}, {Status: TaskAddSuccess, TaskID: "a"}}})
		case r.Method == "GET" && path == "/jobs/run-1/tasks/align-s1":
			f.writeJSON(w, 200, "BatchTask", sampleTask("align-s1", TaskStateCompleted, now))
		case r.Method == "POST" && strings.HasSuffix(path, "/terminate"):
			w.WriteHeader(http.StatusNoContent)
		case r.Method == "DELETE":
			w.WriteHeader(http.StatusOK)
		case path == "/jobs/run-1/taskcounts":
			f.writeJSON(w, 200, "BatchTaskCountsResult", BatchTaskCountsResult{TaskCounts: BatchTaskCounts{Active: 3, Running: 2, Completed: 5, Succeeded: 4, Failed: 1}, TaskSlotCounts: BatchTaskSlotCounts{Active: 3, Running: 2, Completed: 5, Succeeded: 4, Failed: 1}})
		case strings.Contains(path, "/files/"):
			io.WriteString(w, "hello\n")
		default:
			t.Errorf("unexpected %s %s", r.Method, path)
			w.WriteHeader(500)
		}
	})
	c, _ := f.client(Options{})
	ctx := context.Background()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	must("CreatePool", c.CreatePool(ctx, fullPool()))
	pool, err := c.GetPool(ctx, "genome-pool")
	must("GetPool", err)
	if pool.CurrentLowPriorityNodes != 3 || pool.TaskSlotsPerNode != 4 || pool.Identity.UserAssignedIdentities[0].ClientID != "c" {
		t.Errorf("GetPool = %+v", pool)
	}
	ok, err := c.PoolExists(ctx, "genome-pool")
	must("PoolExists", err)
	missing, err := c.PoolExists(ctx, "other-pool")
	must("PoolExists(missing)", err)
	if !ok || missing {
		t.Errorf("PoolExists = %v, %v; want true, false", ok, missing)
	}
	must("ResizePool", c.ResizePool(ctx, "genome-pool", fullResize()))
	must("DeletePool", c.DeletePool(ctx, "genome-pool"))
	must("CreateJob", c.CreateJob(ctx, fullJob()))
	job, err := c.GetJob(ctx, "run-1")
	must("GetJob", err)
	if job.State != JobStateActive || !job.UsesTaskDependencies || job.PoolInfo.PoolID != "p" {
		t.Errorf("GetJob = %+v", job)
	}
	must("PatchJob", c.PatchJob(ctx, "run-1", BatchJobUpdateOptions{OnAllTasksComplete: AllTasksCompleteTerminateJob}))
	must("TerminateJob", c.TerminateJob(ctx, "run-1", "UserTerminate"))
	must("TerminateJob(no reason)", c.TerminateJob(ctx, "run-1", ""))
	must("DeleteJob", c.DeleteJob(ctx, "run-1"))
	must("AddTask", c.AddTask(ctx, "run-1", fullTask("fetch-ref")))
	res, err := c.AddTaskCollection(ctx, "run-1", []BatchTaskCreateOptions{fullTask("a"), {ID: "b", CommandLine: "true"}})
	must("AddTaskCollection", err)
	if len(res.Value) != 2 || res.Value[0].TaskID != "b" {
		t.Errorf("AddTaskCollection = %+v", res)
	}
	task, err := c.GetTask(ctx, "run-1", "align-s1")
	must("GetTask", err)
	if task.ExecutionInfo.ExitCode == nil || *task.ExecutionInfo.ExitCode != 1 || task.NodeInfo.NodeID != "n" || task.ExecutionInfo.FailureInfo.Category != ErrorCategoryUser {
		t.Errorf("GetTask = %+v", task)
	}
	must("TerminateTask", c.TerminateTask(ctx, "run-1", "align-s1"))
	must("DeleteTask", c.DeleteTask(ctx, "run-1", "align-s1"))
	counts, err := c.GetTaskCounts(ctx, "run-1")
	must("GetTaskCounts", err)
	if counts.TaskCounts.Failed != 1 || counts.TaskSlotCounts.Running != 2 {
		t.Errorf("GetTaskCounts = %+v", counts)
	}
	rc, err := c.GetTaskFile(ctx, "run-1", "align-s1", "wd/out log.txt", 10, 99)
	must("GetTaskFile", err)
	data, _ := io.ReadAll(rc)
	rc.Close()
	if string(data) != "hello\n" {
		t.Errorf("GetTaskFile read %q", data)
	}
	rc, err = c.GetTaskFile(ctx, "run-1", "align-s1", "stdout.txt", 0, -1)
	must("GetTaskFile(whole)", err)
	rc.Close()
	rc, err = c.GetTaskFile(ctx, "run-1", "align-s1", "stderr.txt", 100, -1)
	must("GetTaskFile(tail)", err)
	rc.Close()

	type sent struct{ Method, Path, Extra string }
	var got []sent
	ids := map[string]bool{}
	for _, r := range f.requests() {
		extra := ""
		if v := r.Header.Get("ocp-range"); v != "" {
			extra = "ocp-range: " + v
		}
		if strings.Contains(r.Path, "/files/") && r.Header.Get("Accept") != "application/octet-stream, application/json" {
			t.Errorf("file download Accept = %q", r.Header.Get("Accept"))
		}
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/terminate") && strings.Count(r.Path, "/") == 3 {
			extra = string(r.Body)
		}
		got = append(got, sent{r.Method, r.Path, extra})
		if ids[r.ClientRequestID] {
			t.Errorf("client-request-id %s used for two calls", r.ClientRequestID)
		}
		ids[r.ClientRequestID] = true
		if ua := r.Header.Get("User-Agent"); ua != "bmc" {
			t.Errorf("User-Agent = %q", ua)
		}
	}
	want := []sent{
		{"POST", "/pools", ""},
		{"GET", "/pools/genome-pool", ""},
		{"HEAD", "/pools/genome-pool", ""},
		{"HEAD", "/pools/other-pool", ""},
		{"POST", "/pools/genome-pool/resize", ""},
		{"DELETE", "/pools/genome-pool", ""},
		{"POST", "/jobs", ""},
		{"GET", "/jobs/run-1", ""},
		{"PATCH", "/jobs/run-1", ""},
		{"POST", "/jobs/run-1/terminate", `{"terminateReason":"UserTerminate"}`},
		{"POST", "/jobs/run-1/terminate", ""},
		{"DELETE", "/jobs/run-1", ""},
		{"POST", "/jobs/run-1/tasks", ""},
		{"POST", "/jobs/run-1/addtaskcollection", ""},
		{"GET", "/jobs/run-1/tasks/align-s1", ""},
		{"POST", "/jobs/run-1/tasks/align-s1/terminate", ""},
		{"DELETE", "/jobs/run-1/tasks/align-s1", ""},
		{"GET", "/jobs/run-1/taskcounts", ""},
		{"GET", "/jobs/run-1/tasks/align-s1/files/wd%2Fout%20log.txt", "ocp-range: bytes=10-99"},
		{"GET", "/jobs/run-1/tasks/align-s1/files/stdout.txt", ""},
		{"GET", "/jobs/run-1/tasks/align-s1/files/stderr.txt", "ocp-range: bytes=100-"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	// Empty ids never reach the wire.
	n := len(f.requests())
	for name, err := range map[string]error{
		"GetJob":   func() error { _, err := c.GetJob(ctx, ""); return err }(),
		"GetTask":  func() error { _, err := c.GetTask(ctx, "run-1", ""); return err }(),
		"AddTask":  c.AddTask(ctx, "run-1", BatchTaskCreateOptions{CommandLine: "x"}),
		"range":    func() error { _, err := c.GetTaskFile(ctx, "j", "t", "f", 5, 2); return err }(),
		"too many": func() error { _, err := c.AddTaskCollection(ctx, "j", make([]BatchTaskCreateOptions, 101)); return err }(),
	} {
		if err == nil {
			t.Errorf("%s with an invalid argument: no error", name)
		}
	}
	if len(f.requests()) != n {
		t.Errorf("invalid arguments were sent")
	}
}

// sequence answers the i-th request (from 0) with steps[i], the last step
// repeating.
func sequence(steps ...func(w http.ResponseWriter, r *http.Request, body []byte)) func(w http.ResponseWriter, r *http.Request, body []byte) {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		i := int(n.Add(1)) - 1
		steps[min(i, len(steps)-1)](w, r, body)
	}
}

func status(code int, header ...string) func(w http.ResponseWriter, r *http.Request, body []byte) {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if code >= 400 {
			writeBatchError(w, code, http.StatusText(code), "canned error")
			return
		}
		w.WriteHeader(code)
	}
}

func TestRetries(t *testing.T) {
	date := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name       string
		opt        Options
		steps      []func(http.ResponseWriter, *http.Request, []byte)
		wantErr    string // "" for success
		wantWaits  []time.Duration
		waitWithin [2]time.Duration // for an HTTP-date Retry-After: bounds
		attempts   int
	}{
		{
			name:      "429 honours Retry-After seconds",
			steps:     []func(http.ResponseWriter, *http.Request, []byte){status(429, "Retry-After", "7"), status(429, "Retry-After", "3"), status(201)},
			wantWaits: []time.Duration{7 * time.Second, 3 * time.Second},
			attempts:  3,
		},
		{
			name:       "503 honours Retry-After date",
			steps:      []func(http.ResponseWriter, *http.Request, []byte){status(503, "Retry-After", date), status(201)},
			waitWithin: [2]time.Duration{20 * time.Second, 31 * time.Second},
			attempts:   2,
		},
		{
			name:      "500 backs off exponentially, capped",
			opt:       Options{RetryWaitMin: time.Second, RetryWaitMax: 3 * time.Second},
			steps:     []func(http.ResponseWriter, *http.Request, []byte){status(500), status(502), status(504), status(500), status(201)},
			wantWaits: []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second},
			attempts:  5,
		},
		{
			name:      "a 500 with Retry-After backs off instead",
			steps:     []func(http.ResponseWriter, *http.Request, []byte){status(500, "Retry-After", "100"), status(201)},
			wantWaits: []time.Duration{time.Second},
			attempts:  2,
		},
		{
			name: "dropped connection retried",
			steps: []func(http.ResponseWriter, *http.Request, []byte){
				func(w http.ResponseWriter, r *http.Request, body []byte) { dropConnection(t, w) },
				status(201),
			},
			wantWaits: []time.Duration{time.Second},
			attempts:  2,
		},
		{
			name:      "retries are bounded",
			opt:       Options{MaxRetries: 3},
			steps:     []func(http.ResponseWriter, *http.Request, []byte){status(500)},
			wantErr:   "500 Internal Server Error",
			wantWaits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
			attempts:  4,
		},
		{
			name:     "no retries when disabled",
			opt:      Options{MaxRetries: -1},
			steps:    []func(http.ResponseWriter, *http.Request, []byte){status(503)},
			wantErr:  "503 Service Unavailable",
			attempts: 1,
		},
		{
			name:     "a Retry-After past the call timeout ends the call",
			opt:      Options{CallTimeout: time.Minute},
			steps:    []func(http.ResponseWriter, *http.Request, []byte){status(429, "Retry-After", "3600"), status(201)},
			wantErr:  "not retried: the next attempt was due in 1h0m0s, past the call's deadline",
			attempts: 1,
		},
		{name: "400 is not retried", steps: []func(http.ResponseWriter, *http.Request, []byte){status(400), status(201)}, wantErr: "400 Bad Request", attempts: 1},
		{name: "403 is not retried", steps: []func(http.ResponseWriter, *http.Request, []byte){status(403), status(201)}, wantErr: "403 Forbidden", attempts: 1},
		{name: "404 is not retried", steps: []func(http.ResponseWriter, *http.Request, []byte){status(404), status(201)}, wantErr: "404 Not Found", attempts: 1},
		{name: "409 is not retried", steps: []func(http.ResponseWriter, *http.Request, []byte){status(409), status(201)}, wantErr: "409 Conflict", attempts: 1},
		{name: "501 is not retried", steps: []func(http.ResponseWriter, *http.Request, []byte){status(501), status(201)}, wantErr: "501 Not Implemented", attempts: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeBatch(t)
			f.handle(sequence(c.steps...))
			cl, w := f.client(c.opt)
			err := cl.AddTask(context.Background(), "j", BatchTaskCreateOptions{ID: "t", CommandLine: "true"})
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("AddTask: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("AddTask = %v, want an error containing %q", err, c.wantErr)
			}
			reqs := f.requests()
			if len(reqs) != c.attempts {
				t.Errorf("%d attempts, want %d", len(reqs), c.attempts)
			}
			// All attempts of one call share one client-request-id, and
			// an error names it.
			for _, r := range reqs {
				if r.ClientRequestID != reqs[0].ClientRequestID {
					t.Errorf("attempts used client-request-ids %s and %s", reqs[0].ClientRequestID, r.ClientRequestID)
				}
				if !bytes.Equal(r.Body, reqs[0].Body) {
					t.Errorf("a retry sent another body")
				}
			}
			if err != nil && !strings.Contains(err.Error(), "client-request-id "+reqs[0].ClientRequestID) {
				t.Errorf("the error does not name the client-request-id: %v", err)
			}
			got := w.get()
			if c.waitWithin[1] > 0 {
				if len(got) != 1 || got[0] < c.waitWithin[0] || got[0] > c.waitWithin[1] {
					t.Errorf("waits = %v, want one within %v", got, c.waitWithin)
				}
			} else if diff := cmp.Diff(c.wantWaits, got); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRealWaits: without the test hook the client really waits (briefly
// here), and a cancelled context ends the wait.
func TestRealWaits(t *testing.T) {
	f := newFakeBatch(t)
	f.handle(sequence(status(500), status(201)))
	c, _ := f.client(Options{RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	c.wait = func(d time.Duration) time.Duration { return d }
	if err := c.DeleteJob(context.Background(), "j"); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}

	f.handle(status(503, "Retry-After", "60"))
	ctx, cancel := context.WithCancel(context.Background())
	c.wait = func(d time.Duration) time.Duration { cancel(); return d }
	err := c.DeleteJob(ctx, "j")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteJob with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestCallTimeout(t *testing.T) {
	f := newFakeBatch(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c, _ := f.client(Options{CallTimeout: 50 * time.Millisecond})
	_, err := c.GetJob(context.Background(), "j")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "call timeout") {
		t.Errorf("GetJob against a hung server = %v, want a call timeout", err)
	}
}

// TestCreateFoundDoneOnRetry: a create whose first attempt was applied but
// whose answer was lost comes back 409 on the retry, which is success; the
// same 409 on a first attempt is an error. Likewise 404 for deletes.
func TestCreateFoundDoneOnRetry(t *testing.T) {
	lost := func(code int, batchCode string) func(w http.ResponseWriter, r *http.Request, body []byte) {
		return sequence(
			func(w http.ResponseWriter, r *http.Request, body []byte) { dropConnection(t, w) },
			func(w http.ResponseWriter, r *http.Request, body []byte) {
				writeBatchError(w, code, batchCode, "already done")
			})
	}
	ctx := context.Background()
	cases := []struct {
		name string
		h    func(w http.ResponseWriter, r *http.Request, body []byte)
		call func(c *Client) error
		ok   bool
	}{
		{"job exists on retry", lost(409, CodeJobExists), func(c *Client) error { return c.CreateJob(ctx, fullJob()) }, true},
		{"pool exists on retry", lost(409, CodePoolExists), func(c *Client) error { return c.CreatePool(ctx, fullPool()) }, true},
		{"task exists on retry", lost(409, CodeTaskExists), func(c *Client) error { return c.AddTask(ctx, "j", fullTask("t")) }, true},
		{"job gone on retry of delete", lost(404, "JobNotFound"), func(c *Client) error { return c.DeleteJob(ctx, "j") }, true},
		{"other conflict on retry", lost(409, "PoolBeingDeleted"), func(c *Client) error { return c.CreateJob(ctx, fullJob()) }, false},
		{"job exists at once", status(409), func(c *Client) error {
			return c.CreateJob(ctx, fullJob())
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeBatch(t)
			f.handle(c.h)
			cl, _ := f.client(Options{})
			err := c.call(cl)
			if c.ok != (err == nil) {
				t.Errorf("err = %v, want success %v", err, c.ok)
			}
		})
	}
	f := newFakeBatch(t)
	f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		writeBatchError(w, 409, CodeJobExists, "The specified job already exists.")
	})
	cl, _ := f.client(Options{})
	if err := cl.CreateJob(ctx, fullJob()); !IsConflict(err, CodeJobExists) {
		t.Errorf("CreateJob of an existing job = %v, want a JobExists conflict", err)
	}
}

func TestListTasksPaging(t *testing.T) {
	f := newFakeBatch(t)
	now := time.Now().UTC()
	var pages [][]BatchTask
	for p := range 3 {
		var page []BatchTask
		for i := range 3 {
			page = append(page, sampleTask(fmt.Sprintf("t%d", p*3+i), TaskStateActive, now))
		}
		pages = append(pages, page)
	}
	f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		q := r.URL.Query()
		switch q.Get("$skiptoken") {
		case "":
			f.writeJSON(w, 200, "BatchTaskListResult", BatchTaskListResult{Value: pages[0],
				NextLink: f.srv.URL + "/jobs/run-1/tasks?api-version=" + APIVersion + "&$skiptoken=p2&maxresults=3"})
		case "p2":
			// A link without api-version: the client must add it.
			f.writeJSON(w, 200, "BatchTaskListResult", BatchTaskListResult{Value: pages[1],
				NextLink: f.srv.URL + "/jobs/run-1/tasks?%24skiptoken=p3&%24filter=state%20eq%20%27active%27"})
		case "p3":
			f.writeJSON(w, 200, "BatchTaskListResult", BatchTaskListResult{Value: pages[2]})
		}
	})
	c, _ := f.client(Options{})
	var got []string
	for task, err := range c.ListTasks(context.Background(), "run-1", ListOptions{Filter: "state eq 'active'", Select: "id,state,executionInfo", MaxResults: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, task.ID)
	}
	if diff := cmp.Diff([]string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"}, got); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	first := reqs[0].Query
	if first["$filter"][0] != "state eq 'active'" || first["$select"][0] != "id,state,executionInfo" || first["maxresults"][0] != "3" {
		t.Errorf("first page query = %v", first)
	}
	if reqs[2].Query["$filter"][0] != "state eq 'active'" {
		t.Errorf("the nextLink was not followed as given: %v", reqs[2].Query)
	}

	// Stopping early makes no further request.
	n := len(f.requests())
	for range c.ListTasks(context.Background(), "run-1", ListOptions{}) {
		break
	}
	if len(f.requests()) != n+1 {
		t.Errorf("breaking out of the listing made %d requests, want 1", len(f.requests())-n)
	}
}

func TestListTasksRefusesForeignNextLink(t *testing.T) {
	f := newFakeBatch(t)
	f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		f.writeJSON(w, 200, "BatchTaskListResult", BatchTaskListResult{Value: []BatchTask{sampleTask("a", TaskStateActive, time.Now().UTC())}, NextLink: "https://elsewhere.example/jobs/j/tasks?$skiptoken=x"})
	})
	c, _ := f.client(Options{})
	var ids []string
	var lastErr error
	for task, err := range c.ListTasks(context.Background(), "j", ListOptions{}) {
		if err != nil {
			lastErr = err
			break
		}
		ids = append(ids, task.ID)
	}
	if len(ids) != 1 || lastErr == nil || !strings.Contains(lastErr.Error(), "elsewhere.example") {
		t.Errorf("ids %v, err %v; want the first page, then an error naming the foreign host", ids, lastErr)
	}
	if len(f.requests()) != 1 {
		t.Errorf("%d requests; the foreign link must not be requested", len(f.requests()))
	}
}

func TestListTasksError(t *testing.T) {
	f := newFakeBatch(t)
	f.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		writeBatchError(w, 404, "JobNotFound", "The specified job does not exist.")
	})
	c, _ := f.client(Options{})
	n := 0
	for task, err := range c.ListTasks(context.Background(), "gone", ListOptions{}) {
		n++
		if !IsNotFound(err) || task.ID != "" {
			t.Errorf("yielded %+v, %v; want a not-found error", task, err)
		}
	}
	if n != 1 {
		t.Errorf("yielded %d times, want once", n)
	}
}

// fakeToken is an azcore.TokenCredential that counts its calls and
// records the scopes asked for.
type fakeToken struct {
	mu     sync.Mutex
	calls  int
	scopes [][]string
	token  string
	expiry time.Time
}

func (f *fakeToken) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.scopes = append(f.scopes, opts.Scopes)
	return azcore.AccessToken{Token: f.token, ExpiresOn: f.expiry}, nil
}

func TestBearerAuth(t *testing.T) {
	f := newFakeBatch(t)
	f.bearer = "eyJ0eXAiOiJKV1QifQ.test-token.sig"
	f.handle(status(202))
	cred := &fakeToken{token: f.bearer, expiry: time.Now().Add(time.Hour)}
	c, _ := f.clientWith(TokenAuth(cred), Options{})
	for range 3 {
		if err := c.DeleteJob(context.Background(), "j"); err != nil {
			t.Fatal(err)
		}
	}
	if cred.calls != 1 {
		t.Errorf("GetToken called %d times for 3 calls; want the token cached", cred.calls)
	}
	if diff := cmp.Diff([][]string{{"https://batch.core.windows.net//.default"}}, cred.scopes); diff != "" {
		t.Errorf("scopes (-want +got):\n%s", diff)
	}
	for _, r := range f.requests() {
		if strings.HasPrefix(r.Header.Get("Authorization"), "SharedKey") {
			t.Error("a token client signed with Shared Key")
		}
	}

	// A token about to expire is renewed.
	cred.mu.Lock()
	cred.expiry = time.Now().Add(time.Minute)
	cred.mu.Unlock()
	c2, _ := f.clientWith(TokenAuth(cred), Options{})
	for range 2 {
		if err := c2.DeleteJob(context.Background(), "j"); err != nil {
			t.Fatal(err)
		}
	}
	if cred.calls != 3 {
		t.Errorf("GetToken called %d times in all; a token within 5 minutes of expiry must be renewed on each call", cred.calls)
	}
}

type failingToken struct{ calls atomic.Int32 }

func (f *failingToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.calls.Add(1)
	return azcore.AccessToken{}, errors.New("no credential: client_secret=hunter2 rejected")
}

func TestTokenFailureNotRetried(t *testing.T) {
	f := newFakeBatch(t)
	f.handle(status(200))
	cred := &failingToken{}
	c, _ := f.clientWith(TokenAuth(cred), Options{})
	_, err := c.GetJob(context.Background(), "j")
	if err == nil || !strings.Contains(err.Error(), "getting a token") {
		t.Fatalf("GetJob = %v, want a token error", err)
	}
	if cred.calls.Load() != 1 || len(f.requests()) != 0 {
		t.Errorf("token tried %d times, %d requests sent; want 1 and 0", cred.calls.Load(), len(f.requests()))
	}
}

func TestNew(t *testing.T) {
	cred := testCred(t)
	cases := []struct {
		endpoint, want, err string
	}{
		{"https://acct.westeurope.batch.azure.com", "https://acct.westeurope.batch.azure.com", ""},
		{"https://acct.westeurope.batch.azure.com/", "https://acct.westeurope.batch.azure.com", ""},
		{"acct.westeurope.batch.azure.com", "https://acct.westeurope.batch.azure.com", ""},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", ""},
		{"http://localhost:8080", "http://localhost:8080", ""},
		{"http://[::1]:8080", "http://[::1]:8080", ""},
		{"http://acct.westeurope.batch.azure.com", "", "loopback"},
		{"https://acct.westeurope.batch.azure.com/jobs", "", "scheme and host only"},
		{"https://acct.westeurope.batch.azure.com?sig=secret", "", "scheme and host only"},
		{"ftp://acct", "", "not supported"},
		{"", "", "empty"},
	}
	for _, c := range cases {
		cl, err := New(c.endpoint, cred, Options{})
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("New(%q) = %v, want an error containing %q", c.endpoint, err, c.err)
			} else if strings.Contains(err.Error(), "secret") {
				t.Errorf("New(%q): the error quotes the query: %v", c.endpoint, err)
			}
		case err != nil:
			t.Errorf("New(%q): %v", c.endpoint, err)
		case cl.endpoint != c.want:
			t.Errorf("New(%q).endpoint = %q, want %q", c.endpoint, cl.endpoint, c.want)
		}
	}
	if _, err := New("https://a.b.batch.azure.com", nil, Options{}); err == nil {
		t.Error("New without credentials: no error")
	}
	cl, _ := New("https://a.b.batch.azure.com", cred, Options{})
	if cl.opt.MaxRetries != DefaultMaxRetries || cl.opt.CallTimeout != DefaultCallTimeout || cl.opt.RetryWaitMin != DefaultRetryWaitMin || cl.opt.RetryWaitMax != DefaultRetryWaitMax {
		t.Errorf("defaults not applied: %+v", cl.opt)
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv("AZURE_BATCH_ENDPOINT", "https://acct.westeurope.batch.azure.com")
	t.Setenv("AZURE_BATCH_ACCOUNT", testAccount)
	t.Setenv("AZURE_BATCH_ACCESS_KEY", testKey)
	c, err := FromEnv(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sk, ok := c.auth.(*SharedKeyCredential); !ok || sk.Account() != testAccount {
		t.Errorf("auth = %v, want Shared Key for %s", c.auth, testAccount)
	}

	t.Setenv("AZURE_BATCH_ACCESS_KEY", "")
	c, err = FromEnv(Options{})
	if err != nil {
		t.Fatalf("FromEnv without a key: %v", err)
	}
	if _, ok := c.auth.(*tokenAuth); !ok {
		t.Errorf("auth = %T, want a token credential", c.auth)
	}

	t.Setenv("AZURE_BATCH_ACCOUNT", "")
	t.Setenv("AZURE_BATCH_ACCESS_KEY", testKey)
	if _, err := FromEnv(Options{}); err == nil || !strings.Contains(err.Error(), "AZURE_BATCH_ACCOUNT") || strings.Contains(err.Error(), testKey) {
		t.Errorf("FromEnv with a key but no account = %v", err)
	}
	t.Setenv("AZURE_BATCH_ACCOUNT", testAccount)
	t.Setenv("AZURE_BATCH_ACCESS_KEY", "not base64 "+testKey)
	if _, err := FromEnv(Options{}); err == nil || strings.Contains(err.Error(), testKey) {
		t.Errorf("FromEnv with a bad key = %v; want an error not quoting it", err)
	}
	t.Setenv("AZURE_BATCH_ENDPOINT", "")
	if _, err := FromEnv(Options{}); err == nil || !strings.Contains(err.Error(), "AZURE_BATCH_ENDPOINT") {
		t.Errorf("FromEnv without an endpoint = %v", err)
	}
}

// TestNoSecretsInErrorsOrLogs: whatever the server says, and however a
// call fails, no error text or log line holds the key, a token or a SAS
// signature.
func TestNoSecretsInErrorsOrLogs(t *testing.T) {
	f := newFakeBatch(t)
	sas := "https://acct.blob.core.windows.net/out?sv=2024-05-04&sp=rw&sig=c2VjcmV0LXNhcy1zaWduYXR1cmU%3D"
	f.handle(sequence(
		status(500),
		func(w http.ResponseWriter, r *http.Request, body []byte) {
			// Echo the request's Authorization, and more, as a careless
			// proxy might.
			msg := "denied: " + r.Header.Get("Authorization") + " key=" + testKey + " container " + sas
			b, _ := json.Marshal(BatchError{Code: "AuthenticationFailed", Message: &BatchErrorMessage{Value: msg},
				Values: []BatchErrorDetail{{Key: "AuthenticationErrorDetail", Value: msg}}})
			w.WriteHeader(403)
			w.Write(b)
		}))
	var logs bytes.Buffer
	c, _ := f.client(Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	task := fullTask("t")
	task.OutputFiles[0].Destination.Container.ContainerURL = sas
	err := c.AddTask(context.Background(), "j", task)
	if err == nil {
		t.Fatal("no error")
	}
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 403 {
		t.Fatalf("err = %#v", err)
	}
	sig := strings.TrimPrefix(f.requests()[1].Header.Get("Authorization"), "SharedKey bmctest:")
	text := err.Error() + " " + e.Message + " " + fmt.Sprint(e.Values) + " " + logs.String()
	for _, secret := range []string{testKey, sig, "c2VjcmV0LXNhcy1zaWduYXR1cmU"} {
		if strings.Contains(text, secret) {
			t.Errorf("%q shows up in:\n%s", secret, text)
		}
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("the retry was not logged:\n%s", logs.String())
	}

	// A transport failure names the operation, not the URL's query.
	f.srv.Close()
	_, err = c.GetJob(context.Background(), "j")
	if err == nil || !strings.Contains(err.Error(), `get job "j"`) || strings.Contains(err.Error(), "api-version") {
		t.Errorf("GetJob against a closed server = %v", err)
	}
}

// TestSignedPerAttempt: each attempt is signed afresh (the fake verifies
// every one), and signing does not modify the caller's request headers
// between attempts.
func TestSignedPerAttempt(t *testing.T) {
	f := newFakeBatch(t)
	f.handle(sequence(status(503, "Retry-After", "0"), status(500), status(200)))
	c, _ := f.client(Options{})
	// A clock a minute further on at each reading, so that each attempt's
	// date differs.
	base := time.Now()
	var tick atomic.Int64
	c.now = func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Minute) }
	if err := c.PatchJob(context.Background(), "j", fullJobUpdate()); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d attempts, want 3", len(reqs))
	}
	dates := map[string]bool{}
	for _, r := range reqs {
		dates[r.Header.Get("ocp-date")] = true
		if len(r.Header.Values("Authorization")) != 1 || len(r.Header.Values("ocp-date")) != 1 {
			t.Errorf("attempt headers: Authorization %q, ocp-date %q", r.Header.Values("Authorization"), r.Header.Values("ocp-date"))
		}
		if r.Header.Get("Content-Length") != reqs[0].Header.Get("Content-Length") || !bytes.Equal(r.Body, reqs[0].Body) {
			t.Errorf("a retry sent another body")
		}
	}
	if len(dates) != 3 {
		t.Errorf("ocp-dates %v; want a fresh one per attempt", dates)
	}
}
