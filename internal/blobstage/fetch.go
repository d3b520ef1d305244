package blobstage

import (
	"context"
	"errors"
	"fmt"
	"github.com/bmc-dev/bmc/internal/loopback"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// StatusError is a non-2xx answer to FetchHTTP. URL has its query string,
// fragment and user info removed, so the error is safe to print even when
// the request carried a SAS signature. A 404 or 410 also matches
// ErrNotFound. Callers deciding whether to retry can look at Code.
type StatusError struct {
	URL    string
	Code   int
	Status string // as the server sent it, e.g. "503 Service Unavailable"
}

func (e *StatusError) Error() string { return "fetch " + e.URL + ": " + e.Status }

// Is makes a missing resource match ErrNotFound, as with blobs.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && (e.Code == http.StatusNotFound || e.Code == http.StatusGone)
}

// FetchHTTP downloads rawURL to the file dst, creating dst's parent
// directories. Only https is accepted, and plain http for loopback hosts
// (tests, local servers), also across redirects. The file appears under
// its name only once complete: a failed or cancelled fetch leaves nothing
// at dst. A nil client means http.DefaultClient. Like every driver here it
// does not retry.
//
// Errors name the URL without its query string or user info, which may
// hold credentials; they never quote the URL as given.
func FetchHTTP(ctx context.Context, client *http.Client, rawURL, dst string) (Stats, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL
		}
		return Stats{}, fmt.Errorf("fetch: invalid URL: %w", err)
	}
	shown := redactURL(u)
	if err := checkScheme(u); err != nil {
		return Stats{}, fmt.Errorf("fetch %s: %w", shown, err)
	}
	if client == nil {
		client = http.DefaultClient
	}
	// A shallow copy is how a caller's client gets an extra redirect rule
	// without being changed: an https URL must not be redirected to plain
	// http on a remote host.
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkScheme(req.URL); err != nil {
			return fmt.Errorf("redirect to %s: %w", redactURL(req.URL), err)
		}
		if client.CheckRedirect != nil {
			return client.CheckRedirect(req, via)
		}
		if len(via) >= 10 { // net/http's own default
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Stats{}, fmt.Errorf("fetch %s: %w", shown, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the URL, query string and all
		}
		return Stats{}, fmt.Errorf("fetch %s: %w", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Stats{}, &StatusError{URL: shown, Code: resp.StatusCode, Status: resp.Status}
	}
	n, err := writeFileAtomic(ctx, dst, resp.Body, downloadPerm)
	if err != nil {
		return Stats{}, fmt.Errorf("fetch %s: %w", shown, err)
	}
	return Stats{Files: 1, Bytes: n}, nil
}

func checkScheme(u *url.URL) error {
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && u.Host != "":
		if loopback.Host(u.Hostname()) {
			return nil
		}
		return errors.New("plain http is allowed only for loopback hosts; use https")
	default:
		return errors.New("not an https URL")
	}
}

// redactURL is u without the parts that may carry credentials: user info,
// query string (SAS tokens) and fragment.
func redactURL(u *url.URL) string {
	r := *u
	r.User = nil
	r.RawQuery, r.ForceQuery = "", false
	r.Fragment, r.RawFragment = "", ""
	return r.String()
}

