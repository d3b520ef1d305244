package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
)

// TestAzureBatchPoolSecretOnlyWhenSet: the job manager task gets the
// callback's secret variable only when bmc has a secret to give it. With
// the variable empty, the task is not given it (rather than given it
// empty), and the callback from the pool goes unsigned, as bmc warns;
// with a secret, the task gets it and signs the callback, and the secret
// shows in none of bmc's output and none of the run's files.
func TestAzureBatchPoolSecretOnlyWhenSet(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	for _, secret := range []string{"", "a-pool-secret-1234"} {
		t.Run("secret="+secret, func(t *testing.T) {
			t.Setenv("BMC_CALLBACK_SECRET", secret)
			hook := newHookEndpoint(t)
			state := filepath.Join(t.TempDir(), "state")
			code, out := f.batchRun(t, context.Background(), state, "--finalize-on", "pool", "--set", "callbackUrl="+hook.srv.URL+"/hook", "../../examples/hello.yaml")
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, out)
			}
			if warned := strings.Contains(out, "$BMC_CALLBACK_SECRET is empty or not set"); warned != (secret == "") {
				t.Errorf("warned of an unsigned callback: %v\n%s", warned, out)
			}
			id, dir := onlyRun(t, state)
			j, err := f.client.GetJob(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			var given []string
			for _, e := range j.JobManagerTask.EnvironmentSettings {
				if e.Name == "BMC_CALLBACK_SECRET" {
					given = append(given, e.Value)
				}
			}
			switch {
			case secret == "" && len(given) != 0:
				t.Errorf("the job manager task is given BMC_CALLBACK_SECRET=%q", given)
			case secret != "" && (len(given) != 1 || given[0] != secret):
				t.Errorf("the job manager task is given BMC_CALLBACK_SECRET %q, want the secret once", given)
			}
			nr, err := azurebatch.ReadNodeResult(t.Context(), f.client, id)
			if err != nil || nr.Callback == nil || !nr.Callback.Delivered {
				t.Fatalf("the finalize step on the pool: %+v, %v", nr, err)
			}
			calls := hook.received()
			if len(calls) != 1 {
				t.Fatalf("%d callbacks, want 1", len(calls))
			}
			sig, signed := calls[0].header["X-Bmc-Signature"]
			if secret == "" && signed {
				t.Errorf("the callback is signed: %q", sig)
			}
			if secret != "" {
				mac := hmac.New(sha256.New, []byte(secret))
				mac.Write(calls[0].body)
				if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); calls[0].header.Get("X-Bmc-Signature") != want {
					t.Errorf("X-Bmc-Signature %q, want %q", calls[0].header.Get("X-Bmc-Signature"), want)
				}
				if strings.Contains(out, secret) {
					t.Errorf("bmc's output shows the secret:\n%s", out)
				}
				filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
					if err == nil && d.Type().IsRegular() {
						if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
							t.Errorf("%s holds the secret", p)
						}
					}
					return nil
				})
			}
		})
	}
}

// heldHook is a callback endpoint that holds every callback until it is
// let go, then answers each one after with 200: it keeps the finalize
// step on the pool from finishing.
type heldHook struct {
	srv  *httptest.Server
	held chan struct{} // gets a value when a callback is held

	mu      sync.Mutex
	letGo   bool
	answers []hookCall
}

func newHeldHook(t *testing.T) *heldHook {
	h := &heldHook{held: make(chan struct{}, 8)}
	stop := make(chan struct{})
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		if !h.letGo {
			h.mu.Unlock()
			h.held <- struct{}{}
			select {
			case <-r.Context().Done(): // its sender went away
			case <-stop:
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h.answers = append(h.answers, hookCall{r.URL.RawQuery, r.Header.Clone(), b})
		h.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(func() {
		close(stop)
		h.srv.Close()
	})
	return h
}

func (h *heldHook) release() {
	h.mu.Lock()
	h.letGo = true
	h.mu.Unlock()
}

func (h *heldHook) answered() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookCall(nil), h.answers...)
}

// TestAzureBatchFinalizeHereAfterJobDisabled: the job is disabled by
// someone else while the finalize step on the pool runs (Batch puts its
// job manager task back in the queue, where a disabled job leaves it), so
// the client finalizes the run itself. Its --events stream says once that
// the finalize step started, and its run.json says the step ran here, and
// that it was to run on the pool.
func TestAzureBatchFinalizeHereAfterJobDisabled(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{KillGrace: 200 * time.Millisecond})
	hook := newHeldHook(t)
	spec := filepath.Join(f.dir, "moved.yaml")
	if err := os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: moved
params:
  hook: {}
tasks:
  - {id: one, run: "true"}
finalize:
  run: echo finalized
  callback: {url: "${{ params.hook }}/hook", secretEnv: BMC_CALLBACK_SECRET, timeout: 30s, retries: 0}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(f.dir, "state")
	events := filepath.Join(f.dir, "events.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out := f.batchRun(t, ctx, state, "--finalize-on", "pool", "--events", events, "--set", "hook="+hook.srv.URL, spec)
		done <- result{code, out}
	}()
	// The finalize step on the pool is held in its callback, and the
	// client waits for it.
	select {
	case <-hook.held:
	case r := <-done:
		t.Fatalf("bmc run ended before the pool's callback: exit %d\n%s", r.code, r.out)
	case <-ctx.Done():
		t.Fatal("the finalize step on the pool sent no callback")
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(readFile(t, events), `"type":"finalize-started"`) {
		select {
		case r := <-done:
			t.Fatalf("bmc run ended before it waited for the pool: exit %d\n%s", r.code, r.out)
		case <-ctx.Done():
			t.Fatal("bmc run never waited for the finalize step on the pool")
		case <-tick.C:
		}
	}
	id, dir := onlyRun(t, state)
	hook.release()
	if err := f.client.DisableJob(ctx, id, azurebatch.DisableRequeue); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("bmc run still waits after the job was disabled")
	}
	if r.code != 0 || !strings.Contains(r.out, "the job is ended and the finalize step runs here") {
		t.Fatalf("exit %d\n%s", r.code, r.out)
	}
	var types []string
	sc := bufio.NewScanner(strings.NewReader(readFile(t, events)))
	for sc.Scan() {
		var e executor.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("event %s: %v", sc.Bytes(), err)
		}
		if e.Type != executor.EventProgress && e.Type != executor.EventTaskStarted && e.Type != executor.EventTaskFinished {
			types = append(types, string(e.Type))
		}
	}
	if got, want := strings.Join(types, " "), "run-started finalize-started finalize-finished callback run-finished"; got != want {
		t.Errorf("events %s\nwant %s", got, want)
	}
	if calls := hook.answered(); len(calls) != 1 {
		t.Errorf("%d callbacks answered, want the client's", len(calls))
	}
	m, err := executor.ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Extra["finalizeOn"] != "client" || m.Extra["finalizePlanned"] != "pool" || m.Extra["finalizeMoved"] == "" || m.Extra["pool"] != confPool {
		t.Errorf("run.json extra %v: want the finalize step on the client, planned on the pool", m.Extra)
	}
	if code, out, serr := bmcRun(t, "logs", "--state-dir", state, id, "finalize"); code != 0 || out != "finalized\n" {
		t.Errorf("logs finalize: exit %d %q %s", code, out, serr)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}
