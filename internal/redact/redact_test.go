package redact

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nothing secret here", "nothing secret here"},
		// Signatures wherever a query value or an assignment puts them;
		// paths and names that only hold sig= are left alone.
		{"SAS=sig=abcdef&sv=2020", "SAS=sig=REDACTED&sv=2020"},
		{"(sig=abcdef)", "(sig=REDACTED)"},
		{"url,sig=abcdef", "url,sig=REDACTED"},
		{"az://abc/sig=OUTSIG/", "az://abc/sig=OUTSIG/"},
		{"f-sig=X and f_sig=Y", "f-sig=X and f_sig=Y"},
		// Messages about the Authorization header, and words after it,
		// are not credentials; a value in braces keeps its brace.
		{`invalid value for header "Authorization": the callback could not be sent`, `invalid value for header "Authorization": the callback could not be sent`},
		{"Authorization: see below", "Authorization: see below"},
		{"headers: {Authorization: Token abcdef}", "headers: {Authorization: Token REDACTED}"},
		{"Authorization: Custom a1b2c3d4e5f6g7h8i9", "Authorization: Custom REDACTED"},
		{"the SharedKey auth: canonical", "the SharedKey auth: canonical"},
		// Long user names and host:port before other text are not secrets.
		{"ssh://deployment-automation-user@host/x", "ssh://deployment-automation-user@host/x"},
		{"curl http://localhost:8080,mail=bob@x.com", "curl http://localhost:8080,mail=bob@x.com"},
		{"https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r", "https://REDACTED@github.com/o/r"},
		{"http://user:1234@host/", "http://user:REDACTED@host/"},
		{
			`Get "https://a.blob.core.windows.net/c/b?se=2030&sig=abc%2Bdef%3D&sp=r": dial tcp: refused`,
			`Get "https://a.blob.core.windows.net/c/b?se=2030&sig=REDACTED&sp=r": dial tcp: refused`,
		},
		{"https://a/c?SIG=XyZ", "https://a/c?SIG=REDACTED"},
		// Presigned S3 and Cloud Storage URLs.
		{
			"https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAX%2F20261207%2Fus-east-1%2Fs3&X-Amz-Security-Token=TOK&X-Amz-Signature=abc123",
			"https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED",
		},
		{"https://storage.googleapis.com/b/o?x-goog-signature=GOOGSIG&X-Goog-Credential=sa%40p", "https://storage.googleapis.com/b/o?x-goog-signature=REDACTED&X-Goog-Credential=REDACTED"},
		{"a file named X-Amz-Signature.txt", "a file named X-Amz-Signature.txt"},
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

		// sig= is a query parameter, not any text holding it.
		{"f-sig=X", "f-sig=X"},
		{"az://abc/sig=OUTSIG/", "az://abc/sig=OUTSIG/"},
		{"az://abc/x-sig%3DOUTSIG/", "az://abc/x-sig%3DOUTSIG/"},
		{"my_sig=x designsig=y", "my_sig=x designsig=y"},
		{"https://a/c?sv=1&sig=abc#part", "https://a/c?sv=1&sig=REDACTED#part"},
		{"https://a/c?sv=1&sig=ab/cd%3D&se=2", "https://a/c?sv=1&sig=REDACTED&se=2"},
		{"<Url>https://a/c?sv=1&amp;sig=abc</Url>", "<Url>https://a/c?sv=1&amp;sig=REDACTED</Url>"},
		{`{"url":"https://a/c?sv=1\u0026sig=abc"}`, `{"url":"https://a/c?sv=1\u0026sig=REDACTED"}`},
		{"x?u=https%3A%2F%2Fa%2Fb%3Fsig%3Dab%252Bc%23frag", "x?u=https%3A%2F%2Fa%2Fb%3Fsig%3DREDACTED%23frag"},
		// Connection string fields start a field, not a name or a path.
		{"az://c/AccountKey=x/y", "az://c/AccountKey=x/y"},
		{"MyAccountKey=abc", "MyAccountKey=abc"},
		{"data/SharedAccessSignature=x/y", "data/SharedAccessSignature=x/y"},
		{"CONN=AccountKey=abc+/d==;AccountName=a", "CONN=AccountKey=REDACTED;AccountName=a"},
		{`CONN="AccountName=a;AccountKey=abc"`, `CONN="AccountName=a;AccountKey=REDACTED"`},

		// A password in a URL goes, its user name stays.
		{
			`fetch "http://bob:PASSW0RD@127.0.0.1:8765/nope.txt": 404`,
			`fetch "http://bob:REDACTED@127.0.0.1:8765/nope.txt": 404`,
		},
		{"https://:PASSW0RD@h/x", "https://:REDACTED@h/x"},
		{"https://bob:p@ss:w0rd@h:1?q=1", "https://bob:REDACTED@h:1?q=1"},
		{"git+https://bob:PASSW0RD@h/r.git and ftp://x:y@h", "git+https://bob:REDACTED@h/r.git and ftp://x:REDACTED@h"},
		{"HTTPS://Bob:PASSW0RD@H/", "HTTPS://Bob:REDACTED@H/"},
		// A user info that is a token goes whole; a user name stays.
		{"https://ghp_0123456789abcdefABCDEF0123456789@github.com/o/r.git", "https://REDACTED@github.com/o/r.git"},
		{"ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"},
		{"https://first.last%40corp.example.com@h/", "https://first.last%40corp.example.com@h/"},
		{"mailto:bob@example.com, bob:x@example.com", "mailto:bob@example.com, bob:x@example.com"},
		{"https://h/p:1@2/x and https://h/@scope/pkg@1.0", "https://h/p:1@2/x and https://h/@scope/pkg@1.0"},
		{"https://bob:@h/", "https://bob:@h/"},

		// Any Authorization scheme loses its credentials.
		{"Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic REDACTED"},
		{"proxy-authorization: basic dXNlcjpwYXNz\r\nHost: h", "proxy-authorization: basic REDACTED\r\nHost: h"},
		{
			`Authorization: Digest username="bob", realm="r", nonce="n1", uri="/x", response="6629fae4"` + "\n",
			"Authorization: Digest REDACTED\n",
		},
		{"Authorization: token abc123 sent", "Authorization: token REDACTED sent"},
		{"Authorization: abc123", "Authorization: REDACTED"},
		{"Authorization:abc123", "Authorization:REDACTED"},
		{"map[Accept:[*/*] Authorization:[Basic dXNlcjpwYXNz]]", "map[Accept:[*/*] Authorization:[Basic REDACTED]]"},
		{`{"Authorization":"Basic dXNlcjpwYXNz"}`, `{"Authorization":"Basic REDACTED"}`},
		{`echo "Authorization: Basic $CREDS"`, `echo "Authorization: Basic REDACTED"`},
		{"Authorization: SharedKeyLite acct:AbC+dEf=", "Authorization: SharedKeyLite acct:REDACTED"},
		{"authorization failed", "authorization failed"},

		// Query parameters named as keys and tokens are, such as an Azure
		// Function's ?code=; the same names in a path or a word are not.
		{"https://f.azurewebsites.net/api/hook?code=AbC123==&clientId=x", "https://f.azurewebsites.net/api/hook?code=REDACTED&clientId=x"},
		{"https://h/x?a=1&api_key=k1&token=t1&Access_Token=t2#f", "https://h/x?a=1&api_key=REDACTED&token=REDACTED&Access_Token=REDACTED#f"},
		{"https://h/x?key=k&subscription-key=s&client_secret=c&password=p&pwd=q", "https://h/x?key=REDACTED&subscription-key=REDACTED&client_secret=REDACTED&password=REDACTED&pwd=REDACTED"},
		{`{"url":"https://h/x?z=1\u0026apikey=k1"}`, `{"url":"https://h/x?z=1\u0026apikey=REDACTED"}`},
		{"x?u=https%3A%2F%2Fh%2Fx%3Fcode%3Dab%26y%3D1", "x?u=https%3A%2F%2Fh%2Fx%3Fcode%3DREDACTED%26y%3D1"},
		{"az://c/country_code=US/code=1/token=2/", "az://c/country_code=US/code=1/token=2/"},
		{"exit code=1, key=value", "exit code=1, key=value"},
		{"https://h/x?barcode=1&keys=2&tokens=3", "https://h/x?barcode=1&keys=2&tokens=3"},
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
	// Paths and blob names holding sig= are no query strings: they are
	// kept as they are, the trailing "/" of a prefix included.
	outs := []map[string]string{{"path": "f-sig=X", "to": "az://abc/sig=OUTSIG/"}}
	if b, redacted, err := JSON(outs, false); err != nil || redacted || string(b) != `[{"path":"f-sig=X","to":"az://abc/sig=OUTSIG/"}]`+"\n" {
		t.Errorf("JSON(%v) = %s, redacted %v, err %v", outs, b, redacted, err)
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

// TestJSONHeaders redacts the values of members named as Authorization
// headers, as a spec's callback headers and net/http's Header encode them,
// and nothing else.
func TestJSONHeaders(t *testing.T) {
	in := map[string]any{
		"headers": map[string]string{"authorization": "Basic dXNlcjpwYXNz", "X-Team": "Basic dXNlcjpwYXNz"},
		"header":  map[string][]string{"Proxy-Authorization": {`Digest username="a", response="b"`, "Basic x"}},
		"auth":    map[string]any{"Authorization": map[string]string{"type": "basic"}},
		"words":   []string{"Authorization", "plain"},
	}
	b, redacted, err := JSON(in, true)
	if err != nil || !redacted {
		t.Fatalf("JSON: redacted %v, err %v", redacted, err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("JSON wrote invalid JSON (%v): %s", err, b)
	}
	want := map[string]any{
		"headers": map[string]any{"authorization": "Basic REDACTED", "X-Team": "Basic dXNlcjpwYXNz"},
		"header":  map[string]any{"Proxy-Authorization": []any{"Digest REDACTED", "Basic x"}},
		"auth":    map[string]any{"Authorization": map[string]any{"type": "basic"}},
		"words":   []any{"Authorization", "plain"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}

// TestIsCredentialHeader: the headers APIs take keys and tokens in
// (X-Api-Key, an Azure Function's x-functions-key, API Management's
// subscription key, …), whatever their case, and no other name.
func TestIsCredentialHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Api-Key": true, "x-functions-key": true, "Ocp-Apim-Subscription-Key": true, "X-Gitlab-Token": true,
		"Private-Token": true, "Cookie": true, "apikey": true, "X-Webhook-Secret": true,
		"X-Team": false, "X-Key-Id": false, "X-Request-Id": false, "secretEnv": false, "token": false, "Authorization": false,
	} {
		if got := IsCredentialHeader(name); got != want {
			t.Errorf("IsCredentialHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestValues: known secrets go wherever they stand in a string, escaped
// or not, and the text stays valid JSON; numbers, keys' own text and
// short values are left alone.
func TestValues(t *testing.T) {
	in := map[string]any{
		"env":      map[string]string{"API_KEY": "K3Y-9911", "NOTE": "team-K3Y-9911 and \"q\"uote\tsecret"},
		"n":        12345,
		"K3Y-9911": "member names are values too",
		"short":    "abc",
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, changed := Values(b, []string{"K3Y-9911", "\"q\"uote\tsecret", "abc", "12345"})
	if !changed {
		t.Fatal("nothing replaced")
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("invalid JSON (%v): %s", err, out)
	}
	want := map[string]any{
		"env":   map[string]any{"API_KEY": Marker, "NOTE": "team-" + Marker + " and " + Marker},
		"n":     12345.0,
		Marker:  "member names are values too",
		"short": "abc",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Values (-want +got):\n%s", diff)
	}
	if same, changed := Values(b, []string{"absent-secret"}); changed || string(same) != string(b) {
		t.Error("Values changed a text that does not hold the secret")
	}
}

func TestHolds(t *testing.T) {
	for s, want := range map[string]bool{
		"https://a/c?sv=1&sig=REDACTED&se=2": true,
		"AccountKey=REDACTED":                true,
		"Authorization: Bearer REDACTED":     true,
		"echo REDACTED":                      false,
		"https://a/c?sv=1&sig=abc":           false,
		"http://bob:REDACTED@h/x":            true,
		"https://REDACTED@github.com/o/r":    true,
		"ssh://REDACTED.x@h/":                false,
		"Authorization: Basic REDACTED":      true,
		"https://h/hook?code=REDACTED":       true,
		`{"X-Team":"REDACTED"}`:              false,
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
