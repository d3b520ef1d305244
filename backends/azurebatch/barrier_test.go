package azurebatch

// A barrier task that fails: Batch blocks what waits behind it for ever,
// and the plan knows nothing of barriers, so the backend must end the run
// itself. The tasks behind the barrier fail without running, naming it,
// their dependents are skipped, and the run, stopped, reads failed, for
// the client that follows it and for the finalize step on the pool.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// barrierProg is a group of n tasks, a task behind the whole group, and
// one behind that: with a small dependency limit, the group's members
// reach gather through barriers.
func barrierProg(name string, n int) *compiler.Program {
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: name, Pool: &compiler.Pool{ID: "p"}}
	g := compiler.Group{ID: "work"}
	for i := range n {
		id := "work-" + strconv.Itoa(i)
		prog.Tasks = append(prog.Tasks, compiler.Task{ID: id, Group: "work", Run: "true", Slots: 1})
		g.Members = append(g.Members, id)
	}
	prog.Tasks = append(prog.Tasks,
		compiler.Task{ID: "gather", Run: "true", Slots: 1, DependsOnGroups: []string{"work"}},
		compiler.Task{ID: "tail", Run: "true", Slots: 1, DependsOn: []string{"gather"}},
	)
	prog.Groups = []compiler.Group{g}
	return prog
}

// rewritingClient is a client of the emulator whose add-collection
// requests have the command line of task id replaced by cmd, as a pool
// whose image cannot run the barrier's command would have it fail; the
// request is signed again. rewritten counts the replacements.
func rewritingClient(t *testing.T, e *emu, id, cmd string) (*Client, *atomic.Int32) {
	t.Helper()
	cred, err := NewSharedKeyCredential(e.s.Account(), e.s.Key())
	if err != nil {
		t.Fatal(err)
	}
	var rewritten atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/addtaskcollection") {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			var group struct {
				Value []map[string]any `json:"value"`
			}
			if err := json.Unmarshal(body, &group); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			for _, tk := range group.Value {
				if tk["id"] == id {
					tk["commandLine"] = cmd
					rewritten.Add(1)
				}
			}
			if body, err = json.Marshal(group); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			r.Header.Set("Content-Length", strconv.Itoa(len(body)))
			cred.Sign(r, time.Now())
		}
		e.srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	c, err := New(front.URL, cred, Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 20 * time.Millisecond, MaxRetries: 10})
	if err != nil {
		t.Fatal(err)
	}
	return c, &rewritten
}

// guard bounds a run that would otherwise wait for ever: it is cancelled,
// and the test fails on its outcome rather than by the test binary's
// timeout.
func guard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func outcomes(prog *compiler.Program, o *executor.Outcome) map[string]executor.TaskOutcome {
	m := map[string]executor.TaskOutcome{}
	for i, pt := range prog.Tasks {
		m[pt.ID] = o.Tasks[i]
	}
	return m
}

// TestBarrierEndedByCancel: a barrier terminated by a cancellation (the
// job disabled, its running tasks terminated) is not a failure: the poll
// reports the run cancelled, and stops nothing itself.
func TestBarrierEndedByCancel(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	e.pool(t, "p", 2, 4)
	prog := barrierProg("barrier-cancel", 30)
	prog.Tasks[0].Run = "sleep 60"
	bar := barrierID("g-work", 0, 0)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "barrier-cancel-run", Workload: prog.Name, Dir: t.TempDir()}
	be := NewBackend(BackendOptions{Client: e.c, DependencyChars: 100})
	ctx := t.Context()
	if err := be.Submit(ctx, plan, run); err != nil {
		t.Fatal(err)
	}
	// The barrier waits for work-0, which sleeps.
	if err := e.c.DisableJob(ctx, run.ID, DisableWait); err != nil {
		t.Fatal(err)
	}
	if err := e.c.TerminateTask(ctx, run.ID, bar); err != nil {
		t.Fatal(err)
	}
	res, err := be.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != nil || !res.Cancelled {
		t.Errorf("stopped %+v, cancelled %v: want the run cancelled", res.Stopped, res.Cancelled)
	}
	j, err := e.c.GetJob(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m := metaValue(j.Metadata, MetaBarrierFailed); m != "" || j.State != JobStateDisabled && j.State != JobStateDisabling {
		t.Errorf("job %s, %s = %q", j.State, MetaBarrierFailed, m)
	}
	if err := be.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
}
