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
	// Entra ID cannot work over http, so an http endpoint with no key or
	// SAS for it is refused when it is opened, not on every upload; the
	// error says what to set, and which account the environment's
	// credentials are for when they are for another.
	otherURL := strings.Replace(endpoint, "127.0.0.1", "localhost", 1)
	for name, tc := range map[string]struct {
		env  map[string]string
		want []string
	}{
		"nothing": {
			want: []string{"AZURE_STORAGE_CONNECTION_STRING with BlobEndpoint=" + endpoint, "AZURE_STORAGE_ACCOUNT=" + azurite.Account + " with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_ACCOUNT_URL=" + endpoint},
		},
		"another account's key": {
			env:  map[string]string{"AZURE_STORAGE_ACCOUNT": "otheraccount", "AZURE_STORAGE_KEY": azurite.Key},
			want: []string{"AZURE_STORAGE_KEY is for AZURE_STORAGE_ACCOUNT=otheraccount"},
		},
		"another url's key": {
			env:  map[string]string{"AZURE_STORAGE_ACCOUNT_URL": otherURL, "AZURE_STORAGE_ACCOUNT": azurite.Account, "AZURE_STORAGE_KEY": azurite.Key},
			want: []string{"AZURE_STORAGE_KEY is for AZURE_STORAGE_ACCOUNT_URL=" + otherURL},
		},
		"another url's sas": {
			env:  map[string]string{"AZURE_STORAGE_ACCOUNT_URL": otherURL, "AZURE_STORAGE_SAS_TOKEN": "?sv=2024&sig=c2VjcmV0"},
			want: []string{"AZURE_STORAGE_SAS_TOKEN is for AZURE_STORAGE_ACCOUNT_URL=" + otherURL},
		},
		"another endpoint's connection string": {
			env:  map[string]string{"AZURE_STORAGE_CONNECTION_STRING": strings.Replace(cs, "127.0.0.1", "localhost", 1)},
			want: []string{"AZURE_STORAGE_CONNECTION_STRING is for " + otherURL},
		},
	} {
		t.Run(name, func(t *testing.T) {
			clear()
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := ForAccount(endpoint+"/", Options{})
			if err == nil {
				t.Fatal("ForAccount opened an http endpoint with no key or SAS for it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
			for _, secret := range []string{azurite.Key, "c2VjcmV0"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
		})
	}
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
