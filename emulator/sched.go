package emulator

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"
)

// The scheduler. It follows the Batch service's rules as the spec and
// FACTS.md give them:
//
//   - a task runs on one node of its job's pool, taking requiredSlots of
//     that node's taskSlotsPerNode; pools have targetDedicatedNodes +
//     targetLowPriorityNodes nodes (capped by Options.Nodes);
//   - jobs of higher priority go first, then older ones; nodeFillType
//     spread puts a task on the node with the most free slots, pack on the
//     first node with room;
//   - a task with dependencies waits until each is satisfied; a parent
//     that completes with dependencyAction block leaves its dependents
//     active for ever, as Batch does;
//   - a non-zero exit is retried up to maxTaskRetryCount (-1 for ever);
//     pre-processing errors, file upload errors and wall-clock timeouts
//     are not: a task its maxWallClockTime ends is completed, with exit
//     code 0xC000013A and failureInfo servererror/TaskEnded;
//   - the job manager task starts with the job; when it completes and
//     killJobOnCompletion is set, the job is terminated (JMComplete).
//
// Every function here runs with Server.mu held.

const readyScanLimit = 1024 // ready tasks examined per pick before giving up on the rest

func (s *Server) dispatchLocked() {
	if s.closed {
		return
	}
	if s.dispatching {
		s.redispatch = true
		return
	}
	s.dispatching = true
	defer func() { s.dispatching = false }()
	for {
		s.redispatch = false
		for _, p := range s.pools {
			s.dispatchPool(p)
		}
		if !s.redispatch {
			return
		}
	}
}

func (s *Server) dispatchPool(p *pool) {
	if p.wire.State != PoolActive || len(p.jobs) == 0 {
		return
	}
	for _, j := range p.sortedJobs() {
		for j.wire.State == JobActive && j.pool == p {
			if m := j.wire.MaxParallelTasks; m != nil && *m > 0 && len(j.running) >= int(*m) {
				break
			}
			t, n := s.pick(p, j)
			if t == nil {
				break
			}
			s.startLocked(t, n)
		}
	}
}

// needs reports what t asks of a node: slots, the whole node, dedicated.
func (s *Server) needs(t *task) (slots int, exclusive, dedicatedOnly bool) {
	slots = int(requiredSlots(&t.wire))
	if t.jm {
		jm := t.job.wire.JobManagerTask
		exclusive = jm.RunExclusive == nil || *jm.RunExclusive
		dedicatedOnly = jm.AllowLowPriorityNode != nil && !*jm.AllowLowPriorityNode
	}
	return
}

func (s *Server) pick(p *pool, j *job) (*task, *node) {
	j.compactReady()
	if j.head == len(j.ready) {
		return nil, nil
	}
	maxFree, idle := p.capacity()
	if maxFree == 0 {
		return nil, nil
	}
	fill := FillSpread
	if sp := p.wire.TaskSchedulingPolicy; sp != nil && sp.NodeFillType != nil {
		fill = *sp.NodeFillType
	}
	scanned := 0
	for i := j.head; i < len(j.ready) && scanned < readyScanLimit; i++ {
		t := j.ready[i]
		if t == nil || !t.queued {
			continue
		}
		scanned++
		need, excl, ded := s.needs(t)
		if excl && !idle || !excl && need > maxFree {
			continue
		}
		if n := p.pickNode(need, excl, ded, fill); n != nil {
			t.queued = false
			j.ready[i] = nil
			return t, n
		}
	}
	return nil, nil
}

// capacity is the most free slots on one usable node, and whether a
// usable node is idle.
func (p *pool) capacity() (maxFree int, idle bool) {
	for _, n := range p.nodes {
		if n.leaving || n.exclusive {
			continue
		}
		maxFree = max(maxFree, n.slots-n.used)
		idle = idle || n.used == 0
	}
	return
}

func (p *pool) pickNode(need int, exclusive, dedicatedOnly bool, fill NodeFillType) *node {
	var best *node
	for _, n := range p.nodes {
		if n.leaving || n.exclusive || dedicatedOnly && !n.dedicated {
			continue
		}
		free := n.slots - n.used
		if exclusive && n.used > 0 || !exclusive && free < need {
			continue
		}
		if best == nil {
			best = n
			if fill == FillPack {
				break
			}
			continue
		}
		if free > best.slots-best.used {
			best = n
		}
	}
	return best
}

