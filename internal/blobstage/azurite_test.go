package blobstage

// Tests of the Azure store alone, run against Azurite; the conformance
// suite in store_test.go covers what every store does.

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/redact"
)

func TestAzureBlocks(t *testing.T) {
	cs := azurite.Start(t)
	const block = 64 << 10
	a := openAzurite(t, cs, Options{Parallelism: 3, BlockSize: block})
	ctx, c := t.Context(), newContainer(t)
	random := func(n int) string {
		b := make([]byte, n)
		rand.Read(b)
		return string(b)
	}
	files := map[string]string{
		"0":          "",
		"1":          "x",
		"block-1":    random(block - 1),
		"block":      random(block),
		"block+1":    random(block + 1),
		"17 blocks":  random(16*block + 123),
		"sub/2 blks": random(2 * block),
	}
	src := t.TempDir()
	writeTree(t, src, files)
	if _, err := a.Upload(ctx, src, "**/*", Location{c, "b/"}); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if _, err := a.Download(ctx, Location{c, "b/"}, dst); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(files, readTree(t, dst)); diff != "" {
		t.Errorf("round trip differs: %.300s", diff)
	}

	wantBlocks := map[string]int{"0": 0, "1": 0, "block-1": 0, "block": 0, "block+1": 2, "17 blocks": 17, "sub/2 blks": 2}
	for name, content := range files {
		bc := a.svc.NewContainerClient(c).NewBlockBlobClient("b/" + name)
		props, err := bc.GetProperties(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sum := md5.Sum([]byte(content)); !bytes.Equal(props.ContentMD5, sum[:]) {
			t.Errorf("%s: Content-MD5 = %x, want %x", name, props.ContentMD5, sum)
		}
		bl, err := bc.GetBlockList(ctx, blockblob.BlockListTypeCommitted, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(bl.CommittedBlocks); got != wantBlocks[name] {
			t.Errorf("%s: %d committed blocks, want %d", name, got, wantBlocks[name])
		}
	}

	// A blob of many blocks comes down in concurrent ranges; its MD5 is
	// checked all the same.
	loc := Location{c, "b/17 blocks"}
	bc := a.svc.NewContainerClient(c).NewBlobClient(loc.Path)
	wrong := md5.Sum([]byte("not it"))
	if _, err := bc.SetHTTPHeaders(ctx, blob.HTTPHeaders{BlobContentMD5: wrong[:]}, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err := a.Download(ctx, loc, filepath.Join(dir, "x"))
	if err == nil || !strings.Contains(err.Error(), "MD5") {
		t.Errorf("ranged download of a blob whose Content-MD5 does not match: %v", err)
	}
	if left := readTree(t, dir); len(left) != 0 {
		t.Errorf("a corrupt download left files behind: %v", slices.Sorted(maps.Keys(left)))
	}
}

func TestAzureWrongCredentials(t *testing.T) {
	cs := azurite.Start(t)
	key := make([]byte, 64)
	rand.Read(key)
	wrongKey := base64.StdEncoding.EncodeToString(key)
	bad := strings.Replace(cs, azurite.Key, wrongKey, 1)
	if bad == cs {
		t.Fatal("connection string has no key to replace")
	}
	a := openAzurite(t, bad, Options{})
	ctx, c := t.Context(), newContainer(t)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": "a"})

	_, upErr := a.Upload(ctx, src, "a.txt", Location{c, "a.txt"})
	_, downErr := a.Download(ctx, Location{c, "a.txt"}, filepath.Join(t.TempDir(), "a"))
	_, listErr := a.Download(ctx, Location{c, "p/"}, t.TempDir())
	for _, tc := range []struct {
		op  string
		err error
		loc string
	}{
		{"upload", upErr, "az://" + c + "/a.txt"},
		{"download", downErr, "az://" + c + "/a.txt"},
		{"download", listErr, "az://" + c + "/p/"},
	} {
		if tc.err == nil {
			t.Errorf("%s %s with a wrong key succeeded", tc.op, tc.loc)
			continue
		}
		msg := tc.err.Error()
		t.Logf("%s", msg)
		if strings.Contains(msg, wrongKey) || strings.Contains(msg, "AccountKey=") {
			t.Errorf("error leaks the key: %s", msg)
		}
		if !strings.HasPrefix(msg, tc.op+" "+tc.loc+": ") || !strings.Contains(msg, "403") {
			t.Errorf("error %q should start %q and give the status", msg, tc.op+" "+tc.loc+": ")
		}
		if errors.Is(tc.err, ErrNotFound) {
			t.Errorf("authentication failure reported as not found: %v", tc.err)
		}
	}
}

func TestAzureErrorsHideSAS(t *testing.T) {
	// Nothing listens on a closed port, so the transport's error, which
	// quotes the whole request URL, is what comes back; without retries it
	// comes back at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	endpoint := "http://" + addr + "/" + azurite.Account + "?sv=2024-01-01&sp=r&sig=TOPSECRET%2Bsig"
	svc, err := service.NewClientWithNoCredential(endpoint, &service.ClientOptions{
		ClientOptions: policy.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := newAzure(svc, Options{})
	if got := a.URL(); got != "http://"+addr+"/"+azurite.Account {
		t.Errorf("URL() = %q", got)
	}

	ctx := t.Context()
	_, raw := svc.NewContainerClient("c01").NewBlobClient("a.txt").DownloadStream(ctx, nil)
	if raw == nil || !strings.Contains(raw.Error(), "TOPSECRET") {
		t.Fatalf("the SDK's own error no longer quotes the SAS, so this test proves nothing: %v", raw)
	}
	_, err = a.Download(ctx, Location{"c01", "a.txt"}, filepath.Join(t.TempDir(), "a"))
	_, listErr := a.Download(ctx, Location{"c01", "p/"}, t.TempDir())
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": "a"})
	_, upErr := a.Upload(ctx, src, "a.txt", Location{"c01", "a.txt"})
	for _, err := range []error{err, listErr, upErr} {
		if err == nil {
			t.Fatal("a transfer to a closed port succeeded")
		}
		t.Logf("%s", err)
		if strings.Contains(err.Error(), "TOPSECRET") {
			t.Errorf("error leaks the SAS signature: %s", err)
		}
		if !strings.Contains(err.Error(), "az://c01/") {
			t.Errorf("error does not name the location: %s", err)
		}
	}
}

func TestAzureURL(t *testing.T) {
	for _, tc := range []struct{ cs, want string }{
		{"BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&sig=SECRET", "https://acct.blob.core.windows.net"},
		{"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + azurite.Key + ";EndpointSuffix=core.windows.net", "https://acct.blob.core.windows.net"},
		{azurite.ConnString("http://127.0.0.1:10000/devstoreaccount1"), "http://127.0.0.1:10000/devstoreaccount1"},
	} {
		a, err := NewFromConnectionString(tc.cs, Options{})
		if err != nil {
			t.Fatalf("%s: %v", redact.String(tc.cs), err)
		}
		if got := a.URL(); got != tc.want {
			t.Errorf("URL() = %q, want %q", got, tc.want)
		}
	}
	_, err := NewFromConnectionString("AccountName=x;AccountKey=SECRETKEY", Options{})
	if err == nil || strings.Contains(err.Error(), "SECRETKEY") {
		t.Errorf("bad connection string: %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	vars := []string{"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_URL", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		ok      bool
		url     string
		wantErr bool
	}{
		{"nothing", nil, false, "", false},
		{"connection string", map[string]string{"AZURE_STORAGE_CONNECTION_STRING": azurite.ConnString("http://127.0.0.1:1/devstoreaccount1"), "AZURE_STORAGE_ACCOUNT": "ignored"}, true, "http://127.0.0.1:1/devstoreaccount1", false},
		{"account", map[string]string{"AZURE_STORAGE_ACCOUNT": "myacct"}, true, "https://myacct.blob.core.windows.net", false},
		{"account url", map[string]string{"AZURE_STORAGE_ACCOUNT_URL": "https://other.example.test/"}, true, "https://other.example.test", false},
		{"account and key", map[string]string{"AZURE_STORAGE_ACCOUNT": "myacct", "AZURE_STORAGE_KEY": azurite.Key}, true, "https://myacct.blob.core.windows.net", false},
		{"sas token", map[string]string{"AZURE_STORAGE_ACCOUNT": "myacct", "AZURE_STORAGE_SAS_TOKEN": "?sv=1&sig=SECRET"}, true, "https://myacct.blob.core.windows.net", false},
		{"bad account", map[string]string{"AZURE_STORAGE_ACCOUNT": "My_Account"}, true, "", true},
		{"key without account", map[string]string{"AZURE_STORAGE_ACCOUNT_URL": "https://x.example.test", "AZURE_STORAGE_KEY": "k"}, true, "", true},
		// Entra ID cannot sign in over http: refused before any upload.
		{"http url without key", map[string]string{"AZURE_STORAGE_ACCOUNT_URL": "http://127.0.0.1:1/devstoreaccount1"}, true, "", true},
		{"http url with key", map[string]string{"AZURE_STORAGE_ACCOUNT_URL": "http://127.0.0.1:1/devstoreaccount1", "AZURE_STORAGE_ACCOUNT": "devstoreaccount1", "AZURE_STORAGE_KEY": azurite.Key}, true, "http://127.0.0.1:1/devstoreaccount1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range vars {
				t.Setenv(v, tc.env[v])
			}
			a, ok, err := FromEnv(t.Context(), Options{})
			if ok != tc.ok || (err != nil) != tc.wantErr {
				t.Fatalf("FromEnv = ok %v, err %v; want ok %v, error %v", ok, err, tc.ok, tc.wantErr)
			}
			if err == nil && ok && a.URL() != tc.url {
				t.Errorf("URL() = %q, want %q", a.URL(), tc.url)
			}
		})
	}
}

func TestBlobRelPath(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, rel string
		skip, err         bool
	}{
		{"run/a/b.txt", "run/", "a/b.txt", false, false},
		{"a.txt", "", "a.txt", false, false},
		{"run/dir/", "run/", "", true, false},
		{"run/", "run/", "", true, false},
		{"run/../../etc/passwd", "run/", "", false, true},
		{"run/a/../../../x", "run/", "", false, true},
		{"run//abs", "run/", "", false, true},
		{"other/x", "run/", "", false, true},
	} {
		rel, skip, err := blobRelPath(tc.name, tc.prefix)
		if rel != tc.rel || skip != tc.skip || (err != nil) != tc.err {
			t.Errorf("blobRelPath(%q, %q) = %q, %v, %v", tc.name, tc.prefix, rel, skip, err)
		}
	}
}

func TestAzureSkipsFolderMarkers(t *testing.T) {
	a := openAzurite(t, azurite.Start(t), Options{})
	ctx, c := t.Context(), newContainer(t)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"dir/file.txt": "inside"})
	if _, err := a.Upload(ctx, src, "**/*", Location{c, "m/"}); err != nil {
		t.Fatal(err)
	}
	// What an account with a hierarchical namespace lists for a directory.
	marker := a.svc.NewContainerClient(c).NewBlockBlobClient("m/dir")
	if _, err := marker.UploadBuffer(ctx, nil, &blockblob.UploadBufferOptions{
		Metadata: map[string]*string{"hdi_isfolder": new("true")},
	}); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if _, err := a.Download(ctx, Location{c, "m/"}, dst); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"dir/file.txt": "inside"}, readTree(t, dst)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
