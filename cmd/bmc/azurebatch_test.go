package main

// The azurebatch backend end to end: bmc run --backend azurebatch against
// the project's Batch emulator (in this process, on loopback) with blobs
// in Azurite, the finalize step on the pool as the job manager task (this
// test binary, staged as bmc, runs it). The conformance test runs every
// example on both backends and compares what they leave.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/blobstage"
)

const confPool = "bmc-conf"

// fixtureIdentity is the managed identity the emulator gives the
// fixture's pools, and runs name with --pool-identity: the finalize step
// on the pool reaches Batch with it.
const fixtureIdentity = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bmc"

type batchFixture struct {
	// identity is passed as --pool-identity; empty for a run that names
	// no pool identity.
	identity string
	cs       string
	client   *azurebatch.Client
	store    *blobstage.Azure
	hook     *hookEndpoint
	dir      string
	faults   atomic.Int64 // injected faults answered
}

// newBatchFixture starts Azurite and an emulator using it, points the
// environment at both, and creates the pool runs use.
func newBatchFixture(t *testing.T, o emulator.Options) *batchFixture {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Azurite and the Batch emulator")
	}
	cs := azurite.Start(t)
	o.StorageConnectionString = cs
	if o.PoolIdentity == "" {
		o.PoolIdentity = fixtureIdentity
	}
	if o.Nodes == 0 {
		o.Nodes, o.SlotsPerNode = 2, 4
	}
	s, err := emulator.New(o)
	if err != nil {
		t.Fatal(err)
	}
	f := &batchFixture{}
	// Every answer that is an injected fault (a throttle, a server error,
	// a dropped connection) is counted.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				f.faults.Add(1)
				panic(p)
			}
			if sw.code == http.StatusTooManyRequests || sw.code == http.StatusServiceUnavailable || sw.code == http.StatusInternalServerError {
				f.faults.Add(1)
			}
		}()
		s.Handler().ServeHTTP(sw, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	for _, k := range []string{"AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_URL", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"} {
		t.Setenv(k, "")
	}
	t.Setenv("AZURE_BATCH_ENDPOINT", srv.URL)
	t.Setenv("AZURE_BATCH_ACCOUNT", s.Account())
	t.Setenv("AZURE_BATCH_ACCESS_KEY", s.Key())
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", cs)
	t.Setenv("BMC_CALLBACK_SECRET", "conformance-secret")
	c, err := azurebatch.FromEnv(azurebatch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = c.CreatePool(t.Context(), azurebatch.BatchPoolCreateOptions{
		ID: confPool, VMSize: "Standard_D4s_v5", TaskSlotsPerNode: azurebatch.Ptr(int32(4)), TargetDedicatedNodes: azurebatch.Ptr(int32(2)),
		VirtualMachineConfiguration: &azurebatch.VirtualMachineConfiguration{NodeAgentSKUID: "batch.node.ubuntu 24.04",
			ImageReference: azurebatch.BatchVMImageReference{Publisher: "canonical", Offer: "ubuntu-24_04-lts", SKU: "server", Version: "latest"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := blobstage.NewFromConnectionString(cs, blobstage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.cs, f.client, f.store, f.hook, f.dir, f.identity = cs, c, store, newHookEndpoint(t), t.TempDir(), o.PoolIdentity
	return f
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// batchRun runs bmc run --backend azurebatch in this process.
func (f *batchFixture) batchRun(t *testing.T, ctx context.Context, state string, args ...string) (int, string) {
	t.Helper()
	base := []string{"run", "--backend", "azurebatch", "--pool", confPool, "--poll-interval", "100ms", "--state-dir", state, "--progress", "plain"}
	if f.identity != "" {
		base = append(base, "--pool-identity", f.identity)
	}
	var stdout, stderr strings.Builder
	code := run(ctx, append(base, args...), strings.NewReader(""), &stdout, &stderr)
	return code, stderr.String() + stdout.String()
}

func onlyRun(t *testing.T, state string) (string, string) {
	t.Helper()
	ids, err := executor.ListRunIDs(state)
	if err != nil || len(ids) != 1 {
		t.Fatalf("runs in %s: %v (%v)", state, ids, err)
	}
	return ids[0], filepath.Join(executor.RunsDir(state), ids[0])
}

var stamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)

// normalize makes two runs' texts comparable: run ids, times and the
// backend's name vary.
func normalizeRun(s, runID string) string {
	s = strings.ReplaceAll(s, runID, "RUN")
	s = stamp.ReplaceAllString(s, "TIME")
	for _, b := range []string{`"backend": "local"`, `"backend": "azurebatch"`, `"backend":"local"`, `"backend":"azurebatch"`} {
		s = strings.ReplaceAll(s, b, `"backend": "B"`)
	}
	return s
}

// leftBehind is what a run leaves that both backends must agree on.
type leftBehind struct {
	Exit     int
	Tasks    map[string]executor.TaskState
	Finalize executor.State
	Body     string
	Outputs  map[string]string // location/relative path -> content
}

func (f *batchFixture) collect(t *testing.T, exit int, dir, runID string) leftBehind {
	t.Helper()
	st, err := executor.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	lb := leftBehind{Exit: exit, Tasks: map[string]executor.TaskState{}, Outputs: map[string]string{}}
	for id, ts := range st.Tasks {
		c := *ts
		c.Start, c.LastStart, c.End = time.Time{}, time.Time{}, time.Time{}
		for i, o := range c.Outputs {
			c.Outputs[i] = normalizeRun(o, runID)
		}
		lb.Tasks[id] = c
	}
	if st.Finalize != nil {
		lb.Finalize = st.Finalize.State
	}
	b, err := os.ReadFile(filepath.Join(dir, executor.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var body executor.CallbackBody
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	nb, _ := json.MarshalIndent(body, "", "  ")
	lb.Body = normalizeRun(string(nb), runID)
	for _, o := range body.Outputs {
		loc, err := blobstage.ParseURL(o.Location)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "out")
		if _, err := f.store.Download(t.Context(), loc, dst); err != nil {
			t.Errorf("output %s of %s: %v", o.Location, o.Task, err)
			continue
		}
		for rel, content := range readTree(t, dst) {
			lb.Outputs[normalizeRun(o.Location, runID)+"|"+rel] = normalizeRun(content, runID)
		}
	}
	return lb
}

func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() {
		b, _ := os.ReadFile(root)
		out["."] = string(b)
		return out
	}
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			out[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	return out
}

// noSecrets fails if a SAS signature or an account key shows in text.
func noSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, m := range regexp.MustCompile(`(?i)sig=[^&\s"']*`).FindAllString(text, -1) {
		if !strings.EqualFold(m, "sig=REDACTED") {
			t.Errorf("%s shows a SAS signature: %s", what, m)
		}
	}
	if strings.Contains(text, azurite.Key) || strings.Contains(text, "AccountKey=") {
		t.Errorf("%s shows an account key", what)
	}
}

func noSecretsInDir(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			noSecrets(t, p, string(b))
		}
		return nil
	})
}

// TestAzureBatchConformance runs every example on the local backend and
// on Azure Batch (the emulator) and compares exit codes, task states,
// attempts, exit codes and reasons, the finalize step, the run summary
// the callback carries, the callback itself, and every output's content.
func TestAzureBatchConformance(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	examples, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(examples) == 0 {
		t.Fatalf("examples: %v %v", examples, err)
	}
	for _, ex := range examples {
		name := strings.TrimSuffix(filepath.Base(ex), ".yaml")
		t.Run(name, func(t *testing.T) {
			var set []string
			if name == "hello" {
				set = []string{"--set", "callbackUrl=" + f.hook.srv.URL + "/hook"}
			}
			before := len(f.hook.received())
			localState := filepath.Join(f.dir, name, "local")
			lcode, _, lerr := bmcRun(t, append(append([]string{"run", "--state-dir", localState, "--progress", "none", "--slots", "4", "--keep-going"}, set...), ex)...)
			lid, ldir := onlyRun(t, localState)
			local := f.collect(t, lcode, ldir, lid)

			batchState := filepath.Join(f.dir, name, "batch")
			bcode, bout := f.batchRun(t, context.Background(), batchState, append(set, ex)...)
			bid, bdir := onlyRun(t, batchState)
			batch := f.collect(t, bcode, bdir, bid)
			if diff := cmp.Diff(local, batch); diff != "" {
				t.Errorf("local vs azurebatch (-local +batch):\n%s\nlocal stderr:\n%s\nbatch output:\n%s", diff, lerr, bout)
			}
			if len(local.Outputs) == 0 && name != "hello" {
				t.Errorf("no outputs compared")
			}
			noSecrets(t, "bmc run output", bout)
			noSecretsInDir(t, bdir)

			if m, _ := executor.ReadMeta(bdir); m.Backend != azurebatch.Name || m.Extra["finalizeOn"] != "pool" {
				t.Errorf("run.json %+v", m)
			}
			if name == "hello" {
				calls := f.hook.received()[before:]
				if len(calls) != 2 {
					t.Fatalf("%d callbacks, want one per backend", len(calls))
				}
				var bodies []string
				for i, c := range calls {
					id := []string{lid, bid}[i]
					if got := c.header.Get("Idempotency-Key"); got != id {
						t.Errorf("callback %d: Idempotency-Key %q, want %q", i, got, id)
					}
					m := hmac.New(sha256.New, []byte("conformance-secret"))
					m.Write(c.body)
					if got := c.header.Get("X-Bmc-Signature"); got != "sha256="+hex.EncodeToString(m.Sum(nil)) {
						t.Errorf("callback %d: signature %q", i, got)
					}
					bodies = append(bodies, normalizeRun(string(c.body), id))
				}
				if bodies[0] != bodies[1] {
					t.Errorf("callbacks differ:\nlocal %s\nbatch %s", bodies[0], bodies[1])
				}
			}
			// bmc status says the same of both runs.
			type status struct {
				Status string
				Tasks  executor.Counts
			}
			var st [2]status
			for i, sd := range []string{localState, batchState} {
				code, out, serr := bmcRun(t, "status", "--state-dir", sd, "--output", "json", "latest")
				if code != 0 || json.Unmarshal([]byte(out), &st[i]) != nil {
					t.Errorf("status: exit %d\n%s%s", code, out, serr)
				}
			}
			if st[0] != st[1] || st[0].Status == "" {
				t.Errorf("status: local %+v, azurebatch %+v", st[0], st[1])
			}
			task := map[string]string{"hello": "greet", "genomics": "merge", "sweep": "report", "failing": "broken"}[name]
			if code, out, serr := bmcRun(t, "logs", "--state-dir", batchState, "--stderr="+strconv.FormatBool(name == "failing"), bid, task); code != 0 || out == "" {
				t.Errorf("logs %s: exit %d: %q %s", task, code, out, serr)
			}
		})
	}
}

// TestAzureBatchDetach: with --detach the client leaves once the tasks are
// added; the finalize step on the pool still posts the callback, and bmc
// status reads the outcome from Batch.
func TestAzureBatchDetach(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	spec := filepath.Join(f.dir, "detach.yaml")
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: detached
tasks:
  - {id: one, run: "sleep 0.3; echo one"}
  - {id: two, dependsOn: [one], run: "echo two"}
finalize:
  run: echo finalized
  callback: {urlEnv: BMC_TEST_BATCH_HOOK, secretEnv: BMC_CALLBACK_SECRET, timeout: 20s, retries: 2}
`), 0o644)
	state := filepath.Join(f.dir, "state")
	// The URL reaches the job manager task as the secret does, through its
	// environment settings; bmc's own environment does not reach the node.
	t.Setenv("BMC_TEST_BATCH_HOOK", f.hook.srv.URL+"/hook")
	code, out := f.batchRun(t, context.Background(), state, "--detach", spec)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	id, _ := onlyRun(t, state)
	if len(f.hook.received()) != 0 {
		t.Error("the callback came before the run could have finished")
	}
	j, err := azurebatch.WaitJobDone(t.Context(), f.client, id, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if j.ExecutionInfo == nil || j.ExecutionInfo.TerminateReason != "JMComplete" {
		t.Errorf("job ended %+v", j.ExecutionInfo)
	}
	calls := f.hook.received()
	if len(calls) != 1 {
		t.Fatalf("%d callbacks, want 1", len(calls))
	}
	var body executor.CallbackBody
	if err := json.Unmarshal(calls[0].body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Status != executor.CallbackSucceeded || body.RunID != id || body.Backend != azurebatch.Name || body.Tasks.Succeeded != 2 {
		t.Errorf("callback %+v", body)
	}
	// startedAt is the run's start, not the finalize task's.
	_, runDir := onlyRun(t, state)
	if meta, err := executor.ReadMeta(runDir); err != nil || !body.StartedAt.Equal(meta.Created) {
		t.Errorf("callback startedAt %v, want the run's start %v (%v)", body.StartedAt, meta.Created, err)
	}
	code, sout, serr := bmcRun(t, "status", "--state-dir", state, id)
	if code != 0 || !strings.Contains(sout, ": succeeded") || !regexp.MustCompile(`two\s+succeeded`).MatchString(sout) ||
		!strings.Contains(sout, "callback: delivered") || !regexp.MustCompile(`(?m)^finalize\s+succeeded\s+1\s+0\s+\d[0-9.]*(ms|s|µs)\s*$`).MatchString(sout) {
		t.Errorf("status: exit %d\n%s%s", code, sout, serr)
	}
	code, sout, _ = bmcRun(t, "logs", "--state-dir", state, id, "finalize")
	if code != 0 || sout != "finalized\n" {
		t.Errorf("finalize log: exit %d %q", code, sout)
	}
}

// TestAzureBatchDetachCallbackFailed: a detached run whose callback from
// the pool failed reads failed the first time bmc status looks, as every
// time after, and as an attached run would have ended.
func TestAzureBatchDetachCallbackFailed(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	f.hook.answer(http.StatusBadRequest)
	spec := filepath.Join(f.dir, "refused.yaml")
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: refused
tasks:
  - {id: one, run: "echo one"}
finalize:
  callback: {urlEnv: BMC_TEST_BATCH_HOOK, timeout: 20s, retries: 0}
`), 0o644)
	state := filepath.Join(f.dir, "state")
	t.Setenv("BMC_TEST_BATCH_HOOK", f.hook.srv.URL+"/hook")
	if code, out := f.batchRun(t, context.Background(), state, "--detach", spec); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	id, _ := onlyRun(t, state)
	if _, err := azurebatch.WaitJobDone(t.Context(), f.client, id, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		code, sout, serr := bmcRun(t, "status", "--state-dir", state, id)
		if !strings.Contains(sout, "(refused): failed") {
			t.Errorf("status: exit %d\n%s%s", code, sout, serr)
		}
	}
}

// TestAzureBatchCancel: cancelling bmc run (Ctrl-C) cancels the job; the
// finalize step on the pool still runs and reports the run cancelled.
func TestAzureBatchCancel(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	spec := filepath.Join(f.dir, "cancel.yaml")
	started := filepath.Join(f.dir, "started")
	os.WriteFile(spec, []byte(strings.ReplaceAll(`apiVersion: bmc/v1
kind: Workload
name: cancelme
params:
  hook: {}
tasks:
  - {id: long, run: "touch STARTED; sleep 60"}
  - {id: after, dependsOn: [long], run: "true"}
finalize:
  run: echo finalized
  callback: {url: "${{ params.hook }}/hook", secretEnv: BMC_CALLBACK_SECRET, timeout: 20s, retries: 2}
`, "STARTED", started)), 0o644)
	state := filepath.Join(f.dir, "state")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out := f.batchRun(t, ctx, state, "--set", "hook="+f.hook.srv.URL, spec)
		done <- result{code, out}
	}()
	// The task runs as a process of the emulator, with its environment:
	// the marker appears once it runs.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("bmc run ended before the task started: exit %d\n%s", r.code, r.out)
		case <-time.After(50 * time.Millisecond): // polling a file another process writes
		}
		if time.Now().After(deadline) {
			t.Fatal("the task never started")
		}
	}
	cancel()
	r := <-done
	if r.code != exitCanceled {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitCanceled, r.out)
	}
	id, dir := onlyRun(t, state)
	calls := f.hook.received()
	if len(calls) != 1 {
		t.Fatalf("%d callbacks, want 1\n%s", len(calls), r.out)
	}
	var body executor.CallbackBody
	json.Unmarshal(calls[0].body, &body)
	if body.Status != executor.CallbackCancelled || body.Tasks.Cancelled != 2 {
		t.Errorf("callback %+v", body)
	}
	st, err := executor.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "cancelled" || st.Finalize == nil || st.Finalize.State != executor.Succeeded {
		t.Errorf("run %s: status %s, finalize %+v\n%s", id, st.Status, st.Finalize, r.out)
	}
	for _, tk := range []string{"long", "after"} {
		if ts := st.Tasks[tk]; ts == nil || ts.State != executor.Canceled {
			t.Errorf("%s: %+v", tk, ts)
		}
	}
}

