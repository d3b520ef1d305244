package azurebatch

// Barrier tasks that fail. A barrier runs only once every task it waits
// for has succeeded, so it fails only on its own account: its command
// cannot run (a container image without /bin/bash), its node failed it,
// or someone terminated it. Batch then blocks what waits behind it for
// ever, and the plan, which knows nothing of barriers, cannot tell the
// executor so. The backend stops the run instead, as it stops one whose
// tasks it could not all submit: the tasks behind the barrier fail
// without running, naming it, and the rest are stopped; the run is
// failed, and a failed Batch run is run again whole, not in part.
//
// Polls cost nothing more for it: barriers come in the listings of the
// tasks that changed anyway, and only once one is seen failed are the
// job's waiting tasks read, once, to find what it blocks.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/redact"
)

// MetaBarrierFailed is the job metadata naming the failed barrier a bmc
// following the run stopped it for, "<barrier id>: <why it failed>", so
// that another (the finalize step on the pool, or the client) reads the
// stopped job as failed, not cancelled.
const MetaBarrierFailed = "bmc.barrierFailed"

// barrierFailure is a barrier task seen completed with a failure.
type barrierFailure struct {
	id, reason string
	// ended: it was terminated (failure TaskEnded), which a cancellation
	// does to the barriers running when it comes.
	ended bool
}

func (f barrierFailure) why() string { return "barrier task " + f.id + " failed: " + f.reason }

// noteBarrier keeps a listed barrier task that completed with a failure.
func (b *Backend) noteBarrier(t *BatchTask) {
	ei := t.ExecutionInfo
	if t.State != TaskStateCompleted || ei == nil || ei.Result == TaskResultSuccess || ei.Result == "" && ei.FailureInfo == nil {
		return
	}
	f := barrierFailure{id: t.ID, reason: b.reason(&compiler.Task{}, ei)}
	f.ended = ei.FailureInfo != nil && ei.FailureInfo.Code == "TaskEnded"
	b.barrierFails = append(b.barrierFails, f)
}

// checkBarriers stops the run for the barriers seen failed, or learns
// that another bmc following it did (the job's MetaBarrierFailed). j is
// the job as this poll read it. A barrier terminated while the run is
// being cancelled or has ended is the cancellation's doing, not a
// failure. The backend stops the job only if it drives the run.
func (b *Backend) checkBarriers(ctx context.Context, j *BatchJob) error {
	if b.blocked != nil || b.cancelled || b.failure != nil {
		b.barrierFails = nil
		return nil
	}
	mark := metaValue(j.Metadata, MetaBarrierFailed)
	if mark == "" && len(b.barrierFails) == 0 {
		return nil
	}
	if mark == "" && slices.ContainsFunc(b.barrierFails, func(f barrierFailure) bool { return f.ended }) {
		// Read again: a cancellation (or the other bmc's stop) that
		// terminated the barrier shows on the job now.
		j2, err := b.c.GetJob(ctx, b.jobID)
		if err != nil {
			return err
		}
		j = j2
		mark = metaValue(j.Metadata, MetaBarrierFailed)
	}
	var fails []barrierFailure
	if mark != "" {
		// Stopped for a barrier: the barriers its stop terminated are
		// not why.
		id, reason, _ := strings.Cut(mark, ": ")
		fails = append(fails, barrierFailure{id: id, reason: reason})
	}
	cancelled := b.external || j.State != JobStateActive
	for _, f := range b.barrierFails {
		if f.ended && (mark != "" || cancelled) || slices.ContainsFunc(fails, func(g barrierFailure) bool { return strings.EqualFold(g.id, f.id) }) {
			continue
		}
		fails = append(fails, f)
	}
	if len(fails) == 0 {
		b.barrierFails = nil
		return nil
	}
	if mark == "" {
		slices.SortFunc(fails, func(x, y barrierFailure) int { return strings.Compare(x.id, y.id) })
	}
	blocked, err := b.blockedBehind(ctx, fails)
	if err != nil {
		return err
	}
	first := fails[0]
	rs := &executor.RunStop{Why: ": the run stopped because " + first.why(), Failed: blocked}
	if len(fails) > 1 {
		rs.Why += fmt.Sprintf(" (and %d more barrier tasks)", len(fails)-1)
	}
	if b.driving && j.State == JobStateActive {
		// Marked first, so that whoever sees the job stopped sees why.
		if mark == "" {
			meta := append(slices.Clone(j.Metadata), BatchMetadataItem{Name: MetaBarrierFailed, Value: boundCause(first.id + ": " + first.reason)})
			if err := b.c.PatchJob(ctx, b.jobID, BatchJobUpdateOptions{Metadata: meta}); err != nil {
				b.log.Warn("marking the job stopped for a failed barrier did not work", "job", b.jobID, "err", err)
			}
		}
		b.log.Warn("a barrier task failed: stopping the run", "job", b.jobID, "barrier", first.id, "reason", first.reason)
		if err := b.stop(ctx, boundCause("bmc: "+first.why())); err != nil {
			return fmt.Errorf("stop the run blocked behind %s: %w", first.why(), err)
		}
	}
	// The tasks the stop terminates were cancelled, not failed.
	b.blocked, b.external, b.barrierFails = rs, true, nil
	return nil
}

// blockedBehind are the plan's tasks that wait for the failed barriers,
// directly or through other barriers, by id, with why they never run.
// They are among the job's active tasks, which are read once, with their
// dependencies.
func (b *Backend) blockedBehind(ctx context.Context, fails []barrierFailure) (map[string]string, error) {
	dependents := map[string][]string{} // lower-case id -> the active tasks waiting for it
	b.count(func(s *PollStats) { s.ListRequests++ })
	for t, err := range b.c.ListTasks(ctx, b.jobID, ListOptions{Filter: "state eq 'active'", Select: "id,dependsOn"}) {
		if err != nil {
			return nil, err
		}
		b.count(func(s *PollStats) { s.Listed++ })
		if t.DependsOn == nil {
			continue
		}
		for _, d := range t.DependsOn.TaskIDs {
			k := strings.ToLower(d)
			dependents[k] = append(dependents[k], t.ID)
		}
	}
	out := map[string]string{}
	seen := map[string]bool{}
	for _, f := range fails {
		stack := []string{f.id}
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, d := range dependents[strings.ToLower(id)] {
				if seen[strings.ToLower(d)] {
					continue
				}
				seen[strings.ToLower(d)] = true
				if _, ok := b.idx[d]; ok {
					// Its own dependents the executor skips behind it.
					out[d] = "blocked: " + f.why()
				} else if IsBarrier(d) {
					stack = append(stack, d)
				}
			}
		}
	}
	return out, nil
}

// boundCause is a reason as job metadata keeps it: without secrets, and
// no longer than maxSubmitCause.
func boundCause(s string) string {
	s = redact.String(s)
	if len(s) > maxSubmitCause {
		s = strings.ToValidUTF8(s[:maxSubmitCause], "") + "…"
	}
	return s
}
