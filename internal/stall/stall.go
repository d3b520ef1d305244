// Package stall gives HTTP transfers a limit on how long they may go
// without moving, instead of a limit on their total time: a large file on
// a slow link takes the time it takes, and one whose server or network
// has stopped fails within the limit, saying so. It is shared by the local
// backend (https inputs) and the Batch emulator (resource files); a
// cancelled context stops a transfer at once, whatever the limit.
package stall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// DefaultLimit is the limit NewClient and NewTransport use when given none.
const DefaultLimit = 2 * time.Minute

// NewClient is an http.Client with no total timeout whose requests fail
// once they stall for limit (DefaultLimit when limit <= 0). It keeps
// connections of its own, more of them to one host than net/http's
// default: a blob store's client moves several transfers at once.
func NewClient(limit time.Duration) *http.Client {
	var base http.RoundTripper = http.DefaultTransport
	if t, ok := base.(*http.Transport); ok {
		t = t.Clone()
		t.MaxIdleConnsPerHost = 16
		base = t
	}
	return &http.Client{Transport: NewTransport(base, limit)}
}

// NewTransport wraps base (http.DefaultTransport when nil) so that a
// request fails with an *Error once nothing moves for limit
// (DefaultLimit when limit <= 0): while its body is being sent, while its
// response headers are awaited, and while a read of the response body
// waits for the server. The time a reader takes between reads (writing to
// a slow disk) does not count.
func NewTransport(base http.RoundTripper, limit time.Duration) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	if limit <= 0 {
		limit = DefaultLimit
	}
	return &Transport{base: base, limit: limit}
}

// Transport is the http.RoundTripper NewTransport returns.
type Transport struct {
	base  http.RoundTripper
	limit time.Duration
}

// Error says that a transfer stalled, where, and for how long.
type Error struct {
	Limit time.Duration
	// Phase is where it stalled: sending the request body, waiting for
	// the response, or receiving the response body.
	Phase Phase
}

// Phase is a part of one request, for Error.
type Phase int

const (
	idle      Phase = iota
	Sending         // the request body was not all taken
	Waiting         // the request was sent; no response headers came
	Receiving       // a read of the response body got nothing
)

func (e *Error) Error() string {
	switch e.Phase {
	case Sending:
		return fmt.Sprintf("transfer stalled: nothing could be sent for %v: the server or the network stopped taking data; check them and try again", e.Limit)
	case Receiving:
		return fmt.Sprintf("transfer stalled: no data received for %v: the server or the network stopped sending; check them and run the task again", e.Limit)
	}
	return fmt.Sprintf("transfer stalled: no response for %v: check that the server is up and reachable from here", e.Limit)
}

// Timeout marks the error as a timeout, as net/http's own are.
func (e *Error) Timeout() bool { return true }

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watch{limit: t.limit, cancel: cancel, phase: Waiting, last: time.Now(), armed: true}
	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody {
		w.phase = Sending
	}
	w.mu.Lock() // fire may run before AfterFunc has returned
	w.timer = time.AfterFunc(t.limit, w.fire)
	w.mu.Unlock()

	out := req.WithContext(ctx)
	if hasBody {
		out.Body = &sendBody{ReadCloser: req.Body, w: w}
		if req.GetBody != nil {
			// net/http resends a body this way on a fresh connection.
			out.GetBody = func() (io.ReadCloser, error) {
				b, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				w.sending(Sending)
				return &sendBody{ReadCloser: b, w: w}, nil
			}
		}
	}
	resp, err := t.base.RoundTrip(out)
	w.answered()
	if err == nil && stalled(ctx, nil) != nil {
		// The limit passed as the headers came: the request is cancelled
		// already, and the body could not be read.
		resp.Body.Close()
		resp, err = nil, stalled(ctx, nil)
	}
	if err != nil {
		w.close()
		return nil, stalled(ctx, err)
	}
	resp.Body = &receiveBody{body: resp.Body, ctx: ctx, w: w}
	return resp, nil
}

// watch is one request's timer. Progress only moves last; the timer,
// when it fires, fails the request if nothing has moved for the limit in
// a phase that waits for the other side, and otherwise waits again for
// what is left, so that progress costs no timer operation.
type watch struct {
	limit  time.Duration
	cancel context.CancelCauseFunc

	mu     sync.Mutex
	timer  *time.Timer
	phase  Phase
	last   time.Time
	armed  bool // the timer is set to fire
	answer bool // RoundTrip has returned
	done   bool
}

// to enters phase p, starting its wait afresh.
func (w *watch) to(p Phase) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.enter(p)
}

// enter is to with w.mu held.
func (w *watch) enter(p Phase) {
	w.phase, w.last = p, time.Now()
	if p != idle && !w.armed && !w.done {
		w.armed = true
		w.timer.Reset(w.limit)
	}
}

// answered notes that the response (or the request's failure) came:
// from now on only reads of the response body wait for the server, and
// net/http's late reads of the request body change nothing.
func (w *watch) answered() {
	w.mu.Lock()
	w.phase, w.answer = idle, true
	w.mu.Unlock()
}

// sending enters p (idle while the request body's own reader works,
// Sending or Waiting once it has handed its bytes over) unless the
// answer has come.
func (w *watch) sending(p Phase) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.answer {
		w.enter(p)
	}
}

func (w *watch) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.phase == idle || w.done {
		w.armed = false
		return
	}
	if left := w.limit - time.Since(w.last); left > 0 {
		w.timer.Reset(left)
		return
	}
	w.armed = false
	w.cancel(&Error{Limit: w.limit, Phase: w.phase})
}

func (w *watch) close() {
	w.mu.Lock()
	w.done = true
	w.timer.Stop()
	w.mu.Unlock()
	w.cancel(nil)
}

// sendBody counts each read net/http makes of a request body as
// progress: it asks for more once the network has taken what it had.
// The time the body's own reader takes (a slow disk) does not count.
type sendBody struct {
	io.ReadCloser
	w *watch
}

func (b *sendBody) Read(p []byte) (int, error) {
	b.w.sending(idle)
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.w.sending(Waiting)
	} else {
		b.w.sending(Sending)
	}
	return n, err
}

// receiveBody runs the watch while a read waits for the server.
type receiveBody struct {
	body io.ReadCloser
	ctx  context.Context
	w    *watch
}

func (b *receiveBody) Read(p []byte) (int, error) {
	b.w.to(Receiving)
	n, err := b.body.Read(p)
	b.w.to(idle)
	if err != nil && err != io.EOF {
		err = stalled(b.ctx, err)
	}
	return n, err
}

func (b *receiveBody) Close() error {
	err := b.body.Close()
	b.w.close()
	return err
}

// stalled is the *Error that cancelled ctx, if one did, or else err: a
// request cancelled with its caller's context is reported as net/http
// reports it.
func stalled(ctx context.Context, err error) error {
	var se *Error
	if errors.As(context.Cause(ctx), &se) {
		return se
	}
	return err
}
