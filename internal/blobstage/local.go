package blobstage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bmc-dev/bmc/internal/filepattern"
)

// Local is the folder store: blob p of container c is the file root/c/p.
// It is the embedded default behind az:// when no account is configured,
// so every workload runs with no cloud at all.
//
// Every write goes to a temporary file in the blob's directory that is
// renamed into place when complete, and listings skip those files, so a
// concurrent reader never sees a half-written blob. Those a killed writer
// left are swept by the next write into their folder (see partial.go). A
// Local holds no state besides its root and is safe for concurrent use;
// concurrent uploads of one blob leave one of them whole.
//
// A folder cannot hold both a file a and a file a/b the way a blob
// container can hold blobs "a" and "a/b"; such an upload fails.
type Local struct {
	root string
}

var _ Store = (*Local)(nil)

// NewLocal returns the store rooted at root, which is created on first
// upload.
func NewLocal(root string) *Local {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return &Local{root: root}
}

// URL implements Store: file:// and the absolute root.
func (l *Local) URL() string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(l.root)}).String()
}

// path maps loc to its file, after checking it the way ParseURL would: a
// Location built by hand with ".." or an odd container must not reach
// outside the root.
func (l *Local) path(loc Location) (string, error) {
	if _, err := ParseURL(loc.String()); err != nil {
		return "", err
	}
	return filepath.Join(l.root, loc.Container, filepath.FromSlash(loc.Path)), nil
}

// Download implements Store.
func (l *Local) Download(ctx context.Context, src Location, dst string) (Stats, error) {
	p, err := l.path(src)
	if err != nil {
		return Stats{}, fmt.Errorf("download %s: %w", src, err)
	}
	if !src.IsPrefix() {
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.Mode().IsRegular() && !strings.HasPrefix(fi.Name(), tempPrefix):
		case err == nil || missing(err):
			// A directory is a prefix, not a blob.
			return Stats{}, fmt.Errorf("download %s: %w", src, ErrNotFound)
		default:
			return Stats{}, fmt.Errorf("download %s: %w", src, err)
		}
		n, err := copyFile(ctx, p, dst, downloadPerm)
		if err != nil {
			return Stats{}, fmt.Errorf("download %s: %w", src, err)
		}
		return Stats{Files: 1, Bytes: n}, nil
	}

	var st Stats
	err = filepath.WalkDir(p, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			if fp == p && missing(err) {
				return fs.SkipAll // no such prefix: reported below
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		if fp == p {
			return fs.SkipAll // a blob named like the prefix is not under it
		}
		if !d.Type().IsRegular() {
			return nil // the store writes only regular files
		}
		rel, err := filepath.Rel(p, fp)
		if err != nil {
			return err
		}
		n, err := copyFile(ctx, fp, filepath.Join(dst, rel), downloadPerm)
		if err != nil {
			return fmt.Errorf("%s: %w", src.Join(filepath.ToSlash(rel)), err)
		}
		st.Files++
		st.Bytes += n
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("download %s: %w", src, err)
	}
	if st.Files == 0 {
		return st, fmt.Errorf("download %s: no blobs under prefix: %w", src, ErrNotFound)
	}
	return st, nil
}

// Upload implements Store.
func (l *Local) Upload(ctx context.Context, dir, pattern string, dst Location) (Stats, error) {
	if _, err := l.path(dst); err != nil {
		return Stats{}, fmt.Errorf("upload %s: %w", dst, err)
	}
	files, err := filepattern.Match(dir, pattern)
	if err != nil {
		return Stats{}, fmt.Errorf("upload %s: %w", dst, err)
	}
	// Without a wildcard the pattern names one file, which becomes blob
	// dst itself unless dst is a prefix.
	single := !filepattern.HasWildcard(pattern) && !dst.IsPrefix()
	base := filepattern.BaseDir(pattern)
	var st Stats
	for _, f := range files {
		loc := dst
		if !single {
			rel := f
			if base != "" {
				rel = strings.TrimPrefix(f, base+"/")
			}
			loc = dst.Join(rel)
		}
		target, err := l.path(loc)
		if err != nil {
			return st, fmt.Errorf("upload %s: %w", loc, err)
		}
		n, err := uploadFile(ctx, filepath.Join(dir, filepath.FromSlash(f)), target)
		if err != nil {
			return st, fmt.Errorf("upload %s: %w", loc, err)
		}
		st.Files++
		st.Bytes += n
	}
	return st, nil
}

// uploadFile copies the file src to the blob file target with src's
// permissions, so that a private output (a key, mode 0600) is as private
// in the store as it was in the task's directory. The owner is always
// left able to read and replace the blob: the store's files are bmc's to
// manage, whatever a task made of its own.
func uploadFile(ctx context.Context, src, target string) (int64, error) {
	f, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer f.Close() // read-only: nothing to flush
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return writeFileAtomic(ctx, target, f, fi.Mode().Perm()|0o600)
}

// missing reports errors meaning the path does not exist, including a
// path that runs through a file.
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
