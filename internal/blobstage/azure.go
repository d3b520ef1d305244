package blobstage

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/bmc-dev/bmc/internal/filepattern"
	"github.com/bmc-dev/bmc/internal/redact"
	"github.com/bmc-dev/bmc/internal/stall"
)

// Options tune how an Azure store moves data.
type Options struct {
	// Parallelism bounds the requests that carry data at once, across all
	// calls on the store: uploads of whole files or of blocks of large
	// ones, and downloads. Default 8.
	Parallelism int
	// BlockSize is the size of one staged block. A file no larger goes up
	// in a single request; a larger one is streamed in blocks. Default
	// 8 MiB; raised automatically for files too large for 50,000 blocks.
	BlockSize int64
	// HTTPClient carries the store's requests; nil for the SDK's own
	// transport. The Batch emulator gives its stall-limited client here,
	// so that a transfer that stops moving fails rather than hangs.
	HTTPClient *http.Client
}

const (
	defaultParallelism = 8
	defaultBlockSize   = 8 << 20
	maxBlocks          = 50_000
	maxBlockSize       = 4000 << 20
	copyBufferSize     = 256 << 10
)

// Azure is a Store backed by one Azure Blob Storage account (or Azurite).
type Azure struct {
	svc  *service.Client
	base string
	opt  Options
	// auth is how the store signs its requests (authKey, …), by which
	// Check reads an account's refusal.
	auth string
	// slots holds one token per data-carrying request in flight. Nothing
	// holds a token while waiting for another, so sharing it between
	// concurrent calls cannot deadlock.
	slots chan struct{}
}

var _ Store = (*Azure)(nil)

// FromEnv opens the account named by the environment, following the Azure
// CLI's variables: AZURE_STORAGE_CONNECTION_STRING first (account keys,
// SAS, Azurite), else AZURE_STORAGE_ACCOUNT_URL or AZURE_STORAGE_ACCOUNT
// (https://<account>.blob.core.windows.net), authenticated with
// AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN when set and with
// azidentity's DefaultAzureCredential otherwise. ok is false when nothing
// is configured, and true with an error when the configuration is unusable.
// No request is made here: wrong credentials surface on first use, or in
// Check. ctx is
// for credential set-up that needs I/O; none does today.
func FromEnv(ctx context.Context, opt Options) (a *Azure, ok bool, err error) {
	if cs := os.Getenv("AZURE_STORAGE_CONNECTION_STRING"); cs != "" {
		a, err := NewFromConnectionString(cs, opt)
		return a, true, err
	}
	account := os.Getenv("AZURE_STORAGE_ACCOUNT")
	endpoint := os.Getenv("AZURE_STORAGE_ACCOUNT_URL")
	if endpoint == "" && account == "" {
		return nil, false, nil
	}
	if endpoint == "" {
		if !validAccount(account) {
			return nil, true, azureError("open storage account", "from AZURE_STORAGE_ACCOUNT", fmt.Errorf("%q is not 3-24 lower-case letters and digits", account))
		}
		endpoint = "https://" + account + ".blob.core.windows.net"
	}
	if key := os.Getenv("AZURE_STORAGE_KEY"); key != "" {
		if account == "" {
			return nil, true, azureError("open storage account", endpointName(endpoint), errors.New("AZURE_STORAGE_KEY needs AZURE_STORAGE_ACCOUNT"))
		}
		a, err := withKey(endpoint, account, key, opt)
		return a, true, err
	}
	if sas := strings.TrimPrefix(os.Getenv("AZURE_STORAGE_SAS_TOKEN"), "?"); sas != "" {
		a, err := NewFromURL(endpoint+"?"+sas, nil, opt)
		return a, true, err
	}
	if u, err := url.Parse(endpoint); err == nil && !strings.EqualFold(u.Scheme, "https") {
		// Entra ID tokens go over https only: refused now, not on every
		// upload of a run under way.
		return nil, true, azureError("open storage account", endpointName(endpoint), errors.New("no AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN for it, and Entra ID needs https: set one, or AZURE_STORAGE_CONNECTION_STRING"))
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, true, azureError("open storage account", endpointName(endpoint), err)
	}
	a, err = NewFromURL(endpoint, cred, opt)
	return a, true, err
}

