package blobstage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/bmc-dev/bmc/internal/redact"
)

// What a Check found wrong; its error wraps one of them.
var (
	// ErrNoCredentials: no credential could give a token (Entra ID with
	// nothing to sign in with).
	ErrNoCredentials = errors.New("no credentials found")
	// ErrSignIn: the identity service, or the account, refused the
	// credentials (a wrong key, an expired SAS, a bad client secret).
	ErrSignIn = errors.New("sign-in refused")
	// ErrPermission: the account took the credentials, but does not let
	// them at its blobs (no data role, its network rules).
	ErrPermission = errors.New("permission denied")
	// ErrUnreachable: no answer, or only server errors, within the
	// check's time. Trying again later may go through.
	ErrUnreachable = errors.New("not reachable")
)

// checkTimeout bounds a Check, sign-in included.
const checkTimeout = 20 * time.Second

// checkRetry are the SDK's retries for a Check: a run's transfers retry
// for longer, but a run about to start is better told at once.
var checkRetry = policy.RetryOptions{MaxRetries: 2, TryTimeout: 6 * time.Second, RetryDelay: 250 * time.Millisecond, MaxRetryDelay: time.Second}

// checkBlob is the blob whose properties a Check asks for; it need not
// exist.
const checkBlob = ".bmc-check"

// Check makes sure the store can sign in to its account and reach it,
// before a run relies on it: one request, for the properties of a blob
// in container (which need not exist, nor the container), getting a
// token on the way for Entra ID, within 20 seconds. Any role or SAS
// that lets a run read its blobs may read a blob's properties, while a
// container's SAS may not read the container's own. A SAS the account
// accepts but that may not read passes: it may grant all the run needs
// (writing its outputs), which only the run's transfers can tell.
//
// The error says, on one line, which account and what failed (no key,
// token or SAS in it), and wraps ErrNoCredentials, ErrSignIn,
// ErrPermission or ErrUnreachable; or it is ctx's own error once ctx is
// done.
func (a *Azure) Check(ctx context.Context, container string) error {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	_, err := a.svc.NewContainerClient(container).NewBlobClient(checkBlob).GetProperties(policy.WithRetryOptions(ctx, checkRetry), nil)
	if err == nil || bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return nil
	}
	if parent.Err() != nil {
		return parent.Err()
	}
	kind, what := a.checkFailure(err, container)
	if kind == nil {
		return nil
	}
	return &azError{msg: redact.String("storage account " + a.base + ": " + what), kind: []error{kind}}
}

// checkFailure is what a Check's error says: its kind, and a line saying
// what failed, why, and what to check. A nil kind is no failure.
func (a *Azure) checkFailure(err error, container string) (kind error, what string) {
	var (
		se *signInError
		af *azidentity.AuthenticationFailedError
		re *azcore.ResponseError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		if errors.As(err, &se) {
			return ErrUnreachable, fmt.Sprintf("not reachable: signing in took longer than %v", checkTimeout)
		}
		return ErrUnreachable, fmt.Sprintf("not reachable: no answer within %v", checkTimeout)
	case errors.As(err, &se) && errors.As(err, &af):
		return ErrSignIn, "sign-in refused: " + oneLine(se.err.Error()) + " (check the identity bmc signs in with: az login, a managed identity or the AZURE_CLIENT_* variables)"
	case errors.As(err, &se):
		return ErrNoCredentials, "no credentials found: " + oneLine(se.err.Error()) +
			" (sign in with az login, a managed identity or the AZURE_CLIENT_* variables; or give a key or SAS: AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN)"
	case !errors.As(err, &re):
		return ErrUnreachable, "not reachable: " + transportCause(err)
	}
	status := fmt.Sprintf("status %d", re.StatusCode)
	if re.ErrorCode != "" {
		status += " " + re.ErrorCode
	}
	if msg := serviceMessage(re); msg != "" {
		status += ": " + msg
	}
	check := map[string]string{
		authKey:   "check the account key",
		authSAS:   "check the SAS: its account, container, permissions and expiry",
		authEntra: "check the identity bmc signs in with",
		authNone:  "the account needs a key, a SAS or Entra ID",
	}[a.Auth()]
	switch code := bloberror.Code(re.ErrorCode); {
	case re.StatusCode >= 500:
		return ErrUnreachable, "not available: " + status
	case re.StatusCode == 401,
		code == bloberror.AuthenticationFailed, code == bloberror.InvalidAuthenticationInfo,
		code == bloberror.NoAuthenticationInformation, code == "KeyBasedAuthenticationNotPermitted":
		return ErrSignIn, "sign-in refused: " + status + " (" + check + ")"
	case code == bloberror.AuthorizationPermissionMismatch, code == bloberror.AuthorizationResourceTypeMismatch:
		if a.auth == authSAS {
			return nil, ""
		}
		return ErrPermission, "permission denied in container " + container + ": " + status +
			" (the identity needs a data role on the account or container, such as Storage Blob Data Contributor)"
	case code == bloberror.AuthorizationFailure && a.auth != authEntra:
		// Azurite's answer to a signature that does not match; Azure's
		// to a request its network rules keep out.
		return ErrSignIn, "sign-in refused: " + status + " (" + check + ", and the account's network rules)"
	case re.StatusCode == 403:
		return ErrPermission, "permission denied in container " + container + ": " + status + " (" + check + ", its role on the account, and the account's network rules)"
	}
	return ErrPermission, "refused the request: " + status + " (is this a blob account's URL?)"
}

// transportCause is a transport error without the request's URL, which
// names the blob asked for (and a SAS): the account's URL is said
// already.
func transportCause(err error) string {
	if ue := new(url.Error); errors.As(err, &ue) {
		err = ue.Err
	}
	return oneLine(err.Error())
}

// maxLine bounds what oneLine keeps: the cause comes first.
const maxLine = 1000

// noise are the members of an identity service's JSON answer that say
// nothing about the cause.
var noise = []string{`"error_codes":`, `"timestamp":`, `"trace_id":`, `"correlation_id":`, `"error_uri":`, `"claims":`}

// oneLine folds a message of many lines onto one: azidentity's, which
// lists each credential tried, indented, with the identity service's
// answer between ruled lines and its JSON spread over lines. Rules,
// braces, links to troubleshooting pages, the JSON's ids and times, and
// blank lines go; the rest is joined with "; ".
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\n\r\t") && !strings.Contains(s, `\n`) {
		return s
	}
	s = strings.NewReplacer(`\r\n`, "\n", `\n`, "\n", `\t`, " ").Replace(s)
	var parts []string
	skipping := false // a noise member's array or object, spread over lines
	for line := range strings.Lines(s) {
		line = strings.TrimSuffix(strings.TrimSpace(line), ",")
		switch {
		case skipping:
			skipping = !strings.HasPrefix(line, "]") && !strings.HasPrefix(line, "}")
			continue
		case hasAnyPrefix(line, noise):
			skipping = strings.HasSuffix(line, "[") || strings.HasSuffix(line, "{")
			continue
		case line == "", strings.Trim(line, "-{}[]") == "",
			line == "Attempted credentials:", strings.HasPrefix(line, "To troubleshoot, visit "):
			continue
		}
		parts = append(parts, strings.TrimSuffix(line, "."))
	}
	out := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.Join(parts, "; "))
	if len(out) > maxLine {
		cut := maxLine
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut] + "…"
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
