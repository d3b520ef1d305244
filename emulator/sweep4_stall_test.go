package emulator

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// stallingBlobServer serves, under /acct/cont, a container listing of one
// blob, data/a.txt, whose every request gets headers and then nothing
// (the blob client picks up a transfer that moved, however little);
// any path under /stall gets headers and a few bytes of a longer body
// and then nothing; /quiet gets nothing at all. Both wait until the test
// ends or the client goes.
func stallingBlobServer(t *testing.T) *httptest.Server {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("comp") == "list" {
			w.Header().Set("Content-Type", "application/xml")
			w.Write([]byte(`<?xml version="1.0" encoding="utf-8"?><EnumerationResults ContainerName="cont"><Blobs><Blob><Name>data/a.txt</Name><Properties><Content-Length>1000</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob></Blobs><NextMarker/></EnumerationResults>`))
			return
		}
		if r.URL.Path != "/quiet" {
			w.Header().Set("Content-Length", "1000")
			if r.Header.Get("Range") != "" || r.Header.Get("x-ms-range") != "" {
				w.Header().Set("Content-Range", "bytes 0-999/1000")
				w.WriteHeader(http.StatusPartialContent)
			}
			if strings.HasPrefix(r.URL.Path, "/stall/") {
				w.Write([]byte("some bytes"))
			}
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close) // runs after release is closed: Close waits for handlers
	t.Cleanup(func() { close(release) })
	return srv
}

// TestSweep4ResourceFileStall: a resource file whose server stops
// sending, or never answers, fails the task once nothing has come for
// the stall limit, saying so and quoting no SAS; the default client puts
// no limit on a transfer as a whole, so a big file on a slow link is not
// cut off.
func TestSweep4ResourceFileStall(t *testing.T) {
	if s := newEnv(t, Options{}).srv; s.stager.http.Timeout != 0 {
		t.Errorf("the default client gives up every resource file after %v, however steadily it comes", s.stager.http.Timeout)
	}
	srv := stallingBlobServer(t)
	e := newEnv(t, Options{Stall: 100 * time.Millisecond})
	e.c.must(201, "POST", "/pools", poolBody("p", 1, 4))
	e.job("j", "p", nil)
	tasks := map[string]struct {
		rf   map[string]any
		says string
	}{
		"http-stall":      {map[string]any{"httpUrl": srv.URL + "/stall/a.txt?sig=SECRET", "filePath": "a.txt"}, "no data received for 100ms"},
		"http-no-answer":  {map[string]any{"httpUrl": srv.URL + "/quiet?sig=SECRET", "filePath": "a.txt"}, "no response for 100ms"},
		"container-stall": {map[string]any{"storageContainerUrl": srv.URL + "/acct/cont?sig=SECRET", "blobPrefix": "data/", "filePath": "in"}, "no data received for 100ms"},
	}
	for id, tt := range tasks {
		e.addTasks("j", taskBody(id, "true", map[string]any{"resourceFiles": []map[string]any{tt.rf}}))
	}
	for id, tt := range tasks {
		t.Run(id, func(t *testing.T) {
			tk := e.sub(t).waitTask("j", id, TaskCompleted)
			fi := tk.ExecutionInfo.FailureInfo
			if tk.ExecutionInfo.Result != ResultFailure || fi == nil {
				t.Fatalf("result %s, failureInfo %+v: want a failure", tk.ExecutionInfo.Result, fi)
			}
			if fi.Code != "BlobDownloadTimedOut" || !strings.Contains(fi.Message, "stalled") || !strings.Contains(fi.Message, tt.says) {
				t.Errorf("failure %s %q: want BlobDownloadTimedOut saying the transfer stalled (%s)", fi.Code, fi.Message, tt.says)
			}
			if strings.Contains(fi.Message, "SECRET") {
				t.Errorf("failure %q quotes the SAS", fi.Message)
			}
		})
	}
}
