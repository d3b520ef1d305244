package emulator

import (
	"fmt"
	"net/http"
)

// apiError is an error the API answers with: an HTTP status and a Batch
// error body.
type apiError struct {
	status int
	code   string
	msg    string
	values []ErrorDetail
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.msg) }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// with adds a detail to the error's values.
func (e *apiError) with(key, value string) *apiError {
	e.values = append(e.values, ErrorDetail{Key: key, Value: value})
	return e
}

// body is the wire form. Batch appends the request id and time to every
// message; so does the emulator.
func (e *apiError) body(requestID string, now Time) *BatchError {
	return &BatchError{
		Code: e.code,
		Message: &ErrorMessage{Lang: "en-US",
			Value: e.msg + "\nRequestId:" + requestID + "\nTime:" + now.UTC().Format(timeLayout)},
		Values: e.values,
	}
}

func errMissingProperty(path string) *apiError {
	return newError(http.StatusBadRequest, "MissingRequiredProperty",
		"A required property was not specified in the request body.").with("PropertyName", path)
}

func errUnsupportedProperty(path string) *apiError {
	return newError(http.StatusBadRequest, "UnsupportedProperty",
		"One of the properties specified in the request body is not supported.").with("PropertyName", path)
}

func errInvalidProperty(path, value, reason string) *apiError {
	e := newError(http.StatusBadRequest, "InvalidPropertyValue",
		"The value provided for one of the properties in the request body is invalid.").with("PropertyName", path)
	if value != "" {
		e.with("PropertyValue", value)
	}
	if reason != "" {
		e.with("Reason", reason)
	}
	return e
}

func errInvalidBody(reason string) *apiError {
	return newError(http.StatusBadRequest, "InvalidRequestBody",
		"The specified request body is not syntactically valid.").with("Reason", reason)
}

func errInvalidQuery(name, value, reason string) *apiError {
	return newError(http.StatusBadRequest, "InvalidQueryParameterValue",
		"Value for one of the query parameters specified in the request URI is invalid.").
		with("QueryParameterName", name).with("QueryParameterValue", value).with("Reason", reason)
}

func errInvalidHeader(name, value, reason string) *apiError {
	return newError(http.StatusBadRequest, "InvalidHeaderValue",
		"The value for one of the HTTP headers is not in the correct format.").
		with("HeaderName", name).with("HeaderValue", value).with("Reason", reason)
}

func errTooLarge(reason string) *apiError {
	return newError(http.StatusRequestEntityTooLarge, "RequestBodyTooLarge",
		"The request body is too large and exceeds the maximum permissible limit.").with("Reason", reason)
}

func errPoolNotFound() *apiError {
	return newError(http.StatusNotFound, "PoolNotFound", "The specified pool does not exist.")
}

func errJobNotFound() *apiError {
	return newError(http.StatusNotFound, "JobNotFound", "The specified job does not exist.")
}

func errTaskNotFound() *apiError {
	return newError(http.StatusNotFound, "TaskNotFound", "The specified task does not exist.")
}

func errTaskExists() *apiError {
	return newError(http.StatusConflict, "TaskExists", "The specified task already exists.")
}

func errConflict(code, format string, args ...any) *apiError {
	return newError(http.StatusConflict, code, format, args...)
}

// errJobState is the 409 for an operation the job's state forbids.
func errJobState(j *job) *apiError {
	switch j.wire.State {
	case JobDeleting:
		return errConflict("JobBeingDeleted", "The specified job has been marked for deletion and is being garbage collected.")
	case JobTerminating:
		return errConflict("JobBeingTerminated", "The specified job is being terminated.")
	case JobCompleted:
		return errConflict("JobCompleted", "The specified job is already in a completed state.")
	case JobDisabled, JobDisabling:
		return errConflict("JobDisabled", "The specified job is disabled.")
	}
	return errConflict("JobNotActive", "The specified job is not active.")
}
