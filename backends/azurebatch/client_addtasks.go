package azurebatch

// Adding many tasks: the add-collection operation takes at most 100 tasks
// and a body under 1 MB, answers 200 even when some tasks failed, and may
// have applied a request whose answer was lost. AddTasks turns that into
// "every task added exactly once, or told why not".

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// maxCollectionBody is the size an add-collection body stays below. The
// service refuses a body of "1 MB" or more; reading that as 10^6 bytes
// keeps below it whichever reading the service applies. Should it still
// refuse one (RequestBodyTooLarge), the collection is halved.
const maxCollectionBody = 1_000_000

// AddTasksStats is what adding tasks cost.
type AddTasksStats struct {
	// Requests counts HTTP requests sent, repeated attempts included.
	Requests int
	// BytesSent counts request body bytes, repeated attempts included.
	BytesSent int64
	// Retries counts repeated attempts of a request after a throttle, a
	// 5xx or a connection error.
	Retries int
	// Resubmitted counts tasks sent again in a new request after the
	// service answered servererror for them (or left them out).
	Resubmitted int
	// Splits counts collections halved after RequestBodyTooLarge.
	Splits int
}

// AddTasksResult is the outcome of AddTasks.
type AddTasksResult struct {
	// Added counts the tasks now in the job because of this call: created,
	// or found created by an earlier attempt of it (TaskExists on a
	// retry).
	Added int
	// Existing counts, of Added, the tasks a retry found already there.
	Existing int
	// Failures lists the tasks not added, in input order.
	Failures []TaskFailure
	Stats    AddTasksStats
}

// TaskFailure is a task the service refused, or kept failing to add.
type TaskFailure struct {
	TaskID string
	Err    *Error
}

// AddTasksError reports the tasks AddTasks could not add, when the calls
// themselves went through.
type AddTasksError struct {
	JobID    string
	Total    int
	Failures []TaskFailure
}

func (e *AddTasksError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "azurebatch: add tasks to job %q: %d of %d tasks not added", e.JobID, len(e.Failures), e.Total)
	for i, f := range e.Failures {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Failures)-i)
			break
		}
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(strings.TrimPrefix(f.Err.Error(), "azurebatch: "))
	}
	return b.String()
}

