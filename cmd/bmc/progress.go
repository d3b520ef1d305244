package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progress draws a run's events: live bars on a terminal, plain lines in
// CI logs. It is the executor's event sink; it never blocks the run.
type progress interface {
	executor.Sink
	Interval() time.Duration
	Close()
}

func newProgress(w io.Writer, mode string, plan *planner.Plan) progress {
	if mode == "auto" {
		mode = "plain"
		if f, ok := w.(*os.File); ok && isTerminal(f) && os.Getenv("CI") == "" {
			mode = "bars"
		}
	}
	switch mode {
	case "bars":
		return newBars(barsOutput(w), plan, barsRefresh)
	case "none":
		return noProgress{}
	}
	return &plain{w: &stopOnError{w: w}, verbose: plan.ToRun <= 200, last: time.Now()}
}

// barsOutput is what the bars are drawn to. A terminal is handed to mpb
// as itself: mpb redraws the bars in place only on a file it finds to be
// a terminal, and appends each redraw as new lines to anything else. mpb
// stops drawing after a failed write of its own. Anything else is wrapped
// so that it is written to until a write fails, and then no more.
func barsOutput(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		return f
	}
	return &stopOnError{w: w}
}

// stopOnError writes to w until a write fails (stderr closed, or a pipe
// whose reader is gone), and then nothing more: progress is not worth an
// error per event, nor a retry into a broken stream.
type stopOnError struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (s *stopOnError) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return len(p), nil
	}
	if _, err := s.w.Write(p); err != nil {
		s.err = err
	}
	return len(p), nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// noProgress draws nothing.
type noProgress struct{}

func (noProgress) Event(executor.Event)    {}
func (noProgress) Interval() time.Duration { return 0 }
func (noProgress) Close()                  {}

// progressEvery is how often a progress event is sent: as often as the
// display wants one, and every 10 s for an --events stream whatever the
// display, so that what a consumer gets does not depend on the terminal.
func progressEvery(d progress, events string) time.Duration {
	if iv := d.Interval(); iv > 0 || events == "" {
		return iv
	}
	return 10 * time.Second
}

// plain writes a line per state change (for runs of up to 200 tasks; for
// larger ones, failures and retries only) and a summary line every 10s,
// the way CI logs read well.
type plain struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool
	last    time.Time
}

func (p *plain) Interval() time.Duration { return 10 * time.Second }
func (p *plain) Close()                  {}

func (p *plain) Event(e executor.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := ""
	switch e.Type {
	case executor.EventTaskStarted:
		if p.verbose {
			line = fmt.Sprintf("started   %s (attempt %d)", e.Task, e.Attempt)
		}
	case executor.EventTaskFinished:
		// Quiet, a task is told of when it failed or was stopped, not
		// when a cancelled run never started it (thousands, in a sweep).
		if p.verbose || e.State != executor.Succeeded && (e.State != executor.Canceled || e.Attempt > 0) {
			line = fmt.Sprintf("%-9s %s", e.State, e.Task)
			if e.Reason != "" {
				line += ": " + e.Reason
			}
			if e.Elapsed > 0 {
				line += fmt.Sprintf(" [%s]", e.Elapsed.Round(time.Millisecond))
			}
		}
	case executor.EventTaskRetrying:
		line = fmt.Sprintf("retrying  %s: attempt %d failed: %s", e.Task, e.Attempt, e.Reason)
	case executor.EventTaskSkipped:
		if p.verbose {
			line = fmt.Sprintf("skipped   %s: %s", e.Task, strings.TrimPrefix(e.Reason, "skipped: "))
		}
	case executor.EventFinalizeStarted:
		line = "finalize  started"
	case executor.EventFinalizeFinished:
		line = fmt.Sprintf("finalize  %s", e.State)
		if e.Reason != "" {
			line += ": " + e.Reason
		}
	case executor.EventCallback:
		line = "callback  delivered"
		if e.State != executor.Succeeded {
			line = "callback  failed: " + e.Reason
		}
	case executor.EventProgress:
		c := e.Counts
		line = fmt.Sprintf("progress  %d/%d done (%d failed, %d running, %d skipped)", c.Done(), c.Total, c.Failed, c.Running, c.Skipped)
	}
	if line != "" {
		fmt.Fprintf(p.w, "%s %s\n", e.Time.Format("15:04:05"), terminalSafe(line))
	}
}