// ForAccount opens the account whose blob endpoint is endpoint (a spec's
// storage.accountUrl) with the credentials the environment gives for that
// account, as FromEnv reads them: a connection string whose blob endpoint
// it is, or AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN with
// AZURE_STORAGE_ACCOUNT_URL being the endpoint or AZURE_STORAGE_ACCOUNT
// naming its account. Credentials the environment gives for another
// account are not sent to this one; with none for it, the account is
// opened with azidentity's DefaultAzureCredential (Entra ID). Entra ID
// tokens are only sent over https, so an http endpoint (Azurite, the
// emulator) with no key or SAS for it is refused here rather than on
// every upload of a run already under way.
func ForAccount(endpoint string, opt Options) (*Azure, error) {
	var elsewhere []string // credentials the environment gives for other accounts
	if cs := os.Getenv("AZURE_STORAGE_CONNECTION_STRING"); cs != "" {
		a, err := NewFromConnectionString(cs, opt)
		switch {
		case err != nil:
			elsewhere = append(elsewhere, "AZURE_STORAGE_CONNECTION_STRING cannot be read")
		case sameEndpoint(a.URL(), endpoint):
			return a, nil
		default:
			elsewhere = append(elsewhere, "AZURE_STORAGE_CONNECTION_STRING is for "+a.URL())
		}
	}
	account, envURL := os.Getenv("AZURE_STORAGE_ACCOUNT"), os.Getenv("AZURE_STORAGE_ACCOUNT_URL")
	key, sas := os.Getenv("AZURE_STORAGE_KEY"), strings.TrimPrefix(os.Getenv("AZURE_STORAGE_SAS_TOKEN"), "?")
	forThis := envURL != "" && sameEndpoint(envURL, endpoint) || envURL == "" && account != "" && accountOf(endpoint) == account
	if forThis {
		if key != "" {
			return withKey(endpoint, cmp.Or(account, accountOf(endpoint)), key, opt)
		}
		if sas != "" {
			return NewFromURL(strings.TrimSuffix(endpoint, "/")+"?"+sas, nil, opt)
		}
	} else if key != "" || sas != "" {
		which := "AZURE_STORAGE_KEY"
		if key == "" {
			which = "AZURE_STORAGE_SAS_TOKEN"
		}
		switch {
		case envURL != "":
			elsewhere = append(elsewhere, which+" is for AZURE_STORAGE_ACCOUNT_URL="+endpointName(envURL))
		case account != "":
			elsewhere = append(elsewhere, which+" is for AZURE_STORAGE_ACCOUNT="+account)
		default:
			elsewhere = append(elsewhere, which+" is set with neither AZURE_STORAGE_ACCOUNT nor AZURE_STORAGE_ACCOUNT_URL")
		}
	}
	if u, err := url.Parse(endpoint); err == nil && !strings.EqualFold(u.Scheme, "https") {
		msg := "no key or SAS for this account in the environment, and Entra ID needs https: " +
			"set AZURE_STORAGE_CONNECTION_STRING with BlobEndpoint=" + endpointName(endpoint) +
			", or AZURE_STORAGE_ACCOUNT=" + accountOf(endpoint) + " with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN" +
			", or AZURE_STORAGE_ACCOUNT_URL=" + endpointName(endpoint) + " with a key or SAS"
		if len(elsewhere) > 0 {
			msg += " (" + strings.Join(elsewhere, "; ") + ")"
		}
		return nil, azureError("open storage account", endpointName(endpoint), errors.New(msg))
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, azureError("open storage account", endpointName(endpoint), err)
	}
	return NewFromURL(endpoint, cred, opt)
}