// AddTasks adds tasks to a job with the add-collection operation, keeping
// up to parallel requests in flight:
//
//   - tasks go in collections of at most 100 whose serialized body stays
//     under 1 MB, in input order; a collection the service still finds
//     too large (RequestBodyTooLarge) is halved and sent again;
//   - tasks the service answers servererror for, or leaves out of its
//     answer, are sent again in a new request after a backoff, up to the
//     client's MaxRetries times;
//   - a task that comes back clienterror TaskExists after it was sent
//     before (a retried request, or a resubmission) was created by that
//     earlier request and counts as added; on its first sending,
//     TaskExists is a real failure: the id was taken already;
//   - any other clienterror is a failure of that task alone.
//
// Task ids must be unique, compared case-insensitively as Batch does.
//
// The error is an *AddTasksError when every request went through but some
// tasks were not added (result.Failures lists them), or the first call
// error that stopped the work: then requests still in flight are
// cancelled, tasks not yet sent are neither added nor in Failures, and a
// task whose request failed may or may not exist. The result is never nil.
func (c *Client) AddTasks(ctx context.Context, jobID string, tasks []BatchTaskCreateOptions, parallel int) (*AddTasksResult, error) {
	res := &AddTasksResult{}
	if _, err := seg("job", jobID); err != nil {
		return res, err
	}
	a := &adder{
		c: c, jobID: jobID, tasks: tasks,
		enc:       make([][]byte, len(tasks)),
		submitted: make([]bool, len(tasks)),
		failed:    map[int]*Error{},
	}
	seen := make(map[string]int, len(tasks))
	for i, t := range tasks {
		if _, err := seg("task", t.ID); err != nil {
			return res, fmt.Errorf("azurebatch: add tasks to job %q: task %d: %w", jobID, i, err)
		}
		k := strings.ToLower(t.ID)
		if j, dup := seen[k]; dup {
			return res, fmt.Errorf("azurebatch: add tasks to job %q: tasks %d and %d have the same id %q (Batch compares ids case-insensitively)", jobID, j, i, t.ID)
		}
		seen[k] = i
		b, err := marshal(t)
		if err != nil {
			return res, fmt.Errorf("azurebatch: add tasks to job %q: encoding task %q: %w", jobID, t.ID, err)
		}
		a.enc[i] = b
	}

	chunks := a.plan()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		work     = make(chan []int)
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range min(max(parallel, 1), len(chunks)) {
		wg.Go(func() {
			for idx := range work {
				if ctx.Err() != nil {
					continue
				}
				if err := a.add(ctx, idx); err != nil {
					errOnce.Do(func() {
						firstErr = err
						cancel(err)
					})
				}
			}
		})
	}
feed:
	for _, idx := range chunks {
		select {
		case work <- idx:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()

	res.Added, res.Existing, res.Stats = a.added, a.existing, a.stats
	for _, i := range slices.Sorted(maps.Keys(a.failed)) {
		res.Failures = append(res.Failures, TaskFailure{TaskID: tasks[i].ID, Err: a.failed[i]})
	}
	switch {
	case firstErr != nil:
		return res, firstErr
	case ctx.Err() != nil:
		return res, context.Cause(ctx)
	case len(res.Failures) > 0:
		return res, &AddTasksError{JobID: jobID, Total: len(tasks), Failures: res.Failures}
	}
	return res, nil
}

// adder is the state of one AddTasks. Each task index belongs to one
// worker at a time, so enc and submitted need no lock; the totals do.
type adder struct {
	c     *Client
	jobID string
	tasks []BatchTaskCreateOptions
	enc   [][]byte
	// submitted[i]: task i was in a request the service may have applied.
	submitted []bool

	mu       sync.Mutex
	added    int
	existing int
	failed   map[int]*Error
	stats    AddTasksStats
}

// collectionOverhead is the size of `{"value":[]}`.
const collectionOverhead = len(`{"value":[]}`)

// plan cuts the tasks, in order, into collections of at most 100 whose
// body stays under the size limit. A task too large on its own goes alone;
// the service will judge it.
func (a *adder) plan() [][]int {
	var (
		out  [][]int
		cur  []int
		size = collectionOverhead
	)
	for i := range a.enc {
		n := len(a.enc[i])
		if len(cur) > 0 {
			n++ // the comma
		}
		if len(cur) > 0 && (len(cur) == MaxTasksPerCollection || size+n >= a.c.maxCollectionBody) {
			out = append(out, cur)
			cur, size, n = nil, collectionOverhead, len(a.enc[i])
		}
		cur = append(cur, i)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// body is the BatchTaskGroup of the given tasks, from their encodings.
func (a *adder) body(idx []int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"value":[`)
	for k, i := range idx {
		if k > 0 {
			b.WriteByte(',')
		}
		b.Write(a.enc[i])
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// add adds one collection: it resubmits servererror items and halves a
// collection that is too large. It returns only errors that should stop
// the whole AddTasks.
func (a *adder) add(ctx context.Context, idx []int) error {
	for round := 0; ; round++ {
		res, info, err := a.c.addCollection(ctx, a.jobID, a.body(idx))
		a.count(info)
		if err != nil {
			if !HasCode(err, CodeRequestBodyTooLarge) {
				return err
			}
			// Refused whole: none of it was applied.
			if len(idx) == 1 {
				e, _ := asError(err)
				a.fail(idx[0], e)
				return nil
			}
			a.mu.Lock()
			a.stats.Splits++
			a.mu.Unlock()
			h := len(idx) / 2
			if err := a.add(ctx, idx[:h]); err != nil {
				return err
			}
			return a.add(ctx, idx[h:])
		}

		retried := info.attempts > 1
		byID := make(map[string]int, len(idx))
		for _, i := range idx {
			byID[strings.ToLower(a.tasks[i].ID)] = i
		}
		answered := make(map[int]bool, len(idx))
		lastErr := map[int]*Error{}
		var again []int
		for _, r := range res.Value {
			i, ok := byID[strings.ToLower(r.TaskID)]
			if !ok || answered[i] {
				a.c.log.Warn("add task collection: a result for a task not in the request", "job", a.jobID, "task", r.TaskID)
				continue
			}
			answered[i] = true
			op := fmt.Sprintf("add task %q to job %q", a.tasks[i].ID, a.jobID)
			switch {
			case r.Status == TaskAddSuccess:
				a.done(false)
			case r.Status == TaskAddClientError && r.Error != nil && strings.EqualFold(r.Error.Code, CodeTaskExists) && (retried || a.submitted[i]):
				a.done(true)
			case r.Status == TaskAddClientError:
				a.fail(i, taskError(op, r.Error, info.clientRequestID, a.c.redact))
			default: // servererror, or a status this client does not know
				again = append(again, i)
				lastErr[i] = taskError(op, r.Error, info.clientRequestID, a.c.redact)
			}
		}
		for _, i := range idx {
			if !answered[i] {
				again = append(again, i)
				lastErr[i] = &Error{
					Op:              fmt.Sprintf("add task %q to job %q", a.tasks[i].ID, a.jobID),
					Message:         "the service's answer had no result for this task",
					ClientRequestID: info.clientRequestID,
				}
			}
			a.submitted[i] = true
		}
		if len(again) == 0 {
			return nil
		}
		slices.Sort(again)
		if round >= a.c.opt.MaxRetries {
			for _, i := range again {
				a.fail(i, lastErr[i])
			}
			return nil
		}
		a.mu.Lock()
		a.stats.Resubmitted += len(again)
		a.mu.Unlock()
		wait := retryablehttp.DefaultBackoff(a.c.opt.RetryWaitMin, a.c.opt.RetryWaitMax, round, nil)
		a.c.log.Warn("add task collection: resubmitting tasks the service failed to add", "job", a.jobID, "tasks", len(again), "wait", wait)
		if err := a.c.pause(ctx, wait); err != nil {
			return err
		}
		idx = again
	}
}

func (a *adder) count(info callInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stats.Requests += info.attempts
	a.stats.Retries += max(info.attempts-1, 0)
	a.stats.BytesSent += info.bytesSent
}

func (a *adder) done(existed bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.added++
	if existed {
		a.existing++
	}
}

func (a *adder) fail(i int, e *Error) {
	if e == nil {
		e = &Error{Op: fmt.Sprintf("add task %q to job %q", a.tasks[i].ID, a.jobID), Message: "failed"}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failed[i] = e
}

// pause waits d (as the wait hook maps it), or until ctx ends.
func (c *Client) pause(ctx context.Context, d time.Duration) error {
	d = c.wait(d)
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
