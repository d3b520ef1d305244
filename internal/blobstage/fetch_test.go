package blobstage

import (
	"context"
	"errors"
	"github.com/bmc-dev/bmc/internal/loopback"
	"github.com/bmc-dev/bmc/internal/testfs"
	"github.com/google/go-cmp/cmp"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// secret stands for a SAS signature: it must never appear in an error.
const secret = "sig=T0PS3CRET"

func TestFetchHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "sv=1&"+secret {
			http.Error(w, "query string not passed on", http.StatusBadRequest)
			return
		}
		w.Write([]byte("payload ü\n"))
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/no-content", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok?sv=1&"+secret, http.StatusFound)
	})
	mux.HandleFunc("/redirect-remote-http", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.invalid/x?"+secret, http.StatusFound)
	})
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "gone", http.StatusGone) })
	mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "busy", http.StatusServiceUnavailable) })
	mux.HandleFunc("/short", func(w http.ResponseWriter, r *http.Request) {
		// Promise more than is sent: the client sees the body end early.
		w.Header().Set("Content-Length", "100")
		w.Write([]byte("only ten.."))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		name     string
		path     string
		want     string // file content on success
		wantCode int    // StatusError code, 0 if none
		wantErr  string // error text, "" for success
		notFound bool
	}{
		{name: "ok", path: "/ok?sv=1&" + secret, want: "payload ü\n"},
		{name: "empty body", path: "/empty", want: ""},
		{name: "204", path: "/no-content", want: ""},
		{name: "redirect", path: "/redirect", want: "payload ü\n"},
		{name: "404", path: "/missing?" + secret, wantCode: 404, wantErr: "404 Not Found", notFound: true},
		{name: "410", path: "/gone?" + secret, wantCode: 410, wantErr: "410 Gone", notFound: true},
		{name: "503", path: "/busy?" + secret, wantCode: 503, wantErr: "503 Service Unavailable"},
		{name: "truncated body", path: "/short?" + secret, wantErr: "unexpected EOF"},
		{name: "redirect to remote http", path: "/redirect-remote-http?" + secret, wantErr: "plain http is allowed only for loopback hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dst := filepath.Join(dir, "sub", "dir", "file")
			// An earlier file at dst survives a failed fetch.
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, []byte("previous"), 0o644); err != nil {
				t.Fatal(err)
			}
			st, err := FetchHTTP(t.Context(), nil, srv.URL+tt.path, dst)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				b, _ := os.ReadFile(dst)
				if string(b) != tt.want {
					t.Errorf("file holds %q, want %q", b, tt.want)
				}
				if want := (Stats{Files: 1, Bytes: int64(len(tt.want))}); st != want {
					t.Errorf("stats %+v, want %+v", st, want)
				}
				if names := dirNames(t, filepath.Dir(dst)); !cmp.Equal(names, []string{"file"}) {
					t.Errorf("directory holds %v, want only the file", names)
				}
				return
			}

			if err == nil {
				t.Fatalf("fetch succeeded, want %q", tt.wantErr)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error %q does not say %q", msg, tt.wantErr)
			}
			if strings.Contains(msg, "T0PS3CRET") {
				t.Errorf("error leaks the signature: %s", msg)
			}
			pathOnly, _, _ := strings.Cut(tt.path, "?")
			if !strings.HasPrefix(msg, "fetch "+srv.URL+pathOnly+": ") {
				t.Errorf("error %q does not start with the redacted URL", msg)
			}
			var se *StatusError
			if got := errors.As(err, &se); got != (tt.wantCode != 0) || (got && se.Code != tt.wantCode) {
				t.Errorf("StatusError %+v, want code %d", se, tt.wantCode)
			}
			if errors.Is(err, ErrNotFound) != tt.notFound {
				t.Errorf("errors.Is(ErrNotFound) = %v, want %v", !tt.notFound, tt.notFound)
			}
			if b, _ := os.ReadFile(dst); string(b) != "previous" {
				t.Errorf("failed fetch changed the file to %q", b)
			}
			if names := dirNames(t, filepath.Dir(dst)); !cmp.Equal(names, []string{"file"}) {
				t.Errorf("failed fetch left %v", names)
			}
		})
	}
}

func TestFetchHTTPRefusesURLs(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"http://example.com/x?" + secret, "plain http is allowed only for loopback hosts"},
		{"http://10.0.0.1/x?" + secret, "plain http"},
		{"http://localhost.example.com/x?" + secret, "plain http"},
		{"ftp://example.com/x?" + secret, "not an https URL"},
		{"file:///etc/passwd?" + secret, "not an https URL"},
		{"https:///no-host?" + secret, "not an https URL"},
		{"relative/path?" + secret, "not an https URL"},
		{"", "not an https URL"},
		{"https://exa mple.com/?" + secret, "invalid URL"},
		{"https://user:T0PS3CRET@example.com:bad/?" + secret, "invalid URL"},
		{"://missing-scheme?" + secret, "invalid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "f")
			_, err := FetchHTTP(t.Context(), nil, tt.url, dst)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("FetchHTTP(%q) = %v, want %q", tt.url, err, tt.want)
			}
			if strings.Contains(err.Error(), "T0PS3CRET") {
				t.Errorf("error leaks the signature: %s", err)
			}
			if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("refused fetch created %s", dst)
			}
		})
	}
}