// withKey opens the account at endpoint with its name and account key.
func withKey(endpoint, account, key string, opt Options) (*Azure, error) {
	cred, err := service.NewSharedKeyCredential(account, key)
	if err != nil {
		return nil, azureError("open storage account", endpointName(endpoint), err)
	}
	svc, err := service.NewClientWithSharedKeyCredential(endpoint, cred, clientOptions(opt))
	if err != nil {
		return nil, azureError("open storage account", endpointName(endpoint), err)
	}
	a := newAzure(svc, opt)
	a.auth = authKey
	return a, nil
}

// sameEndpoint reports whether two blob endpoints name one account: the
// same scheme, host (in any case) and path, less a trailing "/".
func sameEndpoint(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) &&
		strings.Trim(ua.Path, "/") == strings.Trim(ub.Path, "/")
}

// accountOf is the account name of a blob endpoint: the first part of
// its path where the account is in the path (Azurite,
// http://127.0.0.1:10000/devstoreaccount1), else the first label of its
// host (https://<account>.blob.core.windows.net).
func accountOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	if first, _, _ := strings.Cut(strings.Trim(u.Path, "/"), "/"); first != "" {
		return first
	}
	label, _, _ := strings.Cut(u.Hostname(), ".")
	return label
}

// NewFromConnectionString opens the account a storage connection string
// names, with its account key or SAS.
func NewFromConnectionString(cs string, opt Options) (*Azure, error) {
	svc, err := service.NewClientFromConnectionString(cs, clientOptions(opt))
	if err != nil {
		return nil, azureError("open storage account", "from connection string", err)
	}
	a := newAzure(svc, opt)
	a.auth = connAuth(cs)
	return a, nil
}

// connAuth is how the account a connection string names is signed in
// to: the string's key, else its SAS.
func connAuth(cs string) string {
	auth := authNone
	for field := range strings.SplitSeq(cs, ";") {
		k, v, _ := strings.Cut(field, "=")
		switch k = strings.TrimSpace(k); {
		case v == "":
		case strings.EqualFold(k, "AccountKey"):
			return authKey
		case strings.EqualFold(k, "SharedAccessSignature"):
			auth = authSAS
		}
	}
	return auth
}

// NewFromURL opens the account at its blob endpoint. cred may be nil when
// the URL carries a SAS, or the account allows anonymous access.
func NewFromURL(endpoint string, cred azcore.TokenCredential, opt Options) (*Azure, error) {
	var (
		svc  *service.Client
		err  error
		auth = authEntra
	)
	if cred == nil {
		svc, err = service.NewClientWithNoCredential(endpoint, clientOptions(opt))
		auth = authNone
		if u, perr := url.Parse(endpoint); perr == nil && u.Query().Has("sig") {
			auth = authSAS
		}
	} else {
		svc, err = service.NewClient(endpoint, signIn{cred}, clientOptions(opt))
	}
	if err != nil {
		return nil, azureError("open storage account", endpointName(endpoint), err)
	}
	a := newAzure(svc, opt)
	a.auth = auth
	return a, nil
}

// How a store signs its requests, as Auth says it.
const (
	authKey   = "account key"
	authSAS   = "SAS"
	authEntra = "Entra ID"
	authNone  = "no credential"
)

// Auth says how the store signs its requests: "account key", "SAS",
// "Entra ID" or "no credential". It holds no secret.
func (a *Azure) Auth() string { return cmp.Or(a.auth, authNone) }

// signIn is a store's token credential: its errors are marked as the
// sign-in's, so that they are told from an account's answer.
type signIn struct{ cred azcore.TokenCredential }

func (s signIn) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tk, err := s.cred.GetToken(ctx, opts)
	if err != nil {
		return tk, &signInError{err}
	}
	return tk, nil
}

