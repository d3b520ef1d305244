package blobstage

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/bmc-dev/bmc/internal/azurite"
)

var spCheckKinds = []error{ErrNoCredentials, ErrSignIn, ErrPermission, ErrUnreachable}

// spKind is which of the Check errors err is, or nil.
func spKind(err error) error {
	for _, k := range spCheckKinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

func spOneLine(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if msg := err.Error(); strings.ContainsAny(msg, "\n\t\r") || strings.Contains(msg, `\n`) || strings.Contains(msg, `\t`) {
		t.Errorf("error is not one line: %q", msg)
	}
}

func TestSpCheckAzurite(t *testing.T) {
	cs := azurite.Start(t)
	ctx := t.Context()
	good := openAzurite(t, cs, Options{})
	endpoint := good.URL()
	existing := newContainer(t)
	if _, err := good.svc.NewContainerClient(existing).Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 64)
	rand.Read(key)
	wrongKey := base64.StdEncoding.EncodeToString(key)
	cred, err := service.NewSharedKeyCredential(azurite.Account, azurite.Key)
	if err != nil {
		t.Fatal(err)
	}
	// A SAS for one container only, allowed to write blobs but not to
	// read anything: what an output-only run may be given.
	containerSAS := func(container string) *Azure {
		q, err := sas.BlobSignatureValues{
			Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour),
			ContainerName: container, Permissions: (&sas.ContainerPermissions{Create: true, Write: true}).String(),
		}.SignWithSharedKey(cred)
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewFromURL(endpoint+"?"+q.Encode(), nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	for _, tc := range []struct {
		name      string
		store     *Azure
		container string
		want      error
	}{
		{"existing container", good, existing, nil},
		{"container not made yet", good, newContainer(t), nil},
		{"wrong key", openAzurite(t, strings.Replace(cs, azurite.Key, wrongKey, 1), Options{}), existing, ErrSignIn},
		{"write-only container sas", containerSAS(existing), existing, nil},
		{"another container's sas", containerSAS(existing), newContainer(t), ErrSignIn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.store.Check(ctx, tc.container)
			t.Logf("%v", err)
			if got := spKind(err); got != tc.want || (err == nil) != (tc.want == nil) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
			if err == nil {
				return
			}
			spOneLine(t, err)
			msg := err.Error()
			if !strings.HasPrefix(msg, "storage account "+endpoint+": ") {
				t.Errorf("error does not start with the account: %s", msg)
			}
			if strings.Contains(msg, wrongKey) || strings.Contains(msg, azurite.Key) || strings.Contains(msg, "sig=") || strings.Contains(msg, "AccountKey") {
				t.Errorf("error shows a secret: %s", msg)
			}
		})
	}
}

// spDropper counts the connections a loopback listener takes, closing
// each at once: a transport error on every try.
func spDropper(t *testing.T) (addr string, conns *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	})
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String(), conns
}

func TestSpCheckUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	dropper, conns := spDropper(t)
	for _, addr := range []string{closed, dropper} {
		endpoint := "http://" + addr + "/" + azurite.Account
		a := openAzurite(t, azurite.ConnString(endpoint), Options{})
		err := a.Check(t.Context(), "c01")
		t.Logf("%v", err)
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("Check = %v, want ErrUnreachable", err)
		}
		spOneLine(t, err)
		msg := err.Error()
		if !strings.HasPrefix(msg, "storage account "+endpoint+": not reachable") {
			t.Errorf("error does not say the account is not reachable: %s", msg)
		}
		if strings.Contains(msg, "restype") || strings.Contains(msg, "/c01") {
			t.Errorf("error quotes the request URL: %s", msg)
		}
	}
	// The SDK's own retries are cut down for the check: 4 tries by default.
	if n := conns.Load(); n == 0 || n > 3 {
		t.Errorf("the check made %d tries, want 1 to 3", n)
	}
}

// spCred is a token credential that answers with err, or a token.
type spCred struct{ err error }

