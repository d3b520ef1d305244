package redact

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nothing secret here", "nothing secret here"},
		{
			`Get "https://a.blob.core.windows.net/c/b?se=2030&sig=abc%2Bdef%3D&sp=r": dial tcp: refused`,
			`Get "https://a.blob.core.windows.net/c/b?se=2030&sig=REDACTED&sp=r": dial tcp: refused`,
		},
		{"https://a/c?SIG=XyZ", "https://a/c?SIG=REDACTED"},
		{"https://a/c?sv=1&sig=last", "https://a/c?sv=1&sig=REDACTED"},
		{
			"DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc+/def==;EndpointSuffix=core.windows.net",
			"DefaultEndpointsProtocol=https;AccountName=a;AccountKey=REDACTED;EndpointSuffix=core.windows.net",
		},
		{"AccountKey=abc+/def==", "AccountKey=REDACTED"},
		{
			"BlobEndpoint=https://a/;SharedAccessSignature=sv=2022&ss=b&sig=s3cr3t;QueueEndpoint=q",
			"BlobEndpoint=https://a/;SharedAccessSignature=REDACTED;QueueEndpoint=q",
		},
		{"copy source https%3A%2F%2Fa%2Fb%3Fsv%3D1%26sig%3Dab%252Bc%26se%3D2", "copy source https%3A%2F%2Fa%2Fb%3Fsv%3D1%26sig%3DREDACTED%26se%3D2"},
		{"Authorization: SharedKey devstoreaccount1:AbC+dEf=", "Authorization: SharedKey devstoreaccount1:REDACTED"},
		{"Authorization: Bearer eyJ0eXAi.eyJhdWQi.sig", "Authorization: Bearer REDACTED"},
		{"signature=keep designer=keep", "signature=keep designer=keep"},
		{"two: ?sig=a and &sig=b", "two: ?sig=REDACTED and &sig=REDACTED"},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestJSON(t *testing.T) {
	v := map[string]any{
		"from": "https://a.blob.core.windows.net/c/in.txt?sv=2024-01-01&sig=s3cr3t%2B",
		"run":  "echo a && echo <b>",
	}
	b, redacted, err := JSON(v, true)
	if err != nil || !redacted {
		t.Fatalf("JSON: redacted %v, err %v", redacted, err)
	}
	want := "{\n  \"from\": \"https://a.blob.core.windows.net/c/in.txt?sv=2024-01-01&sig=REDACTED\",\n  \"run\": \"echo a && echo <b>\"\n}\n"
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	if _, redacted, _ := JSON(map[string]string{"run": "echo REDACTED"}, false); redacted {
		t.Error("JSON reports a redaction where there was no secret")
	}
}

// TestJSONStaysValid redacts strings whose secret, or mere hint of one,
// stands before an escaped quote, backslash or control character: the
// encoded result must stay valid JSON holding the same strings but for
// their secrets.
func TestJSONStaysValid(t *testing.T) {
	in := map[string]string{
		"sigword": `echo "sig=" > x.txt`,
		"bearer":  `echo "Authorization: Bearer $TOKEN"`,
		"sas":     `echo "src=http://127.0.0.1:1/d.txt?sv=2024&sig=SECRET" >&2`,
		"slash":   `a\sig=SECRET\b`,
		"tab":     "sig=SECRET\tx\u2028",
		"plain":   `echo "hi" \ there`,
		"sig=key": "a key that looks like a secret",
	}
	want := map[string]string{
		"sigword": `echo "sig=" > x.txt`,
		"bearer":  `echo "Authorization: Bearer REDACTED"`,
		"sas":     `echo "src=http://127.0.0.1:1/d.txt?sv=2024&sig=REDACTED" >&2`,
		"slash":   `a\sig=REDACTED`,
		"tab":     "sig=REDACTED\tx\u2028",
		"plain":   `echo "hi" \ there`,
	}
	for _, indent := range []bool{false, true} {
		b, redacted, err := JSON(in, indent)
		if err != nil || !redacted {
			t.Fatalf("JSON: redacted %v, err %v", redacted, err)
		}
		if strings.Contains(string(b), "SECRET") {
			t.Errorf("JSON kept a secret: %s", b)
		}
		var got map[string]string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("JSON wrote invalid JSON (%v): %s", err, b)
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: got %q, want %q", k, got[k], w)
			}
		}
		if _, ok := got["sig="+Marker]; !ok {
			t.Errorf("keys: %v", got)
		}
	}
}

func TestHolds(t *testing.T) {
	for s, want := range map[string]bool{
		"https://a/c?sv=1&sig=REDACTED&se=2": true,
		"AccountKey=REDACTED":                true,
		"Authorization: Bearer REDACTED":     true,
		"echo REDACTED":                      false,
		"https://a/c?sv=1&sig=abc":           false,
	} {
		if got := Holds(s); got != want {
			t.Errorf("Holds(%q) = %v, want %v", s, got, want)
		}
	}
}

// The hints keep plain text, such as a run's program, from the
// case-insensitive patterns' slow scan.
func BenchmarkStringPlain(b *testing.B) {
	s := strings.Repeat(`    {"id": "t-123", "command": ["true"], "hash": "sha256:abcdef0123456789", "env": {"A": "b"}},`+"\n", 3000)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		String(s)
	}
}
