package emulator

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/internal/filepattern"
	"github.com/bmc-dev/bmc/internal/redact"
	"github.com/bmc-dev/bmc/internal/stall"
)

// stager moves a task's resourceFiles in and outputFiles out with the
// shared blob staging package. Credentials follow Batch's rules: a SAS in
// the URL, or an identityReference, which the emulator's "pool identity"
// answers with the storage account given to it
// (--storage-connection-string); otherwise the request is anonymous,
// which a private container refuses, as it would a real node.
type stager struct {
	account *blobstage.Azure // the emulated pool identity's account; nil when none
	http    *http.Client     // carries every transfer, to a URL or a store
}

// containerRef splits a container URL into the account endpoint, the
// container and the SAS. Path-style endpoints (Azurite, an IP address or
// localhost: http://127.0.0.1:10000/devstoreaccount1/container) carry the
// account name as the first path segment.
func (st *stager) containerRef(raw string) (endpoint, container, sas string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", "", "", fmt.Errorf("%q is not an http(s) URL", redact.String(raw))
	}
	sas = u.RawQuery
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	base := u.Scheme + "://" + u.Host
	if st.account != nil {
		acct := strings.TrimSuffix(st.account.URL(), "/")
		if rest, ok := strings.CutPrefix(base+u.Path, acct+"/"); ok {
			c, _, _ := strings.Cut(rest, "/")
			return acct, c, sas, nil
		}
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil || strings.EqualFold(host, "localhost") {
		if len(segs) < 2 || segs[1] == "" {
			return "", "", "", fmt.Errorf("%s names no container", base+u.Path)
		}
		return base + "/" + segs[0], segs[1], sas, nil
	}
	if len(segs) == 0 || segs[0] == "" {
		return "", "", "", fmt.Errorf("%s names no container", base+u.Path)
	}
	return base, segs[0], sas, nil
}

// open returns the store that reaches a container with the credentials a
// Batch node would use.
func (st *stager) open(raw string, identity *NodeIdentityReference) (blobstage.Store, string, error) {
	endpoint, container, sas, err := st.containerRef(raw)
	if err != nil {
		return nil, "", err
	}
	if identity != nil {
		if st.account == nil {
			return nil, "", errAccessDenied{"identityReference " + identity.ResourceID + " has no storage account: start the emulator with --storage-connection-string"}
		}
		if !strings.EqualFold(endpoint, strings.TrimSuffix(st.account.URL(), "/")) {
			return nil, "", errAccessDenied{"the emulated pool identity can reach only " + st.account.URL()}
		}
		return st.account, container, nil
	}
	opt := blobstage.Options{HTTPClient: st.http}
	if sas != "" {
		store, err := blobstage.NewFromURL(endpoint+"?"+sas, nil, opt)
		return store, container, err
	}
	store, err := blobstage.NewFromURL(endpoint, nil, opt)
	return store, container, err
}

type errAccessDenied struct{ msg string }

func (e errAccessDenied) Error() string { return e.msg }

func accessDenied(err error) bool {
	var ad errAccessDenied
	var se *blobstage.StatusError
	switch {
	case errors.As(err, &ad):
		return true
	case errors.As(err, &se):
		return se.Code == http.StatusForbidden || se.Code == http.StatusUnauthorized
	}
	msg := err.Error()
	return strings.Contains(msg, "status 403") || strings.Contains(msg, "status 401") ||
		strings.Contains(msg, "AuthorizationFailure") || strings.Contains(msg, "AuthenticationFailed") ||
		strings.Contains(msg, "NoAuthenticationInformation") || strings.Contains(msg, "PublicAccessNotPermitted")
}

