package emulator

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Pool operations. Nodes appear as soon as a pool is created or grown
// (allocation is instant); shrinking marks nodes as leaving, and the pool
// stays resizing until they are idle and gone.

func poolSpecOf(pc *PoolCreate) *PoolSpecification {
	return &PoolSpecification{
		DisplayName: pc.DisplayName, VMSize: pc.VMSize, VirtualMachineConfiguration: pc.VirtualMachineConfiguration,
		TaskSlotsPerNode: pc.TaskSlotsPerNode, TaskSchedulingPolicy: pc.TaskSchedulingPolicy, ResizeTimeout: pc.ResizeTimeout,
		TargetDedicatedNodes: pc.TargetDedicatedNodes, TargetLowPriorityNodes: pc.TargetLowPriorityNodes,
		EnableAutoScale: pc.EnableAutoScale, AutoScaleFormula: pc.AutoScaleFormula,
		AutoScaleEvaluationInterval: pc.AutoScaleEvaluationInterval, EnableInterNodeCommunication: pc.EnableInterNodeCommunication,
		NetworkConfiguration: pc.NetworkConfiguration, StartTask: pc.StartTask,
		ApplicationPackageReferences: pc.ApplicationPackageReferences, UserAccounts: pc.UserAccounts,
		Metadata: pc.Metadata, MountConfiguration: pc.MountConfiguration, UpgradePolicy: pc.UpgradePolicy,
	}
}

func (s *Server) addPool(c *call) (*response, *apiError) {
	var pc PoolCreate
	if e := decodeBody(c.body, &pc); e != nil {
		return nil, e
	}
	if e := validID("id", *pc.ID); e != nil {
		return nil, e
	}
	if e := validDisplayName("displayName", pc.DisplayName); e != nil {
		return nil, e
	}
	if e := s.validPoolSpec("", poolSpecOf(&pc)); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.unlockCommit()
	if p := s.pools[lower(*pc.ID)]; p != nil {
		if p.wire.State == PoolDeleting {
			return nil, errConflict("PoolBeingDeleted", "The specified pool has been marked for deletion and is being reclaimed.")
		}
		return nil, errConflict("PoolExists", "The specified pool already exists.")
	}
	p := s.newPoolLocked(*pc.ID, poolSpecOf(&pc), c.now)
	return created(s.poolURL(p), p.wire.ETag, p.wire.LastModified), nil
}

// newPoolLocked creates a pool from a specification, sizes it and binds
// the jobs waiting for it.
func (s *Server) newPoolLocked(id string, ps *PoolSpecification, now time.Time) *pool {
	s.seq++
	w := Pool{
		ID: id, DisplayName: ps.DisplayName, CreationTime: newTime(now),
		State: PoolActive, StateTransitionTime: newTime(now),
		AllocationState: AllocationSteady, AllocationStateTransitionTime: newTime(now),
		VMSize: *ps.VMSize, VirtualMachineConfiguration: ps.VirtualMachineConfiguration,
		ResizeTimeout: ps.ResizeTimeout, TargetDedicatedNodes: ps.TargetDedicatedNodes,
		TargetLowPriorityNodes: ps.TargetLowPriorityNodes, EnableAutoScale: ps.EnableAutoScale,
		AutoScaleFormula: ps.AutoScaleFormula, AutoScaleEvaluationInterval: ps.AutoScaleEvaluationInterval,
		EnableInterNodeCommunication: ps.EnableInterNodeCommunication, NetworkConfiguration: ps.NetworkConfiguration,
		StartTask: ps.StartTask, ApplicationPackageReferences: ps.ApplicationPackageReferences,
		TaskSlotsPerNode: ps.TaskSlotsPerNode, TaskSchedulingPolicy: ps.TaskSchedulingPolicy,
		UserAccounts: ps.UserAccounts, Metadata: ps.Metadata, MountConfiguration: ps.MountConfiguration,
		UpgradePolicy: ps.UpgradePolicy, Identity: s.poolIdentity(),
	}
	fillPoolDefaults(&w)
	p := &pool{wire: w, key: lower(id), seq: s.seq, jobs: map[*job]struct{}{}}
	s.pools[p.key] = p
	s.touchPool(p, now)
	if w.EnableAutoScale != nil && *w.EnableAutoScale {
		s.recordAutoScaleRun(p, now)
	}
	s.sizePoolLocked(p, DeallocRequeue, now)
	for _, j := range s.jobs {
		if j.poolKey == p.key && (j.wire.State == JobActive || j.wire.State == JobDisabled || j.wire.State == JobDisabling) {
			s.bindJob(j)
		}
	}
	s.dispatchLocked()
	return p
}

