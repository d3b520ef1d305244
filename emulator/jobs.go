package emulator

import (
	"cmp"
	"net/http"
	"slices"
	"time"
)

// Job operations.

func boolPtr(b bool) *bool    { return &b }
func int32Ptr(n int32) *int32 { return &n }

// fillJobDefaults sets what Batch reports for properties left out.
func fillJobDefaults(w *Job) {
	if w.UsesTaskDependencies == nil {
		w.UsesTaskDependencies = boolPtr(false)
	}
	if w.Priority == nil {
		w.Priority = int32Ptr(0)
	}
	if w.AllowTaskPreemption == nil {
		w.AllowTaskPreemption = boolPtr(false)
	}
	if w.MaxParallelTasks == nil {
		w.MaxParallelTasks = int32Ptr(-1)
	}
	w.Constraints = jobConstraintDefaults(w.Constraints)
	if w.OnAllTasksComplete == "" {
		w.OnAllTasksComplete = NoAction
	}
	if w.OnTaskFailure == "" {
		w.OnTaskFailure = FailureNoAction
	}
	if m := w.JobManagerTask; m != nil {
		if m.KillJobOnCompletion == nil {
			m.KillJobOnCompletion = boolPtr(true)
		}
		if m.RunExclusive == nil {
			m.RunExclusive = boolPtr(true)
		}
		if m.AllowLowPriorityNode == nil {
			m.AllowLowPriorityNode = boolPtr(true)
		}
		if m.RequiredSlots == nil {
			m.RequiredSlots = int32Ptr(1)
		}
	}
	if p := w.JobPreparationTask; p != nil {
		if p.ID == "" {
			p.ID = "jobpreparation"
		}
		if p.WaitForSuccess == nil {
			p.WaitForSuccess = boolPtr(true)
		}
		if p.RerunOnNodeRebootAfterSuccess == nil {
			p.RerunOnNodeRebootAfterSuccess = boolPtr(true)
		}
	}
	if r := w.JobReleaseTask; r != nil {
		if r.ID == "" {
			r.ID = "jobrelease"
		}
		if r.MaxWallClockTime == nil {
			r.MaxWallClockTime = durationPtr(Duration(maxReleaseTime))
		}
	}
}

func jobConstraintDefaults(c *JobConstraints) *JobConstraints {
	out := JobConstraints{}
	if c != nil {
		out = *c
	}
	if out.MaxWallClockTime == nil {
		out.MaxWallClockTime = durationPtr(Unbounded)
	}
	if out.MaxTaskRetryCount == nil {
		out.MaxTaskRetryCount = int32Ptr(0)
	}
	return &out
}

func (s *Server) jobURL(j *job) string { return s.endpointURL() + "/jobs/" + j.wire.ID }

func (s *Server) renderJob(j *job) Job {
	w := j.wire
	w.URL = s.jobURL(j)
	return w
}

func newJob(w Job, seq int64) *job {
	return &job{
		wire: w, key: lower(w.ID), seq: seq,
		tasks: map[string]*task{}, waitID: map[string][]*task{}, intDone: map[int64]bool{},
		running: map[*task]struct{}{},
	}
}

func (s *Server) addJob(c *call) (*response, *apiError) {
	var jc JobCreate
	if e := decodeBody(c.body, &jc); e != nil {
		return nil, e
	}
	if e := s.validJob(&jc); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.unlockCommit()
	if old := s.jobs[lower(*jc.ID)]; old != nil {
		if old.wire.State == JobDeleting {
			return nil, errJobState(old)
		}
		return nil, errConflict("JobExists", "The specified job already exists.")
	}
	now := c.now
	w := Job{
		ID: *jc.ID, DisplayName: jc.DisplayName, UsesTaskDependencies: jc.UsesTaskDependencies,
		CreationTime: newTime(now), State: JobActive, StateTransitionTime: newTime(now),
		Priority: jc.Priority, AllowTaskPreemption: jc.AllowTaskPreemption, MaxParallelTasks: jc.MaxParallelTasks,
		Constraints: jc.Constraints, JobManagerTask: jc.JobManagerTask, JobPreparationTask: jc.JobPreparationTask,
		JobReleaseTask: jc.JobReleaseTask, CommonEnvironmentSettings: jc.CommonEnvironmentSettings,
		PoolInfo: jc.PoolInfo, OnAllTasksComplete: jc.OnAllTasksComplete, OnTaskFailure: jc.OnTaskFailure,
		NetworkConfiguration: jc.NetworkConfiguration, Metadata: jc.Metadata,
		ExecutionInfo: &JobExecutionInfo{StartTime: newTime(now)},
	}
	fillJobDefaults(&w)
	s.seq++
	j := newJob(w, s.seq)
	if ap := w.PoolInfo.AutoPoolSpecification; ap != nil {
		id := newRequestID()
		if ap.AutoPoolIDPrefix != "" {
			id = ap.AutoPoolIDPrefix + "_" + id
		}
		p := s.newPoolLocked(id, ap.Pool, now)
		p.autoJob = j.key
		j.poolKey = p.key
		j.wire.ExecutionInfo.PoolID = id
	} else {
		j.poolKey = lower(w.PoolInfo.PoolID)
		j.wire.ExecutionInfo.PoolID = w.PoolInfo.PoolID
	}
	s.jobs[j.key] = j
	s.touchJob(j, now)
	s.bindJob(j)
	s.armJobTimer(j)
	if m := w.JobManagerTask; m != nil {
		t := s.addTaskLocked(j, &TaskCreate{
			ID: m.ID, DisplayName: m.DisplayName, CommandLine: m.CommandLine, ContainerSettings: m.ContainerSettings,
			ResourceFiles: m.ResourceFiles, OutputFiles: m.OutputFiles, EnvironmentSettings: m.EnvironmentSettings,
			Constraints: m.Constraints, RequiredSlots: m.RequiredSlots, UserIdentity: m.UserIdentity,
			ApplicationPackageReferences: m.ApplicationPackageReferences, AuthenticationTokenSettings: m.AuthenticationTokenSettings,
		}, now)
		t.jm = true
	}
	s.checkAllCompleteLocked(j, now)
	s.dispatchLocked()
	return created(s.jobURL(j), j.wire.ETag, j.wire.LastModified), nil
}