func (s *Server) startLocked(t *task, n *node) {
	now := time.Now()
	j := t.job
	need, excl, _ := s.needs(t)
	if excl {
		need = n.slots
		n.exclusive = true
	}
	n.used += need
	n.tasks[t] = struct{}{}
	j.running[t] = struct{}{}
	// A retry on the node the task's last attempt ran on finds its
	// resource files where that attempt left them: Batch downloads them
	// again only for a retry on another node ("Resource files and
	// application packages are only downloaded again if the task is
	// retried on a new compute node", maxTaskRetryCount). requeueLocked
	// forgets the node, so a requeued task downloads them again.
	again := t.node == n
	t.node = n

	ei := execInfo(t)
	ei.StartTime = newTime(now)
	if ei.RetryCount > 0 {
		ei.LastRetryTime = newTime(now)
	}
	ei.EndTime, ei.ExitCode, ei.FailureInfo, ei.Result = nil, nil, nil, ""
	t.wire.NodeInfo = s.nodeInfo(n, t)
	s.setState(t, TaskRunning, now)

	a := &attempt{t: t, node: n, slots: need, exclusive: excl}
	t.att = a
	if fi := containerMismatch(n.pool, t); fi != nil {
		// Instant or not: the node refuses the task before anything runs.
		a.ctx = context.Background()
		s.finishAttemptLocked(a, attemptResult{pre: fi})
		return
	}
	if s.opt.Instant {
		a.ctx = context.Background()
		zero := int32(0)
		s.finishAttemptLocked(a, attemptResult{exit: &zero})
		return
	}
	a.ctx, a.cancel = context.WithCancelCause(s.runCtx)
	a.spec = s.runSpecLocked(t, n)
	a.spec.haveFiles = again && ei.RetryCount > 0
	s.log.Debug("task started", "job", j.wire.ID, "task", t.wire.ID, "node", n.id, "attempt", ei.RetryCount+1)
	s.wg.Add(1)
	go s.runAttempt(a)
}

func execInfo(t *task) *TaskExecutionInfo {
	if t.wire.ExecutionInfo == nil {
		t.wire.ExecutionInfo = &TaskExecutionInfo{}
	}
	return t.wire.ExecutionInfo
}

func (s *Server) nodeInfo(n *node, t *task) *NodeInfo {
	nodeURL := s.endpointURL() + "/pools/" + n.pool.wire.ID + "/nodes/" + n.id
	root := taskRootDir(t.job.wire.ID, t.wire.ID)
	return &NodeInfo{
		AffinityID:           "TVM:" + n.id,
		NodeURL:              nodeURL,
		PoolID:               n.pool.wire.ID,
		NodeID:               n.id,
		TaskRootDirectory:    root,
		TaskRootDirectoryURL: nodeURL + "/files/" + root,
	}
}

// taskRootDir is a task's directory below its node's root, as Batch lays
// it out on Linux.
func taskRootDir(jobID, taskID string) string {
	return "workitems/" + jobID + "/job-1/" + taskID
}

func (s *Server) taskDir(n *node, t *task) string {
	return filepath.Join(n.dir, filepath.FromSlash(taskRootDir(t.job.wire.ID, t.wire.ID)))
}

// attemptResult is what became of one run.
type attemptResult struct {
	exit     *int32           // nil when no process ran
	timedOut bool             // maxWallClockTime stopped it
	pre      *TaskFailureInfo // a pre-processing error: the task could not start
	upload   *TaskFailureInfo // an output file failed to upload
}