// download stages one resource file into wd, returning the failure Batch
// would report.
func (st *stager) download(ctx context.Context, rf ResourceFile, wd, taskDir string) *TaskFailureInfo {
	mode := os.FileMode(0o770)
	if rf.FileMode != "" {
		m, err := strconv.ParseUint(rf.FileMode, 8, 32)
		if err == nil {
			mode = os.FileMode(m)
		}
	}
	fail := func(container bool, where string, err error) *TaskFailureInfo {
		code := "BlobDownloadMiscError"
		switch {
		case accessDenied(err) && container:
			code = "ResourceContainerAccessDenied"
		case accessDenied(err):
			code = "BlobAccessDenied"
		case errors.Is(err, blobstage.ErrNotFound) && container:
			code = "ResourceContainerNotFound"
		case errors.Is(err, blobstage.ErrNotFound):
			code = "BlobNotFound"
		case errors.Is(err, context.DeadlineExceeded), errors.As(err, new(*stall.Error)):
			code = "BlobDownloadTimedOut"
		}
		return &TaskFailureInfo{Category: UserError, Code: code,
			Message: redact.String("resource file " + where + ": " + err.Error()),
			Details: []NameValuePair{{Name: "FilePath", Value: rf.FilePath}}}
	}

	switch {
	case rf.HTTPURL != "":
		dst := filepath.Join(wd, filepath.FromSlash(rf.FilePath))
		where := redactedURL(rf.HTTPURL)
		var err error
		if rf.IdentityReference != nil {
			var store blobstage.Store
			var container string
			store, container, err = st.open(rf.HTTPURL, rf.IdentityReference)
			if err == nil {
				blob := blobName(rf.HTTPURL, container)
				_, err = store.Download(ctx, blobstage.Location{Container: container, Path: blob}, dst)
			}
		} else {
			_, err = blobstage.FetchHTTP(ctx, st.http, rf.HTTPURL, dst)
		}
		if err != nil {
			return fail(false, where, err)
		}
		if err := os.Chmod(dst, mode); err != nil {
			return fail(false, where, err)
		}
		return nil
	case rf.StorageContainerURL != "" || rf.AutoStorageContainerName != "":
		var (
			store     blobstage.Store
			container string
			err       error
			where     string
		)
		if rf.AutoStorageContainerName != "" {
			where = "autoStorageContainerName " + rf.AutoStorageContainerName
			if st.account == nil {
				err = errAccessDenied{"the emulator has no auto-storage account: start it with --storage-connection-string"}
			}
			store, container = st.account, rf.AutoStorageContainerName
		} else {
			where = redactedURL(rf.StorageContainerURL)
			store, container, err = st.open(rf.StorageContainerURL, rf.IdentityReference)
		}
		if err == nil {
			err = st.downloadPrefix(ctx, store, container, rf.BlobPrefix, filepath.Join(wd, filepath.FromSlash(rf.FilePath)), taskDir, mode)
		}
		if err != nil {
			return fail(true, where, err)
		}
		return nil
	}
	return nil
}

// downloadPrefix downloads every blob of container whose name starts with
// prefix into dir, keeping each blob's full name as its path below dir, as
// Batch does. The shared store downloads whole virtual directories and
// names files relative to them, so this asks for the directory holding
// the prefix and keeps the files the prefix selects.
func (st *stager) downloadPrefix(ctx context.Context, store blobstage.Store, container, prefix, dir, taskDir string, mode os.FileMode) error {
	dirPart := prefix[:strings.LastIndex(prefix, "/")+1]
	tmp, err := os.MkdirTemp(taskDir, ".resourcefiles-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if _, err := store.Download(ctx, blobstage.Location{Container: container, Path: dirPart}, tmp); err != nil {
		if errors.Is(err, blobstage.ErrNotFound) && !strings.Contains(err.Error(), "container not found") {
			return nil // nothing under the prefix: nothing to download
		}
		return err
	}
	return filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(tmp, p)
		if err != nil {
			return err
		}
		name := dirPart + filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(p, dst); err != nil {
			return err
		}
		return os.Chmod(dst, mode)
	})
}

