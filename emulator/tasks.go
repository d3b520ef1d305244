package emulator

import (
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Task operations.

func (s *Server) taskURL(jobID, taskID string) string {
	return s.endpointURL() + "/jobs/" + url.PathEscape(jobID) + "/tasks/" + url.PathEscape(taskID)
}

func (s *Server) renderTask(t *task) Task {
	w := t.wire
	w.URL = s.taskURL(t.job.wire.ID, w.ID)
	if ni := w.NodeInfo; ni != nil {
		n := *ni
		n.NodeURL = s.endpointURL() + "/pools/" + n.PoolID + "/nodes/" + n.NodeID
		n.TaskRootDirectoryURL = n.NodeURL + "/files/" + n.TaskRootDirectory
		w.NodeInfo = &n
	}
	return w
}

// taskConstraintDefaults fills what Batch reports for constraints left
// out: no wall-clock limit, a week's retention, the job's retry count.
func taskConstraintDefaults(c *TaskConstraints, j *job) *TaskConstraints {
	out := TaskConstraints{}
	if c != nil {
		out = *c
	}
	if out.MaxWallClockTime == nil {
		out.MaxWallClockTime = durationPtr(Unbounded)
	}
	if out.RetentionTime == nil {
		out.RetentionTime = durationPtr(7 * Duration(ticksPerDay))
	}
	if out.MaxTaskRetryCount == nil {
		n := int32(0)
		if jc := j.wire.Constraints; jc != nil && jc.MaxTaskRetryCount != nil {
			n = *jc.MaxTaskRetryCount
		}
		out.MaxTaskRetryCount = &n
	}
	return &out
}

// addTaskLocked adds a validated task to j.
func (s *Server) addTaskLocked(j *job, tc *TaskCreate, now time.Time) *task {
	s.seq++
	w := Task{
		ID: *tc.ID, DisplayName: tc.DisplayName, CreationTime: newTime(now), ExitConditions: tc.ExitConditions,
		State: TaskActive, StateTransitionTime: newTime(now), CommandLine: *tc.CommandLine,
		ContainerSettings: tc.ContainerSettings, ResourceFiles: tc.ResourceFiles, OutputFiles: tc.OutputFiles,
		EnvironmentSettings: tc.EnvironmentSettings, AffinityInfo: tc.AffinityInfo,
		Constraints: taskConstraintDefaults(tc.Constraints, j), RequiredSlots: tc.RequiredSlots,
		UserIdentity: tc.UserIdentity, ExecutionInfo: &TaskExecutionInfo{},
		MultiInstanceSettings: tc.MultiInstanceSettings, DependsOn: tc.DependsOn,
		ApplicationPackageReferences: tc.ApplicationPackageReferences,
		AuthenticationTokenSettings:  tc.AuthenticationTokenSettings,
	}
	if w.RequiredSlots == nil {
		w.RequiredSlots = int32Ptr(1)
	}
	if w.UserIdentity == nil {
		w.UserIdentity = &UserIdentity{AutoUser: &AutoUserSpecification{Scope: "pool", ElevationLevel: "nonadmin"}}
	}
	if m := w.MultiInstanceSettings; m != nil && m.NumberOfInstances == nil {
		m.NumberOfInstances = int32Ptr(1)
	}
	t := &task{wire: w, key: lower(w.ID), seq: s.seq, job: j}
	j.addTaskIndex(t)
	j.count(t, 1)
	s.touchTask(t, now)
	s.setupDeps(j, t)
	if t.pending == 0 && !t.blocked {
		j.enqueue(t)
	}
	return t
}

// openJob finds a job that accepts new tasks.
func (s *Server) openJob(c *call) (*job, *apiError) {
	j, e := s.jobFor(c)
	if e != nil {
		return nil, e
	}
	switch j.wire.State {
	case JobCompleted, JobTerminating, JobDeleting:
		return nil, errJobState(j)
	}
	return j, nil
}

// checkNewTask is what makes adding a valid task to j fail: its id is
// taken.
func checkNewTask(j *job, id string) *apiError {
	if j.tasks[lower(id)] != nil {
		return errTaskExists()
	}
	if p := j.wire.JobPreparationTask; p != nil && lower(p.ID) == lower(id) {
		return errConflict("TaskIdSameAsJobPreparationTask", "The task id is the same as that of the job preparation task.")
	}
	if r := j.wire.JobReleaseTask; r != nil && lower(r.ID) == lower(id) {
		return errConflict("TaskIdSameAsJobReleaseTask", "The task id is the same as that of the job release task.")
	}
	return nil
}

func (s *Server) addTask(c *call) (*response, *apiError) {
	var tc TaskCreate
	if e := decodeBody(c.body, &tc); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.unlockCommit()
	j, e := s.openJob(c)
	if e != nil {
		return nil, e
	}
	if e := validTask(j, &tc, ""); e != nil {
		return nil, e
	}
	if e := checkNewTask(j, *tc.ID); e != nil {
		return nil, e
	}
	t := s.addTaskLocked(j, &tc, c.now)
	s.dispatchLocked()
	return created(s.taskURL(j.wire.ID, t.wire.ID), t.wire.ETag, t.wire.LastModified), nil
}

func (s *Server) addTaskCollection(c *call) (*response, *apiError) {
	var g TaskGroup
	if e := decodeBody(c.body, &g); e != nil {
		return nil, e
	}
	if len(g.Value) > maxTasksPerAdd {
		return nil, errTooLarge(fmt.Sprintf("The collection holds %d tasks; at most %d may be added in one request.", len(g.Value), maxTasksPerAdd))
	}
	if len(g.Value) == 0 {
		return nil, errInvalidProperty("value", "[]", "the collection must hold 1 to 100 tasks")
	}
	s.mu.Lock()
	defer s.unlockCommit()
	j, e := s.openJob(c)
	if e != nil {
		return nil, e
	}
	res := TaskAddCollectionResult{Value: make([]TaskAddResult, 0, len(g.Value))}
	for i := range g.Value {
		tc := &g.Value[i]
		r := TaskAddResult{TaskID: *tc.ID}
		e := validTask(j, tc, fmt.Sprintf("value[%d].", i))
		if e == nil {
			e = checkNewTask(j, *tc.ID)
		}
		var fail, added bool
		if e == nil && s.faults != nil {
			fail, added = s.faults.partialItem(*tc.ID)
		}
		switch {
		case e != nil:
			r.Status, r.Error = AddClientError, e.body(c.id, Time{c.now})
		case fail:
			// The partial fault: servererror, for a task that may have
			// been added all the same, as Batch's may have been.
			if added {
				s.addTaskLocked(j, tc, c.now)
			}
			fe := newError(http.StatusInternalServerError, "InternalError",
				"Server encountered an internal error. Please try again after some time.")
			r.Status, r.Error = AddServerError, fe.body(c.id, Time{c.now})
		default:
			t := s.addTaskLocked(j, tc, c.now)
			r.Status, r.ETag, r.LastModified = AddSuccess, t.wire.ETag, t.wire.LastModified
			r.Location = s.taskURL(j.wire.ID, t.wire.ID)
		}
		res.Value = append(res.Value, r)
	}
	s.dispatchLocked()
	return reply(http.StatusOK, res), nil
}

func (s *Server) taskFor(c *call) (*task, *apiError) {
	j, e := s.jobFor(c)
	if e != nil {
		return nil, e
	}
	t := j.tasks[lower(c.param("task"))]
	if t == nil {
		return nil, errTaskNotFound()
	}
	return t, nil
}

// changeableTask finds a task for an operation that changes it, checking
// the request's conditional headers.
func (s *Server) changeableTask(c *call) (*task, *apiError) {
	t, e := s.taskFor(c)
	if e != nil {
		return nil, e
	}
	if e := conditions(c, t.wire.ETag, t.wire.LastModified, false); e != nil {
		return nil, e
	}
	return t, nil
}

func (s *Server) getTask(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e := s.taskFor(c)
	if e != nil {
		return nil, e
	}
	if e := conditions(c, t.wire.ETag, t.wire.LastModified, true); e != nil {
		return nil, e
	}
	sel, e := parseSelect(c, taskFields)
	if e != nil {
		return nil, e
	}
	w := s.renderTask(t)
	applySelect(&w, sel)
	return entityHeaders(reply(http.StatusOK, w), t.wire.ETag, t.wire.LastModified), nil
}

func (s *Server) listTasks(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, e := s.jobFor(c)
	if e != nil {
		return nil, e
	}
	return listPage(c, j.order, lister[*task, Task]{
		seq:    func(t *task) int64 { return t.seq },
		gone:   func(t *task) bool { return t.gone },
		wire:   func(t *task) *Task { return &t.wire },
		render: s.renderTask,
		fields: taskFields,
		props:  taskProps,
	})
}

func (s *Server) updateTask(c *call) (*response, *apiError) {
	var u TaskUpdate
	if e := decodeBody(c.body, &u); e != nil {
		return nil, e
	}
	if e := validTaskConstraints("constraints", u.Constraints); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.unlockCommit()
	t, e := s.changeableTask(c)
	if e != nil {
		return nil, e
	}
	t.wire.Constraints = taskConstraintDefaults(u.Constraints, t.job)
	s.touchTask(t, c.now)
	return entityHeaders(reply(http.StatusOK, nil), t.wire.ETag, t.wire.LastModified), nil
}

func (s *Server) deleteTask(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.unlockCommit()
	t, e := s.changeableTask(c)
	if e != nil {
		return nil, e
	}
	j := t.job
	if t.att != nil && t.att.cancel != nil {
		t.att.cancel(&stopCause{kind: stopForget, reason: "task deleted"})
	} else if dir := s.taskDirOf(t); dir != "" {
		s.removeDirs([]string{dir})
	}
	t.gone = true
	j.dequeue(t)
	j.count(t, -1)
	j.removeTaskIndex(t)
	s.journalDelete(recDeleteTask, t.wire.ID, j.wire.ID)
	s.checkAllCompleteLocked(j, c.now)
	s.dispatchLocked()
	return reply(http.StatusOK, nil), nil
}

func (s *Server) terminateTask(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.unlockCommit()
	t, e := s.changeableTask(c)
	if e != nil {
		return nil, e
	}
	const msg = "The task was terminated at the user's request."
	switch {
	case t.wire.State == TaskCompleted:
		return nil, errConflict("TaskCompleted", "The specified task is already completed.")
	case t.att != nil && t.att.cancel != nil:
		t.att.cancel(&stopCause{kind: stopTerminate, reason: msg})
	default:
		s.completeLocked(t, outcome{failure: &TaskFailureInfo{Category: UserError, Code: "TaskEnded", Message: msg}}, c.now)
		s.dispatchLocked()
	}
	return entityHeaders(reply(http.StatusNoContent, nil), t.wire.ETag, t.wire.LastModified), nil
}

func (s *Server) reactivateTask(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.unlockCommit()
	t, e := s.changeableTask(c)
	if e != nil {
		return nil, e
	}
	j := t.job
	switch j.wire.State {
	case JobCompleted, JobTerminating, JobDeleting:
		return nil, errJobState(j)
	}
	ei := execInfo(t)
	if t.wire.State != TaskCompleted || ei.Result != ResultFailure {
		return nil, errConflict("OperationInvalidForCurrentState",
			"Only a task that completed with a failure can be reactivated.")
	}
	j.count(t, -1)
	ei.RetryCount, ei.ExitCode, ei.FailureInfo, ei.Result, ei.EndTime = 0, nil, nil, "", nil
	s.moveState(t, TaskActive, c.now)
	j.count(t, 1)
	t.depOK = nil
	if t.pending == 0 && !t.blocked {
		j.enqueue(t)
	}
	s.dispatchLocked()
	return entityHeaders(reply(http.StatusNoContent, nil), t.wire.ETag, t.wire.LastModified), nil
}
