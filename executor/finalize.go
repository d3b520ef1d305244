package executor

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
)

// FinishOptions say how the finalize step and callback run.
type FinishOptions struct {
	// Secret signs the callback body; the CLI reads it from the
	// environment variable the spec names.
	Secret []byte
	// CallbackURL is the callback's URL when the spec gives it through an
	// environment variable (urlEnv); the CLI reads it at the run's start.
	CallbackURL string
	// SkipStep and SkipCallback are set on a resume when the finalize step
	// already succeeded, or the callback was already delivered, and no
	// task ran again since.
	SkipStep, SkipCallback bool
	Events                 Sink
	Now                    func() time.Time
}

// RunResult is a whole run's outcome.
type RunResult struct {
	Status      CallbackStatus
	Body        CallbackBody
	Finalize    *TaskOutcome
	Callback    *CallbackResult
	CallbackErr error
	// WriteErr is the first error writing the run summary or the
	// journal: the finalize step and the callback still ran, but the
	// run's record is incomplete, and the run failed.
	WriteErr error
}

// Final is the run's status as journaled, and as bmc runs and bmc status
// show it: Status, except that a run whose outcome could not be delivered
// failed, even when every task and the finalize step succeeded.
func (r *RunResult) Final() CallbackStatus {
	if (r.CallbackErr != nil || r.WriteErr != nil) && r.Status == CallbackSucceeded {
		return CallbackFailed
	}
	return r.Status
}

// SummaryFile is the run summary in a run directory, given to the finalize
// step as BMC_RUN_SUMMARY.
const SummaryFile = "summary.json"

// Summarize builds the callback body from the tasks' outcomes.
func Summarize(plan *planner.Plan, run *RunInfo, o *Outcome) CallbackBody {
	b := CallbackBody{
		Workload: plan.Workload, RunID: run.ID, Backend: plan.Backend,
		StartedAt: o.Started, FinishedAt: o.Finished,
		Failed: []CallbackFailedTask{}, Outputs: []CallbackOutput{},
	}
	for i, t := range o.Tasks {
		id := plan.Program.Tasks[i].ID
		b.Tasks.Total++
		switch t.State {
		case Succeeded:
			b.Tasks.Succeeded++
		case Failed:
			b.Tasks.Failed++
			b.Failed = append(b.Failed, CallbackFailedTask{ID: id, ExitCode: t.ExitCode, Reason: t.Reason, Attempts: t.Attempts})
		case Skipped:
			b.Tasks.Skipped++
		case Canceled:
			b.Tasks.Cancelled++
		}
		// Outputs gather every attempt's uploads: a location written by
		// two attempts (a when: failure output of a task retried) is one
		// entry.
		for k, loc := range t.Outputs {
			if !slices.Contains(t.Outputs[:k], loc) {
				b.Outputs = append(b.Outputs, CallbackOutput{Task: id, Location: loc})
			}
		}
	}
	switch {
	case o.Canceled:
		b.Status = CallbackCancelled
	case b.Tasks.Succeeded == b.Tasks.Total:
		b.Status = CallbackSucceeded
	default:
		b.Status = CallbackFailed
	}
	return b
}