// signInError is an error getting a token from a store's credential.
type signInError struct{ err error }

func (e *signInError) Error() string { return e.err.Error() }
func (e *signInError) Unwrap() error { return e.err }

func clientOptions(opt Options) *service.ClientOptions {
	o := &service.ClientOptions{ClientOptions: policy.ClientOptions{
		Telemetry: policy.TelemetryOptions{ApplicationID: "bmc"},
	}}
	if opt.HTTPClient != nil {
		o.Transport = opt.HTTPClient
	}
	return o
}

func newAzure(svc *service.Client, opt Options) *Azure {
	if opt.Parallelism <= 0 {
		opt.Parallelism = defaultParallelism
	}
	if opt.BlockSize <= 0 {
		opt.BlockSize = defaultBlockSize
	}
	opt.BlockSize = min(opt.BlockSize, maxBlockSize)
	return &Azure{
		svc:   svc,
		base:  endpointName(svc.URL()),
		opt:   opt,
		slots: make(chan struct{}, opt.Parallelism),
	}
}

func validAccount(s string) bool {
	if len(s) < 3 || len(s) > 24 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// endpointName is the endpoint without query or fragment, which is where a
// SAS lives.
func endpointName(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "(invalid URL)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return strings.TrimSuffix(u.String(), "/")
}

// URL returns the account's blob endpoint, without any query.
func (a *Azure) URL() string { return a.base }

func (a *Azure) acquire(ctx context.Context) error {
	select {
	case a.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (a *Azure) release() { <-a.slots }

// Download implements Store.
func (a *Azure) Download(ctx context.Context, src Location, dst string) (Stats, error) {
	if _, err := ParseURL(src.String()); err != nil {
		return Stats{}, azureError("download", src.String(), err)
	}
	if !src.IsPrefix() {
		n, err := a.downloadBlob(ctx, src, dst)
		if err != nil {
			return Stats{}, azureError("download", src.String(), err)
		}
		return Stats{Files: 1, Bytes: n}, nil
	}

	type job struct {
		loc  Location
		path string
	}
	var (
		nbytes atomic.Int64
		nfiles atomic.Int64
		listed int
	)
	err := runJobs(a, ctx, func(ctx context.Context, send func(job) bool) error {
		pager := a.svc.NewContainerClient(src.Container).NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
			Prefix:  &src.Path,
			Include: container.ListBlobsInclude{Metadata: true},
		})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return azureError("download", src.String(), err)
			}
			for _, item := range page.Segment.BlobItems {
				if item.Name == nil || folderMarker(item.Metadata) {
					continue
				}
				rel, skip, err := blobRelPath(*item.Name, src.Path)
				if err != nil {
					return azureError("download", src.String(), err)
				}
				if skip {
					continue
				}
				listed++
				if !send(job{Location{src.Container, *item.Name}, filepath.Join(dst, filepath.FromSlash(rel))}) {
					return nil
				}
			}
		}
		if listed == 0 {
			return azureError("download", src.String(), fmt.Errorf("no blobs under prefix: %w", ErrNotFound))
		}
		return nil
	}, func(ctx context.Context, j job) error {
		n, err := a.downloadBlob(ctx, j.loc, j.path)
		if err != nil {
			return azureError("download", j.loc.String(), err)
		}
		nbytes.Add(n)
		nfiles.Add(1)
		return nil
	})
	return Stats{Files: int(nfiles.Load()), Bytes: nbytes.Load()}, err
}

// folderMarker reports the empty blob by which an account with a
// hierarchical namespace lists a directory; downloading it would put a
// file where the directory's blobs need a folder.
func folderMarker(metadata map[string]*string) bool {
	for k, v := range metadata {
		if strings.EqualFold(k, "hdi_isfolder") && v != nil && strings.EqualFold(*v, "true") {
			return true
		}
	}
	return false
}

