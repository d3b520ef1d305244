package emulator

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestPoolLifecycle(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.c.must(201, "POST", "/pools", poolBody("Pool-1", 2, 3))
	if r.header.Get("ETag") == "" || r.header.Get("Last-Modified") == "" || !strings.HasSuffix(r.header.Get("DataServiceId"), "/pools/Pool-1") {
		t.Errorf("create headers: %v", r.header)
	}
	p := decode[Pool](t, e.c.must(200, "GET", "/pools/pool-1", nil))
	if p.ID != "Pool-1" || p.State != PoolActive || p.AllocationState != AllocationSteady ||
		*p.CurrentDedicatedNodes != 2 || *p.CurrentLowPriorityNodes != 0 || *p.TaskSlotsPerNode != 3 ||
		*p.TaskSchedulingPolicy.NodeFillType != FillSpread || p.VirtualMachineConfiguration.ImageReference.Version != "latest" {
		t.Errorf("pool: %+v", p)
	}
	if p.URL != e.ts.URL+"/pools/Pool-1" {
		t.Errorf("url %q", p.URL)
	}
	if r := e.c.do("HEAD", "/pools/POOL-1", nil); r.status != 200 {
		t.Errorf("exists: %s", r)
	}
	if r := e.c.do("HEAD", "/pools/nope", nil); r.status != 404 {
		t.Errorf("exists on a missing pool: %s", r)
	}
	if r := e.c.do("POST", "/pools", poolBody("pool-1", 1, 1)); r.status != 409 || errorCode(t, r) != "PoolExists" {
		t.Errorf("duplicate (ids are case-insensitive): %s", r)
	}

	e.c.must(202, "POST", "/pools/pool-1/resize", map[string]any{"targetDedicatedNodes": 1, "targetLowPriorityNodes": 2})
	p = decode[Pool](t, e.c.must(200, "GET", "/pools/pool-1", nil))
	if *p.CurrentDedicatedNodes != 1 || *p.CurrentLowPriorityNodes != 2 || p.AllocationState != AllocationSteady {
		t.Errorf("after resize: dedicated %d low %d %s", *p.CurrentDedicatedNodes, *p.CurrentLowPriorityNodes, p.AllocationState)
	}

	e.c.must(200, "POST", "/pools/pool-1/enableautoscale", map[string]any{"autoScaleFormula": "$TargetDedicatedNodes=3;", "autoScaleEvaluationInterval": "PT5M"})
	p = decode[Pool](t, e.c.must(200, "GET", "/pools/pool-1", nil))
	if !*p.EnableAutoScale || p.AutoScaleFormula != "$TargetDedicatedNodes=3;" || p.AutoScaleEvaluationInterval.String() != "PT5M" || p.AutoScaleRun == nil {
		t.Errorf("autoscale: %+v", p)
	}
	run := decode[AutoScaleRun](t, e.c.must(200, "POST", "/pools/pool-1/evaluateautoscale", map[string]any{"autoScaleFormula": "$TargetDedicatedNodes=1;"}))
	if !strings.Contains(run.Results, "$TargetDedicatedNodes=") {
		t.Errorf("evaluate: %+v", run)
	}
	if r := e.c.do("POST", "/pools/pool-1/resize", map[string]any{"targetDedicatedNodes": 1}); r.status != 409 {
		t.Errorf("resize with autoscale on: %s", r)
	}
	if r := e.c.do("POST", "/pools/pool-1/enableautoscale", map[string]any{"autoScaleEvaluationInterval": "PT1M"}); r.status != 400 || errorCode(t, r) != "InvalidPropertyValue" {
		t.Errorf("interval under 5 minutes: %s", r)
	}
	e.c.must(200, "POST", "/pools/pool-1/disableautoscale", nil)

	e.pool("pool-2", 1, 1)
	list := decode[ListResult[Pool]](t, e.c.must(200, "GET", "/pools", nil))
	if len(list.Value) != 2 || list.Value[0].ID != "Pool-1" || list.Value[1].ID != "pool-2" {
		t.Errorf("list: %+v", list)
	}
	list = decode[ListResult[Pool]](t, e.c.must(200, "GET", "/pools?$filter="+url.QueryEscape("id eq 'pool-2'"), nil))
	if len(list.Value) != 1 || list.Value[0].ID != "pool-2" {
		t.Errorf("filtered list: %+v", list)
	}

	e.c.must(202, "DELETE", "/pools/pool-1", nil)
	if r := e.c.do("GET", "/pools/pool-1", nil); r.status != 404 || errorCode(t, r) != "PoolNotFound" {
		t.Errorf("after delete: %s", r)
	}
}

