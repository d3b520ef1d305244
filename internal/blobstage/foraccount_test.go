package blobstage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/internal/azurite"
)

func TestAccountOf(t *testing.T) {
	for endpoint, want := range map[string]string{
		"https://acct.blob.core.windows.net":        "acct",
		"https://acct.blob.core.windows.net/":       "acct",
		"http://127.0.0.1:10000/devstoreaccount1":   "devstoreaccount1",
		"http://127.0.0.1:10000/devstoreaccount1/":  "devstoreaccount1",
		"https://acct.privatelink.blob.example.org": "acct",
	} {
		if got := accountOf(endpoint); got != want {
			t.Errorf("accountOf(%q) = %q, want %q", endpoint, got, want)
		}
	}
	if !sameEndpoint("HTTP://127.0.0.1:1/devstoreaccount1/", "http://127.0.0.1:1/devstoreaccount1") || sameEndpoint("https://a.blob.core.windows.net", "https://b.blob.core.windows.net") {
		t.Error("sameEndpoint")
	}
}

// TestForAccount: a spec's accountUrl is opened with the key, SAS or
// connection string the environment gives for that account (Azurite
// takes an http URL only with a key: Entra ID needs https), and with none
// for it, not with another account's.
func TestForAccount(t *testing.T) {
	cs := azurite.Start(t)
	endpoint := endpointOf(t, cs)
	clear := func() {
		for _, k := range []string{"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_URL", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"} {
			t.Setenv(k, "")
		}
	}
	upload := func(t *testing.T) error {
		a, err := ForAccount(endpoint+"/", Options{})
		if err != nil {
			return err
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "x.txt"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = a.Upload(t.Context(), dir, "x.txt", Location{Container: "foraccount", Path: "x.txt"})
		return err
	}
	for name, env := range map[string]map[string]string{
		"connection string": {"AZURE_STORAGE_CONNECTION_STRING": cs},
		"account and key":   {"AZURE_STORAGE_ACCOUNT": azurite.Account, "AZURE_STORAGE_KEY": azurite.Key},
		"url and key":       {"AZURE_STORAGE_ACCOUNT_URL": endpoint, "AZURE_STORAGE_ACCOUNT": azurite.Account, "AZURE_STORAGE_KEY": azurite.Key},
	} {
		t.Run(name, func(t *testing.T) {
			clear()
			for k, v := range env {
				t.Setenv(k, v)
			}
			if err := upload(t); err != nil {
				t.Fatalf("upload: %v", err)
			}
		})
	}
	t.Run("another account's key", func(t *testing.T) {
		clear()
		t.Setenv("AZURE_STORAGE_ACCOUNT", "otheraccount")
		t.Setenv("AZURE_STORAGE_KEY", azurite.Key)
		if err := upload(t); err == nil {
			t.Fatal("the upload went through with another account's key")
		} else if strings.Contains(err.Error(), azurite.Key) {
			t.Fatalf("the error shows the key: %v", err)
		}
	})
}

// endpointOf is the blob endpoint of a connection string.
func endpointOf(t *testing.T, cs string) string {
	t.Helper()
	for _, f := range strings.Split(cs, ";") {
		if v, ok := strings.CutPrefix(f, "BlobEndpoint="); ok {
			return strings.TrimSuffix(v, "/")
		}
	}
	t.Fatalf("no BlobEndpoint in the connection string")
	return ""
}
