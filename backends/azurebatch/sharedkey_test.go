package azurebatch

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A test account. The key is base64 of an ASCII phrase; it grants nothing.
const (
	testAccount = "bmctest"
	testKey     = "Ym1jLXRlc3QtYWNjb3VudC1rZXktbm90LWEtc2VjcmV0LTAxMjM0NTY3ODk="
	testDate    = "Tue, 15 Oct 2024 10:00:00 GMT"
)

func testCred(t testing.TB) *SharedKeyCredential {
	t.Helper()
	c, err := NewSharedKeyCredential(testAccount, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSignatureVector: the HMAC of a fixed string with the fixed key, as
// computed independently (Python's hmac and base64 modules).
func TestSignatureVector(t *testing.T) {
	const want = "/QwLRyN/nmCfLi7LX+KhcFeL8kScbeGagEx5LNqdGG8="
	if got := testCred(t).signature("hello, batch"); got != want {
		t.Errorf("signature = %s, want %s", got, want)
	}
}

// TestStringToSign builds requests by hand and the strings they must sign
// by hand, following the recipe: verb, eleven standard headers, sorted
// ocp- headers, /account/path, sorted decoded query parameters.
func TestStringToSign(t *testing.T) {
	const endpoint = "https://bmctest.westeurope.batch.azure.com"
	empty11 := strings.Repeat("\n", 11)
	cases := []struct {
		name   string
		req    func() *http.Request
		want   string
		wantSK string // the whole Authorization value, where computed independently
	}{
		{
			name: "GET with a filter",
			req: func() *http.Request {
				r, _ := http.NewRequest("GET", endpoint+"/jobs/job-1/tasks?api-version=2025-06-01&maxresults=10&%24filter=state+eq+%27completed%27&%24select=id%2Cstate", nil)
				r.Header.Set("ocp-date", testDate)
				r.Header.Set("client-request-id", "9b7d3c52-1c1c-4a4e-9a0b-8f0d1c7e2a11") // not signed
				r.Header.Set("Accept", "application/json")                                // not signed
				return r
			},
			want: "GET\n" + empty11 +
				"ocp-date:" + testDate + "\n" +
				"/bmctest/jobs/job-1/tasks" +
				"\n$filter:state eq 'completed'" +
				"\n$select:id,state" +
				"\napi-version:2025-06-01" +
				"\nmaxresults:10",
			wantSK: "SharedKey bmctest:TowImuYFaSjf8TNpLjmL7FnwuvZRYARaBlKZN9SUa3I=",
		},
		{
			name: "POST with a body",
			req: func() *http.Request {
				body := []byte(`{"value":[{"id":"ab","commandLine":"xy"}]}`) // 42 bytes
				r, _ := http.NewRequest("POST", endpoint+"/jobs/job-1/addtaskcollection?api-version=2025-06-01", bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json; odata=minimalmetadata")
				r.Header.Set("ocp-date", testDate)
				return r
			},
			want: "POST\n" +
				"\n" + // Content-Encoding
				"\n" + // Content-Language
				"42\n" + // Content-Length
				"\n" + // Content-MD5
				"application/json; odata=minimalmetadata\n" +
				"\n\n\n\n\n\n" + // Date, If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range
				"ocp-date:" + testDate + "\n" +
				"/bmctest/jobs/job-1/addtaskcollection" +
				"\napi-version:2025-06-01",
			wantSK: "SharedKey bmctest:YI4xPN0XkO+nCdWi413Ls8yXTeM7JFoInSA5v5VaK4M=",
		},
		{
			name: "DELETE without a body signs Content-Length 0",
			req: func() *http.Request {
				r, _ := http.NewRequest("DELETE", endpoint+"/jobs/job-1?api-version=2025-06-01", nil)
				r.Header.Set("ocp-date", testDate)
				r.Header.Set("If-Match", `"0x8D3D623CD661246"`)
				return r
			},
			want: "DELETE\n\n\n0\n\n\n\n\n" + `"0x8D3D623CD661246"` + "\n\n\n\n" +
				"ocp-date:" + testDate + "\n/bmctest/jobs/job-1\napi-version:2025-06-01",
		},
		{
			name: "ocp-range, escaped path, empty query value",
			req: func() *http.Request {
				r, _ := http.NewRequest("GET", endpoint+"/jobs/j/tasks/t/files/wd%2Fout.txt?api-version=2025-06-01&timeOut=", nil)
				r.Header.Set("ocp-range", "bytes=0-99")
				r.Header.Set("ocp-date", testDate)
				return r
			},
			want: "GET\n" + empty11 +
				"ocp-date:" + testDate + "\nocp-range:bytes=0-99\n" +
				"/bmctest/jobs/j/tasks/t/files/wd%2Fout.txt\napi-version:2025-06-01",
		},
	}
	cred := testCred(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.req()
			if got := StringToSign(r, testAccount); got != c.want {
				t.Errorf("StringToSign =\n%q\nwant\n%q", got, c.want)
			}
			cred.Sign(r, time.Now())
			if got := r.Header.Get("ocp-date"); got != testDate {
				t.Errorf("Sign replaced the ocp-date: %q", got)
			}
			if c.wantSK != "" && r.Header.Get("Authorization") != c.wantSK {
				t.Errorf("Authorization = %q, want %q", r.Header.Get("Authorization"), c.wantSK)
			}
		})
	}
}

func TestSignSetsOcpDate(t *testing.T) {
	r, _ := http.NewRequest("GET", "https://a.b.batch.azure.com/jobs?api-version=2025-06-01", nil)
	now := time.Date(2025, 6, 1, 8, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	testCred(t).Sign(r, now)
	if got := r.Header.Get("ocp-date"); got != "Sun, 01 Jun 2025 06:30:00 GMT" {
		t.Errorf("ocp-date = %q", got)
	}
	if r.Header.Get("Date") != "" {
		t.Errorf("Sign set a Date header")
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "SharedKey bmctest:") {
		t.Errorf("Authorization = %q", r.Header.Get("Authorization"))
	}
}

func TestVerify(t *testing.T) {
	cred := testCred(t)
	now := time.Date(2024, 10, 15, 10, 5, 0, 0, time.UTC)
	signed := func() *http.Request {
		r, _ := http.NewRequest("GET", "https://bmctest.westeurope.batch.azure.com/jobs/j?api-version=2025-06-01", nil)
		r.Header.Set("ocp-date", testDate)
		cred.Sign(r, now)
		return r
	}
	if err := cred.Verify(signed(), now); err != nil {
		t.Fatalf("Verify of a signed request: %v", err)
	}
	other, _ := NewSharedKeyCredential(testAccount, "b3RoZXIta2V5")
	cases := map[string]struct {
		mut  func(*http.Request)
		cred *SharedKeyCredential
		now  time.Time
		want string
	}{
		"path changed":  {mut: func(r *http.Request) { r.URL.Path = "/jobs/k" }, want: "signature mismatch"},
		"query changed": {mut: func(r *http.Request) { r.URL.RawQuery = "api-version=2024-07-01.20.0" }, want: "signature mismatch"},
		"ocp header added": {mut: func(r *http.Request) {
			r.Header.Set("ocp-range", "bytes=0-1")
		}, want: "signature mismatch"},
		"other key":    {cred: other, want: "signature mismatch"},
		"stale date":   {now: now.Add(20 * time.Minute), want: "15 minutes"},
		"no signature": {mut: func(r *http.Request) { r.Header.Del("Authorization") }, want: "no SharedKey"},
		"other account": {mut: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "bmctest:", "someone:", 1))
		}, want: "account"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := signed()
			if c.mut != nil {
				c.mut(r)
			}
			v, at := cred, now
			if c.cred != nil {
				v = c.cred
			}
			if !c.now.IsZero() {
				at = c.now
			}
			err := v.Verify(r, at)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Verify = %v, want an error containing %q", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), testKey) {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}
}

func TestCredentialNeverShowsKey(t *testing.T) {
	cred := testCred(t)
	for _, s := range []string{
		fmt.Sprint(cred), fmt.Sprintf("%v %+v %#v %s", cred, cred, cred, cred),
	} {
		if strings.Contains(s, testKey) || strings.Contains(s, "bmc-test-account-key") {
			t.Errorf("formatting the credential shows the key: %s", s)
		}
		if !strings.Contains(s, testAccount) {
			t.Errorf("formatting the credential does not name the account: %s", s)
		}
	}
	const badKey = "not*base64*secret"
	_, err := NewSharedKeyCredential(testAccount, badKey)
	if err == nil || strings.Contains(err.Error(), badKey) || strings.Contains(err.Error(), "secret") {
		t.Errorf("NewSharedKeyCredential(bad key) = %v; want an error that does not quote the key", err)
	}
	if _, err := NewSharedKeyCredential("", testKey); err == nil {
		t.Error("an empty account was accepted")
	}
}
