package azurebatch

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/internal/redact"
)

// TestStorageSAS: the URLs a node gets read what they should and no more,
// carry no key, and expire; staged files are content-addressed and
// uploaded once.
func TestStorageSAS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Azurite")
	}
	cs := azurite.Start(t)
	st, err := StorageFromConnectionString(cs, StorageOptions{SASLifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	src := filepath.Join(t.TempDir(), "in.txt")
	os.WriteFile(src, []byte("hello\n"), 0o644)
	prefix := blobstage.Location{Container: "bmc-staging", Path: "x/"}
	loc, err := st.StageFile(ctx, prefix, src)
	if err != nil {
		t.Fatal(err)
	}
	// sha256("hello\n")
	if loc.Path != "x/sha256/5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" {
		t.Errorf("staged at %s", loc)
	}
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	u, ref, err := st.BlobURL(loc.Container, loc.Path)
	if err != nil || ref != nil {
		t.Fatal(err, ref)
	}
	if strings.Contains(u, azurite.Key) || !strings.Contains(u, "sig=") || !strings.Contains(u, "se=") {
		t.Errorf("blob URL %s", redact.String(u))
	}
	if code, body := get(u); code != 200 || body != "hello\n" {
		t.Errorf("reading through the SAS: %d %q", code, body)
	}
	// Without the SAS the blob is private.
	if code, _ := get(strings.SplitN(u, "?", 2)[0]); code == 200 {
		t.Error("the blob is readable without a SAS")
	}
	// Staging the same content again uploads nothing, even from a fresh
	// Storage that has no memory of it.
	bc := st.svc.NewContainerClient(loc.Container).NewBlobClient(loc.Path)
	p1, err := bc.GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := StorageFromConnectionString(cs, StorageOptions{})
	copyOf := filepath.Join(t.TempDir(), "same.txt")
	os.WriteFile(copyOf, []byte("hello\n"), 0o600)
	loc2, err := st2.StageFile(ctx, prefix, copyOf)
	if err != nil || loc2 != loc {
		t.Fatalf("%v %v", loc2, err)
	}
	p2, _ := bc.GetProperties(ctx, nil)
	if *p1.ETag != *p2.ETag {
		t.Error("an unchanged file was uploaded again")
	}
	// A write URL for outputs, to a container made beforehand.
	if err := st.EnsureContainer(ctx, "results"); err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureContainer(ctx, "results"); err != nil {
		t.Fatal(err)
	}
	w, _, err := st.ContainerURL("results", true)
	if err != nil {
		t.Fatal(err)
	}
	r, _, _ := st.ContainerURL("results", false)
	if !strings.Contains(w, "sp=racwl") || !strings.Contains(r, "sp=rl") {
		t.Errorf("permissions: write %s, read %s", redact.String(w), redact.String(r))
	}
	if strings.Contains(redact.String(w), "sig=") && !strings.Contains(redact.String(w), "sig=REDACTED") {
		t.Error("Redact leaves the signature")
	}
	// The program round-trips.
	l := blobstage.Location{Container: "bmc-staging", Path: "runs/r/p.json"}
	if err := st.Put(ctx, l, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if b, err := st.Get(ctx, l); err != nil || string(b) != `{"a":1}` {
		t.Errorf("%q %v", b, err)
	}
}

// TestStorageNeedsKeyOrIdentity: an account given by SAS cannot mint
// SAS URLs; that is said plainly, unless a pool identity is used.
func TestStorageNeedsKeyOrIdentity(t *testing.T) {
	cs := "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;SharedAccessSignature=sv=2025-01-05&sig=abc"
	_, err := StorageFromConnectionString(cs, StorageOptions{})
	if err == nil || !strings.Contains(err.Error(), "AccountKey") || strings.Contains(err.Error(), "sig=abc") {
		t.Errorf("err = %v", err)
	}
	st, err := StorageFromConnectionString(cs, StorageOptions{Identity: "/subscriptions/s/x/id"})
	if err != nil {
		t.Fatal(err)
	}
	u, ref, err := st.ContainerURL("c1c", true)
	if err != nil || ref == nil || ref.ResourceID != "/subscriptions/s/x/id" || strings.Contains(u, "?") {
		t.Errorf("%s %+v %v", u, ref, err)
	}
}