// Finish runs the finalize step and sends the callback. It runs even when
// the run was cancelled: ctx should be a fresh context, not the run's.
func Finish(ctx context.Context, plan *planner.Plan, be Backend, run *RunInfo, j *Journal, o *Outcome, opts FinishOptions) (*RunResult, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	// Queued, not sent: a consumer that does not read holds up neither
	// the finalize step nor the callback.
	q := newEventQueue(run, opts.Events, now)
	defer q.close()
	emit := func(e Event) {
		if q != nil {
			e.Time, e.RunID, e.Counts = now(), run.ID, o.Counts
			q.Event(e)
		}
	}
	log := run.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	body := Summarize(plan, run, o)
	if t, ok := runStarted(j); ok {
		body.StartedAt = t
	}
	res := &RunResult{Status: body.Status}
	// A summary or journal that cannot be written (a full disk, a run
	// directory removed) fails the run, but takes neither the finalize
	// step nor the callback with it: the body is in memory. The body
	// itself says so from then on, in the summary and in the callback,
	// so that the run is reported failed everywhere: a receiver that
	// took "succeeded" would act on a run whose record is lost. why is
	// what the body's reason says: no local path, which the receiver
	// has no use for.
	writeFailed := func(what string, err error) {
		err = fmt.Errorf("%s: %w", what, err)
		log.Warn(err.Error())
		if res.WriteErr == nil {
			res.WriteErr = err
		}
	}
	recordLost := func(what, why string, err error) {
		writeFailed(what, err)
		if body.Reason == "" {
			body.Reason = why
		}
		if body.Status == CallbackSucceeded {
			body.Status = CallbackFailed
		}
	}
	summary := filepath.Join(run.Dir, SummaryFile)
	fin := &plan.Program.Finalize
	step := fin.HasStep() && !opts.SkipStep
	if step {
		// The finalize step reads the summary as it stands now. One that
		// cannot be put in the run directory is given from elsewhere,
		// and written there again below: if that works, nothing is lost.
		given := summary
		if err := writeJSON(summary, body); err != nil {
			log.Warn(fmt.Sprintf("write the run summary: %v", err))
			var terr error
			if given, terr = summaryElsewhere(body, log); given != "" {
				defer os.Remove(given)
			} else {
				recordLost("the finalize step gets no run summary", "the finalize step got no run summary: "+osReason(terr), terr)
			}
		}
		emit(Event{Type: EventFinalizeStarted, Task: compiler.FinalizeID})
		t := &compiler.Task{ID: compiler.FinalizeID, Run: fin.Run, Command: fin.Command, Env: fin.Env, Timeout: fin.Timeout, Inputs: fin.Inputs, Outputs: fin.Outputs, Slots: 1}
		t = fill(t, run.ID, run.Workload, run.Storage, 1)
		r := be.RunTask(ctx, &Attempt{Run: run, Task: t, Number: 1, Finalize: true, Summary: given})
		if r.State == "" {
			r.State = Failed
		}
		if r.State != Succeeded {
			// Listed with the failed tasks, or a run whose tasks all
			// succeeded would be reported failed with nothing to say why.
			// Its reason is taken before "cancelled" is trimmed off for
			// the lines that show the state beside it.
			body.Failed = append(body.Failed, CallbackFailedTask{ID: compiler.FinalizeID, ExitCode: r.ExitCode, Reason: cmp.Or(r.Reason, string(r.State)), Attempts: 1})
		}
		if r.State == Canceled {
			r.Reason = withoutCancelled(r.Reason)
		}
		res.Finalize = &TaskOutcome{State: r.State, Attempts: 1, ExitCode: r.ExitCode, Reason: r.Reason, Outputs: r.Outputs, Start: r.Start, End: r.End}
		rec := Record{Type: RecordFinalizeFinished, Task: compiler.FinalizeID, Attempt: 1, State: string(r.State), ExitCode: r.ExitCode, Reason: r.Reason}
		// The step's start goes with its end, for bmc status to show its
		// duration.
		rec.Data = mustJSON(FinalizeData{Start: r.Start, Outputs: r.Outputs})
		if j != nil {
			if err := j.Append(rec); err != nil {
				recordLost("journal", "the run's journal could not be written: "+osReason(err), err)
			}
		}
		emit(Event{Type: EventFinalizeFinished, Task: compiler.FinalizeID, State: r.State, ExitCode: r.ExitCode, Reason: r.Reason, Elapsed: r.End.Sub(r.Start)})
		for _, loc := range r.Outputs {
			body.Outputs = append(body.Outputs, CallbackOutput{Task: compiler.FinalizeID, Location: loc})
		}
		if r.State != Succeeded && body.Status == CallbackSucceeded {
			body.Status = CallbackFailed
		}
	}
	body.FinishedAt = now()
	if err := writeJSON(summary, body); err != nil {
		// What summary.json held before (an earlier session's, or the
		// one the step read) stays: the write replaces it whole or not
		// at all.
		recordLost("write the run summary", "the run summary ("+SummaryFile+") could not be written: "+osReason(err), err)
	}
	res.Status, res.Body = body.Status, body
	if cb := fin.Callback; cb != nil && (cb.URL != "" || cb.URLEnv != "") && !opts.SkipCallback {
		data, err := json.Marshal(body.sent())
		if err != nil {
			return nil, err
		}
		c := Callback{URL: fillString(cb.URL, run), Secret: opts.Secret, Timeout: cb.Timeout.D(), Retries: cb.Retries, Headers: fillHeaders(cb.Headers, run)}
		if cb.URLEnv != "" {
			c.URL, c.Name = opts.CallbackURL, "$"+cb.URLEnv
		}
		cr, err := SendCallback(ctx, c, run.ID, data, run.Log)
		res.Callback, res.CallbackErr = &cr, err
		if j != nil {
			if jerr := j.Append(Record{Type: RecordCallback, Data: mustJSON(cr)}); jerr != nil {
				writeFailed("journal", jerr)
			}
		}
		st := Succeeded
		reason := ""
		if err != nil {
			st, reason = Failed, err.Error()
		}
		emit(Event{Type: EventCallback, State: st, Reason: reason, Attempt: cr.Attempts, HTTPStatus: cr.Status})
	}
	final := res.Final()
	if j != nil {
		if err := j.Append(Record{Type: RecordRunFinished, State: string(final), Data: mustJSON(body.Tasks)}); err != nil {
			writeFailed("journal", err)
			final = res.Final()
		}
	}
	if res.WriteErr != nil {
		// A journal that failed once the callback was sent fails the run
		// all the same.
		res.Status = final
	}
	emit(Event{Type: EventRunFinished, State: State(final), Elapsed: now().Sub(o.Started)})
	return res, nil
}

