package azurebatch

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// NewAttached returns a backend that takes up a run an earlier bmc
// submitted and no longer follows (it was killed, or its machine
// restarted): Submit adds nothing, it reads the run's job and how its
// submission ended, and polls follow the job from there.
func NewAttached(opt BackendOptions) *Backend {
	b := newBackend(opt)
	b.attached = true
	return b
}

// cancelledReason is the reason Cancel ends a job with.
const cancelledReason = "bmc: run cancelled"

// ErrJobGone is the error of taking up a run whose job is not on Batch.
var ErrJobGone = errors.New("its job is not on Azure Batch: the bmc that started the run stopped before it made the job, or the job was deleted")

// attach reads the job of a run taken up. A submission the earlier bmc
// left unfinished (no mark on the job, which is still active) would never
// end by itself: it is given up as Submit gives up one Batch refuses: the
// job is stopped, the tasks that were added with it, and the run fails.
func (b *Backend) attach(ctx context.Context) error {
	// A cancel (bmc cancel takes a run up to stop it) must still find the
	// job.
	ctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer stop()
	j, err := b.c.GetJob(ctx, b.jobID)
	if err != nil {
		if IsNotFound(err) {
			b.created = false
			return fmt.Errorf("job %s: %w", b.jobID, ErrJobGone)
		}
		return fmt.Errorf("read the job: %w", err)
	}
	b.hasJM = j.JobManagerTask != nil
	if ei := j.ExecutionInfo; ei != nil && ei.TerminateReason == cancelledReason {
		// The gone bmc cancelled the run: the tasks its end stopped were
		// cancelled, not failed.
		b.external = true
	}
	switch metaValue(j.Metadata, MetaSubmitted) {
	case SubmittedAll:
		return nil
	case SubmittedFailed:
		b.learnFailure(ctx, j)
		return nil
	case SubmittedCancelled:
		b.external = true
		return nil
	}
	if j.State != JobStateActive {
		// Ended or stopped by someone: polls report the run stopped.
		b.external = true
		return nil
	}
	b.failSubmission(ctx, j.Metadata, errors.New("the bmc that submitted the run stopped before it had added every task"), false)
	return nil
}