func (s *Server) runAttempt(a *attempt) {
	defer s.wg.Done()
	res := s.execute(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishAttemptLocked(a, res)
	s.commitLocked()
}

// finishAttemptLocked settles an attempt that has ended: it frees the
// node and moves the task on according to why the attempt ended.
func (s *Server) finishAttemptLocked(a *attempt, res attemptResult) {
	now := time.Now()
	t, j, n := a.t, a.t.job, a.node
	n.used -= a.slots
	delete(n.tasks, t)
	if a.exclusive {
		n.exclusive = false
	}
	delete(j.running, t)
	if t.att == a {
		t.att = nil
	}
	if t.gone {
		if dir := s.taskDirOf(t); dir != "" && s.jobs[j.key] == j {
			s.removeDirs([]string{dir})
		}
	}
	if s.closed {
		return // shutting down: the task stays running, to be requeued on restart
	}
	c := causeOf(a)
	switch {
	case t.gone || c != nil && c.kind == stopForget:
	case c != nil && c.kind == stopRequeue:
		s.requeueLocked(t, c.user, now)
	case c != nil && c.kind == stopTerminate:
		s.completeLocked(t, outcome{exit: res.exit, failure: &TaskFailureInfo{
			Category: UserError, Code: "TaskEnded", Message: c.reason}}, now)
	default:
		s.settleLocked(t, res, now)
	}
	s.releaseNodeLocked(n, now)
	s.settleJobLocked(j, now)
	s.dispatchLocked()
}

// settleLocked decides between a retry and completion.
func (s *Server) settleLocked(t *task, res attemptResult, now time.Time) {
	ei := execInfo(t)
	switch {
	case res.pre != nil:
		s.completeLocked(t, outcome{pre: true, failure: res.pre}, now)
	case res.timedOut:
		limit := "its maximum wall clock time"
		if c := t.wire.Constraints; c != nil && c.MaxWallClockTime != nil {
			limit += " (" + c.MaxWallClockTime.String() + ")"
		}
		code := wallClockExitCode
		s.completeLocked(t, outcome{exit: &code, failure: &TaskFailureInfo{
			Category: ServerError, Code: "TaskEnded",
			Message: "The task ran longer than " + limit + " and was terminated."}}, now)
	case res.exit != nil && *res.exit != 0 && retriesLeft(t):
		ei.RetryCount++
		ei.ExitCode, ei.EndTime, ei.FailureInfo, ei.Result = nil, nil, nil, ""
		s.setState(t, TaskActive, now)
		t.job.enqueue(t)
	case res.upload != nil:
		s.completeLocked(t, outcome{exit: res.exit, upload: true, failure: res.upload}, now)
	case res.exit != nil && *res.exit != 0:
		s.completeLocked(t, outcome{exit: res.exit, failure: &TaskFailureInfo{
			Category: UserError, Code: "FailureExitCode",
			Message: "The task process exited with an unexpected exit code"}}, now)
	default:
		s.completeLocked(t, outcome{exit: res.exit}, now)
	}
}

// wallClockExitCode is the exit code Batch documents for a task it ends at
// its maxWallClockTime, whatever the process's own: 0xC000013A
// (STATUS_CONTROL_C_EXIT), which the int32 exitCode carries as
// -1073741510.
const wallClockExitCode int32 = -1073741510

func retriesLeft(t *task) bool {
	max := int32(0)
	if c := t.wire.Constraints; c != nil && c.MaxTaskRetryCount != nil {
		max = *c.MaxTaskRetryCount
	}
	return max < 0 || execInfo(t).RetryCount < max
}

// outcome is how a task completed.
type outcome struct {
	exit    *int32
	failure *TaskFailureInfo
	pre     bool // a pre-processing error
	upload  bool // a file upload error
}

// exitOptions picks the task's exitConditions entry for an outcome and
// fills in Batch's defaults: satisfy and none for success, block and
// terminate otherwise.
func exitOptions(ec *ExitConditions, o outcome) ExitOptions {
	var chosen *ExitOptions
	var byCode *ExitOptions
	if ec != nil && o.exit != nil {
		code := *o.exit
		for i := range ec.ExitCodes {
			if m := ec.ExitCodes[i]; m.Code != nil && *m.Code == code {
				byCode = m.ExitOptions
				break
			}
		}
		if byCode == nil {
			for i := range ec.ExitCodeRanges {
				if m := ec.ExitCodeRanges[i]; m.Start != nil && m.End != nil && *m.Start <= code && code <= *m.End {
					byCode = m.ExitOptions
					break
				}
			}
		}
	}
	if ec != nil {
		switch {
		case o.pre:
			chosen = ec.PreProcessingError
			if chosen == nil {
				chosen = ec.Default
			}
		case o.upload:
			chosen = byCode
			if chosen == nil {
				chosen = ec.FileUploadError
			}
			if chosen == nil {
				chosen = ec.Default
			}
		default:
			chosen = byCode
			if chosen == nil && (o.exit == nil || *o.exit != 0) {
				chosen = ec.Default
			}
		}
	}
	opts := ExitOptions{DependencyAction: Satisfy, JobAction: JobActionNone}
	if o.failure != nil {
		opts = ExitOptions{DependencyAction: Block, JobAction: JobActionTerminate}
	}
	if chosen != nil {
		if chosen.DependencyAction != "" {
			opts.DependencyAction = chosen.DependencyAction
		}
		if chosen.JobAction != "" {
			opts.JobAction = chosen.JobAction
		}
	}
	return opts
}

func (s *Server) completeLocked(t *task, o outcome, now time.Time) {
	j := t.job
	j.dequeue(t)
	j.count(t, -1)
	ei := execInfo(t)
	ei.EndTime = newTime(now)
	ei.ExitCode = o.exit
	ei.FailureInfo = o.failure
	ei.Result = ResultSuccess
	if o.failure != nil {
		ei.Result = ResultFailure
	}
	s.moveState(t, TaskCompleted, now)
	j.count(t, 1)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		attrs := []any{"job", j.wire.ID, "task", t.wire.ID, "result", ei.Result, "retries", ei.RetryCount}
		if o.exit != nil {
			attrs = append(attrs, "exitCode", *o.exit)
		}
		if o.failure != nil {
			attrs = append(attrs, "failure", o.failure.Code, "message", o.failure.Message)
		}
		s.log.Debug("task completed", attrs...)
	}

	opts := exitOptions(t.wire.ExitConditions, o)
	ok := opts.DependencyAction == Satisfy
	t.depOK = &ok
	s.resolveDependents(j, t, ok)

	if j.wire.OnTaskFailure == FailurePerformJobAction && j.wire.State == JobActive {
		switch opts.JobAction {
		case JobActionTerminate:
			s.terminateJobLocked(j, "TaskFailed", now)
		case JobActionDisable:
			s.disableJobLocked(j, DisableRequeue, now)
		}
	}
	if t.jm {
		if k := j.wire.JobManagerTask.KillJobOnCompletion; k == nil || *k {
			s.terminateJobLocked(j, "JMComplete", now)
		}
	}
	s.checkAllCompleteLocked(j, now)
}

