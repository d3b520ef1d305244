package azurebatch

// Storage access for tasks. A task definition never holds an account key:
// nodes reach blobs through short-lived service SAS URLs that bmc mints
// from the account key it holds itself, or, on a pool with a managed
// identity, through plain URLs with an identityReference. bmc itself
// stages into the same account what the nodes need from the client's
// machine: spec-relative input files, the run's program, the bmc binary.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/internal/redact"
)

// DefaultSASLifetime is how long the SAS URLs in task definitions stay
// valid: long enough for a task to wait in the queue, run and upload.
const DefaultSASLifetime = 48 * time.Hour

// Storage is the blob account az:// locations name, as bmc and the pool's
// nodes reach it. It is safe for concurrent use.
type Storage struct {
	svc      *service.Client
	base     string // the blob endpoint, without a trailing slash or query
	identity string // the pool identity's resource id; "" to use SAS
	ttl      time.Duration
	now      func() time.Time

	mu      sync.Mutex
	sas     map[string]sasEntry // by container and permissions
	present map[string]bool     // staged blobs known to exist
	made    map[string]bool     // containers known to exist
}

type sasEntry struct {
	query   string
	expires time.Time
}

// StorageOptions configure a Storage.
type StorageOptions struct {
	// Identity is the resource id of the pool's user-assigned managed
	// identity. When set, task definitions name it (identityReference)
	// instead of carrying a SAS.
	Identity string
	// SASLifetime is how long a minted SAS stays valid; zero means
	// DefaultSASLifetime.
	SASLifetime time.Duration
}

// NewStorage wraps a blob service client. Without an Identity the client
// must hold a shared key, from which SAS URLs are minted.
func NewStorage(svc *service.Client, opt StorageOptions) (*Storage, error) {
	if opt.SASLifetime <= 0 {
		opt.SASLifetime = DefaultSASLifetime
	}
	s := &Storage{
		svc: svc, base: strings.TrimSuffix(endpointOnly(svc.URL()), "/"), identity: opt.Identity,
		ttl: opt.SASLifetime, now: time.Now,
		sas: map[string]sasEntry{}, present: map[string]bool{}, made: map[string]bool{},
	}
	if s.identity == "" {
		if _, err := s.containerSAS("bmc-probe", sas.ContainerPermissions{Read: true}); err != nil {
			return nil, errors.New("azurebatch storage: tasks reach storage with a SAS minted from the account key, and this account was given without one: use a connection string with an AccountKey (or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY), or a pool identity")
		}
	}
	return s, nil
}

// StorageFromConnectionString opens the account of a connection string.
func StorageFromConnectionString(cs string, opt StorageOptions) (*Storage, error) {
	svc, err := service.NewClientFromConnectionString(cs, nil)
	if err != nil {
		return nil, fmt.Errorf("azurebatch storage: %s", redact.String(err.Error()))
	}
	return NewStorage(svc, opt)
}

// StorageFromKey opens an account by its name, endpoint and key.
func StorageFromKey(endpoint, account, key string, opt StorageOptions) (*Storage, error) {
	cred, err := service.NewSharedKeyCredential(account, key)
	if err != nil {
		return nil, fmt.Errorf("azurebatch storage: %s", redact.String(err.Error()))
	}
	svc, err := service.NewClientWithSharedKeyCredential(endpoint, cred, nil)
	if err != nil {
		return nil, fmt.Errorf("azurebatch storage: %s", redact.String(err.Error()))
	}
	return NewStorage(svc, opt)
}

// StorageFromIdentity opens an account that bmc reaches with cred and the
// pool's nodes with their managed identity.
func StorageFromIdentity(endpoint string, cred azcore.TokenCredential, identity string, opt StorageOptions) (*Storage, error) {
	if identity == "" {
		return nil, errors.New("azurebatch storage: no pool identity")
	}
	svc, err := service.NewClient(endpoint, cred, nil)
	if err != nil {
		return nil, fmt.Errorf("azurebatch storage: %s", redact.String(err.Error()))
	}
	opt.Identity = identity
	return NewStorage(svc, opt)
}

// URL is the account's blob endpoint.
func (s *Storage) URL() string { return s.base }

