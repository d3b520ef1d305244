package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

const testIdentity = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bmc"

// TestNoTaskTokensByDefault: Batch has retired task authentication
// tokens; a task that asks for one gets none, unless the emulator is told
// to behave as Batch did before.
func TestNoTaskTokensByDefault(t *testing.T) {
	for _, tokens := range []bool{false, true} {
		e := newEnv(t, Options{TaskTokens: tokens})
		e.pool("p", 1, 1)
		e.job("j", "p", nil)
		e.addTasks("j", taskBody("t", "/usr/bin/env", map[string]any{"authenticationTokenSettings": map[string]any{"access": []string{"job"}}}))
		e.waitTask("j", "t", TaskCompleted)
		env := envOf(string(e.c.must(200, "GET", "/jobs/j/tasks/t/files/stdout.txt", nil).body))
		if _, ok := env["AZ_BATCH_AUTHENTICATION_TOKEN"]; ok != tokens {
			t.Errorf("TaskTokens %v: AZ_BATCH_AUTHENTICATION_TOKEN set: %v", tokens, ok)
		}
		if _, ok := env["IDENTITY_ENDPOINT"]; ok {
			t.Errorf("a pool without an identity: IDENTITY_ENDPOINT is set")
		}
	}
}

// TestPoolIdentity: with Options.PoolIdentity every pool has the identity,
// its tasks find the managed-identity endpoint as azidentity reads it (App
// Service style), and its tokens reach the jobs of that pool only.
func TestPoolIdentity(t *testing.T) {
	e := newEnv(t, Options{PoolIdentity: testIdentity})
	e.pool("p", 1, 1)
	e.pool("q", 1, 1)
	var p Pool
	if err := json.Unmarshal(e.c.must(200, "GET", "/pools/p", nil).body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Identity == nil || string(p.Identity.Type) != "UserAssigned" || len(p.Identity.UserAssignedIdentities) != 1 ||
		p.Identity.UserAssignedIdentities[0].ResourceID != testIdentity || p.Identity.UserAssignedIdentities[0].ClientID == "" {
		t.Fatalf("pool identity %+v", p.Identity)
	}
	e.job("j", "p", nil)
	e.job("other", "q", nil)
	e.addTasks("j", taskBody("t", "/usr/bin/env", nil))
	e.waitTask("j", "t", TaskCompleted)
	env := envOf(string(e.c.must(200, "GET", "/jobs/j/tasks/t/files/stdout.txt", nil).body))
	endpoint, header := env["IDENTITY_ENDPOINT"], env["IDENTITY_HEADER"]
	if !strings.HasPrefix(endpoint, e.ts.URL+"/") || header == "" {
		t.Fatalf("IDENTITY_ENDPOINT %q, IDENTITY_HEADER set %v", endpoint, header != "")
	}

	get := func(endpoint, header string, q url.Values) (int, map[string]any) {
		r, err := http.NewRequest("GET", endpoint+"?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if header != "" {
			r.Header.Set("X-IDENTITY-HEADER", header)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {"https://batch.core.windows.net/"}, "mi_res_id": {testIdentity}}
	code, tok := get(endpoint, header, q)
	token, _ := tok["access_token"].(string)
	if code != 200 || token == "" || tok["expires_on"] == nil || tok["token_type"] != "Bearer" {
		t.Fatalf("token request: %d %v", code, tok)
	}
	for name, tc := range map[string]struct {
		endpoint, header string
		q                url.Values
		want             int
	}{
		"no header":      {endpoint, "", q, 401},
		"wrong header":   {endpoint, header + "x", q, 401},
		"other pool":     {strings.Replace(endpoint, "/p/", "/q/", 1), header, q, 401},
		"other identity": {endpoint, header, url.Values{"api-version": {"2019-08-01"}, "resource": {"https://batch.core.windows.net/"}, "mi_res_id": {testIdentity + "2"}}, 400},
		"other resource": {endpoint, header, url.Values{"api-version": {"2019-08-01"}, "resource": {"https://storage.azure.com/"}}, 400},
	} {
		if code, _ := get(tc.endpoint, tc.header, tc.q); code != tc.want {
			t.Errorf("%s: %d, want %d", name, code, tc.want)
		}
	}

	bearer := func(method, target string) int {
		return e.c.send(req{method: method, target: target, tamper: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }}).status
	}
	for target, want := range map[string]int{"/jobs/j": 200, "/jobs/J/tasks": 200, "/jobs/j/taskcounts": 200, "/jobs/other": 403, "/pools/p": 403, "/jobs": 403} {
		if got := bearer("GET", target); got != want {
			t.Errorf("GET %s with the pool's token: %d, want %d", target, got, want)
		}
	}
	if got := bearer("POST", "/jobs/other/tasks"); got != 403 {
		t.Errorf("add a task to another pool's job: %d", got)
	}
}

// TestPoolPackageNeedsARMID: a pool's package reference is the
// application's full ARM id; the plain id a task uses is refused on a
// pool, as Batch refuses it.
func TestPoolPackageNeedsARMID(t *testing.T) {
	e := newEnv(t, Options{Packages: []Package{{Name: "tool", Version: "1.0", Dir: t.TempDir()}}})
	for i, tc := range []struct {
		id   string
		want int
	}{
		{"tool", 409},
		{"applications/tool", 409},
		{"/subscriptions/s/resourceGroups/g/providers/Microsoft.Batch/batchAccounts/a/applications/", 409},
		{"/subscriptions//resourceGroups/g/providers/Microsoft.Batch/batchAccounts/a/applications/tool", 409},
		{"/subscriptions/s/resourceGroups/g/providers/Microsoft.Batch/batchAccounts/a/applications/tool", 201},
	} {
		b := poolBody("p"+strconv.Itoa(i), 1, 1)
		b["applicationPackageReferences"] = []map[string]any{{"applicationId": tc.id, "version": "1.0"}}
		r := e.c.send(req{method: "POST", target: "/pools", body: b})
		if r.status != tc.want || tc.want == 409 && errorCode(t, r) != "InvalidApplicationPackageReferences" {
			t.Errorf("pool package %q: %s, want %d", tc.id, r, tc.want)
		}
	}
	// An auto pool's specification is a pool's too.
	spec := poolBody("x", 1, 1)
	delete(spec, "id")
	spec["applicationPackageReferences"] = []map[string]any{{"applicationId": "tool", "version": "1.0"}}
	r := e.c.send(req{method: "POST", target: "/jobs", body: map[string]any{"id": "auto", "poolInfo": map[string]any{"autoPoolSpecification": map[string]any{"poolLifetimeOption": "job", "pool": spec}}}})
	if r.status != 409 {
		t.Errorf("auto pool with a plain package id: %s", r)
	}
	// A task's reference is the plain id.
	e.pool("tp", 1, 1)
	e.job("j", "tp", nil)
	e.addTasks("j", taskBody("t", "true", map[string]any{"applicationPackageReferences": []map[string]any{{"applicationId": "tool"}}}))
	if tk := e.waitTask("j", "t", TaskCompleted); tk.ExecutionInfo.Result != ResultSuccess {
		t.Errorf("task with a plain package id: %+v", tk.ExecutionInfo.FailureInfo)
	}
}

// TestLowerPackageVars: with LowerPackageVars only the lower-case
// spelling of a package's variables is set.
func TestLowerPackageVars(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, Options{LowerPackageVars: true, Packages: []Package{{Name: "Tool-X", Version: "1.0", Dir: dir}}})
	e.pool("p", 1, 1)
	e.job("j", "p", nil)
	e.addTasks("j", taskBody("t", "/usr/bin/env", map[string]any{"applicationPackageReferences": []map[string]any{{"applicationId": "Tool-X", "version": "1.0"}}}))
	e.waitTask("j", "t", TaskCompleted)
	env := envOf(string(e.c.must(200, "GET", "/jobs/j/tasks/t/files/stdout.txt", nil).body))
	if env["AZ_BATCH_APP_PACKAGE_tool_x_1_0"] != dir {
		t.Errorf("AZ_BATCH_APP_PACKAGE_tool_x_1_0 = %q", env["AZ_BATCH_APP_PACKAGE_tool_x_1_0"])
	}
	if v, ok := env["AZ_BATCH_APP_PACKAGE_Tool_X_1_0"]; ok {
		t.Errorf("AZ_BATCH_APP_PACKAGE_Tool_X_1_0 = %q, want unset", v)
	}
}