func (s *Server) jobFor(c *call) (*job, *apiError) {
	j := s.jobs[lower(c.param("job"))]
	if j == nil {
		return nil, errJobNotFound()
	}
	return j, nil
}

func (s *Server) getJob(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, e := s.jobFor(c)
	if e != nil {
		return nil, e
	}
	if e := conditions(c, j.wire.ETag, j.wire.LastModified, true); e != nil {
		return nil, e
	}
	sel, e := parseSelect(c, jobFields)
	if e != nil {
		return nil, e
	}
	w := s.renderJob(j)
	applySelect(&w, sel)
	return entityHeaders(reply(http.StatusOK, w), j.wire.ETag, j.wire.LastModified), nil
}

func (s *Server) listJobs(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	js := make([]*job, 0, len(s.jobs))
	for _, j := range s.jobs {
		js = append(js, j)
	}
	slices.SortFunc(js, func(a, b *job) int { return cmp.Compare(a.seq, b.seq) })
	return listPage(c, js, lister[*job, Job]{
		seq:    func(j *job) int64 { return j.seq },
		wire:   func(j *job) *Job { return &j.wire },
		render: s.renderJob,
		fields: jobFields,
		props:  jobProps,
	})
}

// changeableJob finds a job that updates may change.
func (s *Server) changeableJob(c *call) (*job, *apiError) {
	j, e := s.jobFor(c)
	if e != nil {
		return nil, e
	}
	switch j.wire.State {
	case JobDeleting, JobCompleted, JobTerminating:
		return nil, errJobState(j)
	}
	if e := conditions(c, j.wire.ETag, j.wire.LastModified, false); e != nil {
		return nil, e
	}
	return j, nil
}

// update applies the updatable properties of a job. replace resets what
// the body leaves out, as PUT does; otherwise (PATCH) it is kept.
func (s *Server) updateJobLocked(j *job, u *JobUpdate, replace bool, now time.Time) *apiError {
	if e := validPriority("priority", u.Priority); e != nil {
		return e
	}
	if e := validMaxParallel("maxParallelTasks", u.MaxParallelTasks); e != nil {
		return e
	}
	if e := validJobConstraints("constraints", u.Constraints); e != nil {
		return e
	}
	if e := validMetadata("metadata", u.Metadata); e != nil {
		return e
	}
	onAll := u.OnAllTasksComplete
	if replace && onAll == "" {
		onAll = NoAction
	}
	if onAll == NoAction && j.wire.OnAllTasksComplete == TerminateJob {
		return errInvalidProperty("onAllTasksComplete", string(onAll),
			"onAllTasksComplete cannot be changed from terminatejob to noaction")
	}
	if pi := u.PoolInfo; pi != nil {
		same := pi.AutoPoolSpecification == nil && pi.PoolID != "" && lower(pi.PoolID) == j.poolKey
		if !same && j.wire.State != JobDisabled {
			return errConflict("OperationInvalidForCurrentState", "The pool of a job can be changed only while the job is disabled.")
		}
		if pi.PoolID == "" || pi.AutoPoolSpecification != nil {
			return errInvalidProperty("poolInfo", "", "the emulator moves a job only to another existing pool (poolId)")
		}
		if e := validID("poolInfo.poolId", pi.PoolID); e != nil {
			return e
		}
		if !same {
			s.unbindJob(j)
			j.wire.PoolInfo = &PoolInfo{PoolID: pi.PoolID}
			j.poolKey = lower(pi.PoolID)
			j.wire.ExecutionInfo.PoolID = pi.PoolID
			s.bindJob(j)
		}
	}
	switch {
	case u.Priority != nil:
		j.wire.Priority = u.Priority
	case replace:
		j.wire.Priority = int32Ptr(0)
	}
	switch {
	case u.AllowTaskPreemption != nil:
		j.wire.AllowTaskPreemption = u.AllowTaskPreemption
	case replace:
		j.wire.AllowTaskPreemption = boolPtr(false)
	}
	switch {
	case u.MaxParallelTasks != nil:
		j.wire.MaxParallelTasks = u.MaxParallelTasks
	case replace:
		j.wire.MaxParallelTasks = int32Ptr(-1)
	}
	if u.Constraints != nil || replace {
		j.wire.Constraints = jobConstraintDefaults(u.Constraints)
		s.armJobTimer(j)
	}
	if onAll != "" {
		j.wire.OnAllTasksComplete = onAll
	}
	if u.Metadata != nil || replace {
		j.wire.Metadata = u.Metadata
	}
	if j.pool != nil {
		j.pool.byPrio = nil
	}
	s.touchJob(j, now)
	s.checkAllCompleteLocked(j, now)
	s.dispatchLocked()
	return nil
}

