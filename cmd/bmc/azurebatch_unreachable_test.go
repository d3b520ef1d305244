package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/bmc-dev/bmc/backends/azurebatch"
)

// TestUnreachableExits3: a backend that could not be reached at all exits
// 3, one that answered no exits 1.
func TestUnreachableExits3(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tt := range []struct {
		name string
		err  error
		want int
	}{
		{"batch refused the connection", fmt.Errorf("look up pool p: %w", &azurebatch.Error{Err: refused}), exitInternal},
		{"batch refused the credentials", &azurebatch.Error{StatusCode: http.StatusForbidden, Code: "AuthenticationFailed"}, exitFailed},
		{"batch said the pool is not there", &azurebatch.Error{StatusCode: http.StatusNotFound, Code: "PoolNotFound"}, exitFailed},
		{"something else", errors.New("pool p: slotsPerNode 4, the run needs 8"), exitFailed},
	} {
		var ee *exitError
		if err := batchSetupErr(tt.err); !errors.As(err, &ee) || ee.code != tt.want {
			t.Errorf("%s: %v, want exit %d", tt.name, err, tt.want)
		}
	}
	if !unreachable(fmt.Errorf("PUT container: %w", refused)) {
		t.Errorf("a refused connection to storage is not unreachable")
	}
	if unreachable(&azcore.ResponseError{StatusCode: http.StatusForbidden, ErrorCode: "AuthorizationFailure"}) {
		t.Errorf("a storage answer of 403 is unreachable")
	}
}