// requeueLocked puts a task that was running back to active. The task
// downloads its resource files again wherever it runs next: Batch's
// documents say it keeps them only for a retry on the same node.
func (s *Server) requeueLocked(t *task, user bool, now time.Time) {
	t.node = nil
	ei := execInfo(t)
	if user {
		ei.RequeueCount++
		ei.LastRequeueTime = newTime(now)
	}
	s.setState(t, TaskActive, now)
	if t.pending == 0 && !t.blocked {
		t.job.enqueue(t)
	}
}

// setupDeps works out what a new task waits for.
func (s *Server) setupDeps(j *job, t *task) {
	d := t.wire.DependsOn
	if d == nil {
		return
	}
	seen := make(map[string]bool, len(d.TaskIDs))
	for _, id := range d.TaskIDs {
		k := lower(id)
		if seen[k] {
			continue
		}
		seen[k] = true
		if p := j.tasks[k]; p != nil && p.wire.State == TaskCompleted && p.depOK != nil {
			t.blocked = t.blocked || !*p.depOK
			continue
		}
		t.pending++
		j.waitID[k] = append(j.waitID[k], t)
	}
	ranges := mergeRanges(d.TaskIDRanges)
	var span int64
	for _, r := range ranges {
		span += r[1] - r[0] + 1
	}
	if span == 0 {
		return
	}
	var done int64
	visit := func(n int64, ok bool) {
		done++
		t.blocked = t.blocked || !ok
	}
	if int64(len(j.intDone)) < span {
		for n, ok := range j.intDone {
			if inRanges(ranges, n) {
				visit(n, ok)
			}
		}
	} else {
		for _, r := range ranges {
			for n := r[0]; n <= r[1]; n++ {
				if ok, seen := j.intDone[n]; seen {
					visit(n, ok)
				}
			}
		}
	}
	if rest := span - done; rest > 0 {
		t.pending += rest
		t.ranges = ranges
		j.rangeWaiters = append(j.rangeWaiters, t)
	}
}