// blobRelPath is name relative to prefix, checked to stay inside the
// destination directory: blob names may hold ".." segments that file
// names must not follow. Names ending in "/" cannot be files and are
// skipped.
func blobRelPath(name, prefix string) (rel string, skip bool, err error) {
	rel, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return "", false, fmt.Errorf("listing returned %q outside the prefix", name)
	}
	if rel == "" || strings.HasSuffix(rel, "/") {
		return "", true, nil
	}
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return "", false, fmt.Errorf("blob %q would land outside the destination directory", name)
	}
	return rel, false, nil
}

// downloadBlob writes one blob to a temporary file beside path and renames
// it into place once it is complete and matches the blob's Content-MD5. A
// blob of one block comes in one request, hashed as it streams; a larger
// one in block-sized ranges fetched concurrently, pinned to the first
// response's ETag so that a blob replaced meanwhile fails rather than
// mixing versions, and hashed in order as the ranges land. The file is not
// synced: a download that a crash cuts short is simply staged again.
func (a *Azure) downloadBlob(ctx context.Context, src Location, path string) (n int64, err error) {
	bc := a.svc.NewContainerClient(src.Container).NewBlobClient(src.Path)
	if err := a.acquire(ctx); err != nil {
		return 0, err
	}
	held := true
	defer func() {
		if held {
			a.release()
		}
	}()
	first, err := bc.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Count: a.opt.BlockSize}})
	if bloberror.HasCode(err, bloberror.InvalidRange) {
		// An empty blob has no first byte to ask for.
		first, err = bc.DownloadStream(ctx, nil)
	}
	if err != nil {
		return 0, err
	}
	// A connection that breaks mid-body is picked up where it broke, pinned
	// to the blob's ETag: that finishes this one request rather than
	// retrying the operation, which is the caller's call.
	body := first.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3})
	defer body.Close()

	size, wantMD5 := int64(0), first.BlobContentMD5
	switch {
	case first.ContentRange != nil:
		_, total, ok := strings.Cut(*first.ContentRange, "/")
		if size, err = strconv.ParseInt(total, 10, 64); !ok || err != nil {
			return 0, fmt.Errorf("unreadable Content-Range %q", *first.ContentRange)
		}
	case first.ContentLength != nil:
		size, wantMD5 = *first.ContentLength, first.ContentMD5
	}
	firstLen := size
	if first.ContentLength != nil {
		firstLen = *first.ContentLength
	}
	if firstLen <= 0 && size > 0 {
		return 0, fmt.Errorf("the first range of a %d-byte blob came back empty", size)
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	// The local store's temporary names, so that its listings skip a
	// download still in progress into its own folders too.
	f, err := createTemp(dir, downloadPerm)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	var got []byte
	if firstLen >= size {
		sum := md5.New()
		n, err = io.CopyBuffer(io.MultiWriter(f, sum), body, make([]byte, max(min(copyBufferSize, size+1), 512)))
		if err != nil {
			return n, err
		}
		got = sum.Sum(nil)
	} else {
		held = false
		if got, err = a.downloadRanges(ctx, bc, first.ETag, body, firstLen, size, f); err != nil {
			return 0, err
		}
		n = size
	}
	if n != size {
		return n, fmt.Errorf("received %d of %d bytes", n, size)
	}
	if len(wantMD5) > 0 && !bytes.Equal(got, wantMD5) {
		return n, fmt.Errorf("content MD5 mismatch: blob records %x, received data hashes to %x", wantMD5, got)
	}
	if err := f.Close(); err != nil {
		return n, err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return n, err
	}
	return n, nil
}