// bars draws an overall bar and one line per running task with its
// elapsed time.
type bars struct {
	mu      sync.Mutex
	p       *mpb.Progress
	total   *mpb.Bar
	running map[string]*mpb.Bar
	waiting []started // running, without a line yet
	// counts are read by the total bar's decorator, which mpb calls as
	// it draws, while Event, holding mu, waits for mpb: it must not take
	// mu, or each waits for the other for ever.
	counts  atomic.Pointer[executor.Counts]
	closed  bool
	nameCol decor.WC // the name column's width, the same on every line
}

// nameWidth is the width of the bars' name column: the workload's name or
// the longest task line ("  " and the id), whichever is wider, up to 48.
func nameWidth(plan *planner.Plan) int {
	w := len(plan.Workload)
	for _, t := range plan.Program.Tasks {
		w = max(w, 2+len(t.ID))
		if w >= 48 {
			return 48
		}
	}
	return max(w, len(compiler.FinalizeID)+2)
}

func newBars(w io.Writer, plan *planner.Plan, refresh time.Duration) *bars {
	b := &bars{running: map[string]*mpb.Bar{}}
	// The name column has a width of its own, not one mpb syncs between
	// bars: a sync waits for every bar that was there when it began, and
	// task lines come and go faster than that (the bars froze, and bmc
	// with them).
	b.nameCol = decor.WC{W: nameWidth(plan), C: decor.DindentRight | decor.DextraSpace}
	b.p = mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithWidth(40), mpb.WithRefreshRate(refresh))
	b.total = b.p.AddBar(int64(plan.Tasks),
		mpb.PrependDecorators(decor.Name(plan.Workload, b.nameCol), decor.CountersNoUnit("%d/%d")),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			var c executor.Counts
			if p := b.counts.Load(); p != nil {
				c = *p
			}
			return fmt.Sprintf("%d running, %d failed, %d skipped", c.Running, c.Failed, c.Skipped)
		}), decor.Elapsed(decor.ET_STYLE_GO, decor.WC{C: decor.DextraSpace})),
	)
	b.total.SetCurrent(int64(plan.Tasks - plan.ToRun))
	return b
}

func (b *bars) Interval() time.Duration { return 0 }

func (b *bars) Event(e executor.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	c := e.Counts
	b.counts.Store(&c)
	switch e.Type {
	case executor.EventTaskStarted, executor.EventFinalizeStarted:
		if _, ok := b.running[e.Task]; ok || slices.ContainsFunc(b.waiting, func(w started) bool { return w.id == e.Task }) {
			return
		}
		start := e.Time
		if start.IsZero() {
			start = time.Now()
		}
		if len(b.running) >= maxBars {
			// Shown once a line is free: the longest running come first.
			b.waiting = append(b.waiting, started{e.Task, start})
			return
		}
		b.show(e.Task, start)
	case executor.EventTaskFinished, executor.EventTaskRetrying, executor.EventFinalizeFinished:
		if bar, ok := b.running[e.Task]; ok {
			bar.SetCurrent(1)
			delete(b.running, e.Task)
			if len(b.waiting) > 0 {
				next := b.waiting[0]
				b.waiting = b.waiting[1:]
				b.show(next.id, next.at)
			}
		} else {
			b.waiting = slices.DeleteFunc(b.waiting, func(w started) bool { return w.id == e.Task })
		}
		if e.Type == executor.EventTaskFinished {
			b.total.Increment()
			if e.State == executor.Failed {
				fmt.Fprintf(b.p, "failed %s: %s\n", e.Task, terminalSafe(e.Reason))
			}
		}
	case executor.EventTaskSkipped:
		b.total.Increment()
	}
}

// barsRefresh is how often the bars are drawn again.
const barsRefresh = 150 * time.Millisecond

// maxBars is how many running tasks have a line of their own.
const maxBars = 12

// started is a running task waiting for a line, and when it started.
type started struct {
	id string
	at time.Time
}

// show gives a running task a line, with the time since it started.
func (b *bars) show(id string, start time.Time) {
	// Add, not New, which panics once mpb has stopped after a failed
	// write to the terminal.
	bar, err := b.p.Add(1, mpb.NopStyle().Build(),
		mpb.PrependDecorators(decor.Name("  "+id, b.nameCol)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return time.Since(start).Round(time.Second).String() })),
		mpb.BarRemoveOnComplete())
	if err != nil {
		return
	}
	b.running[id] = bar
}

func (b *bars) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	ids := make([]string, 0, len(b.running))
	for id := range b.running {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		b.running[id].Abort(true)
	}
	b.total.SetTotal(-1, true)
	b.mu.Unlock()
	b.p.Wait()
}
