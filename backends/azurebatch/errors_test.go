package azurebatch

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func errorResponse(status int, body string, header map[string]string) *http.Response {
	h := http.Header{}
	for k, v := range header {
		h.Set(k, v)
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

func TestDecodeError(t *testing.T) {
	body := `{"odata.metadata":"https://a.b.batch.azure.com/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element",` +
		`"code":"JobNotFound","message":{"lang":"en-US","value":"The specified job does not exist.\nRequestId:5c2b0a4e\nTime:2025-11-21T22:43:31.4733476Z"},` +
		`"values":[{"key":"Reason","value":"none"}]}`
	resp := errorResponse(404, body, map[string]string{"request-id": "5c2b0a4e"})
	e := decodeError(`get job "j"`, resp, "0b4e4a6c-1111-4c3a-9f0e-3c0a3b2e8d55", func(s string) string { return s })
	want := &Error{
		StatusCode: 404, Code: "JobNotFound",
		Message:         "The specified job does not exist.\nRequestId:5c2b0a4e\nTime:2025-11-21T22:43:31.4733476Z",
		Values:          map[string]string{"Reason": "none"},
		RequestID:       "5c2b0a4e",
		ClientRequestID: "0b4e4a6c-1111-4c3a-9f0e-3c0a3b2e8d55",
		Op:              `get job "j"`,
	}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("decodeError (-want +got):\n%s", diff)
	}
	const text = `azurebatch: get job "j": 404 Not Found: JobNotFound: The specified job does not exist. (client-request-id 0b4e4a6c-1111-4c3a-9f0e-3c0a3b2e8d55, request-id 5c2b0a4e)`
	if e.Error() != text {
		t.Errorf("Error() =\n%s\nwant\n%s", e.Error(), text)
	}

	// A body that is not a BatchError: its first line, redacted.
	e = decodeError("op", errorResponse(502, "<html>Bad gateway sig=abc123\nmore</html>", nil), "", redactOnly)
	if e.Code != "" || e.Message != "<html>Bad gateway sig=REDACTED" {
		t.Errorf("non-JSON body: %+v", e)
	}
	// No body at all (HEAD): status only.
	e = decodeError(`check pool "p"`, errorResponse(404, "", nil), "id", redactOnly)
	if got := e.Error(); got != `azurebatch: check pool "p": 404 Not Found (client-request-id id)` {
		t.Errorf("Error() = %s", got)
	}
}

func redactOnly(s string) string { return (&Client{auth: testCredNoT()}).redact(s) }

func testCredNoT() *SharedKeyCredential {
	c, err := NewSharedKeyCredential(testAccount, testKey)
	if err != nil {
		panic(err)
	}
	return c
}

func TestErrorPredicates(t *testing.T) {
	notFound := &Error{StatusCode: 404, Code: "JobNotFound"}
	exists := &Error{StatusCode: 409, Code: "TaskExists"}
	throttled := &Error{StatusCode: 429}
	busy := &Error{StatusCode: 503, Code: "ServerBusy"}
	wrapped := fmt.Errorf("ensure job: %w", exists)
	cases := []struct {
		name string
		got  bool
		want bool
	}{
		{"IsNotFound(404)", IsNotFound(notFound), true},
		{"IsNotFound(409)", IsNotFound(exists), false},
		{"IsNotFound(plain error)", IsNotFound(errors.New("x")), false},
		{"IsNotFound(nil)", IsNotFound(nil), false},
		{"IsConflict(wrapped, TaskExists)", IsConflict(wrapped, CodeTaskExists), true},
		{"IsConflict(wrapped, taskexists)", IsConflict(wrapped, "taskexists"), true},
		{"IsConflict(wrapped, any)", IsConflict(wrapped, ""), true},
		{"IsConflict(wrapped, JobExists)", IsConflict(wrapped, CodeJobExists), false},
		{"IsConflict(404)", IsConflict(notFound, ""), false},
		{"HasCode", HasCode(wrapped, CodeTaskExists), true},
		{"HasCode other", HasCode(notFound, CodeTaskExists), false},
		{"IsThrottled(429)", IsThrottled(throttled), true},
		{"IsThrottled(503)", IsThrottled(busy), true},
		{"IsThrottled(500)", IsThrottled(&Error{StatusCode: 500}), false},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestErrorRedactsSecrets(t *testing.T) {
	secrets := []string{
		testKey,
		"sv=2024-05-04&sr=c&sig=Zm9vYmFyYmF6c2VjcmV0JTJCJTJG&se=2030",
		"AccountKey=c3VwZXJzZWNyZXRrZXk=",
		"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-token.sig",
	}
	msg := "bad request: key " + testKey +
		" url https://acct.blob.core.windows.net/c?sv=2024-05-04&sr=c&sig=Zm9vYmFyYmF6c2VjcmV0JTJCJTJG&se=2030" +
		" conn DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c3VwZXJzZWNyZXRrZXk=;" +
		" header Authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-token.sig" +
		" and SharedKey bmctest:TowImuYFaSjf8TNpLjmL7FnwuvZRYARaBlKZN9SUa3I="
	body := fmt.Sprintf(`{"code":"InvalidHeaderValue","message":{"value":%q},"values":[{"key":"HeaderValue","value":%q}]}`, msg, msg)
	e := decodeError("op", errorResponse(400, body, nil), "id", redactOnly)
	text := e.Error() + fmt.Sprint(e.Values) + e.Message
	for _, s := range append(secrets, "Zm9vYmFyYmF6c2VjcmV0", "c3VwZXJzZWNyZXRrZXk", "secret-token", "TowImuYFaSjf8TNpLjmL7FnwuvZRYARaBlKZN9SUa3I") {
		if strings.Contains(text, s) {
			t.Errorf("the error shows %q:\n%s", s, text)
		}
	}
	if !strings.Contains(e.Error(), "InvalidHeaderValue") {
		t.Errorf("the error lost its code: %s", e.Error())
	}
	// An Error built by hand is redacted when printed, too.
	hand := &Error{Op: "op", Message: "see https://x.blob.core.windows.net/c/b?sig=abcdef"}
	if strings.Contains(hand.Error(), "abcdef") {
		t.Errorf("Error() shows a SAS signature: %s", hand.Error())
	}
}

func TestAddTasksErrorText(t *testing.T) {
	e := &AddTasksError{JobID: "j", Total: 10}
	for i := range 5 {
		e.Failures = append(e.Failures, TaskFailure{TaskID: fmt.Sprint("t", i), Err: &Error{Op: fmt.Sprintf(`add task "t%d" to job "j"`, i), Code: "InvalidPropertyValue", Message: "bad"}})
	}
	want := `azurebatch: add tasks to job "j": 5 of 10 tasks not added: add task "t0" to job "j": InvalidPropertyValue: bad; add task "t1" to job "j": InvalidPropertyValue: bad; add task "t2" to job "j": InvalidPropertyValue: bad; and 2 more`
	if e.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", e.Error(), want)
	}
}