func TestJobLifecycle(t *testing.T) {
	e := newEnv(t, Options{Instant: true})
	e.pool("p", 1, 1)
	r := e.c.must(201, "POST", "/jobs", jobBody("Job-1", "p", map[string]any{
		"priority":    5,
		"metadata":    []map[string]any{{"name": "team", "value": "genomics"}},
		"constraints": map[string]any{"maxTaskRetryCount": 2},
	}))
	if !strings.HasSuffix(r.header.Get("Location"), "/jobs/Job-1") {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	j := e.jobState("job-1")
	if j.State != JobActive || *j.Priority != 5 || *j.MaxParallelTasks != -1 || j.OnAllTasksComplete != NoAction ||
		j.OnTaskFailure != FailureNoAction || *j.UsesTaskDependencies || j.Constraints.MaxWallClockTime.String() != "P10675199DT2H48M5.4775807S" ||
		*j.Constraints.MaxTaskRetryCount != 2 || j.ExecutionInfo.PoolID != "p" || j.URL != e.ts.URL+"/jobs/Job-1" {
		t.Errorf("job: %+v", j)
	}
	if r := e.c.do("POST", "/jobs", jobBody("JOB-1", "p", nil)); r.status != 409 || errorCode(t, r) != "JobExists" {
		t.Errorf("duplicate: %s", r)
	}

	e.addTasks("job-1", taskBody("a", "true", nil))
	if tk := e.task("job-1", "a"); *tk.Constraints.MaxTaskRetryCount != 2 || tk.Constraints.RetentionTime.String() != "P7D" {
		t.Errorf("task constraints default from the job: %+v", tk.Constraints)
	}

	e.c.must(200, "PATCH", "/jobs/job-1", map[string]any{"priority": 100, "onAllTasksComplete": "terminatejob"})
	j = e.jobState("job-1")
	if j.State != JobCompleted || j.ExecutionInfo.TerminateReason != "AllTasksComplete" || j.ExecutionInfo.EndTime == nil || *j.Priority != 100 {
		t.Errorf("after patch with every task complete: %s %+v", j.State, j.ExecutionInfo)
	}
	if r := e.c.do("PATCH", "/jobs/job-1", map[string]any{"priority": 1}); r.status != 409 || errorCode(t, r) != "JobCompleted" {
		t.Errorf("patch a completed job: %s", r)
	}
	if r := e.c.do("POST", "/jobs/job-1/tasks", taskBody("b", "true", nil)); r.status != 409 || errorCode(t, r) != "JobCompleted" {
		t.Errorf("add to a completed job: %s", r)
	}

	e.job("job-2", "p", map[string]any{"onAllTasksComplete": "noaction"})
	e.addTasks("job-2", taskBody("a", "true", nil))
	e.c.must(200, "PUT", "/jobs/job-2", map[string]any{"poolInfo": map[string]any{"poolId": "p"}, "priority": 7, "onAllTasksComplete": "terminatejob"})
	if j := e.jobState("job-2"); j.State != JobCompleted || *j.Priority != 7 {
		t.Errorf("after put: %+v", j)
	}

	e.job("job-3", "p", map[string]any{"onAllTasksComplete": "noaction"})
	e.c.must(200, "PATCH", "/jobs/job-3", map[string]any{"onAllTasksComplete": "terminatejob"})
	e.job("job-4", "p", nil)
	e.addTasks("job-4", taskBody("a", "true", nil))
	e.c.must(200, "PATCH", "/jobs/job-4", map[string]any{"onAllTasksComplete": "noaction"})
	e.c.must(202, "POST", "/jobs/job-4/terminate", map[string]any{"terminateReason": "enough"})
	if j := e.jobState("job-4"); j.State != JobCompleted || j.ExecutionInfo.TerminateReason != "enough" {
		t.Errorf("terminated: %+v", j)
	}
	if r := e.c.do("POST", "/jobs/job-4/terminate", nil); r.status != 409 || errorCode(t, r) != "JobCompleted" {
		t.Errorf("terminate twice: %s", r)
	}

	e.job("job-5", "p", map[string]any{"onAllTasksComplete": "terminatejob"})
	if r := e.c.do("PATCH", "/jobs/job-5", map[string]any{"onAllTasksComplete": "noaction"}); r.status != 409 && r.status != 400 {
		t.Errorf("terminatejob to noaction: %s", r)
	}

	jobs := decode[ListResult[Job]](t, e.c.must(200, "GET", "/jobs?$filter="+url.QueryEscape("state eq 'completed'")+"&$select=id,state", nil))
	if len(jobs.Value) != 5 { // job-5 had no tasks: with terminatejob it completed at once
		t.Errorf("completed jobs: %+v", jobs.Value)
	}
	for _, j := range jobs.Value {
		if j.URL != "" || j.PoolInfo != nil {
			t.Errorf("$select=id,state returned more: %+v", j)
		}
	}

	e.c.must(202, "DELETE", "/jobs/job-1", nil)
	if r := e.c.do("GET", "/jobs/job-1", nil); r.status != 404 || errorCode(t, r) != "JobNotFound" {
		t.Errorf("after delete: %s", r)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, Options{Instant: true})
	e.pool("p", 1, 1)
	e.job("j", "p", nil)
	e.job("deps", "p", map[string]any{"usesTaskDependencies": true})
	e.addTasks("j", taskBody("t1", "true", nil))

	big := make([]map[string]any, 101)
	for i := range big {
		big[i] = taskBody(fmt.Sprintf("b%d", i), "true", nil)
	}
	huge := `{"value":[{"id":"x","commandLine":"` + strings.Repeat("y", 1<<20) + `"}]}`

	for _, tc := range []struct {
		name      string
		method    string
		target    string
		body      any
		status    int
		code      string
		valueKey  string
		valueWant string
	}{
		{"unknown property", "POST", "/jobs/j/tasks", []byte(`{"id":"x","commandLine":"true","colour":"red"}`), 400, "UnsupportedProperty", "PropertyName", "colour"},
		{"unknown nested property", "POST", "/jobs/j/tasks", []byte(`{"id":"x","commandLine":"true","constraints":{"maxRetries":1}}`), 400, "UnsupportedProperty", "PropertyName", "constraints.maxRetries"},
		{"property names are case-sensitive", "POST", "/jobs/j/tasks", []byte(`{"ID":"x","commandLine":"true"}`), 400, "UnsupportedProperty", "PropertyName", "ID"},
		{"missing property", "POST", "/jobs/j/tasks", []byte(`{"id":"x"}`), 400, "MissingRequiredProperty", "PropertyName", "commandLine"},
		{"missing nested property", "POST", "/jobs/j/tasks", []byte(`{"id":"x","commandLine":"true","outputFiles":[{"filePattern":"a","destination":{}}]}`), 400, "MissingRequiredProperty", "PropertyName", "outputFiles[0].uploadOptions"},
		{"null required property", "POST", "/jobs", []byte(`{"id":"x","poolInfo":null}`), 400, "MissingRequiredProperty", "PropertyName", "poolInfo"},
		{"wrong type", "POST", "/jobs/j/tasks", []byte(`{"id":"x","commandLine":"true","requiredSlots":"two"}`), 400, "InvalidPropertyValue", "PropertyName", "requiredSlots"},
		{"int32 overflow", "POST", "/jobs/j/tasks", []byte(`{"id":"x","commandLine":"true","requiredSlots":4294967296}`), 400, "InvalidPropertyValue", "PropertyName", "requiredSlots"},
		{"bad enum", "POST", "/jobs", []byte(`{"id":"x","poolInfo":{"poolId":"p"},"onAllTasksComplete":"explode"}`), 400, "InvalidPropertyValue", "PropertyName", "onAllTasksComplete"},
		{"bad duration", "POST", "/jobs/j/tasks", []byte(`{"id":"x","commandLine":"true","constraints":{"maxWallClockTime":"1h"}}`), 400, "InvalidPropertyValue", "PropertyName", "constraints.maxWallClockTime"},
		{"bad id", "POST", "/jobs/j/tasks", taskBody("a.b", "true", nil), 400, "InvalidPropertyValue", "PropertyName", "id"},
		{"long id", "POST", "/jobs/j/tasks", taskBody(strings.Repeat("a", 65), "true", nil), 400, "InvalidPropertyValue", "PropertyName", "id"},
		{"empty command", "POST", "/jobs/j/tasks", taskBody("x", " ", nil), 400, "InvalidPropertyValue", "PropertyName", "commandLine"},
		{"zero slots", "POST", "/jobs/j/tasks", taskBody("x", "true", map[string]any{"requiredSlots": 0}), 400, "InvalidPropertyValue", "PropertyName", "requiredSlots"},
		{"resource file escapes", "POST", "/jobs/j/tasks", taskBody("x", "true", map[string]any{"resourceFiles": []map[string]any{{"httpUrl": "https://example.org/a", "filePath": "../a"}}}), 400, "InvalidPropertyValue", "PropertyName", "resourceFiles[0].filePath"},
		{"resource file without source", "POST", "/jobs/j/tasks", taskBody("x", "true", map[string]any{"resourceFiles": []map[string]any{{"filePath": "a"}}}), 400, "InvalidPropertyValue", "PropertyName", "resourceFiles[0]"},
		{"not JSON", "POST", "/jobs/j/tasks", []byte(`{"id":`), 400, "InvalidRequestBody", "", ""},
		{"empty body", "POST", "/jobs/j/tasks", []byte(``), 400, "InvalidRequestBody", "", ""},
		{"trailing data", "POST", "/jobs/j/tasks", []byte(`{"id":"x","commandLine":"true"} {}`), 400, "InvalidRequestBody", "", ""},
		{"duplicate task", "POST", "/jobs/j/tasks", taskBody("T1", "true", nil), 409, "TaskExists", "", ""},
		{"duplicate job", "POST", "/jobs", jobBody("J", "p", nil), 409, "JobExists", "", ""},
		{"unknown job", "GET", "/jobs/nope", nil, 404, "JobNotFound", "", ""},
		{"unknown job for tasks", "POST", "/jobs/nope/tasks", taskBody("x", "true", nil), 404, "JobNotFound", "", ""},
		{"unknown task", "GET", "/jobs/j/tasks/nope", nil, 404, "TaskNotFound", "", ""},
		{"unknown pool", "POST", "/pools/nope/resize", map[string]any{"targetDedicatedNodes": 1}, 404, "PoolNotFound", "", ""},
		{"too many tasks", "POST", "/jobs/j/addtaskcollection", map[string]any{"value": big}, 413, "RequestBodyTooLarge", "", ""},
		{"body over 1 MB", "POST", "/jobs/j/addtaskcollection", []byte(huge), 413, "RequestBodyTooLarge", "", ""},
		{"empty collection", "POST", "/jobs/j/addtaskcollection", map[string]any{"value": []any{}}, 400, "InvalidPropertyValue", "PropertyName", "value"},
		{"dependencies off", "POST", "/jobs/j/tasks", taskBody("x", "true", map[string]any{"dependsOn": map[string]any{"taskIds": []string{"t1"}}}), 409, "TaskDependenciesNotSpecifiedOnJob", "", ""},
		{"self dependency", "POST", "/jobs/deps/tasks", taskBody("x", "true", map[string]any{"dependsOn": map[string]any{"taskIds": []string{"X"}}}), 400, "InvalidPropertyValue", "", ""},
		{"backwards range", "POST", "/jobs/deps/tasks", taskBody("x", "true", map[string]any{"dependsOn": map[string]any{"taskIdRanges": []map[string]any{{"start": 5, "end": 1}}}}), 400, "InvalidPropertyValue", "", ""},
		{"dependency list too long", "POST", "/jobs/deps/tasks", taskBody("x", "true", map[string]any{"dependsOn": map[string]any{"taskIds": longIDs(1100)}}), 400, "TaskDependencyListTooLong", "", ""},
		{"jobAction without performexitoptionsjobaction", "POST", "/jobs/j/tasks", taskBody("x", "true", map[string]any{"exitConditions": map[string]any{"default": map[string]any{"jobAction": "terminate"}}}), 400, "InvalidPropertyValue", "PropertyName", "exitConditions.default.jobAction"},
		{"pool without targets", "POST", "/pools", []byte(`{"id":"q","vmSize":"a","virtualMachineConfiguration":{"imageReference":{"publisher":"a","offer":"b","sku":"c"},"nodeAgentSKUId":"x"}}`), 400, "MissingRequiredProperty", "PropertyName", "targetDedicatedNodes"},
		{"pool without vm configuration", "POST", "/pools", []byte(`{"id":"q","vmSize":"a","targetDedicatedNodes":1}`), 400, "MissingRequiredProperty", "PropertyName", "virtualMachineConfiguration"},
		{"pool with unknown package", "POST", "/pools", func() map[string]any {
			b := poolBody("q", 1, 1)
			b["applicationPackageReferences"] = []map[string]any{{"applicationId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Batch/batchAccounts/a/applications/nope"}}
			return b
		}(), 409, "InvalidApplicationPackageReferences", "", ""},
		{"job with two pools", "POST", "/jobs", []byte(`{"id":"x","poolInfo":{"poolId":"p","autoPoolSpecification":{"poolLifetimeOption":"job"}}}`), 400, "InvalidPropertyValue", "PropertyName", "poolInfo"},
		{"priority out of range", "POST", "/jobs", jobBody("x", "p", map[string]any{"priority": 1001}), 400, "InvalidPropertyValue", "PropertyName", "priority"},
		{"bad filter", "GET", "/jobs/j/tasks?$filter=" + url.QueryEscape("colour eq 'red'"), nil, 400, "InvalidQueryParameterValue", "QueryParameterName", "$filter"},
		{"bad filter syntax", "GET", "/jobs/j/tasks?$filter=" + url.QueryEscape("state eq"), nil, 400, "InvalidQueryParameterValue", "QueryParameterName", "$filter"},
		{"bad select", "GET", "/jobs/j/tasks?$select=id,colour", nil, 400, "InvalidQueryParameterValue", "QueryParameterName", "$select"},
		{"maxresults too small", "GET", "/jobs/j/tasks?maxresults=0", nil, 400, "InvalidQueryParameterValue", "QueryParameterName", "maxresults"},
		{"maxresults too large", "GET", "/jobs/j/tasks?maxresults=1001", nil, 400, "InvalidQueryParameterValue", "QueryParameterName", "maxresults"},
		{"unknown route", "GET", "/jobs/j/nothing", nil, 404, "ResourceNotFound", "", ""},
		{"wrong verb", "DELETE", "/jobs/j/taskcounts", nil, 405, "UnsupportedHttpVerb", "", ""},
		{"wrong api-version", "GET", "/jobs?api-version=2024-07-01.20.0", nil, 400, "UnsupportedRequestVersion", "", ""},
		{"terminate a completed task", "POST", "/jobs/j/tasks/t1/terminate", nil, 409, "TaskCompleted", "", ""},
		{"reactivate a succeeded task", "POST", "/jobs/j/tasks/t1/reactivate", nil, 409, "OperationInvalidForCurrentState", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.sub(t).c.do(tc.method, tc.target, tc.body)
			if r.status != tc.status {
				t.Fatalf("got %s, want %d %s", r, tc.status, tc.code)
			}
			if got := errorCode(t, r); got != tc.code {
				t.Errorf("code %q, want %q (%s)", got, tc.code, r)
			}
			if tc.valueKey != "" {
				if got := errorValue(t, r, tc.valueKey); got != tc.valueWant {
					t.Errorf("%s = %q, want %q (%s)", tc.valueKey, got, tc.valueWant, r)
				}
			}
			msg := decode[BatchError](t, r).Message
			if msg == nil || msg.Lang != "en-US" || !strings.Contains(msg.Value, "RequestId:"+r.header.Get("request-id")) {
				t.Errorf("message %+v", msg)
			}
		})
	}

	t.Run("missing api-version", func(t *testing.T) {
		r := e.sub(t).c.send(req{method: "GET", target: "/jobs", noVersion: true})
		if r.status != 400 || errorCode(t, r) != "MissingRequiredQueryParameter" || errorValue(t, r, "QueryParameterName") != "api-version" {
			t.Errorf("got %s", r)
		}
	})
	t.Run("wrong content type", func(t *testing.T) {
		r := e.sub(t).c.send(req{method: "POST", target: "/jobs/j/tasks", body: []byte(`{"id":"z","commandLine":"true"}`),
			header: http.Header{"Content-Type": {"text/plain"}}})
		if r.status != 400 || errorCode(t, r) != "InvalidHeaderValue" {
			t.Errorf("got %s", r)
		}
	})
	t.Run("enums are read in any case and written as the spec spells them", func(t *testing.T) {
		e := e.sub(t)
		e.c.must(201, "POST", "/jobs/j/tasks", []byte(`{"id":"cased","commandLine":"true",
			"outputFiles":[{"filePattern":"x","destination":{"container":{"containerUrl":"https://a.blob.core.windows.net/c"}},"uploadOptions":{"uploadCondition":"TaskCompletion"}}],
			"userIdentity":{"autoUser":{"scope":"Task","elevationLevel":"NonAdmin"}}}`))
		tk := e.task("j", "cased")
		if *tk.OutputFiles[0].UploadOptions.UploadCondition != UploadOnCompletion || tk.UserIdentity.AutoUser.Scope != "task" || tk.UserIdentity.AutoUser.ElevationLevel != "nonadmin" {
			t.Errorf("enums: %+v %+v", tk.OutputFiles[0].UploadOptions, tk.UserIdentity.AutoUser)
		}
	})
}

func longIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("task-with-a-long-name-%040d", i)
	}
	return out
}

func TestAddCollectionItems(t *testing.T) {
	e := newEnv(t, Options{})
	e.job("j", "nopool", nil) // no pool yet: tasks wait
	e.addTasks("j", taskBody("exists", "true", nil))
	r := e.c.must(200, "POST", "/jobs/j/addtaskcollection", map[string]any{"value": []map[string]any{
		taskBody("ok-1", "true", nil),
		taskBody("EXISTS", "true", nil),
		taskBody("bad id", "true", nil),
		taskBody("ok-2", "true", map[string]any{"dependsOn": map[string]any{"taskIds": []string{"ok-1"}}}),
		taskBody("ok-1", "true", nil),
	}})
	res := decode[TaskAddCollectionResult](t, r).Value
	want := []struct {
		id     string
		status TaskAddStatus
		code   string
	}{
		{"ok-1", AddSuccess, ""},
		{"EXISTS", AddClientError, "TaskExists"},
		{"bad id", AddClientError, "InvalidPropertyValue"},
		{"ok-2", AddClientError, "TaskDependenciesNotSpecifiedOnJob"},
		{"ok-1", AddClientError, "TaskExists"},
	}
	if len(res) != len(want) {
		t.Fatalf("results: %+v", res)
	}
	for i, w := range want {
		g := res[i]
		code := ""
		if g.Error != nil {
			code = g.Error.Code
		}
		if g.TaskID != w.id || g.Status != w.status || code != w.code {
			t.Errorf("item %d: got %s %s %s, want %+v", i, g.TaskID, g.Status, code, w)
		}
		if g.Status == AddSuccess && (g.ETag == "" || g.LastModified == nil || g.Location != e.ts.URL+"/jobs/j/tasks/ok-1") {
			t.Errorf("item %d: success without eTag, lastModified, location: %+v", i, g)
		}
	}
	c := e.counts("j")
	if c.TaskCounts.Active != 2 || c.TaskCounts.Running != 0 {
		t.Errorf("counts: %+v", c)
	}
}

