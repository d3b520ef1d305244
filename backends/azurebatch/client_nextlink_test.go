package azurebatch

import (
	"strings"
	"testing"
)

// TestNextLinkDefaultPorts: an endpoint and Batch's paging links may
// spell the scheme's default port or leave it out; both name the same
// account, and any other host or port is refused.
func TestNextLinkDefaultPorts(t *testing.T) {
	for _, tc := range []struct {
		endpoint, link string
		ok             bool
	}{
		{"https://acct.westeurope.batch.azure.com:443", "https://acct.westeurope.batch.azure.com/jobs/j/tasks?api-version=" + APIVersion + "&$skiptoken=x", true},
		{"https://acct.westeurope.batch.azure.com", "https://acct.westeurope.batch.azure.com:443/jobs/j/tasks?$skiptoken=x", true},
		{"https://ACCT.westeurope.batch.azure.com:443/", "https://acct.westeurope.batch.azure.com/jobs/j/tasks", true},
		{"http://127.0.0.1:80", "http://127.0.0.1/jobs/j/tasks", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/jobs/j/tasks", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1/jobs/j/tasks", false},
		{"https://acct.westeurope.batch.azure.com:443", "https://acct.westeurope.batch.azure.com:8443/jobs/j/tasks", false},
		{"https://acct.westeurope.batch.azure.com:443", "http://acct.westeurope.batch.azure.com/jobs/j/tasks", false},
		{"https://acct.westeurope.batch.azure.com", "https://other.westeurope.batch.azure.com/jobs/j/tasks", false},
	} {
		c, err := New(tc.endpoint, StaticTokenAuth("t"), Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.endpoint, err)
		}
		got, err := c.nextLink(tc.link)
		if (err == nil) != tc.ok {
			t.Errorf("endpoint %s, link %s: %q, %v; want ok=%v", tc.endpoint, tc.link, got, err, tc.ok)
			continue
		}
		if err == nil && !strings.Contains(got, "api-version="+APIVersion) {
			t.Errorf("endpoint %s, link %s: %q lacks the api-version", tc.endpoint, tc.link, got)
		}
	}
}
