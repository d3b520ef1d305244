// Package blobstage moves files between a task's working directory and blob
// storage addressed as az://container/path: the local folder store (the
// embedded default) and Azure Blob Storage. It is shared by the local
// backend and the Batch emulator. Drivers here do not retry whole
// operations; callers decide (one retry layer per call). Nothing here logs
// or returns a credential: errors name the blob and the operation only.
package blobstage

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is wrapped by errors about a blob or prefix that does not exist.
var ErrNotFound = errors.New("not found")

// Location is a parsed az://container/path. A Path that is empty or ends in
// "/" names a prefix (a virtual directory); any other names one blob.
type Location struct {
	Container string
	Path      string
}

// ParseURL parses az://container[/path].
func ParseURL(s string) (Location, error) {
	rest, ok := strings.CutPrefix(s, "az://")
	if !ok {
		return Location{}, fmt.Errorf("%q is not an az:// location", s)
	}
	container, path, _ := strings.Cut(rest, "/")
	if !validContainer(container) {
		return Location{}, fmt.Errorf("%q: invalid container name %q: 3-63 lower-case letters, digits and dashes", s, container)
	}
	if strings.Contains("/"+path+"/", "/../") || strings.Contains("/"+path+"/", "/./") || strings.Contains(path, "//") {
		return Location{}, fmt.Errorf("%q: blob path may not hold empty, . or .. segments", s)
	}
	return Location{Container: container, Path: path}, nil
}

func validContainer(c string) bool {
	if len(c) < 3 || len(c) > 63 || c[0] == '-' || c[len(c)-1] == '-' || strings.Contains(c, "--") {
		return false
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// IsPrefix reports whether l names a virtual directory rather than a blob.
func (l Location) IsPrefix() bool { return l.Path == "" || strings.HasSuffix(l.Path, "/") }

// Join returns the blob location of rel (slash-separated) under prefix l.
func (l Location) Join(rel string) Location {
	p := l.Path
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return Location{Container: l.Container, Path: p + rel}
}

func (l Location) String() string { return "az://" + l.Container + "/" + l.Path }

// Stats counts what a transfer moved.
type Stats struct {
	Files int
	Bytes int64
}

// Store is one blob account: the local folder store or an Azure account.
type Store interface {
	// Download copies one blob to the file dst, or every blob under a
	// prefix into the directory dst keeping their relative layout. A
	// missing blob, or a prefix with no blobs, is an error wrapping
	// ErrNotFound.
	Download(ctx context.Context, src Location, dst string) (Stats, error)
	// Upload uploads the files under dir that pattern (Batch filePattern
	// rules, see Match) matches. When pattern has no wildcard and dst is
	// not a prefix, the one file becomes blob dst. Otherwise each file
	// lands under prefix dst at its path relative to the pattern's
	// wildcard-free leading directory. A pattern matching nothing uploads
	// nothing and is not an error. Containers are created as needed.
	Upload(ctx context.Context, dir, pattern string, dst Location) (Stats, error)
	// URL is the store's base address, safe to show: file:///abs/dir for
	// the local store, https://account.blob.core.windows.net for Azure.
	URL() string
}
