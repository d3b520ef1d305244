package emulator

import (
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/blobstage"
)

// TestEndToEnd drives the emulator as a Batch client would, with plain
// signed HTTP: pool, job, add-collection with dependencies, resource files
// from Azurite by SAS, by the emulated pool identity and by auto-storage,
// output files to Azurite, task counts, listing, files, terminate; it
// checks every state and every byte that lands in storage.
func TestEndToEnd(t *testing.T) {
	cs := azurite.Start(t)
	ctx := t.Context()
	svc, err := service.NewClientFromConnectionString(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"inputs", "results"} {
		if _, err := svc.NewContainerClient(c).Create(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	inputs := map[string]string{
		"data/a.txt":       "alpha\n",
		"data/b.txt":       "beta\n",
		"data-other/c.txt": "not selected by the prefix data/\n",
		"ref.fa":           ">r\nACGT\n",
	}
	for name, body := range inputs {
		if _, err := svc.NewContainerClient("inputs").NewBlockBlobClient(name).UploadBuffer(ctx, []byte(body), nil); err != nil {
			t.Fatal(err)
		}
	}
	expiry := time.Now().Add(time.Hour)
	containerSAS := func(name string, p sas.ContainerPermissions) string {
		u, err := svc.NewContainerClient(name).GetSASURL(p, expiry, nil)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	inputsRead := containerSAS("inputs", sas.ContainerPermissions{Read: true, List: true})
	resultsWrite := containerSAS("results", sas.ContainerPermissions{Read: true, List: true, Write: true, Create: true, Add: true})
	refSAS, err := svc.NewContainerClient("inputs").NewBlobClient("ref.fa").GetSASURL(sas.BlobPermissions{Read: true}, expiry, nil)
	if err != nil {
		t.Fatal(err)
	}
	inputsURL := svc.NewContainerClient("inputs").URL()
	resultsURL := svc.NewContainerClient("results").URL()
	identity := map[string]any{"resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bmc"}
	out := func(pattern, container, path, cond string, id bool) map[string]any {
		dest := map[string]any{"containerUrl": container, "path": path}
		if id {
			dest["identityReference"] = identity
		}
		return map[string]any{"filePattern": pattern, "destination": map[string]any{"container": dest},
			"uploadOptions": map[string]any{"uploadCondition": cond}}
	}

	e := newEnv(t, Options{StorageConnectionString: cs})
	e.pool("pool", 1, 2)
	e.job("e2e", "pool", map[string]any{"usesTaskDependencies": true})
	e.addTasks("e2e",
		taskBody("prep", sh(`set -e
mkdir -p out/sub
cat in/data/a.txt in/data/b.txt > out/merged.txt
cp ref/ref.fa out/sub/ref.copy
cp byid.txt out/byid.txt
cp auto/ref.fa out/auto.fa
test ! -e in/data-other
stat -c %a ref/ref.fa > out/mode.txt
echo prepared`), map[string]any{
			"resourceFiles": []map[string]any{
				{"storageContainerUrl": inputsRead, "blobPrefix": "data/", "filePath": "in"},
				{"httpUrl": refSAS, "filePath": "ref/ref.fa", "fileMode": "0640"},
				{"httpUrl": inputsURL + "/data/a.txt", "filePath": "byid.txt", "identityReference": identity},
				{"autoStorageContainerName": "inputs", "blobPrefix": "ref", "filePath": "auto"},
			},
			"outputFiles": []map[string]any{
				out("out/**/*", resultsWrite, "run1/prep", "tasksuccess", false),
				out("../std*.txt", resultsURL, "logs/prep", "taskcompletion", true),
				out("out/merged.txt", resultsWrite, "single/merged-copy.txt", "tasksuccess", false),
				out("out/merged.txt", resultsWrite, "never/", "taskfailure", false),
			},
		}),
		taskBody("fail", sh("echo bad > err.log; exit 2"), map[string]any{
			"outputFiles": []map[string]any{
				out("err.log", resultsWrite, "fail/err.log", "taskfailure", false),
				out("err.log", resultsWrite, "fail/never.log", "tasksuccess", false),
			},
		}),
		taskBody("after", sh("echo after"), map[string]any{"dependsOn": map[string]any{"taskIds": []string{"prep"}}}),
		taskBody("blocked", sh("echo never"), map[string]any{"dependsOn": map[string]any{"taskIds": []string{"fail"}}}),
		taskBody("denied", "true", map[string]any{"resourceFiles": []map[string]any{{"storageContainerUrl": inputsURL, "filePath": "x"}}}),
		taskBody("missing", "true", map[string]any{"resourceFiles": []map[string]any{{"httpUrl": inputsURL + "/nope.txt", "filePath": "x", "identityReference": identity}}}),
		taskBody("upload-denied", "true", map[string]any{"outputFiles": []map[string]any{
			out("../stdout.txt", inputsRead, "x.txt", "taskcompletion", false)}}),
	)

	done := map[string]struct {
		result TaskResult
		code   string
		exit   *int32
	}{
		"prep":          {ResultSuccess, "", int32Ptr(0)},
		"after":         {ResultSuccess, "", int32Ptr(0)},
		"fail":          {ResultFailure, "FailureExitCode", int32Ptr(2)},
		"denied":        {ResultFailure, "ResourceContainerAccessDenied", nil},
		"missing":       {ResultFailure, "BlobNotFound", nil},
		"upload-denied": {ResultFailure, "FileUploadAccessDenied", int32Ptr(0)},
	}
	for id, want := range done {
		tk := e.waitTask("e2e", id, TaskCompleted)
		ei := tk.ExecutionInfo
		code := ""
		if ei.FailureInfo != nil {
			code = ei.FailureInfo.Code
		}
		if ei.Result != want.result || code != want.code || !cmp.Equal(ei.ExitCode, want.exit) {
			stderr := e.c.do("GET", "/jobs/e2e/tasks/"+id+"/files/stderr.txt", nil)
			t.Errorf("%s: result %s code %s exit %v, want %+v\nfailureInfo %+v\nstderr %s", id, ei.Result, code, ei.ExitCode, want, ei.FailureInfo, stderr.body)
		}
	}
	if tk := e.task("e2e", "blocked"); tk.State != TaskActive {
		t.Errorf("blocked: %s", tk.State)
	}
	c := e.counts("e2e")
	if want := (TaskCounts{Active: 1, Completed: 6, Succeeded: 2, Failed: 4}); c.TaskCounts != want || c.TaskSlotCounts != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	completed, _ := e.listAll("/jobs/e2e/tasks?maxresults=2&$select=id,state,executionInfo&$filter=" + url.QueryEscape("state eq 'completed' and executionInfo/result eq 'success'"))
	if len(completed) != 2 || completed[0].ID != "prep" || completed[1].ID != "after" {
		t.Errorf("succeeded tasks: %+v", completed)
	}

	// The node's files.
	if r := e.c.must(200, "GET", "/jobs/e2e/tasks/prep/files/stdout.txt", nil); string(r.body) != "prepared\n" {
		t.Errorf("prep stdout: %q", r.body)
	}
	if r := e.c.must(200, "GET", "/jobs/e2e/tasks/prep/files/wd/out/merged.txt", nil); string(r.body) != "alpha\nbeta\n" {
		t.Errorf("merged: %q", r.body)
	}
	if r := e.c.must(200, "GET", "/jobs/e2e/tasks/prep/files/fileuploadout.txt", nil); strings.Count(string(r.body), "uploaded") != 3 {
		t.Errorf("fileuploadout.txt: %s", r.body)
	}
	if r := e.c.must(200, "GET", "/jobs/e2e/tasks/upload-denied/files/fileuploaderr.txt", nil); strings.Contains(string(r.body), "sig=") && !strings.Contains(string(r.body), "sig=REDACTED") {
		t.Errorf("fileuploaderr.txt shows a SAS: %s", r.body)
	}

	// What landed in storage, byte for byte.
	store, err := blobstage.NewFromConnectionString(cs, blobstage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if _, err := store.Download(ctx, blobstage.Location{Container: "results"}, dst); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"run1/prep/merged.txt":   "alpha\nbeta\n",
		"run1/prep/sub/ref.copy": ">r\nACGT\n",
		"run1/prep/byid.txt":     "alpha\n",
		"run1/prep/auto.fa":      ">r\nACGT\n",
		"run1/prep/mode.txt":     "640\n",
		"logs/prep/stdout.txt":   "prepared\n",
		"logs/prep/stderr.txt":   "",
		"single/merged-copy.txt": "alpha\nbeta\n",
		"fail/err.log":           "bad\n",
	}
	if diff := cmp.Diff(want, readTree(t, dst)); diff != "" {
		t.Errorf("results container (-want +got):\n%s", diff)
	}

	e.c.must(202, "POST", "/jobs/e2e/terminate", nil)
	j := e.waitJob("e2e", JobCompleted)
	if j.ExecutionInfo.TerminateReason != "UserTerminate" {
		t.Errorf("job %+v", j.ExecutionInfo)
	}
	if tk := e.task("e2e", "blocked"); tk.State != TaskActive {
		t.Errorf("an active task of a terminated job: %s", tk.State)
	}
	if r := e.c.do("POST", "/jobs/e2e/tasks", taskBody("late", "true", nil)); r.status != 409 || errorCode(t, r) != "JobCompleted" {
		t.Errorf("add to a terminated job: %s", r)
	}
}

// readTree reads every file under dir, by slash-separated relative path.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}