// TestAzureBatchPoolIdentity: with a pool identity in the spec, task
// definitions carry identityReference and no SAS; the emulated identity
// reaches the account, inputs come down and outputs go up.
func TestAzureBatchPoolIdentity(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	const id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bmc"
	spec := filepath.Join(f.dir, "identity.yaml")
	os.WriteFile(filepath.Join(f.dir, "local.txt"), []byte("from the client\n"), 0o644)
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: ident
pool: {id: `+confPool+`, identity: `+id+`}
tasks:
  - id: write
    inputs:
      - {from: local.txt, path: in.txt}
    run: cp in.txt out.txt
    outputs:
      - {path: out.txt, to: "az://ident/${{ run.id }}/out.txt"}
  - id: read
    dependsOn: [write]
    inputs:
      - {from: "az://ident/${{ run.id }}/", path: got}
    run: cat got/out.txt > again.txt
    outputs:
      - {path: again.txt, to: "az://ident/${{ run.id }}/again.txt"}
finalize:
  run: echo done > fin.txt
  outputs:
    - {path: fin.txt, to: "az://ident/${{ run.id }}/fin.txt"}
`), 0o644)
	state := filepath.Join(f.dir, "state")
	code, out := f.batchRun(t, context.Background(), state, spec)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	runID, _ := onlyRun(t, state)
	for tk, err := range f.client.ListTasks(t.Context(), runID, azurebatch.ListOptions{Select: "id,resourceFiles,outputFiles"}) {
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(tk)
		if strings.Contains(string(b), "sig=") || (len(tk.ResourceFiles)+len(tk.OutputFiles) > 0 && !strings.Contains(string(b), id)) {
			t.Errorf("task %s: %s", tk.ID, b)
		}
	}
	for name, want := range map[string]string{"out.txt": "from the client\n", "again.txt": "from the client\n", "fin.txt": "done\n"} {
		dst := filepath.Join(t.TempDir(), name)
		loc, _ := blobstage.ParseURL("az://ident/" + runID + "/" + name)
		if _, err := f.store.Download(t.Context(), loc, dst); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if b, _ := os.ReadFile(dst); string(b) != want {
			t.Errorf("%s: %q", name, b)
		}
	}
}

func TestPlanAzureBatch(t *testing.T) {
	code, out, serr := bmcRun(t, "plan", "--backend", "azurebatch", "--pool-identity", fixtureIdentity, "../../examples/genomics.yaml")
	if code != 0 || !strings.Contains(out, "pool:          genome-pool (Standard_D4s_v5, 0 dedicated + 4 spot nodes, 4 slots per node)") ||
		!strings.Contains(out, "tasks:         11, in 1 add-collection requests") || !strings.Contains(out, "job manager task finalize") ||
		!strings.Contains(out, "because the run names a pool identity") {
		t.Errorf("exit %d\n%s%s", code, out, serr)
	}
	// Without a pool identity the job manager task could not reach Batch
	// (Batch has retired task authentication tokens): auto finalizes on
	// the client, and says why; pool is refused.
	code, out, serr = bmcRun(t, "plan", "--backend", "azurebatch", "../../examples/genomics.yaml")
	if code != 0 || !strings.Contains(out, "finalize:      on the client") || !strings.Contains(out, "because the run names no pool identity") || !strings.Contains(out, "pool.identity or with --pool-identity") {
		t.Errorf("no identity: exit %d\n%s%s", code, out, serr)
	}
	code, out, serr = bmcRun(t, "plan", "--backend", "azurebatch", "--finalize-on", "pool", "../../examples/genomics.yaml")
	if code != exitFailed || !strings.Contains(serr, "--pool-identity") || !strings.Contains(serr, "--finalize-on client") {
		t.Errorf("--finalize-on pool, no identity: exit %d\n%s%s", code, out, serr)
	}
	code, out, _ = bmcRun(t, "plan", "--backend", "azurebatch", "--output", "json", "--pool", "p1", "../../examples/sweep.yaml")
	var got struct {
		Backend string
		Batch   struct {
			Tasks int `json:"tasks"`
		} `json:"azurebatch"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Backend != "azurebatch" || got.Batch.Tasks != 13 {
		t.Errorf("exit %d: %+v\n%s", code, got, out)
	}
	code, _, serr = bmcRun(t, "plan", "--backend", "azurebatch", "../../examples/hello.yaml")
	if code != exitFailed || !strings.Contains(serr, "the plan for the azurebatch backend has 1 error") {
		t.Errorf("hello without a pool: exit %d %s", code, serr)
	}
	// An input next to the spec that is not there is an error of the
	// plan on Batch as well, found before anything is created.
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	os.WriteFile(missing, []byte("apiVersion: bmc/v1\nkind: Workload\nname: missing\ntasks:\n  - {id: a, run: \"true\", inputs: [{from: data/nothere.txt}]}\n"), 0o644)
	code, out, serr = bmcRun(t, "plan", "--backend", "azurebatch", "--pool", "p1", missing)
	if code != exitFailed || !strings.Contains(out, "a: input data/nothere.txt is not there: ") || !strings.Contains(serr, "the plan for the azurebatch backend has 1 error") {
		t.Errorf("missing input: exit %d\n%s%s", code, out, serr)
	}
}

