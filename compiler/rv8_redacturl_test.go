package compiler

import (
	"strings"
	"testing"
)

// TestRv8RedactURLUserinfo quotes callback URLs and inputs with a token in
// the user info, as a username alone or as user:password: the message
// shows the URL without any user info, as the callback sender's does.
func TestRv8RedactURLUserinfo(t *testing.T) {
	for _, tc := range []struct {
		field, url, want string
	}{
		{"callback", "https://sk_live_SECRET123:@host:99999/x", `"https://host:99999/x"`},
		{"callback", "ftp://ghp_TOKEN@host/x", `"ftp://host/x"`},
		{"callback", "https://ghp_TOKEN:s3cr3tPW@host:0/x?sig=Q#frag", `"https://host:0/x"`},
		{"callback", "https://ghp_TOKEN@/x", `"https:///x"`},
		{"callback", "ghp_TOKEN@host/x", `"host/x"`},
		{"input", "ftp://ghp_TOKEN:s3cr3tPW@host/x", `"ftp://host/x"`},
		{"input", "s3://ghp_TOKEN@bucket/x", `"s3://bucket/x"`},
	} {
		t.Run(tc.field+"/"+tc.url, func(t *testing.T) {
			src := "apiVersion: bmc/v1\nkind: Workload\nname: cb\ntasks:\n  - {id: a, run: echo}\n"
			if tc.field == "callback" {
				src += "finalize:\n  callback:\n    url: '" + tc.url + "'\n"
			} else {
				src += "  - {id: b, run: echo, inputs: [{from: '" + tc.url + "', path: x}]}\n"
			}
			_, diags := Compile("spec.yaml", []byte(src), Options{})
			if len(diags) != 1 {
				t.Fatalf("want one error, got %v", diags)
			}
			msg := diags[0].Msg + diags[0].Hint
			if !strings.Contains(msg, tc.want) {
				t.Errorf("message %q lacks %s", msg, tc.want)
			}
			for _, secret := range []string{"ghp_TOKEN", "sk_live_SECRET123", "s3cr3tPW", "@"} {
				if strings.Contains(msg, secret) {
					t.Errorf("message %q holds %q", msg, secret)
				}
			}
		})
	}
}
