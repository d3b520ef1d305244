package stall

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// server runs h until the test ends; a handler that waits (wait) does
// so until then or until its client goes.
func server(t *testing.T, h func(w http.ResponseWriter, r *http.Request, release <-chan struct{})) *httptest.Server {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(w, r, release) }))
	t.Cleanup(srv.Close) // after release, below: Close waits for handlers
	t.Cleanup(func() { close(release) })
	return srv
}

func wait(r *http.Request, release <-chan struct{}) {
	select {
	case <-release:
	case <-r.Context().Done():
	}
}

// TestStallPhases: a request fails with an *Error naming where it
// stalled, once nothing has moved there for the limit.
func TestStallPhases(t *testing.T) {
	srv := server(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		switch r.URL.Path {
		case "/body-stalls":
			w.Header().Set("Content-Length", "1000")
			w.Write([]byte("some bytes"))
			w.(http.Flusher).Flush()
		case "/takes-nothing":
			// Reads nothing of the request body, so the client's writes
			// block once the socket buffers are full.
		}
		wait(r, release)
	})
	c := NewClient(100 * time.Millisecond)
	for _, tt := range []struct {
		path  string
		body  io.Reader
		phase Phase
		says  string
	}{
		{"/body-stalls", nil, Receiving, "no data received for 100ms"},
		{"/no-answer", nil, Waiting, "no response for 100ms"},
		{"/takes-nothing", io.LimitReader(zeros{}, 1<<30), Sending, "nothing could be sent for 100ms"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			method := http.MethodGet
			if tt.body != nil {
				method = http.MethodPut
			}
			req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			var se *Error
			if !errors.As(err, &se) || se.Phase != tt.phase || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error %v: want a stall while %d saying %q", err, tt.phase, tt.says)
			}
			var te interface{ Timeout() bool }
			if !errors.As(err, &te) || !te.Timeout() {
				t.Errorf("error %v is not a timeout", err)
			}
		})
	}
}

// slowReader is n pieces of 10 bytes, with a wait of gap before every
// every-th.
type slowReader struct {
	n, every, i int
	gap         time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.i == r.n {
		return 0, io.EOF
	}
	if r.i > 0 && r.i%r.every == 0 {
		time.Sleep(r.gap) // the slow disk this test is about
	}
	r.i++
	return copy(p, "0123456789"), nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestSlowButMoving: transfers that take far longer than the limit as a
// whole, but never stop for it, complete: a response body that comes in
// pieces; a request body whose reader (a slow disk) takes longer than the
// limit to produce it; a reader that waits between its own reads longer
// than the limit.
func TestSlowButMoving(t *testing.T) {
	const limit = 300 * time.Millisecond
	const pieces, gap = 15, 100 * time.Millisecond // 1.5s in all
	srv := server(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		switch r.URL.Path {
		case "/slow-response":
			for i := range pieces {
				if i > 0 {
					time.Sleep(gap) // the slow link this test is about
				}
				w.Write([]byte("0123456789"))
				w.(http.Flusher).Flush()
			}
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		case "/all-at-once":
			w.Write(bytes.Repeat([]byte{'y'}, 150))
		}
	})
	c := NewClient(limit)
	get := func(t *testing.T, method, path string, body io.Reader, readGap time.Duration) {
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got []byte
		buf := make([]byte, 50)
		for {
			n, err := resp.Body.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("after %d bytes: %v", len(got), err)
			}
			time.Sleep(readGap) // the slow disk this test is about
		}
		if len(got) != 150 {
			t.Errorf("got %d bytes, want 150", len(got))
		}
	}
	t.Run("response", func(t *testing.T) { get(t, http.MethodGet, "/slow-response", nil, 0) })
	t.Run("request", func(t *testing.T) {
		get(t, http.MethodPut, "/echo", &slowReader{n: pieces, gap: 2 * limit, every: 5}, 0)
	})
	t.Run("slow reader", func(t *testing.T) { get(t, http.MethodGet, "/all-at-once", nil, 2*limit) })
}

// TestCancelIsNotStall: a request cancelled by its caller fails at once
// with the cancellation, not as a stall, whatever the limit.
func TestCancelIsNotStall(t *testing.T) {
	sent := make(chan struct{})
	srv := server(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		w.Write([]byte("x"))
		w.(http.Flusher).Flush()
		close(sent)
		wait(r, release)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := NewClient(time.Hour).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-sent
	cancel()
	_, err = io.Copy(io.Discard, resp.Body)
	if !errors.Is(err, context.Canceled) || errors.As(err, new(*Error)) {
		t.Errorf("error %v: want context.Canceled", err)
	}
}

// TestNoTotalTimeout: the client has no limit on a request as a whole.
func TestNoTotalTimeout(t *testing.T) {
	if c := NewClient(0); c.Timeout != 0 {
		t.Errorf("client timeout %v", c.Timeout)
	}
	if tr := NewTransport(nil, 0); tr.limit != DefaultLimit {
		t.Errorf("default limit %v, want %v", tr.limit, DefaultLimit)
	}
}
