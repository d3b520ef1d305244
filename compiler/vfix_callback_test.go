package compiler

import (
	"strings"
	"testing"
)

// TestVfixCallbackURLChecked compiles callback URLs that url.Parse takes
// but no request can be sent to (a port out of range), and malformed ones
// whose message must quote them as written, not re-encoded, with any
// password or query left out.
func TestVfixCallbackURLChecked(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want []string // in the message; nil: valid
		not  []string // never in the message
	}{
		{url: "http://127.0.0.1:99999/x", want: []string{`"http://127.0.0.1:99999/x"`, "port 99999", "1-65535"}},
		{url: "https://h:0/x", want: []string{`"https://h:0/x"`, "port 0", "1-65535"}},
		{url: "https://h:65536/x?sig=SECRET1", want: []string{`"https://h:65536/x"`, "port 65536"}, not: []string{"SECRET1", "sig"}},
		{url: "https://h:65535/x"},
		{url: "https://h:1/x"},
		{url: "http://localhost:8080/x"},
		{url: "not a url", want: []string{`"not a url"`}, not: []string{"%20"}},
		{url: "https://user@/x", want: []string{`"https:///x"`, "no host"}, not: []string{"user"}},
		{url: "https://user:PASSWORD1@/x", want: []string{"no host"}, not: []string{"PASSWORD1"}},
		{url: "ftp://h/x", want: []string{`"ftp://h/x"`, "https"}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			src := "apiVersion: bmc/v1\nkind: Workload\nname: cb\ntasks:\n  - {id: a, run: echo}\nfinalize:\n  callback:\n    url: '" + tc.url + "'\n"
			_, diags := Compile("spec.yaml", []byte(src), Options{})
			if tc.want == nil {
				if len(diags) > 0 {
					t.Fatalf("want valid, got %v", diags)
				}
				return
			}
			if len(diags) != 1 {
				t.Fatalf("want one error, got %v", diags)
			}
			d := diags[0]
			if d.Pos.String() != "spec.yaml:8:10" || d.Path != "finalize.callback.url" {
				t.Errorf("error at %s %s, want spec.yaml:8:10 finalize.callback.url", d.Pos, d.Path)
			}
			for _, w := range tc.want {
				if !strings.Contains(d.Msg, w) {
					t.Errorf("message %q lacks %q", d.Msg, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(d.Msg+d.Hint, n) {
					t.Errorf("message %q holds %q", d.Msg, n)
				}
			}
		})
	}
}
