package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// stallLimit is how long an https input may go without a byte, or a
// request without an answer, before it fails. A transfer as a whole has
// no limit: a large input on a slow link takes the time it takes, and a
// cancelled run stops it at once whatever this is.
const stallLimit = 2 * time.Minute

// newHTTPClient is the client that fetches https inputs when the caller
// gives none: net/http's transport, behind stallTransport.
func newHTTPClient(stall time.Duration) *http.Client {
	if stall <= 0 {
		stall = stallLimit
	}
	return &http.Client{Transport: &stallTransport{base: http.DefaultTransport, limit: stall}}
}

// stallTransport fails a request that gets no response headers within
// limit of being sent, or whose body then sends nothing for limit, with a
// *stallError. Only the time spent waiting for the server counts: the
// time the reader takes between reads (writing to a slow disk) does not.
type stallTransport struct {
	base  http.RoundTripper
	limit time.Duration
}

// stallError says that a transfer stalled, and for how long.
type stallError struct {
	limit   time.Duration
	started bool // some of the response had come
}

func (e *stallError) Error() string {
	if e.started {
		return fmt.Sprintf("transfer stalled: no data received for %v: the server or the network stopped sending; check them and run the task again", e.limit)
	}
	return fmt.Sprintf("transfer stalled: no response for %v: check that the server is up and reachable from here", e.limit)
}

// Timeout marks the error as a timeout, as net/http's own are.
func (e *stallError) Timeout() bool { return true }

func (t *stallTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(t.limit, func() { cancel(&stallError{limit: t.limit}) })
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() && err == nil {
		// The limit passed as the headers came: the request is cancelled
		// already, and the body could not be read.
		resp.Body.Close()
		resp, err = nil, context.Cause(ctx)
	}
	if err != nil {
		cancel(nil)
		return nil, stalled(ctx, err)
	}
	body := &stallBody{body: resp.Body, ctx: ctx, cancel: cancel, limit: t.limit}
	body.timer = time.AfterFunc(t.limit, func() { cancel(&stallError{limit: t.limit, started: true}) })
	body.timer.Stop()
	resp.Body = body
	return resp, nil
}

// stallBody runs its timer while a read waits for the server.
type stallBody struct {
	body   io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	limit  time.Duration
	timer  *time.Timer
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.limit)
	n, err := b.body.Read(p)
	b.timer.Stop()
	if err != nil && err != io.EOF {
		err = stalled(b.ctx, err)
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.timer.Stop()
	err := b.body.Close()
	b.cancel(nil)
	return err
}

// stalled is the *stallError that cancelled ctx, if one did, or else err:
// a request cancelled with its run is reported as net/http reports it.
func stalled(ctx context.Context, err error) error {
	var se *stallError
	if errors.As(context.Cause(ctx), &se) {
		return se
	}
	return err
}