// fillPoolDefaults sets what Batch reports for properties left out.
func fillPoolDefaults(w *Pool) {
	if w.TaskSlotsPerNode == nil {
		one := int32(1)
		w.TaskSlotsPerNode = &one
	}
	if w.TaskSchedulingPolicy == nil {
		spread := FillSpread
		w.TaskSchedulingPolicy = &TaskSchedulingPolicy{NodeFillType: &spread, JobDefaultOrder: "none"}
	}
	if w.EnableAutoScale == nil {
		f := false
		w.EnableAutoScale = &f
	}
	if *w.EnableAutoScale {
		if w.AutoScaleEvaluationInterval == nil {
			w.AutoScaleEvaluationInterval = durationPtr(15 * Duration(ticksPerMinute))
		}
	} else {
		zero := int32(0)
		if w.TargetDedicatedNodes == nil {
			w.TargetDedicatedNodes = &zero
		}
		if w.TargetLowPriorityNodes == nil {
			w.TargetLowPriorityNodes = &zero
		}
		if w.ResizeTimeout == nil {
			w.ResizeTimeout = durationPtr(15 * Duration(ticksPerMinute))
		}
	}
	if w.EnableInterNodeCommunication == nil {
		f := false
		w.EnableInterNodeCommunication = &f
	}
	if img := w.VirtualMachineConfiguration.ImageReference; img.Version == "" && img.Publisher != "" {
		img.Version = "latest"
	}
}

func (s *Server) poolURL(p *pool) string { return s.endpointURL() + "/pools/" + p.wire.ID }

func (s *Server) renderPool(p *pool) Pool {
	w := p.wire
	w.URL = s.poolURL(p)
	return w
}

// poolFor finds a pool, or answers 404.
func (s *Server) poolFor(c *call) (*pool, *apiError) {
	p := s.pools[lower(c.param("pool"))]
	if p == nil {
		return nil, errPoolNotFound()
	}
	return p, nil
}

func (s *Server) getPool(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.poolFor(c)
	if e != nil {
		return nil, e
	}
	if e := conditions(c, p.wire.ETag, p.wire.LastModified, true); e != nil {
		return nil, e
	}
	w := s.renderPool(p)
	sel, e := parseSelect(c, poolFields)
	if e != nil {
		return nil, e
	}
	applySelect(&w, sel)
	return entityHeaders(reply(http.StatusOK, w), p.wire.ETag, p.wire.LastModified), nil
}

func (s *Server) poolExists(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.poolFor(c)
	if e != nil {
		return nil, e
	}
	return entityHeaders(reply(http.StatusOK, nil), p.wire.ETag, p.wire.LastModified), nil
}

func (s *Server) listPools(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := make([]*pool, 0, len(s.pools))
	for _, p := range s.pools {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *pool) int { return cmp.Compare(a.seq, b.seq) })
	return listPage(c, ps, lister[*pool, Pool]{
		seq:    func(p *pool) int64 { return p.seq },
		wire:   func(p *pool) *Pool { return &p.wire },
		render: s.renderPool,
		fields: poolFields,
		props:  poolProps,
	})
}

func (s *Server) deletePool(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.unlockCommit()
	p, e := s.poolFor(c)
	if e != nil {
		return nil, e
	}
	if e := conditions(c, p.wire.ETag, p.wire.LastModified, false); e != nil {
		return nil, e
	}
	s.deletePoolLocked(p, c.now)
	return reply(http.StatusAccepted, nil), nil
}

// activePool finds a pool that operations may change, checking the
// request's conditional headers.
func (s *Server) activePool(c *call) (*pool, *apiError) {
	p, e := s.poolFor(c)
	if e != nil {
		return nil, e
	}
	if p.wire.State == PoolDeleting {
		return nil, errConflict("PoolBeingDeleted", "The specified pool has been marked for deletion and is being reclaimed.")
	}
	if e := conditions(c, p.wire.ETag, p.wire.LastModified, false); e != nil {
		return nil, e
	}
	return p, nil
}

func (s *Server) resizePool(c *call) (*response, *apiError) {
	var rz PoolResize
	if e := decodeBody(c.body, &rz); e != nil {
		return nil, e
	}
	if rz.TargetDedicatedNodes == nil && rz.TargetLowPriorityNodes == nil {
		return nil, errMissingProperty("targetDedicatedNodes")
	}
	if e := nodeCounts("", rz.TargetDedicatedNodes, rz.TargetLowPriorityNodes); e != nil {
		return nil, e
	}
	if d := rz.ResizeTimeout; d != nil && int64(*d) < minResizeTimeout {
		return nil, errInvalidProperty("resizeTimeout", d.String(), "the resize timeout must be at least 5 minutes")
	}
	s.mu.Lock()
	defer s.unlockCommit()
	p, e := s.activePool(c)
	if e != nil {
		return nil, e
	}
	if *p.wire.EnableAutoScale {
		return nil, errConflict("OperationInvalidForCurrentState", "The pool has automatic scaling enabled; disable it before resizing.")
	}
	if p.wire.AllocationState != AllocationSteady {
		return nil, errConflict("PoolBeingResized", "The specified pool is being resized.")
	}
	if rz.TargetDedicatedNodes != nil {
		p.wire.TargetDedicatedNodes = rz.TargetDedicatedNodes
	}
	if rz.TargetLowPriorityNodes != nil {
		p.wire.TargetLowPriorityNodes = rz.TargetLowPriorityNodes
	}
	if rz.ResizeTimeout != nil {
		p.wire.ResizeTimeout = rz.ResizeTimeout
	}
	dealloc := rz.NodeDeallocationOption
	if dealloc == "" {
		dealloc = DeallocRequeue
	}
	s.touchPool(p, c.now)
	s.sizePoolLocked(p, dealloc, c.now)
	s.dispatchLocked()
	return entityHeaders(reply(http.StatusAccepted, nil), p.wire.ETag, p.wire.LastModified), nil
}