// TestAzureBatchFinalizeOnClient: with --finalize-on client the finalize
// step runs here, with its outputs in the account, after the job is
// ended (its blocked task would otherwise wait for ever).
func TestAzureBatchFinalizeOnClient(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	state := filepath.Join(f.dir, "state")
	code, out := f.batchRun(t, context.Background(), state, "--finalize-on", "client", "../../examples/failing.yaml")
	if code != exitFailed || !strings.Contains(out, "finalize on the client") || !strings.Contains(out, "1 succeeded, 1 failed, 1 skipped, 0 cancelled of 3") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	id, dir := onlyRun(t, state)
	if b, err := os.ReadFile(filepath.Join(dir, "tasks", "finalize", "stdout.txt")); err != nil || !strings.Contains(string(b), `status: "status": "failed"`) {
		t.Errorf("the finalize step's log here: %q %v", b, err)
	}
	loc, _ := blobstage.ParseURL("az://demo/" + id + "/summary.json")
	if _, err := f.store.Download(t.Context(), loc, filepath.Join(t.TempDir(), "s.json")); err != nil {
		t.Errorf("the finalize output: %v", err)
	}
	j, err := f.client.GetJob(t.Context(), id)
	if err != nil || j.State != azurebatch.JobStateCompleted {
		t.Errorf("job %v %v", j, err)
	}
	if code, sout, _ := bmcRun(t, "logs", "--state-dir", state, id, "finalize"); code != 0 || !strings.Contains(sout, "status:") {
		t.Errorf("logs finalize: %d %q", code, sout)
	}
}

