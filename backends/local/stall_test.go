package local

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
)

// stallServer answers /headers-then-stall with headers and some bytes of
// a longer body, and /no-answer with nothing at all; both then wait until
// the test ends or the client goes. sent is told once bytes are out.
func stallServer(t *testing.T) (srv *httptest.Server, sent chan struct{}) {
	release := make(chan struct{})
	sent = make(chan struct{}, 1)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/headers-then-stall" {
			w.Header().Set("Content-Length", "1000")
			w.Write([]byte("some bytes"))
			w.(http.Flusher).Flush()
			select {
			case sent <- struct{}{}:
			default:
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	// Registered after srv.Close would be, so run before it: Close waits
	// for the handlers.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv, sent
}

// TestStalledInputFails: an https input whose server stops sending, or
// never answers, fails once nothing has come for the stall limit, and
// says so; there is no limit on the whole transfer.
func TestStalledInputFails(t *testing.T) {
	if c := New(Options{}).opts.HTTP; c.Timeout != 0 {
		t.Errorf("the default client gives up every download after %v, however steadily it goes", c.Timeout)
	}
	srv, _ := stallServer(t)
	f := newFixture(t, Options{Stall: 100 * time.Millisecond})
	for _, tt := range []struct{ path, says string }{
		{"/headers-then-stall", "no data received for 100ms"},
		{"/no-answer", "no response for 100ms"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			id := strings.Trim(tt.path, "/")
			res := f.runTask(t, &compiler.Task{ID: id, Run: "touch marker", Inputs: []compiler.Input{
				{From: srv.URL + tt.path + "?sig=secret", Kind: compiler.InputHTTP, Path: "in.dat"},
			}}, 1)
			checkState(t, res, executor.Failed)
			if !strings.Contains(res.Reason, "stalled") || !strings.Contains(res.Reason, tt.says) || !strings.Contains(res.Reason, srv.URL+tt.path) {
				t.Errorf("reason %q does not say the transfer of %s stalled (%s)", res.Reason, tt.path, tt.says)
			}
			if strings.Contains(res.Reason, "secret") {
				t.Errorf("reason %q leaks the query string", res.Reason)
			}
			if exists(f.wd(id) + "/marker") {
				t.Error("the command ran though its input stalled")
			}
		})
	}
}

// TestCancelStopsStalledInput: cancelling the run stops a download at
// once, however long the stall limit.
func TestCancelStopsStalledInput(t *testing.T) {
	srv, sent := stallServer(t)
	f := newFixture(t, Options{Stall: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan executor.Result)
	go func() {
		done <- f.be.RunTask(ctx, &executor.Attempt{Run: f.run, Number: 1, Task: &compiler.Task{ID: "c", Run: "true", Inputs: []compiler.Input{
			{From: srv.URL + "/headers-then-stall", Kind: compiler.InputHTTP, Path: "in.dat"},
		}}})
	}()
	<-sent
	cancel()
	checkState(t, <-done, executor.Canceled)
}