func TestFetchHTTPTransportErrorHidesQuery(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens here now
	u := "http://user:T0PS3CRET@" + addr + "/x?" + secret + "#frag"
	_, err = FetchHTTP(t.Context(), nil, u, filepath.Join(t.TempDir(), "f"))
	if err == nil {
		t.Fatal("fetch from a closed port succeeded")
	}
	if strings.Contains(err.Error(), "T0PS3CRET") || strings.Contains(err.Error(), "frag") {
		t.Errorf("error leaks credentials: %s", err)
	}
	if !strings.HasPrefix(err.Error(), "fetch http://"+addr+"/x: ") || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error %q should name the redacted URL and wrap ECONNREFUSED", err)
	}
}

func TestFetchHTTPCanceledMidBody(t *testing.T) {
	sent := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.Write([]byte("first part"))
		w.(http.Flusher).Flush()
		close(sent)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := FetchHTTP(ctx, nil, srv.URL+"/big", filepath.Join(dir, "f"))
		done <- err
	}()
	<-sent
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("FetchHTTP after cancel: %v, want context.Canceled", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("cancelled fetch left %v", names)
	}
}

func TestFetchHTTPKeepsClientRedirectPolicy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/from" {
			http.Redirect(w, r, "/to", http.StatusFound)
			return
		}
		w.Write([]byte("to"))
	}))
	defer srv.Close()
	refuse := errors.New("redirects not wanted")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return refuse }}
	_, err := FetchHTTP(t.Context(), client, srv.URL+"/from", filepath.Join(t.TempDir(), "f"))
	if !errors.Is(err, refuse) {
		t.Errorf("FetchHTTP = %v, want the client's redirect error", err)
	}
	if client.CheckRedirect == nil {
		t.Error("the caller's client was modified")
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost":             true,
		"LocalHost":             true,
		"127.0.0.1":             true,
		"127.8.9.10":            true,
		"::1":                   true,
		"0:0:0:0:0:0:0:1":       true,
		"10.0.0.1":              false,
		"::":                    false,
		"example.com":           false,
		"localhost.example.com": false,
		"127.0.0.1.nip.io":      false,
		"":                      false,
	} {
		if got := loopback.Host(host); got != want {
			t.Errorf("loopback.Host(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCopyLocal(t *testing.T) {
	t.Run("file keeps its mode", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "run.sh")
		if err := os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "a", "b", "run.sh")
		st, err := CopyLocal(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		if st != (Stats{Files: 1, Bytes: 18}) {
			t.Errorf("stats %+v", st)
		}
		fi, err := os.Stat(dst)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o100 == 0 {
			t.Errorf("copy lost the executable bit: %v", fi.Mode())
		}
	})

	t.Run("tree", func(t *testing.T) {
		src := t.TempDir()
		testfs.MkFiles(t, src, "a.txt", ".hidden", "sub/b.txt", "sub/deep/c.txt", "empty/", "ü ñ/d e.txt")
		if err := os.WriteFile(filepath.Join(src, "zero"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		testfs.Symlink(t, "../a.txt", filepath.Join(src, "sub", "link.txt"))
		dst := filepath.Join(t.TempDir(), "copy")
		st, err := CopyLocal(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"a.txt": "a.txt", ".hidden": ".hidden", "zero": "",
			"sub": "/", "sub/b.txt": "sub/b.txt", "sub/link.txt": "a.txt",
			"sub/deep": "/", "sub/deep/c.txt": "sub/deep/c.txt",
			"empty": "/", "ü ñ": "/", "ü ñ/d e.txt": "ü ñ/d e.txt",
		}
		if diff := cmp.Diff(want, listTree(t, dst)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		var bytes int64
		for _, c := range want {
			if c != "/" {
				bytes += int64(len(c))
			}
		}
		if st != (Stats{Files: 7, Bytes: bytes}) {
			t.Errorf("stats %+v, want 7 files, %d bytes", st, bytes)
		}

		// Copying again into the same place replaces and keeps the rest.
		if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("new"), 0o644); err != nil {
			t.Fatal(err)
		}
		testfs.MkFiles(t, dst, "extra")
		if _, err := CopyLocal(src, dst); err != nil {
			t.Fatal(err)
		}
		got := listTree(t, dst)
		if got["a.txt"] != "new" || got["extra"] != "extra" {
			t.Errorf("second copy: a.txt=%q extra=%q", got["a.txt"], got["extra"])
		}
	})

	t.Run("errors", func(t *testing.T) {
		base := t.TempDir()
		testfs.MkFiles(t, base, "tree/a.txt", "linked/b.txt", "fifo-tree/x")
		testfs.Symlink(t, filepath.Join(base, "linked"), filepath.Join(base, "tree", "dirlink"))
		if err := syscall.Mkfifo(filepath.Join(base, "fifo-tree", "pipe"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(filepath.Join(base, "pipe"), 0o644); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, src, dst, want string
			is                   error
		}{
			{"missing", filepath.Join(base, "nope"), filepath.Join(base, "out1"), "not found", ErrNotFound},
			{"link to a directory", filepath.Join(base, "tree"), filepath.Join(base, "out2"), "dirlink: symbolic link to a directory", nil},
			{"fifo in a tree", filepath.Join(base, "fifo-tree"), filepath.Join(base, "out3"), "pipe: not a regular file", nil},
			{"fifo", filepath.Join(base, "pipe"), filepath.Join(base, "out4"), "not a regular file or directory", nil},
			{"into itself", filepath.Join(base, "linked"), filepath.Join(base, "linked", "copy"), "inside the source", nil},
			{"onto itself", filepath.Join(base, "linked"), filepath.Join(base, "linked"), "inside the source", nil},
			{"into itself through a link", filepath.Join(base, "linked"), filepath.Join(base, "tree", "dirlink", "new"), "inside the source", nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := CopyLocal(tt.src, tt.dst)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("CopyLocal = %v, want %q", err, tt.want)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("error %v does not wrap %v", err, tt.is)
				}
			})
		}
	})
}