// summaryElsewhere writes the run summary to a temporary file, for the
// finalize step of a run whose directory cannot be written, and returns
// its path; "" and why if that fails too.
func summaryElsewhere(body CallbackBody, log *slog.Logger) (string, error) {
	f, err := os.CreateTemp("", "bmc-summary-*.json")
	if err == nil {
		name := f.Name()
		f.Close()
		if err = writeJSON(name, body); err == nil {
			log.Warn("the finalize step gets the run summary from " + name)
			return name, nil
		}
		os.Remove(name)
	}
	return "", err
}

// osReason is what the operating system said of a failed file
// operation, without the operation and the path: "no space left on
// device".
func osReason(err error) string {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err.Error()
	case errors.As(err, &le):
		return le.Err.Error()
	case err == nil:
		return "unknown error"
	}
	return err.Error()
}

// FinalizeData is the data of a finalize-finished record.
type FinalizeData struct {
	Start   time.Time `json:"start,omitzero"`
	Outputs []string  `json:"outputs,omitempty"`
}

// runStarted is when the run first started: the time of the first record
// of its journal, which every session of the run appends to. A resumed run
// so reports the start it reported before, and the one bmc runs shows,
// rather than its last session's. ok is false when the journal does not
// tell.
func runStarted(j *Journal) (t time.Time, ok bool) {
	if j == nil {
		return t, false
	}
	f, err := os.Open(j.Path())
	if err != nil {
		return t, false
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if err != nil {
		return t, false
	}
	rec, err := decodeRecord(line[:len(line)-1])
	if err != nil || rec.Type != RecordRunStarted {
		return t, false
	}
	return rec.Time, true
}

func fillString(s string, run *RunInfo) string {
	t := fill(&compiler.Task{Run: s}, run.ID, run.Workload, run.Storage, 1)
	return t.Run
}

// fillHeaders returns the callback's headers with the run-time
// expressions in their values filled in.
func fillHeaders(h map[string]string, run *RunInfo) map[string]string {
	if h == nil {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = fillString(v, run)
	}
	return out
}

// TaskLogs is the location under a logs prefix (the spec's logs, or
// --logs) where a task's stdout.txt and stderr.txt go: <logs><run id>/<task>/
// with the prefix's run-time expressions filled in, so that runs do not
// overwrite each other's logs; or <logs><task>/ when the prefix names the
// run id itself, as in "az://logs/${{ run.id }}/", rather than twice.
func TaskLogs(logs string, run *RunInfo, task string) string {
	rel := run.ID + "/" + task + "/"
	if strings.Contains(logs, "${{ run.id }}") {
		rel = task + "/"
	}
	logs = fillString(logs, run)
	if !strings.HasSuffix(logs, "/") {
		logs += "/"
	}
	return logs + rel
}

// withoutCancelled is the reason of a cancelled finalize step without a
// leading "cancelled": it is shown after the state, as in "finalize
// cancelled: process group killed".
func withoutCancelled(reason string) string {
	if reason == string(Canceled) {
		return ""
	}
	return strings.TrimPrefix(reason, string(Canceled)+": ")
}

// writeJSON writes v to path atomically: readers see the old file or the
// new one, never half of one.
// WriteSummary writes a run's summary into its run directory, whole or
// not at all: a summary there before stays if this one cannot be
// written.
func WriteSummary(runDir string, body CallbackBody) error {
	return writeJSON(filepath.Join(runDir, SummaryFile), body)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