func (c spCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if c.err != nil {
		return azcore.AccessToken{}, c.err
	}
	return azcore.AccessToken{Token: "TOKEN-SECRET", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// spAnswer is a transport that answers every request with status and
// the error code in x-ms-error-code, counting requests.
type spAnswer struct {
	status int
	code   string
	n      atomic.Int64
}

func (s *spAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	s.n.Add(1)
	h := http.Header{}
	if s.code != "" {
		h.Set("x-ms-error-code", s.code)
	}
	return &http.Response{StatusCode: s.status, Status: http.StatusText(s.status), Header: h, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

func TestSpCheckEntraID(t *testing.T) {
	const endpoint = "https://spacct.blob.core.windows.net"
	unavailable := azidentity.NewCredentialUnavailableError("EnvironmentCredential: missing environment variable AZURE_TENANT_ID")
	for _, tc := range []struct {
		name     string
		cred     error
		status   int
		code     string
		want     error
		requests int64
		says     string
	}{
		{"no credentials", unavailable, 0, "", ErrNoCredentials, 0, "no credentials found"},
		{"chain of none", chainOf(unavailable, unavailable), 0, "", ErrNoCredentials, 0, "missing environment variable AZURE_TENANT_ID"},
		{"sign-in refused", chainOf(unavailable, spRefused()), 0, "", ErrSignIn, 0, "sign-in refused: ChainedTokenCredential: failed to acquire a token; EnvironmentCredential: missing environment variable AZURE_TENANT_ID; authentication failed; POST https://login.microsoftonline.com/tenant/oauth2/v2.0/token; RESPONSE 400: 400 Bad Request; \"error\": \"invalid_client\"; \"error_description\": \"AADSTS7000215: Invalid client secret provided.\" (check"},
		{"token refused by the account", nil, 403, "AuthenticationFailed", ErrSignIn, 1, "status 403 AuthenticationFailed"},
		{"no data role", nil, 403, "AuthorizationPermissionMismatch", ErrPermission, 1, "Storage Blob Data"},
		{"firewall", nil, 403, "AuthorizationFailure", ErrPermission, 1, "network rules"},
		{"blob not found", nil, 404, "BlobNotFound", nil, 1, ""},
		{"container not found", nil, 404, "ContainerNotFound", nil, 1, ""},
		{"exists", nil, 200, "", nil, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &spAnswer{status: tc.status, code: tc.code}
			a, err := NewFromURL(endpoint, spCred{tc.cred}, Options{HTTPClient: &http.Client{Transport: tr}})
			if err != nil {
				t.Fatal(err)
			}
			err = a.Check(t.Context(), "results")
			t.Logf("%v", err)
			if got := spKind(err); got != tc.want || (err == nil) != (tc.want == nil) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
			if n := tr.n.Load(); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			if err == nil {
				return
			}
			spOneLine(t, err)
			if msg := err.Error(); !strings.HasPrefix(msg, "storage account "+endpoint+": ") || !strings.Contains(msg, tc.says) || strings.Contains(msg, "TOKEN-SECRET") {
				t.Errorf("error %q: want the account, %q and no token", msg, tc.says)
			}
		})
	}
}

// spRefused is the error of a credential whose client secret Entra ID
// refused.
func spRefused() error {
	resp := &http.Response{StatusCode: 400, Status: "400 Bad Request", Body: io.NopCloser(strings.NewReader(`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215],"trace_id":"0000"}`)),
		Request: &http.Request{Method: "POST", URL: &url.URL{Scheme: "https", Host: "login.microsoftonline.com", Path: "/tenant/oauth2/v2.0/token"}}}
	return &azidentity.AuthenticationFailedError{RawResponse: resp}
}

// chainOf is errs as ChainedTokenCredential reports them: many lines.
func chainOf(errs ...error) error {
	var creds []azcore.TokenCredential
	for _, e := range errs {
		creds = append(creds, spCred{e})
	}
	c, err := azidentity.NewChainedTokenCredential(creds, nil)
	if err != nil {
		panic(err)
	}
	_, err = c.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"x"}})
	return err
}

// An upload that cannot sign in fails with the credential's cause on one
// line, not azidentity's report of every credential it tried, line by
// line and indented.
func TestSpUploadSignInReasonOneLine(t *testing.T) {
	unavailable := azidentity.NewCredentialUnavailableError("EnvironmentCredential: missing environment variable AZURE_TENANT_ID")
	cause := chainOf(unavailable, spRefused())
	if !strings.Contains(cause.Error(), "\n\t") {
		t.Fatalf("azidentity's error is one line already, so this test proves nothing: %q", cause)
	}
	tr := &spAnswer{status: 500}
	a, err := NewFromURL("https://spacct.blob.core.windows.net", spCred{cause}, Options{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": "a"})
	_, err = a.Upload(t.Context(), src, "a.txt", Location{"results", "a.txt"})
	_, downErr := a.Download(t.Context(), Location{"results", "a.txt"}, filepath.Join(t.TempDir(), "a"))
	for _, err := range []error{err, downErr} {
		t.Logf("%v", err)
		if err == nil {
			t.Fatal("a transfer with no token succeeded")
		}
		spOneLine(t, err)
		msg := err.Error()
		for _, want := range []string{"missing environment variable AZURE_TENANT_ID", "AADSTS7000215: Invalid client secret provided", "az://results/a.txt"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error lacks %q: %s", want, msg)
			}
		}
		if strings.Contains(msg, "-----") {
			t.Errorf("error keeps azidentity's rules: %s", msg)
		}
	}
	if n := tr.n.Load(); n != 0 {
		t.Errorf("%d requests went to the account with no token", n)
	}
}