// mergeRanges sorts and merges taskIdRanges into disjoint intervals.
func mergeRanges(rs []TaskIDRange) [][2]int64 {
	var out [][2]int64
	for _, r := range rs {
		if r.Start == nil || r.End == nil || *r.Start > *r.End {
			continue
		}
		out = append(out, [2]int64{int64(*r.Start), int64(*r.End)})
	}
	sortRanges(out)
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && r[0] <= merged[n-1][1]+1 {
			merged[n-1][1] = max(merged[n-1][1], r[1])
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

func inRanges(rs [][2]int64, n int64) bool {
	for _, r := range rs {
		if r[0] <= n && n <= r[1] {
			return true
		}
	}
	return false
}

// resolveDependents tells the tasks waiting on t how it completed.
func (s *Server) resolveDependents(j *job, t *task, ok bool) {
	if ws, found := j.waitID[t.key]; found {
		delete(j.waitID, t.key)
		for _, d := range ws {
			s.depDone(d, ok)
		}
	}
	n, isInt := taskInt(t.wire.ID)
	if !isInt {
		return
	}
	if _, seen := j.intDone[n]; seen {
		return // the first task with this number to finish decides
	}
	j.intDone[n] = ok
	keep := j.rangeWaiters[:0]
	for _, d := range j.rangeWaiters {
		if d.gone || d.blocked || d.ranges == nil {
			continue
		}
		if inRanges(d.ranges, n) {
			s.depDone(d, ok)
		}
		if !d.blocked && d.pending > 0 {
			keep = append(keep, d)
		} else {
			d.ranges = nil
		}
	}
	clear(j.rangeWaiters[len(keep):])
	j.rangeWaiters = keep
}

func (s *Server) depDone(d *task, ok bool) {
	if d.gone || d.blocked {
		return
	}
	if !ok {
		d.blocked = true
		return
	}
	d.pending--
	if d.pending == 0 && d.wire.State == TaskActive {
		d.job.enqueue(d)
	}
}

func (s *Server) checkAllCompleteLocked(j *job, now time.Time) {
	if j.wire.OnAllTasksComplete == TerminateJob && j.wire.State == JobActive &&
		j.counts.Active == 0 && j.counts.Running == 0 {
		s.terminateJobLocked(j, "AllTasksComplete", now)
	}
}

// terminateJobLocked ends a job: its running tasks are stopped and
// completed, active ones stay active and never run, and once nothing runs
// the job is completed.
func (s *Server) terminateJobLocked(j *job, reason string, now time.Time) {
	switch j.wire.State {
	case JobCompleted, JobTerminating, JobDeleting:
		return
	}
	s.setJobState(j, JobTerminating, now)
	s.log.Debug("job terminating", "job", j.wire.ID, "reason", reason)
	if j.wire.ExecutionInfo == nil {
		j.wire.ExecutionInfo = &JobExecutionInfo{StartTime: j.wire.CreationTime}
	}
	j.wire.ExecutionInfo.TerminateReason = reason
	for t := range j.running {
		if t.att != nil && t.att.cancel != nil {
			t.att.cancel(&stopCause{kind: stopTerminate, reason: "The task was terminated because its job was terminated (" + reason + ")."})
		}
	}
	s.settleJobLocked(j, now)
}

func (s *Server) disableJobLocked(j *job, opt DisableJobOption, now time.Time) {
	if j.wire.State != JobActive {
		return
	}
	s.setJobState(j, JobDisabling, now)
	for t := range j.running {
		if t.att == nil || t.att.cancel == nil {
			continue
		}
		switch opt {
		case DisableRequeue:
			t.att.cancel(&stopCause{kind: stopRequeue, user: true, reason: "job disabled"})
		case DisableTerminate:
			t.att.cancel(&stopCause{kind: stopTerminate, reason: "The task was terminated because its job was disabled."})
		}
	}
	s.settleJobLocked(j, now)
}

// settleJobLocked finishes a job's transition once none of its tasks runs.
func (s *Server) settleJobLocked(j *job, now time.Time) {
	if len(j.running) > 0 {
		return
	}
	switch j.wire.State {
	case JobTerminating:
		s.setJobState(j, JobCompleted, now)
		if j.wire.ExecutionInfo != nil {
			j.wire.ExecutionInfo.EndTime = newTime(now)
		}
		if j.timer != nil {
			j.timer.Stop()
			j.timer = nil
		}
		s.unbindJob(j)
		s.dropAutoPoolLocked(j, now)
	case JobDisabling:
		s.setJobState(j, JobDisabled, now)
	case JobDeleting:
		s.removeJobLocked(j, now)
	}
}

func (s *Server) removeJobLocked(j *job, now time.Time) {
	if s.jobs[j.key] != j {
		return
	}
	s.unbindJob(j)
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	delete(s.jobs, j.key)
	nodes := map[string]bool{}
	for _, t := range j.order {
		t.gone = true
		if ni := t.wire.NodeInfo; ni != nil && ni.NodeID != "" {
			nodes[ni.NodeID] = true
		}
	}
	var dirs []string
	for id := range nodes {
		dirs = append(dirs, filepath.Join(s.root, "nodes", id, "workitems", j.wire.ID))
	}
	s.journalDelete(recDeleteJob, j.wire.ID, "")
	s.removeDirs(dirs)
	s.dropAutoPoolLocked(j, now)
}

func (s *Server) dropAutoPoolLocked(j *job, now time.Time) {
	pi := j.wire.PoolInfo
	if pi == nil || pi.AutoPoolSpecification == nil {
		return
	}
	if ka := pi.AutoPoolSpecification.KeepAlive; ka != nil && *ka {
		return
	}
	if p := s.pools[j.poolKey]; p != nil && p.autoJob == j.key {
		s.deletePoolLocked(p, now)
	}
}

// Pools.

// poolSize is what the emulator allocates for a pool: its targets, or
// Options.Nodes for an autoscale pool (formulas are not evaluated), capped
// at Options.Nodes nodes of Options.SlotsPerNode slots.
func (s *Server) poolSize(p *pool) (dedicated, lowPriority, slots int) {
	w := &p.wire
	if w.EnableAutoScale != nil && *w.EnableAutoScale {
		dedicated = max(s.opt.Nodes, 1)
	} else {
		if w.TargetDedicatedNodes != nil {
			dedicated = int(*w.TargetDedicatedNodes)
		}
		if w.TargetLowPriorityNodes != nil {
			lowPriority = int(*w.TargetLowPriorityNodes)
		}
	}
	if c := s.opt.Nodes; c > 0 && dedicated+lowPriority > c {
		dedicated = min(dedicated, c)
		lowPriority = c - dedicated
	}
	slots = 1
	if w.TaskSlotsPerNode != nil && *w.TaskSlotsPerNode > 0 {
		slots = int(*w.TaskSlotsPerNode)
	}
	if c := s.opt.SlotsPerNode; c > 0 {
		slots = min(slots, c)
	}
	return
}

// sizePoolLocked adds or removes nodes to match the pool's size. Nodes
// leaving the pool take no new tasks; their running tasks are handled as
// the deallocation option says, and each node goes once it is idle.
func (s *Server) sizePoolLocked(p *pool, dealloc NodeDeallocationOption, now time.Time) {
	dedicated, low, slots := s.poolSize(p)
	for _, kind := range []struct {
		dedicated bool
		want      int
	}{{true, dedicated}, {false, low}} {
		var live []*node
		for _, n := range p.nodes {
			if n.dedicated == kind.dedicated && !n.leaving {
				live = append(live, n)
			}
		}
		for i := len(live); i < kind.want; i++ {
			s.addNodeLocked(p, kind.dedicated, slots)
		}
		for i := len(live) - 1; i >= kind.want; i-- {
			s.drainNodeLocked(live[i], dealloc)
		}
	}
	s.poolCountsLocked(p, now)
	for _, n := range append([]*node(nil), p.nodes...) {
		s.releaseNodeLocked(n, now)
	}
}

func (s *Server) addNodeLocked(p *pool, dedicated bool, slots int) {
	used := map[int]bool{}
	for _, n := range p.nodes {
		used[n.index] = true
	}
	i := 0
	for used[i] {
		i++
	}
	sum := sha1.Sum([]byte(lower(p.wire.ID)))
	kind := "d"
	if !dedicated {
		kind = "p"
	}
	id := fmt.Sprintf("tvmps_%s_%d_%s", hex.EncodeToString(sum[:8]), i, kind)
	n := &node{pool: p, id: id, index: i, dedicated: dedicated, slots: slots,
		tasks: map[*task]struct{}{}, dir: filepath.Join(s.root, "nodes", id)}
	p.nodes = append(p.nodes, n)
	sortNodes(p.nodes)
}

func (s *Server) drainNodeLocked(n *node, dealloc NodeDeallocationOption) {
	if n.leaving {
		return
	}
	n.leaving = true
	for t := range n.tasks {
		if t.att == nil || t.att.cancel == nil {
			continue
		}
		switch dealloc {
		case DeallocRequeue, "":
			t.att.cancel(&stopCause{kind: stopRequeue, user: true, reason: "node removed from the pool"})
		case DeallocTerminate:
			t.att.cancel(&stopCause{kind: stopTerminate, reason: "The task was terminated because its node was removed from the pool."})
		}
	}
}

// releaseNodeLocked removes a leaving node once it is idle, and a deleting
// pool once it has no nodes.
func (s *Server) releaseNodeLocked(n *node, now time.Time) {
	p := n.pool
	if !n.leaving || len(n.tasks) > 0 {
		return
	}
	for i, x := range p.nodes {
		if x == n {
			p.nodes = append(p.nodes[:i], p.nodes[i+1:]...)
			break
		}
	}
	s.poolCountsLocked(p, now)
	if p.wire.State == PoolDeleting && len(p.nodes) == 0 && s.pools[p.key] == p {
		delete(s.pools, p.key)
		s.journalDelete(recDeletePool, p.wire.ID, "")
	}
}

func (s *Server) poolCountsLocked(p *pool, now time.Time) {
	var d, l int32
	leaving := false
	for _, n := range p.nodes {
		if n.dedicated {
			d++
		} else {
			l++
		}
		leaving = leaving || n.leaving
	}
	w := &p.wire
	changed := w.CurrentDedicatedNodes == nil || *w.CurrentDedicatedNodes != d ||
		w.CurrentLowPriorityNodes == nil || *w.CurrentLowPriorityNodes != l
	w.CurrentDedicatedNodes, w.CurrentLowPriorityNodes = &d, &l
	alloc := AllocationSteady
	if leaving {
		alloc = AllocationResizing
	}
	if w.AllocationState != alloc {
		w.AllocationState, w.AllocationStateTransitionTime = alloc, newTime(now)
		changed = true
	}
	if changed {
		s.markPool(p)
	}
}

func (s *Server) deletePoolLocked(p *pool, now time.Time) {
	if p.wire.State == PoolDeleting {
		return
	}
	p.wire.State, p.wire.StateTransitionTime = PoolDeleting, newTime(now)
	s.touchPool(p, now)
	for j := range p.jobs {
		s.unbindJob(j)
	}
	for _, n := range p.nodes {
		s.drainNodeLocked(n, DeallocRequeue)
	}
	for _, n := range append([]*node(nil), p.nodes...) {
		s.releaseNodeLocked(n, now)
	}
	if len(p.nodes) == 0 && s.pools[p.key] == p {
		delete(s.pools, p.key)
		s.journalDelete(recDeletePool, p.wire.ID, "")
	}
}

// armJobTimer terminates the job when its maxWallClockTime, counted from
// its creation, runs out.
func (s *Server) armJobTimer(j *job) {
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	c := j.wire.Constraints
	if c == nil || c.MaxWallClockTime == nil || j.wire.State == JobCompleted || j.wire.State == JobDeleting {
		return
	}
	limit, ok := c.MaxWallClockTime.Std()
	if !ok {
		return
	}
	left := time.Until(j.wire.CreationTime.Add(limit))
	j.timer = time.AfterFunc(max(left, 0), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.jobs[j.key] != j || s.closed {
			return
		}
		j.timer = nil
		s.terminateJobLocked(j, "MaxWallClockTimeExpiry", time.Now())
		s.commitLocked()
	})
}
