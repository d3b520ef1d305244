package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Task files: the task's directory on the node it last ran on, as Batch
// exposes it: stdout.txt, stderr.txt, the working directory wd/, and the
// upload logs fileuploadout.txt and fileuploaderr.txt.

// taskDirOf is the directory of the node t last ran on, or "" if it never
// ran. It is derived from nodeInfo so that it survives a restart.
func (s *Server) taskDirOf(t *task) string {
	ni := t.wire.NodeInfo
	if ni == nil || ni.NodeID == "" {
		return ""
	}
	return filepath.Join(s.root, "nodes", ni.NodeID, filepath.FromSlash(taskRootDir(t.job.wire.ID, t.wire.ID)))
}

// removeDirs deletes directories in the background after moving them out
// of the way, so that a task or job created again with the same id never
// sees (or loses) the old files.
func (s *Server) removeDirs(dirs []string) {
	var trash []string
	for _, d := range dirs {
		var b [8]byte
		_, _ = rand.Read(b[:])
		t := filepath.Join(s.root, "trash", hex.EncodeToString(b[:]))
		_ = os.MkdirAll(filepath.Dir(t), 0o755)
		if os.Rename(d, t) == nil {
			trash = append(trash, t)
		}
	}
	if len(trash) == 0 {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for _, t := range trash {
			_ = os.RemoveAll(t)
		}
	}()
}

func errFileNotFound(p string) *apiError {
	return newError(http.StatusNotFound, "FileNotFound", "The specified file does not exist.").with("FilePath", p)
}

// taskFile resolves a file path of a task, keeping it inside the task's
// directory.
func (s *Server) taskFile(c *call) (t *task, dir, rel, full string, e *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, e = s.taskFor(c)
	if e != nil {
		return
	}
	rel = c.param("path")
	if rel != "" {
		clean := path.Clean("/" + rel)[1:]
		if clean == "" || strings.Contains("/"+rel+"/", "/../") {
			e = newError(http.StatusBadRequest, "InvalidUri", "The file path must stay inside the task's directory.").with("FilePath", rel)
			return
		}
		rel = clean
	}
	dir = s.taskDirOf(t)
	if dir == "" {
		e = errFileNotFound(rel)
		return
	}
	full = filepath.Join(dir, filepath.FromSlash(rel))
	return
}

func (s *Server) fileURL(t *task, rel string) string {
	segs := strings.Split(rel, "/")
	for i, sg := range segs {
		segs[i] = url.PathEscape(sg)
	}
	return s.taskURL(t.job.wire.ID, t.wire.ID) + "/files/" + strings.Join(segs, "/")
}

func fileMode(fi fs.FileInfo) string {
	kind := uint32(0o100000)
	if fi.IsDir() {
		kind = 0o040000
	}
	return fmt.Sprintf("0%o", kind|uint32(fi.Mode().Perm()))
}

func (s *Server) getTaskFile(c *call) (*response, *apiError) {
	t, _, rel, full, e := s.taskFile(c)
	if e != nil {
		return nil, e
	}
	fi, err := os.Stat(full)
	if err != nil {
		return nil, errFileNotFound(rel)
	}
	mod := Time{fi.ModTime().UTC()}
	if e := conditions(c, "", &mod, true); e != nil {
		return nil, e
	}
	resp := &response{status: http.StatusOK}
	resp.set("ocp-creation-time", creationTime(fi).UTC().Format(http.TimeFormat))
	resp.set("ocp-batch-file-isdirectory", strconv.FormatBool(fi.IsDir()))
	resp.set("ocp-batch-file-url", s.fileURL(t, rel))
	resp.set("ocp-batch-file-mode", fileMode(fi))
	resp.set("Last-Modified", mod.UTC().Format(http.TimeFormat))
	resp.set("Content-Type", "application/octet-stream")
	if fi.IsDir() {
		if c.r.Method == http.MethodHead {
			resp.length = 0
			return resp.set("Content-Length", "0"), nil
		}
		return nil, newError(http.StatusBadRequest, "InvalidUri", "The path names a directory; list the task's files instead.").with("FilePath", rel)
	}
	f, err := os.Open(full)
	if err != nil {
		return nil, errFileNotFound(rel)
	}
	start, length := int64(0), fi.Size()
	if rg := c.r.Header.Get("ocp-range"); rg != "" {
		a, b, ok := parseRange(rg, fi.Size())
		if !ok {
			f.Close()
			return nil, newError(http.StatusRequestedRangeNotSatisfiable, "InvalidRange",
				"The range specified is invalid for the current size of the resource.").with("Range", rg)
		}
		start, length = a, b-a+1
		resp.set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, fi.Size()))
	}
	if _, err := f.Seek(start, 0); err != nil {
		f.Close()
		return nil, errFileNotFound(rel)
	}
	resp.stream, resp.length = f, length
	return resp, nil
}