// CopyLocal copies the file src to the file dst, or the directory tree src
// into the directory dst, keeping permission bits and layout and creating
// directories as needed. Existing files are replaced, each atomically.
// Symbolic links to files are copied as the file; a link to a directory
// inside the tree is an error rather than being silently skipped or
// followed into a loop. A missing src is an error wrapping ErrNotFound.
func CopyLocal(src, dst string) (Stats, error) {
	ctx := context.Background()
	fi, err := os.Stat(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Stats{}, fmt.Errorf("copy %s: %w", src, ErrNotFound)
		}
		return Stats{}, fmt.Errorf("copy %s: %w", src, err)
	}
	switch {
	case fi.Mode().IsRegular():
		n, err := copyFile(ctx, src, dst, fi.Mode().Perm())
		if err != nil {
			return Stats{}, fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
		return Stats{Files: 1, Bytes: n}, nil
	case fi.IsDir():
		st, err := copyTree(ctx, src, dst)
		if err != nil {
			return st, fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
		return st, nil
	default:
		return Stats{}, fmt.Errorf("copy %s: not a regular file or directory", src)
	}
}

func copyTree(ctx context.Context, src, dst string) (Stats, error) {
	// Copying a tree into itself would walk the copies it is making.
	realSrc, err := filepath.EvalSymlinks(src)
	if err != nil {
		return Stats{}, err
	}
	if realSrc, err = filepath.Abs(realSrc); err != nil {
		return Stats{}, err
	}
	absDst, err := filepath.Abs(dst)
	if err != nil {
		return Stats{}, err
	}
	if resolved, err := evalExisting(absDst); err == nil {
		absDst = resolved
	}
	if absDst == realSrc || strings.HasPrefix(absDst, realSrc+string(filepath.Separator)) {
		return Stats{}, errors.New("destination is inside the source")
	}

	var st Stats
	err = filepath.WalkDir(realSrc, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(realSrc, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		fi, err := os.Stat(p) // follows links to files
		if err != nil {
			return err
		}
		switch {
		case fi.Mode().IsRegular():
			n, err := copyFile(ctx, p, target, fi.Mode().Perm())
			if err != nil {
				return err
			}
			st.Files++
			st.Bytes += n
			return nil
		case fi.IsDir():
			return fmt.Errorf("%s: symbolic link to a directory is not copied", rel)
		default:
			return fmt.Errorf("%s: not a regular file", rel)
		}
	})
	return st, err
}

// evalExisting resolves symbolic links in the longest existing leading part
// of the absolute path p and appends the rest, so that a destination that
// does not exist yet is compared in the same terms as the source.
func evalExisting(p string) (string, error) {
	r, err := filepath.EvalSymlinks(p)
	if err == nil {
		return r, nil
	}
	parent := filepath.Dir(p)
	if parent == p || !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	rp, err := evalExisting(parent)
	if err != nil {
		return "", err
	}
	return filepath.Join(rp, filepath.Base(p)), nil
}

// copyFile copies the file src to dst atomically; perm is subject to the
// umask.
func copyFile(ctx context.Context, src, dst string, perm fs.FileMode) (int64, error) {
	f, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer f.Close() // read-only: nothing to flush
	return writeFileAtomic(ctx, dst, f, perm)
}

// tempPrefix starts the names of files being written. The local store skips
// such names when listing, so a reader never sees a half-written blob;
// partial.go says how those a killed writer left are swept.
const tempPrefix = ".bmc-partial-"

// writeFileAtomic streams r into a new file in dst's directory and renames
// it to dst once complete, so dst is either absent, its old content or the
// complete new content, never a prefix of it. The data is synced before the
// rename: a journal that records an upload as done must not outlive a blob
// a power cut left empty.
func writeFileAtomic(ctx context.Context, dst string, r io.Reader, perm fs.FileMode) (n int64, err error) {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	f, err := createTemp(dir, perm)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = f.Close() // already failing; the write error says more
			_ = os.Remove(f.Name())
		}
	}()
	if n, err = copyCtx(ctx, f, r); err != nil {
		return n, err
	}
	if err = f.Sync(); err != nil {
		return n, err
	}
	if err = f.Close(); err != nil {
		return n, err
	}
	if err = os.Rename(f.Name(), dst); err != nil {
		return n, err
	}
	return n, nil
}

// copyChunk is how much copyCtx moves between looks at the context.
const copyChunk = 8 << 20

// copyCtx is io.Copy that stops between chunks once ctx is done. Chunks go
// through io.CopyN, whose *io.LimitedReader *os.File still recognises, so
// file-to-file copies keep the kernel's copy_file_range fast path and use
// no buffer of ours.
func copyCtx(ctx context.Context, dst *os.File, src io.Reader) (int64, error) {
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := io.CopyN(dst, src, copyChunk)
		n += m
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// downloadPerm is the mode a downloaded file is created with, less the
// umask: executable, as Batch makes the files it downloads for a task
// (a resource file's fileMode is 0770 unless given), so that a script
// staged as an input runs the same on both backends.
const downloadPerm = 0o777