func (s *Server) stopResizePool(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.unlockCommit()
	p, e := s.activePool(c)
	if e != nil {
		return nil, e
	}
	// Growing is instant, so only a shrink can be in progress; it is not
	// undone, as Batch does not return nodes that have begun to leave.
	return entityHeaders(reply(http.StatusAccepted, nil), p.wire.ETag, p.wire.LastModified), nil
}

func (s *Server) enableAutoScale(c *call) (*response, *apiError) {
	var o PoolEnableAutoScale
	if e := decodeBody(c.body, &o); e != nil {
		return nil, e
	}
	if e := validInterval("autoScaleEvaluationInterval", o.AutoScaleEvaluationInterval); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.unlockCommit()
	p, e := s.activePool(c)
	if e != nil {
		return nil, e
	}
	formula := strings.TrimSpace(o.AutoScaleFormula)
	if formula == "" {
		formula = p.wire.AutoScaleFormula
	}
	if formula == "" {
		return nil, errMissingProperty("autoScaleFormula")
	}
	t := true
	p.wire.EnableAutoScale = &t
	p.wire.AutoScaleFormula = formula
	if o.AutoScaleEvaluationInterval != nil {
		p.wire.AutoScaleEvaluationInterval = o.AutoScaleEvaluationInterval
	} else if p.wire.AutoScaleEvaluationInterval == nil {
		p.wire.AutoScaleEvaluationInterval = durationPtr(15 * Duration(ticksPerMinute))
	}
	p.wire.TargetDedicatedNodes, p.wire.TargetLowPriorityNodes, p.wire.ResizeTimeout = nil, nil, nil
	s.recordAutoScaleRun(p, c.now)
	s.touchPool(p, c.now)
	s.sizePoolLocked(p, DeallocRequeue, c.now)
	s.dispatchLocked()
	return entityHeaders(reply(http.StatusOK, nil), p.wire.ETag, p.wire.LastModified), nil
}

func (s *Server) disableAutoScale(c *call) (*response, *apiError) {
	s.mu.Lock()
	defer s.unlockCommit()
	p, e := s.activePool(c)
	if e != nil {
		return nil, e
	}
	f := false
	p.wire.EnableAutoScale = &f
	p.wire.AutoScaleFormula, p.wire.AutoScaleEvaluationInterval, p.wire.AutoScaleRun = "", nil, nil
	d, l := *p.wire.CurrentDedicatedNodes, *p.wire.CurrentLowPriorityNodes
	p.wire.TargetDedicatedNodes, p.wire.TargetLowPriorityNodes = &d, &l
	p.wire.ResizeTimeout = durationPtr(15 * Duration(ticksPerMinute))
	s.touchPool(p, c.now)
	return entityHeaders(reply(http.StatusOK, nil), p.wire.ETag, p.wire.LastModified), nil
}

// recordAutoScaleRun notes an evaluation of the formula. The emulator does
// not evaluate formulas: it reports the node counts it allocates.
func (s *Server) recordAutoScaleRun(p *pool, now time.Time) {
	d, l, _ := s.poolSize(p)
	p.wire.AutoScaleRun = &AutoScaleRun{Timestamp: newTime(now),
		Results: fmt.Sprintf("$TargetDedicatedNodes=%d;$TargetLowPriorityNodes=%d;$NodeDeallocationOption=requeue", d, l)}
}

func (s *Server) evaluateAutoScale(c *call) (*response, *apiError) {
	var o PoolEvaluateAutoScale
	if e := decodeBody(c.body, &o); e != nil {
		return nil, e
	}
	if e := nonEmpty("autoScaleFormula", o.AutoScaleFormula); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.activePool(c)
	if e != nil {
		return nil, e
	}
	if !*p.wire.EnableAutoScale {
		return nil, errConflict("OperationInvalidForCurrentState", "Automatic scaling is not enabled on the specified pool; enable it before evaluating a formula.")
	}
	d, l, _ := s.poolSize(p)
	run := AutoScaleRun{Timestamp: newTime(c.now),
		Results: fmt.Sprintf("$TargetDedicatedNodes=%d;$TargetLowPriorityNodes=%d;$NodeDeallocationOption=requeue", d, l)}
	return reply(http.StatusOK, run), nil
}