// downloadRanges writes a blob of size bytes to f: body, the first firstLen
// bytes, and the rest in concurrent ranges of the same length. It is
// entered holding the slot of the first request and returns the MD5 of the
// whole, read back in order as ranges complete (from the page cache,
// usually) so hashing overlaps the transfer. No goroutine holds a slot
// while it waits for another.
func (a *Azure) downloadRanges(ctx context.Context, bc *blob.Client, etag *azcore.ETag, body io.Reader, firstLen, size int64, f *os.File) ([]byte, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	chunks := int((size + firstLen - 1) / firstLen)
	landed := make([]chan struct{}, chunks)
	for i := range landed {
		landed[i] = make(chan struct{})
	}
	fetch := func(i int, r io.Reader, want int64) {
		defer a.release()
		n, err := io.CopyBuffer(io.NewOffsetWriter(f, int64(i)*firstLen), r, make([]byte, copyBufferSize))
		if err == nil && n != want {
			err = fmt.Errorf("range at %d: received %d of %d bytes", int64(i)*firstLen, n, want)
		}
		if err != nil {
			cancel(err)
			return
		}
		close(landed[i])
	}

	var wg sync.WaitGroup
	wg.Go(func() { fetch(0, body, firstLen) })
	wg.Go(func() {
		for i := 1; i < chunks; i++ {
			if a.acquire(ctx) != nil {
				return
			}
			off := int64(i) * firstLen
			count := min(firstLen, size-off)
			wg.Go(func() {
				resp, err := bc.DownloadStream(ctx, &blob.DownloadStreamOptions{
					Range:            blob.HTTPRange{Offset: off, Count: count},
					AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: etag}},
				})
				if err != nil {
					a.release()
					cancel(err)
					return
				}
				r := resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3})
				defer r.Close()
				fetch(i, r, count)
			})
		}
	})

	sum := md5.New()
	buf := make([]byte, copyBufferSize)
	for i := range chunks {
		select {
		case <-landed[i]:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		off := int64(i) * firstLen
		if _, err := io.CopyBuffer(sum, io.NewSectionReader(f, off, min(firstLen, size-off)), buf); err != nil {
			cancel(err)
			break
		}
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return sum.Sum(nil), nil
}

// Upload implements Store.
func (a *Azure) Upload(ctx context.Context, dir, pattern string, dst Location) (Stats, error) {
	// A Location built by hand gets the checks ParseURL makes.
	if _, err := ParseURL(dst.String()); err != nil {
		return Stats{}, azureError("upload", dst.String(), err)
	}
	files, err := filepattern.Match(dir, pattern)
	if err != nil {
		return Stats{}, azureError("upload", dst.String(), err)
	}
	if len(files) == 0 {
		return Stats{}, nil
	}
	if err := a.ensureContainer(ctx, dst.Container); err != nil {
		return Stats{}, azureError("upload", dst.String()+": create container "+dst.Container, err)
	}

	type job struct {
		path string
		loc  Location
	}
	var (
		nbytes atomic.Int64
		nfiles atomic.Int64
	)
	err = runJobs(a, ctx, func(ctx context.Context, send func(job) bool) error {
		for _, t := range uploadTargets(files, pattern, dst) {
			if !send(job{filepath.Join(dir, filepath.FromSlash(t.rel)), t.loc}) {
				return nil
			}
		}
		return nil
	}, func(ctx context.Context, j job) error {
		n, err := a.uploadFile(ctx, j.path, j.loc)
		if err != nil {
			return azureError("upload", j.loc.String(), err)
		}
		nbytes.Add(n)
		nfiles.Add(1)
		return nil
	})
	return Stats{Files: int(nfiles.Load()), Bytes: nbytes.Load()}, err
}

type uploadTarget struct {
	rel string // the file, relative to the upload's directory
	loc Location
}

// uploadTargets maps matched files to blobs as Store.Upload documents.
func uploadTargets(files []string, pattern string, dst Location) []uploadTarget {
	if !filepattern.HasWildcard(pattern) && !dst.IsPrefix() && len(files) == 1 {
		return []uploadTarget{{files[0], dst}}
	}
	base := filepattern.BaseDir(pattern)
	out := make([]uploadTarget, 0, len(files))
	for _, f := range files {
		rel := f
		if base != "" {
			rel = strings.TrimPrefix(f, base+"/")
		}
		out = append(out, uploadTarget{f, dst.Join(rel)})
	}
	return out
}

// ensureContainer creates the container unless it exists. A caller that
// may write blobs but not create containers (a container-scoped SAS, a
// narrow role) gets 403 here even when the container exists; that is left
// for the upload itself to report.
func (a *Azure) ensureContainer(ctx context.Context, name string) error {
	_, err := a.svc.NewContainerClient(name).Create(ctx, nil)
	switch {
	case err == nil, bloberror.HasCode(err, bloberror.ContainerAlreadyExists):
		return nil
	case isStatus(err, 403):
		return nil
	default:
		return err
	}
}

func isStatus(err error, code int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == code
}

// uploadFile sends one file: in a single request when it fits in a block,
// as concurrently staged blocks otherwise. Either way the blob's
// Content-MD5 is the file's, and every request carries the MD5 of its own
// body so the service rejects what arrives damaged. Request bodies are
// sections of the file itself, so memory does not grow with the file: each
// byte is read once to hash it and once more, usually from the page cache,
// to send it.
func (a *Azure) uploadFile(ctx context.Context, path string, loc Location) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !info.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", path)
	}
	blockSize := max(a.opt.BlockSize, (info.Size()+maxBlocks-1)/maxBlocks)
	bb := a.svc.NewContainerClient(loc.Container).NewBlockBlobClient(loc.Path)
	buf := make([]byte, min(copyBufferSize, info.Size()+1))

	if info.Size() <= blockSize {
		sum := md5.New()
		n, err := io.CopyBuffer(sum, f, buf)
		if err != nil {
			return 0, err
		}
		md5sum := sum.Sum(nil)
		if err := a.acquire(ctx); err != nil {
			return 0, err
		}
		defer a.release()
		_, err = bb.Upload(ctx, streaming.NopCloser(io.NewSectionReader(f, 0, n)), &blockblob.UploadOptions{
			TransactionalValidation: blob.TransferValidationTypeMD5(md5sum),
			HTTPHeaders:             &blob.HTTPHeaders{BlobContentMD5: md5sum},
		})
		return n, err
	}
	return a.uploadBlocks(ctx, bb, f, blockSize, buf)
}

