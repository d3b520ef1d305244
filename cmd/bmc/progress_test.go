package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

func progressPlan(t *testing.T, n int) *planner.Plan {
	t.Helper()
	spec := "apiVersion: bmc/v1\nkind: Workload\nname: p\ntasks:\n  - {id: t, matrix: {i: [" + seqList(n) + "]}, run: x}\n"
	prog, diags := compiler.Compile("p.yaml", []byte(spec), compiler.Options{})
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	return planner.New(prog, planner.Capabilities{Name: "local", Slots: 2}, nil)
}

func TestPlainProgress(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, "plain", progressPlan(t, 3))
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	code := 3
	for _, e := range []executor.Event{
		{Type: executor.EventTaskStarted, Task: "t-1", Attempt: 1},
		{Type: executor.EventTaskRetrying, Task: "t-1", Attempt: 1, Reason: "exit code 3", ExitCode: &code},
		{Type: executor.EventTaskFinished, Task: "t-1", State: executor.Failed, Reason: "exit code 3"},
		{Type: executor.EventTaskSkipped, Task: "t-2", Reason: "skipped: upstream t-1 failed"},
		{Type: executor.EventProgress, Counts: executor.Counts{Total: 3, Failed: 1, Skipped: 1, Running: 1}},
		{Type: executor.EventCallback, State: executor.Succeeded},
	} {
		e.Time = now
		p.Event(e)
	}
	p.Close()
	want := []string{
		"03:04:05 started   t-1 (attempt 1)",
		"03:04:05 retrying  t-1: attempt 1 failed: exit code 3",
		"03:04:05 failed    t-1: exit code 3",
		"03:04:05 skipped   t-2: upstream t-1 failed",
		"03:04:05 progress  2/3 done (1 failed, 1 running, 1 skipped)",
		"03:04:05 callback  delivered",
	}
	if got := strings.TrimSpace(b.String()); got != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

// A big run's plain progress tells of what failed or was stopped, not of
// the tasks a cancelled run never started; nor does a reason's escape
// sequence reach the terminal.
func TestPlainProgressQuiet(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, "plain", progressPlan(t, 500))
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range []executor.Event{
		{Type: executor.EventTaskStarted, Task: "t-1", Attempt: 1},
		{Type: executor.EventTaskFinished, Task: "t-1", Attempt: 1, State: executor.Canceled, Reason: "cancelled: process group killed"},
		{Type: executor.EventTaskFinished, Task: "t-2", State: executor.Canceled, Reason: "cancelled before it started"},
		{Type: executor.EventTaskFinished, Task: "t-3", Attempt: 1, State: executor.Failed, Reason: "output k\x1b[31m\nFAKE: collides"},
	} {
		e.Time = now
		p.Event(e)
	}
	p.Close()
	want := []string{
		"03:04:05 cancelled t-1: cancelled: process group killed",
		`03:04:05 failed    t-3: output k\x1b[31m\nFAKE: collides`,
	}
	if got := strings.TrimSpace(b.String()); got != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

// A large run prints failures and progress lines, not every task.
func TestPlainProgressQuietForLargeRuns(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, "plain", progressPlan(t, 300))
	p.Event(executor.Event{Type: executor.EventTaskStarted, Task: "t-1", Attempt: 1})
	p.Event(executor.Event{Type: executor.EventTaskFinished, Task: "t-1", State: executor.Succeeded})
	p.Event(executor.Event{Type: executor.EventTaskFinished, Task: "t-2", State: executor.Failed, Reason: "exit code 1"})
	if got := b.String(); strings.Contains(got, "t-1") || !strings.Contains(got, "failed    t-2: exit code 1") {
		t.Errorf("output:\n%s", got)
	}
}