// TestAzureBatchCancelDetached: bmc cancel of a run no bmc follows stops
// it on Batch; the finalize step on the pool reports it cancelled.
func TestAzureBatchCancelDetached(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	started := filepath.Join(f.dir, "started")
	spec := filepath.Join(f.dir, "c.yaml")
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: cdet
params:
  hook: {}
tasks:
  - {id: long, run: "touch `+started+`; sleep 60"}
  - {id: after, dependsOn: [long], run: "true"}
finalize:
  callback: {url: "${{ params.hook }}/hook", timeout: 20s, retries: 2}
`), 0o644)
	state := filepath.Join(f.dir, "state")
	if code, out := f.batchRun(t, context.Background(), state, "--detach", "--set", "hook="+f.hook.srv.URL, spec); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	id, _ := onlyRun(t, state)
	waitFor(t, "the task to start", 60*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
	// bmc status reads the running run from Batch.
	waitFor(t, "bmc status to show the task running", 30*time.Second, func() bool {
		_, sout, _ := bmcRun(t, "status", "--state-dir", state, id)
		return regexp.MustCompile(`(?m)^run \S+ \(cdet\): running$`).MatchString(sout) && regexp.MustCompile(`(?m)^long\s+running\s+1\s`).MatchString(sout)
	})
	if code, out, serr := bmcRun(t, "cancel", "--state-dir", state, id); code != 0 || !strings.Contains(out, "cancelling run") {
		t.Fatalf("cancel: exit %d %s%s", code, out, serr)
	}
	if _, err := azurebatch.WaitJobDone(t.Context(), f.client, id, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	calls := f.hook.received()
	if len(calls) != 1 {
		t.Fatalf("%d callbacks", len(calls))
	}
	var body executor.CallbackBody
	json.Unmarshal(calls[0].body, &body)
	if body.Status != executor.CallbackCancelled || body.Tasks.Cancelled != 2 {
		t.Errorf("callback %+v", body)
	}
	if code, sout, _ := bmcRun(t, "status", "--state-dir", state, id); code != 0 || !strings.Contains(sout, ": cancelled") {
		t.Errorf("status: %d\n%s", code, sout)
	}
}

// TestAzureBatchFaults: a whole run, the finalize step on the pool
// included, through throttling, server errors, dropped connections and
// add-collection items failing: every task is created and run once, and
// the run completes as without faults.
func TestAzureBatchFaults(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{Faults: &emulator.Faults{
		Throttle: 0.05, ServerError: 0.03, Reset: 0.03, Partial: 0.1, Seed: 5, RetryAfter: 0,
	}})
	state := filepath.Join(f.dir, "state")
	code, out := f.batchRun(t, context.Background(), state, "--set", "lr=[0.1, 0.01, 0.001, 0.0001]", "../../examples/sweep.yaml")
	if code != 0 || !strings.Contains(out, "17 succeeded, 0 failed, 0 skipped, 0 cancelled of 17") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if f.faults.Load() == 0 {
		t.Error("no fault was injected")
	}
	id, dir := onlyRun(t, state)
	n := 0
	for tk, err := range f.client.ListTasks(t.Context(), id, azurebatch.ListOptions{Select: "id,state,executionInfo"}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if tk.State != azurebatch.TaskStateCompleted || tk.ExecutionInfo.RetryCount != 0 || tk.ExecutionInfo.Result != azurebatch.TaskResultSuccess {
			t.Errorf("%s: %s %+v", tk.ID, tk.State, tk.ExecutionInfo)
		}
	}
	if n != 18 { // 17 tasks and the job manager task
		t.Errorf("%d tasks in the job, want 18", n)
	}
	recs, err := executor.ReadJournal(filepath.Join(dir, executor.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	started := map[string]int{}
	for _, r := range recs {
		if r.Type == executor.RecordTaskStarted {
			started[r.Task]++
		}
	}
	for task, k := range started {
		if k != 1 {
			t.Errorf("%s journaled as started %d times", task, k)
		}
	}
	if len(started) != 17 {
		t.Errorf("%d tasks started", len(started))
	}
}

// TestAzureBatchStatusUnreachable: bmc status of a detached run when Batch
// cannot be reached shows the journal, says it may be behind (also in
// JSON), and exits 3, as for any unreachable backend.
func TestAzureBatchStatusUnreachable(t *testing.T) {
	f := newBatchFixture(t, emulator.Options{})
	spec := filepath.Join(f.dir, "far.yaml")
	os.WriteFile(spec, []byte("apiVersion: bmc/v1\nkind: Workload\nname: far\ntasks:\n  - {id: one, run: \"true\"}\n"), 0o644)
	state := filepath.Join(f.dir, "state")
	if code, out := f.batchRun(t, context.Background(), state, "--detach", spec); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	id, _ := onlyRun(t, state)
	t.Setenv("AZURE_BATCH_ENDPOINT", "http://127.0.0.1:1")
	code, sout, serr := bmcRun(t, "status", "--state-dir", state, id)
	if code != exitInternal || !strings.Contains(sout, "(far):") || !strings.Contains(serr, "may be behind") {
		t.Errorf("status: exit %d, want %d\n%s%s", code, exitInternal, sout, serr)
	}
	code, sout, _ = bmcRun(t, "status", "--state-dir", state, "-o", "json", id)
	if code != exitInternal || !strings.Contains(sout, `"journalOnly": true`) {
		t.Errorf("status -o json: exit %d\n%s", code, sout)
	}
}
