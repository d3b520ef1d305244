package azurebatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/bmc-dev/bmc/internal/redact"
)

// Batch error codes the client acts on.
const (
	// CodeTaskExists: a task with that id (compared case-insensitively) is
	// already in the job.
	CodeTaskExists = "TaskExists"
	// CodeJobExists and CodePoolExists: likewise for jobs and pools.
	CodeJobExists  = "JobExists"
	CodePoolExists = "PoolExists"
	// CodeRequestBodyTooLarge: an add-collection body of 1 MB or more.
	CodeRequestBodyTooLarge = "RequestBodyTooLarge"
)

// Error is a failed Batch call: an error answer from the service, a
// transport failure (StatusCode 0, Err set), or the failure of one task in
// an add-collection answer (StatusCode 0, Err nil, Code set). Its strings
// have been through the client's redactor, and Error() redacts again, so
// no account key, token or SAS signature is ever printed.
type Error struct {
	// StatusCode is the HTTP status of the answer; 0 when there was none,
	// or when the error is about one task of a successful add-collection.
	StatusCode int
	// Code and Message are Batch's error code and message; Values its
	// key-value details (AuthenticationErrorDetail, for one, quotes the
	// string the server signed).
	Code, Message string
	Values        map[string]string
	// RequestID is the service's request-id; ClientRequestID the
	// client-request-id the client sent, the same for every attempt of one
	// call.
	RequestID, ClientRequestID string
	// Op names the operation, e.g. `create job "j1"`.
	Op string
	// Err is the underlying transport or context error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("azurebatch: ")
	b.WriteString(e.Op)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	if e.Code != "" || e.Message != "" || e.Err != nil {
		b.WriteString(": ")
	}
	switch {
	case e.Code != "" && e.Message != "":
		b.WriteString(e.Code + ": " + firstLine(e.Message))
	case e.Code != "":
		b.WriteString(e.Code)
	case e.Message != "":
		b.WriteString(firstLine(e.Message))
	}
	if e.Err != nil {
		if e.Code != "" || e.Message != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	var ids []string
	if e.ClientRequestID != "" {
		ids = append(ids, "client-request-id "+e.ClientRequestID)
	}
	if e.RequestID != "" {
		ids = append(ids, "request-id "+e.RequestID)
	}
	if len(ids) > 0 {
		b.WriteString(" (" + strings.Join(ids, ", ") + ")")
	}
	return redact.String(b.String())
}

// Unwrap returns the transport or context error, if any.
func (e *Error) Unwrap() error { return e.Err }

// firstLine drops the RequestId and Time lines Batch appends to messages;
// the ids are printed separately.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}

// asError finds the *Error in err's chain.
func asError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	e, ok := asError(err)
	return ok && e.StatusCode == http.StatusNotFound
}

// IsConflict reports whether err is a 409 answer with the given Batch
// code, or with any code when code is empty.
func IsConflict(err error, code string) bool {
	e, ok := asError(err)
	return ok && e.StatusCode == http.StatusConflict && (code == "" || strings.EqualFold(e.Code, code))
}

// HasCode reports whether err carries the Batch error code (compared
// case-insensitively), whatever its status.
func HasCode(err error, code string) bool {
	e, ok := asError(err)
	return ok && strings.EqualFold(e.Code, code)
}

// IsThrottled reports whether err is a 429 or 503 answer: the client
// retried it as long as its budget allowed, honouring Retry-After.
func IsThrottled(err error) bool {
	e, ok := asError(err)
	return ok && (e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable)
}

// errorBodyLimit bounds how much of an error answer is read.
const errorBodyLimit = 64 << 10

// decodeError builds the Error for a non-2xx answer from its JSON
// BatchError body, if it has one. It reads (a bounded part of) the body
// but does not close it.
func decodeError(op string, resp *http.Response, clientRequestID string, redact func(string) string) *Error {
	e := &Error{
		StatusCode:      resp.StatusCode,
		Op:              op,
		RequestID:       resp.Header.Get("request-id"),
		ClientRequestID: clientRequestID,
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	var be BatchError
	if len(body) > 0 && json.Unmarshal(body, &be) == nil {
		fillFromBatchError(e, &be, redact)
	}
	if e.Code == "" && e.Message == "" && len(body) > 0 && !strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
		// Not a BatchError: a proxy's page, say. Its first line is all a
		// person needs.
		e.Message = redact(firstLine(string(body)))
	}
	return e
}

// taskError is the Error for one task of an add-collection answer.
func taskError(op string, be *BatchError, clientRequestID string, redact func(string) string) *Error {
	e := &Error{Op: op, ClientRequestID: clientRequestID}
	if be != nil {
		fillFromBatchError(e, be, redact)
	}
	return e
}

func fillFromBatchError(e *Error, be *BatchError, redact func(string) string) {
	e.Code = redact(be.Code)
	if be.Message != nil {
		e.Message = redact(be.Message.Value)
	}
	if len(be.Values) > 0 {
		e.Values = make(map[string]string, len(be.Values))
		for _, v := range be.Values {
			e.Values[redact(v.Key)] = redact(v.Value)
		}
	}
}