func (s *Server) patchJob(c *call) (*response, *apiError) {
	var u JobUpdate
	if e := decodeBody(c.body, &u); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.unlockCommit()
	j, e := s.changeableJob(c)
	if e != nil {
		return nil, e
	}
	if e := s.updateJobLocked(j, &u, false, c.now); e != nil {
		return nil, e
	}
	return entityHeaders(reply(http.StatusOK, nil), j.wire.ETag, j.wire.LastModified), nil
}

// replaceJob is update (PUT). Its body is a BatchJob; only the properties
// an update may change are read, the read-only ones are ignored.
func (s *Server) replaceJob(c *call) (*response, *apiError) {
	var w Job
	if e := decodeBody(c.body, &w); e != nil {
		return nil, e
	}
	if w.PoolInfo == nil {
		return nil, errMissingProperty("poolInfo")
	}
	s.mu.Lock()
	defer s.unlockCommit()
	j, e := s.changeableJob(c)
	if e != nil {
		return nil, e
	}
	u := JobUpdate{Priority: w.Priority, AllowTaskPreemption: w.AllowTaskPreemption, MaxParallelTasks: w.MaxParallelTasks,
		Constraints: w.Constraints, PoolInfo: w.PoolInfo, OnAllTasksComplete: w.OnAllTasksComplete, Metadata: w.Metadata}
	if e := s.updateJobLocked(j, &u, true, c.now); e != nil {
		return nil, e
	}
	return entityHeaders(reply(http.StatusOK, nil), j.wire.ETag, j.wire.LastModified), nil
}

func (s *Server) deleteJob(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.unlockCommit()
	j, e := s.jobFor(c)
	if e != nil {
		return nil, e
	}
	if j.wire.State == JobDeleting {
		return nil, errJobState(j)
	}
	if e := conditions(c, j.wire.ETag, j.wire.LastModified, false); e != nil {
		return nil, e
	}
	s.setJobState(j, JobDeleting, c.now)
	for t := range j.running {
		if t.att != nil && t.att.cancel != nil {
			t.att.cancel(&stopCause{kind: stopForget, reason: "job deleted"})
		}
	}
	s.settleJobLocked(j, c.now)
	return reply(http.StatusAccepted, nil), nil
}

func (s *Server) terminateJob(c *call) (*response, *apiError) {
	var o JobTerminate
	if len(c.body) > 0 {
		if e := decodeBody(c.body, &o); e != nil {
			return nil, e
		}
	}
	s.mu.Lock()
	defer s.unlockCommit()
	j, e := s.changeableJob(c)
	if e != nil {
		return nil, e
	}
	reason := o.TerminateReason
	if reason == "" {
		reason = "UserTerminate"
	}
	s.terminateJobLocked(j, reason, c.now)
	return entityHeaders(reply(http.StatusAccepted, nil), j.wire.ETag, j.wire.LastModified), nil
}

func (s *Server) disableJob(c *call) (*response, *apiError) {
	var o JobDisable
	if e := decodeBody(c.body, &o); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.unlockCommit()
	j, e := s.changeableJob(c)
	if e != nil {
		return nil, e
	}
	if j.wire.State == JobEnabling {
		return nil, errConflict("JobNotActive", "The specified job is being enabled.")
	}
	s.disableJobLocked(j, *o.DisableTasks, c.now)
	return entityHeaders(reply(http.StatusAccepted, nil), j.wire.ETag, j.wire.LastModified), nil
}

func (s *Server) enableJob(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.unlockCommit()
	j, e := s.changeableJob(c)
	if e != nil {
		return nil, e
	}
	switch j.wire.State {
	case JobDisabled, JobDisabling, JobEnabling:
	default:
		return nil, errConflict("OperationInvalidForCurrentState", "The specified job is not disabled.")
	}
	s.setJobState(j, JobActive, c.now)
	s.bindJob(j)
	s.checkAllCompleteLocked(j, c.now)
	s.dispatchLocked()
	return entityHeaders(reply(http.StatusAccepted, nil), j.wire.ETag, j.wire.LastModified), nil
}

func (s *Server) taskCounts(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, e := s.jobFor(c)
	if e != nil {
		return nil, e
	}
	return reply(http.StatusOK, TaskCountsResult{TaskCounts: j.counts, TaskSlotCounts: j.slotCounts}), nil
}
