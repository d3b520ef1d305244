package emulator

import (
	"fmt"
	"strings"
	"testing"
)

// resourceFiles is n httpUrl resource files with SAS URLs, as a client
// brings a directory file by file: about 250 characters each.
func resourceFiles(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{
			"httpUrl":  fmt.Sprintf("https://acct.blob.core.windows.net/bmc/sha256/%064d?sv=2025-01-05&se=2026-01-03T00%%3A00%%3A00Z&sr=c&sp=r&sig=SECRET%%3D", i),
			"filePath": fmt.Sprintf("data/file-%05d.txt", i),
			"fileMode": "0644",
		}
	}
	return out
}

// TestResourceFilesLimit: a task whose resourceFiles list is larger than
// Batch takes is refused with RequestEntityTooLarge, alone or in a
// collection, where the other tasks are added; the answer names the
// property and carries no URL from the request.
func TestResourceFilesLimit(t *testing.T) {
	e := newEnv(t, Options{})
	e.job("j", "nopool", nil)
	// 120 files fit; 200 do not (about 250 characters each).
	if n := resourceFilesSize(decodeResourceFiles(t, resourceFiles(120))); n > maxResourceFiles {
		t.Fatalf("120 resource files are %d characters: the test needs them to fit", n)
	}
	e.addTasks("j", taskBody("fits", "true", map[string]any{"resourceFiles": resourceFiles(120)}))

	r := e.c.do("POST", "/jobs/j/tasks", taskBody("big", "true", map[string]any{"resourceFiles": resourceFiles(200)}))
	if r.status != 413 || errorCode(t, r) != "RequestEntityTooLarge" || errorValue(t, r, "PropertyName") != "resourceFiles" {
		t.Errorf("add a task with 200 resource files: %s", r)
	}
	if strings.Contains(string(r.body), "SECRET") || strings.Contains(string(r.body), "blob.core") {
		t.Errorf("the answer quotes the request's URLs: %s", r.body)
	}

	res := decode[TaskAddCollectionResult](t, e.c.must(200, "POST", "/jobs/j/addtaskcollection", map[string]any{"value": []map[string]any{
		taskBody("ok", "true", nil),
		taskBody("big", "true", map[string]any{"resourceFiles": resourceFiles(200)}),
		taskBody("mi", "true", map[string]any{"multiInstanceSettings": map[string]any{
			"coordinationCommandLine": "true", "commonResourceFiles": resourceFiles(200)}}),
	}})).Value
	got := map[string]string{}
	for _, v := range res {
		got[v.TaskID] = string(v.Status)
		if v.Error != nil {
			got[v.TaskID] += " " + v.Error.Code
			for _, d := range v.Error.Values {
				if d.Key == "PropertyName" {
					got[v.TaskID] += " " + d.Value
				}
			}
		}
	}
	want := map[string]string{
		"ok":  "success",
		"big": "clienterror RequestEntityTooLarge value[1].resourceFiles",
		"mi":  "clienterror RequestEntityTooLarge value[2].multiInstanceSettings.commonResourceFiles",
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %q, want %q", id, got[id], w)
		}
	}
	if g := e.c.do("GET", "/jobs/j/tasks/big", nil); g.status != 404 {
		t.Errorf("the refused task exists: %s", g)
	}
}

func decodeResourceFiles(t *testing.T, rfs []map[string]any) []ResourceFile {
	t.Helper()
	out := make([]ResourceFile, len(rfs))
	for i, m := range rfs {
		out[i] = ResourceFile{HTTPURL: m["httpUrl"].(string), FilePath: m["filePath"].(string), FileMode: m["fileMode"].(string)}
	}
	return out
}
