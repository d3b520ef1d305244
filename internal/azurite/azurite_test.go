package azurite

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartServesAndStops(t *testing.T) {
	var endpoint string
	t.Run("running", func(t *testing.T) {
		cs := Start(t)
		for part := range strings.SplitSeq(cs, ";") {
			if v, ok := strings.CutPrefix(part, "BlobEndpoint="); ok {
				endpoint = v
			}
		}
		if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
			t.Fatalf("connection string %q has no loopback BlobEndpoint", cs)
		}
		// An unauthenticated listing is refused, but by Azurite: its
		// answer carries the storage error header.
		resp, err := http.Get(endpoint + "?comp=list")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("x-ms-error-code") == "" && resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s, not a blob service answer", endpoint, resp.Status)
		}
	})
	if endpoint == "" {
		return // skipped: azurite-blob is not installed
	}
	// The subtest's cleanup has stopped the emulator.
	host := strings.TrimPrefix(endpoint, "http://")
	host, _, _ = strings.Cut(host, "/")
	if c, err := net.Dial("tcp", host); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the test ended", host)
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if rel, err := filepath.Rel(root, wd); err != nil || rel != filepath.Join("internal", "azurite") {
		t.Errorf("repoRoot() = %q, which does not hold this package (%s) at internal/azurite", root, wd)
	}
}