// uploadBlocks hashes f block by block, stages each block as soon as it is
// hashed and a slot is free, and commits the list with the whole file's MD5.
func (a *Azure) uploadBlocks(ctx context.Context, bb *blockblob.Client, f *os.File, blockSize int64, buf []byte) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var idPrefix [8]byte
	if _, err := rand.Read(idPrefix[:]); err != nil {
		return 0, err
	}
	var (
		wg     sync.WaitGroup
		ids    []string
		off    int64
		whole  = md5.New()
		errRun error
	)
	for {
		block := md5.New()
		n, err := io.CopyBuffer(io.MultiWriter(whole, block), io.LimitReader(f, blockSize), buf)
		if err != nil {
			errRun = err
			break
		}
		if n == 0 {
			break
		}
		if len(ids) == maxBlocks {
			errRun = fmt.Errorf("file grew past %d blocks while uploading", maxBlocks)
			break
		}
		if err := a.acquire(ctx); err != nil {
			errRun = err
			break
		}
		// Block ids must all have the same length within a blob; the
		// random prefix keeps a concurrent upload of the same blob from
		// committing this one's blocks.
		id := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%x-%08d", idPrefix, len(ids)))
		ids = append(ids, id)
		section, sum := io.NewSectionReader(f, off, n), block.Sum(nil)
		off += n
		wg.Go(func() {
			defer a.release()
			_, err := bb.StageBlock(ctx, id, streaming.NopCloser(section), &blockblob.StageBlockOptions{
				TransactionalValidation: blob.TransferValidationTypeMD5(sum),
			})
			if err != nil {
				cancel(err)
			}
		})
		if n < blockSize {
			break
		}
	}
	if errRun != nil {
		cancel(errRun)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}

	if err := a.acquire(ctx); err != nil {
		return 0, err
	}
	defer a.release()
	_, err := bb.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentMD5: whole.Sum(nil)},
	})
	if err != nil {
		return 0, err
	}
	return off, nil
}

