package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestParseFaults(t *testing.T) {
	f, err := ParseFaults("throttle=0.1, 5xx=0.05,reset=0.02,partial=0.1,seed=7")
	if err != nil {
		t.Fatal(err)
	}
	want := Faults{Throttle: 0.1, ServerError: 0.05, Reset: 0.02, Partial: 0.1, Seed: 7, RetryAfter: 1}
	if *f != want {
		t.Errorf("got %+v, want %+v", *f, want)
	}
	if g, err := ParseFaults(f.String()); err != nil || *g != *f {
		t.Errorf("round trip of %s: %+v %v", f, g, err)
	}
	for _, bad := range []string{"throttle=2", "throttle=-0.1", "bogus=1", "seed=-1", "throttle", "throttle=0.6,5xx=0.6", "retry-after=x"} {
		if _, err := ParseFaults(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// faultEnv is an emulator with faults and a client that opens a new
// connection for every request, so that the HTTP library never retries a
// dropped request on its own.
func faultEnv(t *testing.T, spec string) *env {
	f, err := ParseFaults(spec)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Instant: true, Faults: f})
	e.c.hc = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	return e
}

func outcomes(e *env, n int) []string {
	var out []string
	for i := range n {
		r := e.c.send(req{method: "POST", target: "/jobs", body: jobBody(fmt.Sprintf("j%d", i), "p", nil)})
		s := fmt.Sprint(r.status)
		if r.status == 429 || r.status == 503 {
			s += "/retry-after=" + r.header.Get("Retry-After")
		}
		out = append(out, s)
	}
	return out
}

func TestFaultsAreDeterministic(t *testing.T) {
	const spec = "throttle=0.2,5xx=0.1,reset=0.1,seed=7,retry-after=2"
	a := outcomes(faultEnv(t, spec), 200)
	b := outcomes(faultEnv(t, spec), 200)
	if !slices.Equal(a, b) {
		t.Errorf("the same seed gave different faults:\n%v\n%v", a, b)
	}
	c := outcomes(faultEnv(t, strings.Replace(spec, "seed=7", "seed=8", 1)), 200)
	if slices.Equal(a, c) {
		t.Error("another seed gave the same faults")
	}
	seen := map[string]int{}
	for _, o := range a {
		seen[o]++
	}
	for _, k := range []string{"201", "429/retry-after=2", "503/retry-after=2", "500", "-1"} {
		if seen[k] == 0 {
			t.Errorf("no %s among %v", k, seen)
		}
	}
	if n := seen["201"]; n < 100 || n > 160 {
		t.Errorf("%d of 200 requests succeeded with 40%% faults", n)
	}
}

func TestFaultResets(t *testing.T) {
	e := faultEnv(t, "reset=1,seed=3")
	var got []string
	for i := range 40 {
		r := e.c.send(req{method: "POST", target: "/jobs", body: jobBody(fmt.Sprintf("r%d", i), "p", nil)})
		if r.status != -1 {
			t.Fatalf("request %d was answered: %s", i, r)
		}
	}
	e.srv.mu.Lock()
	for i := range 40 {
		if e.srv.jobs[fmt.Sprintf("r%d", i)] != nil {
			got = append(got, fmt.Sprint(i))
		}
	}
	e.srv.mu.Unlock()
	// Some connections dropped after the job was created, some before.
	if len(got) == 0 || len(got) == 40 {
		t.Errorf("jobs created by dropped requests: %v", got)
	}
}

func TestPartialAddCollection(t *testing.T) {
	e := faultEnv(t, "partial=0.3,seed=5")
	e.pool("p", 1, 1)
	e.job("j", "p", nil)
	var tasks []map[string]any
	for i := range 30 {
		tasks = append(tasks, taskBody(fmt.Sprintf("t%d", i), "true", nil))
	}
	body := map[string]any{"value": tasks}
	first := decode[TaskAddCollectionResult](t, e.c.must(200, "POST", "/jobs/j/addtaskcollection", body))
	// Some tasks answered servererror were added all the same, as Batch
	// may have added them, and some not.
	var failed, failedAdded, added int
	for _, r := range first.Value {
		switch r.Status {
		case AddServerError:
			failed++
			if r.Error == nil || r.Error.Code != "InternalError" {
				t.Errorf("servererror without its error: %+v", r)
			}
			switch g := e.c.do("GET", "/jobs/j/tasks/"+r.TaskID, nil); g.status {
			case 200:
				failedAdded++
			case 404:
			default:
				t.Errorf("GET %s: %d", r.TaskID, g.status)
			}
		case AddSuccess:
			added++
		}
	}
	if failed == 0 || added == 0 || failedAdded == 0 || failedAdded == failed {
		t.Fatalf("partial=0.3: %d failed (%d of them added all the same), %d added", failed, failedAdded, added)
	}
	// Retrying the same request, as the SDKs do, adds the rest; the tasks
	// already added answer TaskExists.
	for round := 0; ; round++ {
		res := decode[TaskAddCollectionResult](t, e.c.must(200, "POST", "/jobs/j/addtaskcollection", body))
		retry := false
		for _, r := range res.Value {
			switch {
			case r.Status == AddServerError:
				retry = true
			case r.Status == AddClientError && r.Error.Code != "TaskExists":
				t.Fatalf("retry: %+v", r)
			}
		}
		if !retry {
			break
		}
		if round > 20 {
			t.Fatal("still failing after 20 rounds")
		}
	}
	if c := e.counts("j").TaskCounts; c.Completed != 30 {
		t.Errorf("counts %+v", c)
	}
}
