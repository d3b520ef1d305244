package executor

import (
	"context"
	"net/http"
	"testing"
)

// TestSendCallbackNoHiddenReplays: every request the receiver gets is an
// attempt bmc counts. A request with an Idempotency-Key that fails on a
// kept-alive connection would otherwise be sent again by Go's transport
// on its own, an attempt the retries do not bound and the result does not
// count.
func TestSendCallbackNoHiddenReplays(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		switch n {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable) // the connection stays open
		case 2:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close() // dropped with no response
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	in := &instant{}
	res, err := sendCallback(context.Background(), Callback{URL: rc.srv.URL, Retries: 3}, testRunID, []byte(`{}`), nil, in.opts())
	if err != nil {
		t.Fatalf("sendCallback: %v", err)
	}
	if got := len(rc.requests()); got != res.Attempts || !res.Delivered {
		t.Errorf("receiver got %d requests, bmc counted %d attempts (%+v)", got, res.Attempts, res)
	}
}