// Identity is the pool identity task definitions name, if any.
func (s *Storage) Identity() string { return s.identity }

func endpointOnly(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

func (s *Storage) ref() *BatchNodeIdentityReference {
	if s.identity == "" {
		return nil
	}
	return &BatchNodeIdentityReference{ResourceID: s.identity}
}

// containerSAS mints (or reuses, while more than half its life is left) a
// service SAS for a container.
func (s *Storage) containerSAS(name string, p sas.ContainerPermissions) (string, error) {
	key := name + "|" + p.String()
	now := s.now()
	s.mu.Lock()
	e, ok := s.sas[key]
	s.mu.Unlock()
	if ok && e.expires.Sub(now) > s.ttl/2 {
		return e.query, nil
	}
	start := now.Add(-5 * time.Minute) // clocks differ
	expires := now.Add(s.ttl)
	u, err := s.svc.NewContainerClient(name).GetSASURL(p, expires, &container.GetSASURLOptions{StartTime: &start})
	if err != nil {
		return "", fmt.Errorf("mint a SAS for container %s: %s", name, redact.String(err.Error()))
	}
	pu, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("mint a SAS for container %s: %s", name, redact.String(err.Error()))
	}
	s.mu.Lock()
	s.sas[key] = sasEntry{query: pu.RawQuery, expires: expires}
	s.mu.Unlock()
	return pu.RawQuery, nil
}

var (
	readPerms  = sas.ContainerPermissions{Read: true, List: true}
	writePerms = sas.ContainerPermissions{Read: true, List: true, Write: true, Create: true, Add: true}
)

// ContainerURL is how a node reaches a container: for reading (and
// listing) or for writing.
func (s *Storage) ContainerURL(name string, write bool) (string, *BatchNodeIdentityReference, error) {
	u := s.base + "/" + name
	if s.identity != "" {
		return u, s.ref(), nil
	}
	p := readPerms
	if write {
		p = writePerms
	}
	q, err := s.containerSAS(name, p)
	if err != nil {
		return "", nil, err
	}
	return u + "?" + q, nil, nil
}

// BlobURL is how a node reads one blob.
func (s *Storage) BlobURL(containerName, name string) (string, *BatchNodeIdentityReference, error) {
	u := s.base + "/" + containerName + "/" + escapeBlob(name)
	if s.identity != "" {
		return u, s.ref(), nil
	}
	q, err := s.containerSAS(containerName, sas.ContainerPermissions{Read: true})
	if err != nil {
		return "", nil, err
	}
	return u + "?" + q, nil, nil
}