// parseRange reads "bytes=a-b", "bytes=a-" or "bytes=-n" (the last n
// bytes) against a file of size bytes, returning an inclusive range.
func parseRange(h string, size int64) (int64, int64, bool) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, false
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 || size == 0 {
			return 0, 0, false
		}
		return max(size-n, 0), size - 1, true
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end := size - 1
	if b != "" {
		e, err := strconv.ParseInt(b, 10, 64)
		if err != nil || e < start {
			return 0, 0, false
		}
		end = min(e, size-1)
	}
	return start, end, true
}

func (s *Server) deleteTaskFile(c *call) (*response, *apiError) {
	_, _, rel, full, e := s.taskFile(c)
	if e != nil {
		return nil, e
	}
	if rel == "" {
		return nil, newError(http.StatusBadRequest, "InvalidUri", "A file path is needed.")
	}
	fi, err := os.Stat(full)
	if err != nil {
		return nil, errFileNotFound(rel)
	}
	if fi.IsDir() {
		recursive, _ := strconv.ParseBool(c.query.Get("recursive"))
		entries, _ := os.ReadDir(full)
		if len(entries) > 0 && !recursive {
			return nil, errConflict("OperationInvalidForCurrentState",
				"The directory is not empty; delete it with recursive=true.").with("FilePath", rel)
		}
		err = os.RemoveAll(full)
	} else {
		err = os.Remove(full)
	}
	if err != nil {
		return nil, newError(http.StatusInternalServerError, "IOError", "The file could not be deleted: %v", err)
	}
	return reply(http.StatusOK, nil), nil
}

var fileProps = map[string]func(*NodeFile) value{
	"name": func(f *NodeFile) value { return str(f.Name) },
}

func (s *Server) listTaskFiles(c *call) (*response, *apiError) {
	t, dir, _, _, e := s.taskFile(c)
	if e != nil && e.code == "FileNotFound" {
		return reply(http.StatusOK, NodeFileList{Value: []NodeFile{}}), nil
	}
	if e != nil {
		return nil, e
	}
	recursive, _ := strconv.ParseBool(c.query.Get("recursive"))
	var files []NodeFile
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(path.Base(rel), ".resourcefiles-") {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		isDir := d.IsDir()
		f := NodeFile{Name: rel, URL: s.fileURL(t, rel), IsDirectory: &isDir,
			// No creationTime: Batch does not return it for Linux nodes.
			Properties: &FileProperties{LastModified: newTime(fi.ModTime()), ContentLength: "0", FileMode: fileMode(fi)}}
		if !isDir {
			f.Properties.ContentLength = strconv.FormatInt(fi.Size(), 10)
			f.Properties.ContentType = "application/octet-stream"
		}
		files = append(files, f)
		if isDir && !recursive {
			return filepath.SkipDir
		}
		return nil
	})
	slices.SortFunc(files, func(a, b NodeFile) int { return strings.Compare(a.Name, b.Name) })

	limit := 1000
	if v := c.query.Get("maxresults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, errInvalidQuery("maxresults", v, "maxresults must be an integer from 1 to 1000")
		}
		limit = n
	}
	var f filterNode
	if raw := c.query.Get("$filter"); strings.TrimSpace(raw) != "" {
		var err error
		f, err = parseFilter(raw, func(p string) bool { return p == "name" })
		if err != nil {
			return nil, errInvalidQuery("$filter", raw, err.Error())
		}
	}
	after := c.query.Get("$skiptoken")
	out := NodeFileList{Value: []NodeFile{}}
	for i := range files {
		fl := &files[i]
		if after != "" && fl.Name <= after {
			continue
		}
		if f != nil && !f.eval(func(p string) value { return fileProps[p](fl) }) {
			continue
		}
		if len(out.Value) == limit {
			out.NextLink = nextLinkString(c, out.Value[len(out.Value)-1].Name)
			break
		}
		out.Value = append(out.Value, *fl)
	}
	return reply(http.StatusOK, out), nil
}