// blobName is the blob a blob URL names within container.
func blobName(raw, container string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	_, rest, _ := strings.Cut(u.Path, "/"+container+"/")
	return rest
}

func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.RawQuery, u.User, u.Fragment = "", nil, ""
	return u.String()
}

// uploadAll uploads the output files whose condition the attempt meets,
// logging to fileuploadout.txt and fileuploaderr.txt in the task
// directory as a node does. Every file is tried; the first failure is
// reported. Upload errors are not retried.
func (st *stager) uploadAll(ctx context.Context, sp *runSpec, success bool) *TaskFailureInfo {
	if len(sp.outputFiles) == 0 {
		return nil
	}
	var out, errs strings.Builder
	var first *TaskFailureInfo
	for _, of := range sp.outputFiles {
		cond := *of.UploadOptions.UploadCondition
		if cond == UploadOnSuccess && !success || cond == UploadOnFailure && success {
			continue
		}
		dest := of.Destination.Container
		pattern := filepattern.Expand(*of.FilePattern, sp.vars)
		stats, err := st.upload(ctx, pattern, dest, sp.wd)
		where := redactedURL(*dest.ContainerURL)
		if dest.Path != "" {
			where += " path " + dest.Path
		}
		if err != nil {
			msg := redact.String(fmt.Sprintf("upload %s -> %s: %v", pattern, where, err))
			fmt.Fprintf(&errs, "%s %s\n", time.Now().UTC().Format(time.RFC3339), msg)
			if first == nil {
				code := "FileUploadMiscError"
				switch {
				case accessDenied(err):
					code = "FileUploadAccessDenied"
				case errors.Is(err, blobstage.ErrNotFound):
					code = "FileUploadContainerNotFound"
				case errors.Is(err, context.DeadlineExceeded), errors.As(err, new(*stall.Error)):
					code = "FileUploadTimedOut"
				}
				first = &TaskFailureInfo{Category: UserError, Code: code, Message: msg,
					Details: []NameValuePair{{Name: "FilePattern", Value: *of.FilePattern}}}
			}
			continue
		}
		fmt.Fprintf(&out, "%s uploaded %d file(s), %d byte(s): %s -> %s\n",
			time.Now().UTC().Format(time.RFC3339), stats.Files, stats.Bytes, pattern, where)
		if len(dest.UploadHeaders) > 0 {
			fmt.Fprintf(&out, "%s note: uploadHeaders are not applied by the emulator\n", time.Now().UTC().Format(time.RFC3339))
		}
	}
	appendFile(filepath.Join(sp.taskDir, "fileuploadout.txt"), out.String())
	appendFile(filepath.Join(sp.taskDir, "fileuploaderr.txt"), errs.String())
	return first
}

func appendFile(p, s string) {
	if s == "" {
		return
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(s)
}

// upload sends the files pattern matches. A relative pattern is relative
// to the working directory and may climb out of it with leading "../"
// (to the task's stdout.txt, say); an absolute one is taken from "/".
func (st *stager) upload(ctx context.Context, pattern string, dest *OutputFileBlobContainerDestination, wd string) (blobstage.Stats, error) {
	dir, pat := wd, pattern
	if strings.HasPrefix(pat, "/") {
		dir, pat = "/", strings.TrimLeft(pat, "/")
	} else {
		for strings.HasPrefix(pat, "../") {
			dir, pat = filepath.Dir(dir), pat[3:]
		}
	}
	store, container, err := st.open(*dest.ContainerURL, dest.IdentityReference)
	if err != nil {
		return blobstage.Stats{}, err
	}
	loc := blobstage.Location{Container: container, Path: dest.Path}
	if filepattern.HasWildcard(pat) && loc.Path != "" && !strings.HasSuffix(loc.Path, "/") {
		loc.Path += "/"
	}
	return store.Upload(ctx, dir, path.Clean(pat), loc)
}