func TestListPagingFilterSelect(t *testing.T) {
	e := newEnv(t, Options{})
	e.pool("p", 1, 4)
	e.job("j", "p", nil)
	var tasks []map[string]any
	for i := range 7 {
		tasks = append(tasks, taskBody(fmt.Sprintf("t%d", i), sh(fmt.Sprintf("exit %d", i%3)), nil))
	}
	e.addTasks("j", tasks...)
	waitFor(t, "all tasks completed", 30*time.Second, func() bool { return e.counts("j").TaskCounts.Completed == 7 })

	all, pages := e.listAll("/jobs/j/tasks?maxresults=2")
	if pages != 4 || len(all) != 7 {
		t.Fatalf("paging: %d tasks in %d pages", len(all), pages)
	}
	for i, tk := range all {
		if tk.ID != fmt.Sprintf("t%d", i) {
			t.Errorf("order: %d is %s", i, tk.ID)
		}
	}
	c := e.counts("j")
	if c.TaskCounts.Succeeded != 3 || c.TaskCounts.Failed != 4 || c.TaskSlotCounts.Completed != 7 {
		t.Errorf("counts: %+v", c)
	}

	for _, tc := range []struct {
		filter string
		want   string
	}{
		{"state eq 'completed'", "t0 t1 t2 t3 t4 t5 t6"},
		{"state eq 'active'", ""},
		{"executionInfo/exitCode eq 0", "t0 t3 t6"},
		{"(executionInfo/exitCode lt 0) or (executionInfo/exitCode gt 0)", "t1 t2 t4 t5"},
		{"executionInfo/exitCode ge 2", "t2 t5"},
		{"executionInfo/result eq 'failure' and id ne 't1'", "t2 t4 t5"},
		{"not (executionInfo/exitCode eq 0)", "t1 t2 t4 t5"},
		{"startswith(id, 'T')", "t0 t1 t2 t3 t4 t5 t6"},
		{"executionInfo/failureInfo/code eq 'FailureExitCode'", "t1 t2 t4 t5"},
		{"creationTime gt datetime'2000-01-01T00:00:00Z'", "t0 t1 t2 t3 t4 t5 t6"},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			got, _ := e.sub(t).listAll("/jobs/j/tasks?maxresults=2&$filter=" + url.QueryEscape(tc.filter))
			var ids []string
			for _, tk := range got {
				ids = append(ids, tk.ID)
			}
			if s := strings.Join(ids, " "); s != tc.want {
				t.Errorf("got %q, want %q", s, tc.want)
			}
		})
	}

	r := e.c.must(200, "GET", "/jobs/j/tasks?$select=id,state,executionInfo&$filter="+url.QueryEscape("state eq 'completed'"), nil)
	for _, raw := range []string{`"url"`, `"commandLine"`, `"eTag"`, `"constraints"`} {
		if bytes.Contains(r.body, []byte(raw)) {
			t.Errorf("$select=id,state,executionInfo returned %s: %s", raw, r.body)
		}
	}
	if !bytes.Contains(r.body, []byte(`"exitCode"`)) {
		t.Errorf("$select dropped executionInfo: %s", r.body)
	}
	one := decode[Task](t, e.c.must(200, "GET", "/jobs/j/tasks/t1?$select=id,executionInfo", nil))
	if one.ID != "t1" || one.ExecutionInfo == nil || *one.ExecutionInfo.ExitCode != 1 || one.CommandLine != "" {
		t.Errorf("get with $select: %+v", one)
	}
}

func TestConditionalRequests(t *testing.T) {
	e := newEnv(t, Options{Instant: true})
	e.pool("p", 1, 1)
	e.job("j", "p", nil)
	r := e.c.must(200, "GET", "/jobs/j", nil)
	etag := r.header.Get("ETag")
	if r := e.c.send(req{method: "GET", target: "/jobs/j", header: http.Header{"If-None-Match": {etag}}}); r.status != 304 {
		t.Errorf("If-None-Match with the current ETag: %s", r)
	}
	if r := e.c.send(req{method: "PATCH", target: "/jobs/j", body: map[string]any{"priority": 1}, header: http.Header{"If-Match": {"0x1"}}}); r.status != 412 || errorCode(t, r) != "ConditionNotMet" {
		t.Errorf("If-Match with a stale ETag: %s", r)
	}
	if r := e.c.send(req{method: "PATCH", target: "/jobs/j", body: map[string]any{"priority": 1}, header: http.Header{"If-Match": {etag}}}); r.status != 200 || r.header.Get("ETag") == etag {
		t.Errorf("If-Match with the current ETag: %s, ETag %s", r, r.header.Get("ETag"))
	}
}
