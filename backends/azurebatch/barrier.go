package azurebatch

// Barrier tasks that fail. A barrier runs only once every task it waits
// for has succeeded, so it fails only on its own account: its command
// cannot run (a container image without /bin/bash), its node failed it,
// or someone terminated it. Batch then blocks what waits behind it for
// ever, and the plan, which knows nothing of barriers, cannot tell the
// executor so. The backend tells it instead (PollResult.Blocked): the
// tasks behind the barrier are skipped, naming it as the root cause, and
// so is everything behind them, as behind a failed task. The rest of the
// run goes on, as Batch runs every task that does not depend on a
// failure (bmc's --keep-going, always on): tasks on other branches are
// neither stopped nor failed for it. The run is failed, as a run with
// skipped tasks is.
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

// MetaBarrierFailed is the job metadata naming the failed barrier an
// earlier bmc, which stopped the whole run for one, stopped the job for:
// "<barrier id>: <why it failed>". bmc no longer writes it; it reads a job
// so marked (a bmc for the pool from an older package may still stop one)
// as stopped for that failure: failed, not cancelled.
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

// checkBarriers finds what the barriers seen failed block, for the next
// poll to report (b.blocked), or learns that an earlier bmc stopped the
// job for one (MetaBarrierFailed). j is the job as this poll read it. A
// barrier terminated while the run is being cancelled or has ended is the
// cancellation's doing, not a failure. The job is left as it is.
func (b *Backend) checkBarriers(ctx context.Context, j *BatchJob) error {
	if b.stoppedFor != nil || b.cancelled || b.failure != nil {
		b.barrierFails = nil
		return nil
	}
	mark := metaValue(j.Metadata, MetaBarrierFailed)
	if mark == "" && len(b.barrierFails) == 0 {
		return nil
	}
	if mark == "" && slices.ContainsFunc(b.barrierFails, func(f barrierFailure) bool { return f.ended }) {
		// Read again: a cancellation (or another bmc's stop) that
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
	if b.blocked == nil {
		b.blocked = map[string]string{}
	}
	for id, why := range blocked {
		b.blocked[id] = why
	}
	if mark != "" {
		// The tasks the stop terminated were cancelled, not failed.
		first := fails[0]
		rs := &executor.RunStop{Why: ": the run stopped because " + first.why()}
		if len(fails) > 1 {
			rs.Why += fmt.Sprintf(" (and %d more barrier tasks)", len(fails)-1)
		}
		b.stoppedFor, b.external = rs, true
	}
	b.barrierFails = nil
	return nil
}

// takeBlocked is what the barriers block, found since the last poll.
func (b *Backend) takeBlocked() map[string]string {
	m := b.blocked
	b.blocked = nil
	return m
}

// blockedBehind are the plan's tasks that wait for the failed barriers,
// directly or through other barriers, by id, with why they never run:
// "skipped: upstream barrier task <id> failed: <why>".
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
					out[d] = "skipped: upstream " + f.why()
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
