package emulator

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The emulator's state: pools with their emulated nodes, jobs, and each
// job's tasks. Everything here is guarded by Server.mu. A job indexes its
// tasks by lower-cased id (Batch ids are case-insensitive) and keeps them
// in creation order for listing; it also keeps what the scheduler needs so
// that no step ever scans all tasks: a ready queue, the dependents waiting
// on each parent id, and running counts.

type pool struct {
	wire    Pool
	key     string
	seq     int64
	nodes   []*node
	jobs    map[*job]struct{}
	byPrio  []*job // jobs sorted by priority then age; nil when stale
	autoJob string // key of the job an auto pool belongs to
	mark    bool   // queued for the journal
}

type node struct {
	pool      *pool
	id        string
	index     int
	dedicated bool
	slots     int
	used      int
	exclusive bool // a job manager task with runExclusive holds it
	leaving   bool // being removed from the pool: takes no new tasks
	tasks     map[*task]struct{}
	dir       string
}

type job struct {
	wire    Job
	key     string
	seq     int64
	poolKey string // the pool the job runs on, lower-cased; it may not exist yet
	pool    *pool  // nil while that pool does not exist

	tasks map[string]*task
	order []*task // by seq; deleted tasks stay (gone) until compacted
	holes int

	ready []*task // tasks whose dependencies are met, waiting for a slot
	head  int

	waitID       map[string][]*task // parent id (lower case) -> dependents waiting on it
	rangeWaiters []*task            // dependents still waiting on some taskIdRange
	intDone      map[int64]bool     // integer task ids completed: did the first to finish satisfy?

	counts, slotCounts TaskCounts
	running            map[*task]struct{}
	timer              *time.Timer
	mark               bool
}

type task struct {
	wire   Task
	key    string
	seq    int64
	job    *job
	jm     bool // the job's job manager task
	queued bool // in the job's ready queue

	pending int64      // dependency ids not yet satisfied
	blocked bool       // a dependency completed with dependencyAction block
	ranges  [][2]int64 // merged taskIdRanges, while some are pending
	depOK   *bool      // how this task's completion resolved its dependents

	att  *attempt // the attempt in progress
	node *node    // where the task last ran
	mark bool
	gone bool // deleted
}

func lower(id string) string { return strings.ToLower(id) }

// newETag returns a fresh ETag in Batch's style (0x8DE...), unique within
// the process.
func (s *Server) newETag(now time.Time) string {
	ticks := now.UnixNano()/100 + 621355968000000000 // .NET ticks since 0001-01-01
	for {
		last := s.etag.Load()
		next := max(ticks, last+1)
		if s.etag.CompareAndSwap(last, next) {
			return fmt.Sprintf("0x%X", next)
		}
	}
}

func (s *Server) touchTask(t *task, now time.Time) {
	t.wire.ETag = s.newETag(now)
	t.wire.LastModified = newTime(now)
	s.markTask(t)
}

func (s *Server) touchJob(j *job, now time.Time) {
	j.wire.ETag = s.newETag(now)
	j.wire.LastModified = newTime(now)
	s.markJob(j)
}

func (s *Server) touchPool(p *pool, now time.Time) {
	p.wire.ETag = s.newETag(now)
	p.wire.LastModified = newTime(now)
	s.markPool(p)
}

// count adds (d = 1) or removes (d = -1) t from its job's task counts.
func (j *job) count(t *task, d int32) {
	slots := d * requiredSlots(&t.wire)
	add := func(f func(*TaskCounts) *int32) {
		*f(&j.counts) += d
		*f(&j.slotCounts) += slots
	}
	switch t.wire.State {
	case TaskActive:
		add(func(c *TaskCounts) *int32 { return &c.Active })
	case TaskPreparing, TaskRunning:
		add(func(c *TaskCounts) *int32 { return &c.Running })
	case TaskCompleted:
		add(func(c *TaskCounts) *int32 { return &c.Completed })
		if t.wire.ExecutionInfo != nil && t.wire.ExecutionInfo.Result == ResultFailure {
			add(func(c *TaskCounts) *int32 { return &c.Failed })
		} else {
			add(func(c *TaskCounts) *int32 { return &c.Succeeded })
		}
	}
}

func requiredSlots(t *Task) int32 {
	if t.RequiredSlots == nil || *t.RequiredSlots < 1 {
		return 1
	}
	return *t.RequiredSlots
}

// setState moves t to st, keeping the previous state, the counts and the
// ETag current. Callers change executionInfo between uncount and count
// when the result changes too; setState does both around the move alone.
func (s *Server) setState(t *task, st TaskState, now time.Time) {
	t.job.count(t, -1)
	s.moveState(t, st, now)
	t.job.count(t, 1)
}