func TestBarsProgress(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, "bars", progressPlan(t, 2))
	p.Event(executor.Event{Type: executor.EventTaskStarted, Task: "t-1", Attempt: 1, Counts: executor.Counts{Total: 2, Running: 1}})
	p.Event(executor.Event{Type: executor.EventTaskFinished, Task: "t-1", State: executor.Failed, Reason: "exit code 9", Counts: executor.Counts{Total: 2, Failed: 1}})
	p.Event(executor.Event{Type: executor.EventTaskFinished, Task: "t-2", State: executor.Succeeded, Counts: executor.Counts{Total: 2, Failed: 1, Succeeded: 1}})
	p.Close()
	out := b.String()
	for _, w := range []string{"failed t-1: exit code 9", "2/2", "1 failed"} {
		if !strings.Contains(out, w) {
			t.Errorf("bars output lacks %q:\n%q", w, out)
		}
	}
}

// Past 12 running tasks, those without a line get one as lines free up:
// a long task started 13th is shown while it runs.
func TestBarsShowWaitingTasks(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, "bars", progressPlan(t, 14)).(*bars)
	for i := 1; i <= 14; i++ {
		p.Event(executor.Event{Type: executor.EventTaskStarted, Task: fmt.Sprintf("t-%d", i), Attempt: 1})
	}
	shown := func() []string {
		p.mu.Lock()
		defer p.mu.Unlock()
		ids := slices.Collect(maps.Keys(p.running))
		slices.Sort(ids)
		return ids
	}
	if got := shown(); len(got) != 12 || slices.Contains(got, "t-13") {
		t.Fatalf("shown %v, want t-1…t-12", got)
	}
	p.Event(executor.Event{Type: executor.EventTaskFinished, Task: "t-14", State: executor.Succeeded}) // ended unseen
	p.Event(executor.Event{Type: executor.EventTaskFinished, Task: "t-2", State: executor.Succeeded})
	if got := shown(); len(got) != 12 || !slices.Contains(got, "t-13") || slices.Contains(got, "t-2") || slices.Contains(got, "t-14") {
		t.Errorf("shown %v, want t-13 in t-2's place", got)
	}
	p.Close()
}

// errWriter fails every write, as stderr does once its reader is gone.
type errWriter struct{ writes int }

func (w *errWriter) Write(p []byte) (int, error) {
	w.writes++
	return 0, errors.New("broken pipe")
}

// Once a write of the progress display fails, it writes nothing more.
func TestProgressStopsAfterWriteError(t *testing.T) {
	for _, mode := range []string{"plain", "bars"} {
		t.Run(mode, func(t *testing.T) {
			w := &errWriter{}
			p := newProgress(w, mode, progressPlan(t, 3))
			for i := range 3 {
				id := fmt.Sprintf("t-%d", i)
				p.Event(executor.Event{Type: executor.EventTaskStarted, Task: id, Attempt: 1})
				p.Event(executor.Event{Type: executor.EventTaskFinished, Task: id, State: executor.Failed, Reason: "exit code 1"})
			}
			p.Close()
			if w.writes > 1 {
				t.Errorf("%d writes, want at most 1: the display goes on writing after an error", w.writes)
			}
		})
	}
}

// On a terminal the bars are redrawn in place: mpb is handed the terminal
// itself, and moves the cursor up over the last drawing. The display runs
// in a child process whose stderr is a pseudo-terminal, made by script(1).
func TestBarsProgressRedrawsInPlaceOnTerminal(t *testing.T) {
	if os.Getenv(barsTTYHelper) != "" {
		t.Skip("run by the test itself")
	}
	if runtime.GOOS != "linux" {
		t.Skip("needs util-linux script(1) for a pseudo-terminal")
	}
	script, err := exec.LookPath("script")
	if err != nil {
		// util-linux is on every CI image this runs on: missing there, it
		// is a broken image, not a reason to check nothing.
		if os.Getenv("CI") == "true" {
			t.Fatal("no script(1) (util-linux) to make a pseudo-terminal")
		}
		t.Skip("no script(1) (util-linux) to make a pseudo-terminal")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	// A pseudo-terminal made without one to copy has no size, and mpb
	// draws nothing on a terminal of no rows.
	cmd := exec.Command(script, "-qec", "stty rows 24 cols 100; "+quote(exe)+" -test.run='^TestBarsOnTerminalHelper$' -test.count=1", "/dev/null")
	cmd.Env = append(os.Environ(), barsTTYHelper+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%q", err, out)
	}
	if bytes.Contains(out, []byte("no terminal")) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("script(1) gave no terminal:\n%q", out)
		}
		t.Skipf("script(1) gave no terminal:\n%q", out)
	}
	// cursor up N lines, then erase down: the next drawing overwrites
	// the last one.
	if !regexp.MustCompile(`\x1b\[\d+A\x1b\[J`).Match(out) {
		t.Errorf("bars on a terminal are not redrawn in place (no cursor-up escapes):\n%q", out)
	}
}