// escapeBlob escapes a blob name for a URL path, keeping its slashes.
func escapeBlob(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// EnsureContainer creates a container unless it exists, so that nodes
// writing with a container SAS (which cannot create one) find it.
func (s *Storage) EnsureContainer(ctx context.Context, name string) error {
	s.mu.Lock()
	done := s.made[name]
	s.mu.Unlock()
	if done {
		return nil
	}
	_, err := s.svc.NewContainerClient(name).Create(ctx, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("create container %s: %s", name, redact.String(err.Error()))
	}
	s.mu.Lock()
	s.made[name] = true
	s.mu.Unlock()
	return nil
}

// StageFile uploads a local file under prefix, named by the SHA-256 of its
// content, unless a blob of that name is there already: an unchanged file
// is uploaded once, whichever run needs it.
func (s *Storage) StageFile(ctx context.Context, prefix blobstage.Location, path string) (blobstage.Location, error) {
	sum, err := hashFile(path)
	if err != nil {
		return blobstage.Location{}, err
	}
	loc := ContentLocation(prefix, sum)
	return loc, s.StageFileAt(ctx, loc, path, sum)
}

// ContentLocation is where StageFile puts a file whose content has the
// SHA-256 sum (hex).
func ContentLocation(prefix blobstage.Location, sum string) blobstage.Location {
	return prefix.Join("sha256/" + sum)
}

// hashFile is the hex SHA-256 of a file's content.
func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("stage %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("stage %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// StageFileAt uploads a local file whose content has the SHA-256 sum
// (hex) to loc, a name that stands for that content, unless a blob of
// that name is there already. The content is hashed again as it is sent:
// a file changed since it was hashed is not left under a name that
// claims other content (later runs would reuse it), and is an error.
func (s *Storage) StageFileAt(ctx context.Context, loc blobstage.Location, path, sum string) error {
	bc, there, err := s.stagedAt(ctx, loc)
	if err != nil || there {
		if err != nil {
			err = fmt.Errorf("stage %s: %w", path, err)
		}
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("stage %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := bc.UploadStream(ctx, io.TeeReader(f, h), &blockblob.UploadStreamOptions{Concurrency: 4}); err != nil {
		return fmt.Errorf("stage %s to %s: %s", path, loc, redact.String(err.Error()))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		if _, err := bc.Delete(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
			return fmt.Errorf("stage %s: it changed while it was being staged, and removing what was sent failed: %s", path, redact.String(err.Error()))
		}
		return fmt.Errorf("stage %s: it changed while it was being staged; run again once it is no longer being written", path)
	}
	s.remember(loc)
	return nil
}

// StageData uploads data to loc, a name that stands for that content,
// unless a blob of that name is there already.
func (s *Storage) StageData(ctx context.Context, loc blobstage.Location, data []byte) error {
	bc, there, err := s.stagedAt(ctx, loc)
	if err != nil || there {
		if err != nil {
			err = fmt.Errorf("stage %s: %w", loc, err)
		}
		return err
	}
	if _, err := bc.UploadBuffer(ctx, data, nil); err != nil {
		return fmt.Errorf("stage %s: %s", loc, redact.String(err.Error()))
	}
	s.remember(loc)
	return nil
}

// stagedAt readies loc, a name that stands for its content, to be staged
// to: there is true when a blob of that name is there already (staged by
// this process or an earlier run), and nothing is to be sent.
func (s *Storage) stagedAt(ctx context.Context, loc blobstage.Location) (bc *blockblob.Client, there bool, err error) {
	if s.known(loc) {
		return nil, true, nil
	}
	if err := s.EnsureContainer(ctx, loc.Container); err != nil {
		return nil, false, err
	}
	bc = s.svc.NewContainerClient(loc.Container).NewBlockBlobClient(loc.Path)
	there, err = s.exists(ctx, bc, loc)
	return bc, there, err
}

// exists reports whether the blob at loc, named for its content, is
// there, and remembers it if it is.
func (s *Storage) exists(ctx context.Context, bc *blockblob.Client, loc blobstage.Location) (bool, error) {
	_, err := bc.GetProperties(ctx, nil)
	switch {
	case err == nil:
		s.remember(loc)
		return true, nil
	case bloberror.HasCode(err, bloberror.BlobNotFound) || isNotFound(err):
		return false, nil
	}
	return false, errors.New(redact.String(err.Error()))
}

// Put writes a blob.
func (s *Storage) Put(ctx context.Context, loc blobstage.Location, data []byte) error {
	if err := s.EnsureContainer(ctx, loc.Container); err != nil {
		return err
	}
	bc := s.svc.NewContainerClient(loc.Container).NewBlockBlobClient(loc.Path)
	if _, err := bc.UploadBuffer(ctx, data, nil); err != nil {
		return fmt.Errorf("write %s: %s", loc, redact.String(err.Error()))
	}
	return nil
}

// Get reads a blob.
func (s *Storage) Get(ctx context.Context, loc blobstage.Location) ([]byte, error) {
	bc := s.svc.NewContainerClient(loc.Container).NewBlobClient(loc.Path)
	resp, err := bc.DownloadStream(ctx, nil)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) || isNotFound(err) {
			return nil, fmt.Errorf("read %s: %w", loc, blobstage.ErrNotFound)
		}
		return nil, fmt.Errorf("read %s: %s", loc, redact.String(err.Error()))
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := io.Copy(&b, resp.Body); err != nil {
		return nil, fmt.Errorf("read %s: %s", loc, redact.String(err.Error()))
	}
	return b.Bytes(), nil
}

func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

func (s *Storage) known(loc blobstage.Location) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.present[loc.String()]
}

func (s *Storage) remember(loc blobstage.Location) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.present[loc.String()] = true
}