// runJobs feeds the jobs produce sends to Parallelism workers and returns
// the first error, after which the rest are cancelled. send reports false
// once producing should stop.
func runJobs[J any](a *Azure, ctx context.Context, produce func(ctx context.Context, send func(J) bool) error, work func(ctx context.Context, j J) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel(err) })
	}
	jobs := make(chan J)
	for range a.opt.Parallelism {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := work(ctx, j); err != nil {
					fail(err)
				}
			}
		})
	}
	err := produce(ctx, func(j J) bool {
		select {
		case jobs <- j:
			return true
		case <-ctx.Done():
			return false
		}
	})
	close(jobs)
	wg.Wait()
	if err != nil {
		fail(err)
	}
	return firstErr
}

// azureError is every error Azure returns: it names the operation and the
// location, its text has been through Redact, and it unwraps only to
// sentinels (ErrNotFound, context errors, os errors), never to the SDK's
// error whose text may hold a request URL.
type azError struct {
	msg  string
	kind []error
}

func (e *azError) Error() string   { return e.msg }
func (e *azError) Unwrap() []error { return e.kind }

func azureError(op, where string, err error) error {
	var prior *azError
	if errors.As(err, &prior) {
		return err
	}
	var kind []error
	for _, k := range []error{ErrNotFound, context.Canceled, context.DeadlineExceeded, os.ErrNotExist, os.ErrExist, os.ErrPermission} {
		if errors.Is(err, k) {
			kind = append(kind, k)
		}
	}
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound, bloberror.ResourceNotFound) {
		kind = append(kind, ErrNotFound)
	}
	if se := new(stall.Error); errors.As(err, &se) {
		kind = append(kind, se) // a caller tells a stall from other failures
	}
	return &azError{msg: redact.String(op + " " + where + ": " + describe(err)), kind: kind}
}

// describe is a one-line account of err. The SDK's own text for a service
// error spans many lines and dumps the response; the status, the error
// code and the service's message are what a person needs. A sign-in's
// error, which lists each credential tried, is folded onto one line.
func describe(err error) string {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		if se := new(signInError); errors.As(err, &se) {
			return "cannot sign in: " + oneLine(se.err.Error())
		}
		return oneLine(err.Error())
	}
	var b strings.Builder
	switch {
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		b.WriteString("blob not found")
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		b.WriteString("container not found")
	default:
		fmt.Fprintf(&b, "status %d", re.StatusCode)
		if re.ErrorCode != "" {
			fmt.Fprintf(&b, " %s", re.ErrorCode)
		}
		if msg := serviceMessage(re); msg != "" {
			fmt.Fprintf(&b, ": %s", msg)
		}
		switch {
		case re.StatusCode == 403:
			b.WriteString(" (check the storage credentials and their permissions)")
		case bloberror.HasCode(err, bloberror.ConditionNotMet):
			b.WriteString(" (the blob changed during the transfer)")
		}
	}
	return b.String()
}

// serviceMessage is the first line of the <Message> in a storage error
// body; the lines after it are request ids and times.
func serviceMessage(re *azcore.ResponseError) string {
	if re.RawResponse == nil {
		return ""
	}
	body, err := runtime.Payload(re.RawResponse)
	if err != nil || len(body) == 0 {
		return ""
	}
	var e struct {
		Message string `xml:"Message"`
	}
	if xml.Unmarshal(body, &e) != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(e.Message), "\n")
	return strings.TrimSpace(line)
}