func (s *Server) moveState(t *task, st TaskState, now time.Time) {
	w := &t.wire
	if w.State != st {
		w.PreviousState, w.PreviousStateTransitionTime = w.State, w.StateTransitionTime
		w.State, w.StateTransitionTime = st, newTime(now)
	}
	s.touchTask(t, now)
}

func (s *Server) setJobState(j *job, st JobState, now time.Time) {
	w := &j.wire
	if w.State == st {
		return
	}
	w.PreviousState, w.PreviousStateTransitionTime = w.State, w.StateTransitionTime
	w.State, w.StateTransitionTime = st, newTime(now)
	s.touchJob(j, now)
}

// addTaskIndex records t in j's id index and listing order.
func (j *job) addTaskIndex(t *task) {
	j.tasks[t.key] = t
	j.order = append(j.order, t)
}

// removeTaskIndex forgets t, which the caller has marked gone. The
// listing order keeps it, skipped by listings, until gone tasks are half
// of it; then it is compacted, so deleting stays O(1) amortised and the
// order stays sorted by seq for paging.
func (j *job) removeTaskIndex(t *task) {
	delete(j.tasks, t.key)
	j.holes++
	if j.holes > 64 && j.holes*2 > len(j.order) {
		j.order = slices.DeleteFunc(j.order, func(x *task) bool { return x.gone })
		j.holes = 0
	}
}

// enqueue puts t at the back of its job's ready queue.
func (j *job) enqueue(t *task) {
	if t.queued {
		return
	}
	t.queued = true
	j.ready = append(j.ready, t)
}

func (j *job) dequeue(t *task) { t.queued = false } // the queue skips it

// compactReady drops consumed entries from the front of the ready queue.
func (j *job) compactReady() {
	for j.head < len(j.ready) && (j.ready[j.head] == nil || !j.ready[j.head].queued) {
		j.ready[j.head] = nil
		j.head++
	}
	if j.head == len(j.ready) {
		j.ready, j.head = j.ready[:0], 0
	} else if j.head > 1024 && j.head*2 > len(j.ready) {
		n := copy(j.ready, j.ready[j.head:])
		clear(j.ready[n:])
		j.ready, j.head = j.ready[:n], 0
	}
}

// taskInt parses a task id as Batch's taskIdRanges do: an integer,
// leading zeros ignored.
func taskInt(id string) (int64, bool) {
	if id == "" || len(id) > 19 {
		return 0, false
	}
	for _, r := range id {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil
}

// sortedJobs is the pool's jobs in scheduling order: higher priority
// first, then older.
func (p *pool) sortedJobs() []*job {
	if p.byPrio == nil {
		p.byPrio = make([]*job, 0, len(p.jobs))
		for j := range p.jobs {
			p.byPrio = append(p.byPrio, j)
		}
		slices.SortFunc(p.byPrio, func(a, b *job) int {
			if c := cmp.Compare(priority(b), priority(a)); c != 0 {
				return c
			}
			return cmp.Compare(a.seq, b.seq)
		})
	}
	return p.byPrio
}

func priority(j *job) int32 {
	if j.wire.Priority == nil {
		return 0
	}
	return *j.wire.Priority
}

func (s *Server) bindJob(j *job) {
	if j.pool != nil {
		return
	}
	if p := s.pools[j.poolKey]; p != nil && p.wire.State == PoolActive {
		j.pool = p
		p.jobs[j] = struct{}{}
		p.byPrio = nil
	}
}

func (s *Server) unbindJob(j *job) {
	if j.pool == nil {
		return
	}
	delete(j.pool.jobs, j)
	j.pool.byPrio = nil
	j.pool = nil
}

// attempt is one run of a task on a node.
type attempt struct {
	t         *task
	node      *node
	slots     int
	exclusive bool
	ctx       context.Context
	cancel    context.CancelCauseFunc
	spec      runSpec
}

// stopCause says why the emulator stopped an attempt.
type stopCause struct {
	kind   stopKind
	reason string
	user   bool // on a user's request (counts as a requeue)
}

type stopKind int

const (
	stopShutdown  stopKind = iota // the emulator is closing; the task stays running
	stopRequeue                   // back to active, to run again
	stopTerminate                 // completed, with failureInfo TaskEnded
	stopForget                    // the task or its job is being deleted
)

func (c *stopCause) Error() string { return "stopped: " + c.reason }

func causeOf(a *attempt) *stopCause {
	c, _ := context.Cause(a.ctx).(*stopCause)
	return c
}

func sortRanges(rs [][2]int64) {
	slices.SortFunc(rs, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
}

func sortNodes(ns []*node) {
	slices.SortFunc(ns, func(a, b *node) int { return cmp.Compare(a.index, b.index) })
}
