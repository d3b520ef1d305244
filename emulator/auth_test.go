package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSharedKey(t *testing.T) {
	e := newEnv(t, Options{Account: "acct1", Key: base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))})
	e.pool("p", 1, 1)
	e.job("j", "p", nil)
	body := map[string]any{"priority": 3}

	wrong := *e.c
	wrong.key = []byte("not the key")
	r := wrong.send(req{method: "GET", target: "/jobs/j"})
	if r.status != 403 || errorCode(t, r) != "AuthenticationFailed" {
		t.Fatalf("wrong key: %s", r)
	}
	detail := errorValue(t, r, "AuthenticationErrorDetail")
	if !strings.Contains(detail, "Server used following string to sign: 'GET\n") || !strings.Contains(detail, "/acct1/jobs/j\napi-version:"+APIVersion) {
		t.Errorf("detail should quote the string to sign: %q", detail)
	}

	for _, tc := range []struct {
		name string
		q    req
	}{
		{"wrong account", req{method: "GET", target: "/jobs/j", tamper: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "acct1:", "other:", 1))
		}}},
		{"stale date", req{method: "GET", target: "/jobs/j", date: time.Now().Add(-16 * time.Minute)}},
		{"future date", req{method: "GET", target: "/jobs/j", date: time.Now().Add(16 * time.Minute)}},
		{"tampered path", req{method: "GET", target: "/jobs/j", tamper: func(r *http.Request) { r.URL.Path = "/jobs/J" }}},
		{"tampered query", req{method: "GET", target: "/jobs/j/tasks?maxresults=2", tamper: func(r *http.Request) {
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "maxresults=2", "maxresults=3", 1)
		}}},
		{"added query parameter", req{method: "GET", target: "/jobs/j/tasks", tamper: func(r *http.Request) { r.URL.RawQuery += "&$select=id" }}},
		{"tampered ocp-date", req{method: "GET", target: "/jobs/j", tamper: func(r *http.Request) {
			r.Header.Set("ocp-date", time.Now().Add(time.Second).UTC().Format(http.TimeFormat))
		}}},
		{"tampered content type", req{method: "PATCH", target: "/jobs/j", body: body, tamper: func(r *http.Request) {
			r.Header.Set("Content-Type", "application/json")
		}}},
		{"added signed header", req{method: "GET", target: "/jobs/j", tamper: func(r *http.Request) { r.Header.Set("If-Match", "*") }}},
		{"added ocp header", req{method: "GET", target: "/jobs/j", tamper: func(r *http.Request) { r.Header.Set("ocp-range", "bytes=0-1") }}},
		{"tampered method", req{method: "GET", target: "/jobs/j", tamper: func(r *http.Request) { r.Method = "DELETE" }}},
		{"not base64", req{method: "GET", target: "/jobs/j", tamper: func(r *http.Request) { r.Header.Set("Authorization", "SharedKey acct1:%%%") }}},
		// Only the canonical string signs: the path as sent, and "0" for
		// the Content-Length of a request without a body.
		{"decoded path signed", req{method: "GET", target: "/jobs/j/tasks/t/files/wd%2Fx.txt", tamper: func(r *http.Request) {
			sts := strings.Replace(canonical(r, "acct1"), "/files/wd%2Fx.txt", "/files/wd/x.txt", 1)
			r.Header.Set("Authorization", "SharedKey acct1:"+signString(e.c.key, sts))
		}}},
		{"empty Content-Length signed", req{method: "DELETE", target: "/jobs/j/tasks/none", tamper: func(r *http.Request) {
			lines := strings.SplitN(canonical(r, "acct1"), "\n", 5)
			lines[3] = ""
			r.Header.Set("Authorization", "SharedKey acct1:"+signString(e.c.key, strings.Join(lines, "\n")))
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.sub(t).c.send(tc.q)
			if r.status != 403 || errorCode(t, r) != "AuthenticationFailed" || errorValue(t, r, "AuthenticationErrorDetail") == "" {
				t.Errorf("got %s", r)
			}
		})
	}

	for _, tc := range []struct {
		name string
		q    req
	}{
		{"unsigned", req{method: "GET", target: "/jobs/j", unsigned: true}},
		{"other scheme", req{method: "GET", target: "/jobs/j", tamper: func(r *http.Request) { r.Header.Set("Authorization", "Basic eDp5") }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.sub(t).c.send(tc.q)
			if r.status != 401 || errorValue(t, r, "AuthenticationErrorDetail") == "" {
				t.Errorf("got %s", r)
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		e := e.sub(t)
		e.c.must(200, "PATCH", "/jobs/j", body)
		e.c.must(200, "GET", "/jobs/j/tasks?maxresults=2&$filter=state%20eq%20%27active%27&$select=id", nil)
		e.c.must(200, "GET", "/jobs/j", nil)
		// Date instead of ocp-date, 14 minutes old.
		r := e.c.send(req{method: "GET", target: "/jobs/j", tamper: func(r *http.Request) {
			r.Header.Del("ocp-date")
			r.Header.Set("Date", time.Now().Add(-14*time.Minute).UTC().Format(http.TimeFormat))
			r.Header.Set("Authorization", "SharedKey acct1:"+signature(r, "acct1", e.c.key))
		}})
		if r.status != 200 {
			t.Errorf("signed with Date: %s", r)
		}
	})
}

func TestAuthenticationToken(t *testing.T) {
	e := newEnv(t, Options{})
	e.pool("p", 1, 1)
	e.job("mine", "p", nil)
	e.job("other", "p", nil)
	token := e.srv.issueToken("MINE", time.Now())
	bearer := func(method, target string, body any) result {
		return e.c.send(req{method: method, target: target, body: body, tamper: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+token)
		}})
	}
	if r := bearer("GET", "/jobs/mine", nil); r.status != 200 {
		t.Errorf("own job: %s", r)
	}
	if r := bearer("POST", "/jobs/mine/tasks", taskBody("t", "true", nil)); r.status != 201 {
		t.Errorf("add a task to its own job: %s", r)
	}
	if r := bearer("GET", "/jobs/other", nil); r.status != 403 || errorCode(t, r) != "InsufficientAccountPermissions" {
		t.Errorf("another job: %s", r)
	}
	if r := bearer("GET", "/pools/p", nil); r.status != 403 {
		t.Errorf("a pool: %s", r)
	}
	token = token[:len(token)-2] + "xx"
	if r := bearer("GET", "/jobs/mine", nil); r.status != 401 || errorCode(t, r) != "AuthenticationFailed" {
		t.Errorf("forged token: %s", r)
	}
}

func signString(key []byte, sts string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(sts))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
