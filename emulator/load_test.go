package emulator

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The control-plane load test: 100,000 tasks added with Instant (every
// task completes at once) through add-collection requests of 100 from
// several connections, then listed page by page. The goal is at least
// 20,000 tasks/s accepted and a peak RSS under 1 GB. bench/emulator.sh
// runs the benchmark against a separate `bmc emulator --instant` process
// and reads that process's peak RSS.

const (
	loadTasks   = 100_000
	loadWorkers = 8
)

type loadResult struct {
	tasks, requests, listed, pages int
	add, list                      time.Duration
}

// runLoad adds n tasks to job on pool and lists them.
func runLoad(tb testing.TB, c *client, pool, job string, n int) loadResult {
	tb.Helper()
	c.must(201, "POST", "/pools", poolBody(pool, 4, 4))
	c.must(201, "POST", "/jobs", jobBody(job, pool, nil))

	// Bodies are built before the clock starts.
	var bodies [][]byte
	for start := 0; start < n; start += 100 {
		var tasks []map[string]any
		for i := start; i < min(start+100, n); i++ {
			tasks = append(tasks, taskBody(fmt.Sprintf("task-%07d", i), "/bin/sh -c 'echo $AZ_BATCH_TASK_ID'", map[string]any{
				"environmentSettings": []map[string]any{{"name": "SAMPLE", "value": strconv.Itoa(i)}},
				"constraints":         map[string]any{"maxTaskRetryCount": 2},
			}))
		}
		b, err := json.Marshal(map[string]any{"value": tasks})
		if err != nil {
			tb.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	spec := c.spec
	c.spec = nil // validating every body would measure the validator
	defer func() { c.spec = spec }()

	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range loadWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				r := c.send(req{method: "POST", target: "/jobs/" + job + "/addtaskcollection", body: bodies[i]})
				if r.status != 200 {
					failed.Store(r.String())
					return
				}
				var res TaskAddCollectionResult
				if err := json.Unmarshal(r.body, &res); err != nil || len(res.Value) == 0 || res.Value[0].Status != AddSuccess {
					failed.Store(fmt.Sprintf("%s: %v", r.body, err))
					return
				}
			}
		})
	}
	wg.Wait()
	res := loadResult{tasks: n, requests: len(bodies), add: time.Since(start)}
	if f := failed.Load(); f != nil {
		tb.Fatalf("add-collection failed: %.500s", f)
	}

	start = time.Now()
	target := "/jobs/" + job + "/tasks?maxresults=1000&$select=id,state,executionInfo"
	for target != "" {
		page := decode[ListResult[Task]](tb, c.must(200, "GET", target, nil))
		res.listed += len(page.Value)
		res.pages++
		target = page.NextLink
	}
	res.list = time.Since(start)
	counts := decode[TaskCountsResult](tb, c.must(200, "GET", "/jobs/"+job+"/taskcounts", nil))
	if res.listed != n || counts.TaskCounts.Completed != int32(n) || counts.TaskCounts.Succeeded != int32(n) {
		tb.Fatalf("listed %d tasks, counts %+v; want %d completed", res.listed, counts.TaskCounts, n)
	}
	return res
}

// peakRSS is this process's peak resident set size in bytes (VmHWM).
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// loadClient is a client for an emulator serving on a real listener: one
// of its own, or the one AZURE_BATCH_ENDPOINT, AZURE_BATCH_ACCOUNT and
// AZURE_BATCH_ACCESS_KEY name when BMC_BENCH_EXTERNAL=1.
func loadClient(tb testing.TB) (*client, bool) {
	tr := &http.Transport{MaxIdleConnsPerHost: loadWorkers * 2}
	if os.Getenv("BMC_BENCH_EXTERNAL") == "1" {
		key, err := base64.StdEncoding.DecodeString(os.Getenv("AZURE_BATCH_ACCESS_KEY"))
		if err != nil || os.Getenv("AZURE_BATCH_ENDPOINT") == "" {
			tb.Fatal("BMC_BENCH_EXTERNAL=1 needs AZURE_BATCH_ENDPOINT, AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY")
		}
		return &client{t: tb, base: os.Getenv("AZURE_BATCH_ENDPOINT"), account: os.Getenv("AZURE_BATCH_ACCOUNT"),
			key: key, hc: &http.Client{Transport: tr}, spec: loadSpec(tb)}, true
	}
	s, err := New(Options{Instant: true})
	if err != nil {
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("serve: %v", err)
		}
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return &client{t: tb, base: "http://" + l.Addr().String(), account: s.Account(), key: mustKey(tb, s.Key()),
		hc: &http.Client{Transport: tr}, spec: loadSpec(tb)}, false
}

func BenchmarkLoad(b *testing.B) {
	c, _ := loadClient(b)
	var last loadResult
	for i := 0; b.Loop(); i++ {
		suffix := fmt.Sprintf("%d-%d", time.Now().UnixNano(), i)
		last = runLoad(b, c, "bench-pool-"+suffix, "bench-job-"+suffix, loadTasks)
	}
	b.ReportMetric(float64(last.tasks)/last.add.Seconds(), "tasks/s")
	b.ReportMetric(float64(last.requests)/last.add.Seconds(), "requests/s")
	b.ReportMetric(float64(last.listed)/last.list.Seconds(), "listed-tasks/s")
	b.ReportMetric(float64(last.pages)/last.list.Seconds(), "list-requests/s")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MB")
}

// TestLoad runs the load once as a test: every task accepted, completed,
// counted and listed, in bounded memory. Throughput is reported, not
// checked: a test asserting a rate fails on a busy machine, not on slow
// code. BenchmarkLoad and bench/emulator.sh measure it against the goal
// (20,000 tasks/s).
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("the 100,000-task load test does not run with -short")
	}
	n := loadTasks
	if raceEnabled {
		n = 20_000
	}
	c, _ := loadClient(t)
	res := runLoad(t, c, "load-pool", "load-job", n)
	rate := float64(res.tasks) / res.add.Seconds()
	t.Logf("%d tasks accepted in %v: %.0f tasks/s, %.0f requests/s; listed in %v (%d pages); peak RSS %d MB",
		res.tasks, res.add.Round(time.Millisecond), rate, float64(res.requests)/res.add.Seconds(),
		res.list.Round(time.Millisecond), res.pages, peakRSS()>>20)
	if rss := peakRSS(); rss > 1<<30 {
		t.Errorf("peak RSS %d MB; the goal is under 1 GB", rss>>20)
	}
}