const barsTTYHelper = "BMC_TEST_BARS_TTY_HELPER"

// TestBarsOnTerminalHelper draws bars to stderr, for
// TestBarsProgressRedrawsInPlaceOnTerminal, which runs it on a pseudo-terminal.
func TestBarsOnTerminalHelper(t *testing.T) {
	if os.Getenv(barsTTYHelper) == "" {
		t.Skip("run by TestBarsProgressRedrawsInPlaceOnTerminal")
	}
	if !isTerminal(os.Stderr) {
		fmt.Println("no terminal")
		return
	}
	p := newProgress(os.Stderr, "bars", progressPlan(t, 3))
	for i := range 3 {
		id := fmt.Sprintf("t-%d", i)
		p.Event(executor.Event{Type: executor.EventTaskStarted, Task: id, Attempt: 1, Counts: executor.Counts{Total: 3, Running: 1}})
		p.Event(executor.Event{Type: executor.EventTaskFinished, Task: id, State: executor.Failed, Reason: "exit code 1", Counts: executor.Counts{Total: 3, Failed: i + 1}})
	}
	p.Close()
}

// Anything but a terminal gets the bars through a writer that stops at
// the first failed write.
func TestBarsProgressOutputNotTerminal(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/progress.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range []io.Writer{f, &bytes.Buffer{}, &errWriter{}} {
		if _, ok := barsOutput(w).(*stopOnError); !ok {
			t.Errorf("bars drawn to %T without stopping at a failed write", w)
		}
	}
}

// An --events stream gets progress events whatever the display.
func TestProgressEvery(t *testing.T) {
	plan := progressPlan(t, 3)
	for _, c := range []struct {
		display, events string
		want            time.Duration
	}{
		{"none", "", 0},
		{"none", "events.jsonl", 10 * time.Second},
		{"plain", "", 10 * time.Second},
		{"plain", "-", 10 * time.Second},
	} {
		var b bytes.Buffer
		if got := progressEvery(newProgress(&b, c.display, plan), c.events); got != c.want {
			t.Errorf("display %s, events %q: every %v, want %v", c.display, c.events, got, c.want)
		}
	}
}

// TestBarsDoNotDeadlock: events come while the bars are being drawn, as
// fast as a sweep of short tasks makes them; neither side waits for the
// other for ever, and Close returns.
func TestBarsDoNotDeadlock(t *testing.T) {
	const n = 20000
	plan := progressPlan(t, n)
	b := newBars(io.Discard, plan, time.Millisecond)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= n; i++ {
			id := fmt.Sprintf("t-%d", i)
			b.Event(executor.Event{Type: executor.EventTaskStarted, Task: id, Attempt: 1, Counts: executor.Counts{Total: n, Running: 1, Succeeded: i - 1}})
			b.Event(executor.Event{Type: executor.EventTaskFinished, Task: id, State: executor.Succeeded, Counts: executor.Counts{Total: n, Succeeded: i}})
		}
		b.Close()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		buf := make([]byte, 1<<20)
		t.Fatalf("the bars and the events wait for each other:\n%s", buf[:runtime.Stack(buf, true)])
	}
}
