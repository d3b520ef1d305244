package emulator

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fileServer serves, under /files/, a blob by URL, and under /acct/cont
// a container whose listing holds data/a.txt, counting the downloads of
// each path.
type fileServer struct {
	*httptest.Server
	mu    sync.Mutex
	gets  map[string]int
	blobs map[string]string
}

func newFileServer(t *testing.T) *fileServer {
	fs := &fileServer{gets: map[string]int{}, blobs: map[string]string{
		"/files/in.txt":         "input\n",
		"/acct/cont/data/a.txt": "prefix a\n",
	}}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("comp") == "list" {
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ContainerName="cont"><Blobs><Blob><Name>data/a.txt</Name><Properties><Content-Length>%d</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob></Blobs><NextMarker/></EnumerationResults>`, len(fs.blobs["/acct/cont/data/a.txt"]))
			return
		}
		body, ok := fs.blobs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fs.mu.Lock()
		fs.gets[r.URL.Path]++
		fs.mu.Unlock()
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.Header.Get("Range") != "" || r.Header.Get("x-ms-range") != "" {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(body)-1, len(body)))
			w.WriteHeader(http.StatusPartialContent)
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fileServer) downloads(path string) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.gets[path]
}

// resourceFiles are the task's: a file by URL and a container prefix.
func (fs *fileServer) resourceFiles() []map[string]any {
	return []map[string]any{
		{"httpUrl": fs.URL + "/files/in.txt", "filePath": "in.txt"},
		{"storageContainerUrl": fs.URL + "/acct/cont?sig=SECRET", "blobPrefix": "data/", "filePath": "pre"},
	}
}

// retryScript fails its first attempt after deleting the task's
// resource files and leaving a file of its own, and running then; the
// next attempt says what it finds. mark, outside every node, tells the
// attempts apart.
func retryScript(mark, then string) string {
	return sh(fmt.Sprintf(`if [ -e %[1]s ]; then
for f in in.txt pre/data/a.txt left.txt; do if [ -e "$f" ]; then echo "$f"; fi; done
exit 0
fi
touch %[1]s; rm -rf in.txt pre; echo left > left.txt; %[2]s
exit 1`, mark, then))
}

// TestRetrySameNodeKeepsFiles: Batch downloads a task's resource files
// again only when it retries the task on another node. A retry on the
// same node finds the working directory as the failed attempt left it:
// the inputs it deleted gone, the file it wrote there, and nothing
// downloaded twice.
func TestRetrySameNodeKeepsFiles(t *testing.T) {
	fs := newFileServer(t)
	e := newEnv(t, Options{})
	e.pool("p", 1, 1)
	e.job("j", "p", nil)
	mark := filepath.Join(t.TempDir(), "tried")
	e.addTasks("j", taskBody("t", retryScript(mark, ""), map[string]any{
		"resourceFiles": fs.resourceFiles(),
		"constraints":   map[string]any{"maxTaskRetryCount": 1},
	}))
	tk := e.waitTask("j", "t", TaskCompleted)
	if ei := tk.ExecutionInfo; ei.Result != ResultSuccess || ei.RetryCount != 1 {
		t.Fatalf("result %s after %d retries (%+v), want success after 1", ei.Result, ei.RetryCount, ei.FailureInfo)
	}
	out := e.c.must(200, "GET", "/jobs/j/tasks/t/files/stdout.txt", nil)
	if got, want := string(out.body), "left.txt\n"; got != want {
		t.Errorf("the retry found\n%s; want only what the failed attempt left:\n%s", got, want)
	}
	for _, p := range []string{"/files/in.txt", "/acct/cont/data/a.txt"} {
		if n := fs.downloads(p); n != 1 {
			t.Errorf("%s downloaded %d times, want once", p, n)
		}
	}
}

// TestRetryOtherNodeDownloads: a retry on another node downloads the
// resource files there, into a working directory of its own.
func TestRetryOtherNodeDownloads(t *testing.T) {
	fs := newFileServer(t)
	e := newEnv(t, Options{})
	e.pool("p", 2, 1)
	e.job("j", "p", nil)
	hold, release := newGate(t), newGate(t)
	// The first node is busy until the test says; the task runs on the
	// second, which leaves the pool once the task's attempt ends.
	e.addTasks("j", hold.task("busy", 0, nil))
	hold.started(t, "busy")
	mark := filepath.Join(t.TempDir(), "tried")
	script := retryScript(mark, `touch "$GATE.t"; while [ ! -e "$GATE" ]; do sleep 0.02; done`)
	e.addTasks("j", taskBody("t", script, map[string]any{
		"resourceFiles":       fs.resourceFiles(),
		"constraints":         map[string]any{"maxTaskRetryCount": 1},
		"environmentSettings": []map[string]any{{"name": "GATE", "value": release.path}},
	}))
	release.started(t, "t")
	first := e.task("j", "t").NodeInfo.NodeID
	e.c.must(202, "POST", "/pools/p/resize", map[string]any{"targetDedicatedNodes": 1, "nodeDeallocationOption": "taskcompletion"})
	release.open(t)
	waitFor(t, "the retry to wait for a node", 30*time.Second, func() bool {
		tk := e.task("j", "t")
		return tk.State == TaskActive && tk.ExecutionInfo.RetryCount == 1
	})
	hold.open(t)
	tk := e.waitTask("j", "t", TaskCompleted)
	if ei := tk.ExecutionInfo; ei.Result != ResultSuccess || ei.RetryCount != 1 {
		t.Fatalf("result %s after %d retries (%+v), want success after 1", ei.Result, ei.RetryCount, ei.FailureInfo)
	}
	if tk.NodeInfo.NodeID == first {
		t.Fatalf("the retry ran on %s again: the test needs another node", first)
	}
	out := e.c.must(200, "GET", "/jobs/j/tasks/t/files/stdout.txt", nil)
	if got, want := string(out.body), "in.txt\npre/data/a.txt\n"; got != want {
		t.Errorf("the retry found\n%s; want the resource files, downloaded again:\n%s", got, want)
	}
	for _, p := range []string{"/files/in.txt", "/acct/cont/data/a.txt"} {
		if n := fs.downloads(p); n != 2 {
			t.Errorf("%s downloaded %d times, want twice", p, n)
		}
	}
}
