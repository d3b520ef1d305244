package compiler

import (
	"strings"
	"testing"
)

// TestMatrixIDsHoldNoSecrets compiles matrices over signed URLs and other
// values holding secrets: a task id goes to the terminal, the run's files
// and Azure Batch as it is, so the part a matrix value gives is made from
// the value with its secrets taken out, and so are the messages naming
// it.
func TestMatrixIDsHoldNoSecrets(t *testing.T) {
	const spec = `apiVersion: bmc/v1
kind: Workload
name: t
params:
  urls: {}
tasks:
  - id: get
    matrix: {u: "${{ params.urls }}"}
    inputs: [{from: "${{ matrix.u }}", path: in.txt}]
    run: cat in.txt
`
	for _, tc := range []struct {
		name    string
		urls    []any
		secrets []string
		ids     []string // wanted, when it compiles
		errs    []string // wanted in the messages, when it does not
	}{
		{
			name:    "sas",
			urls:    []any{"http://127.0.0.1:18301/a?sig=SASSECRETM1"},
			secrets: []string{"SASSECRETM1"},
			ids:     []string{"get-http___127_0_0_1_18301_a_sig_REDACTED"},
		},
		{
			name:    "encoded-sas",
			urls:    []any{"https://h/?u=%3Fsig%3DENCSECRET9%26se%3D2"},
			secrets: []string{"ENCSECRET9"},
		},
		{
			name:    "password",
			urls:    []any{"https://user:PASSW0RDSECRET@h/x"},
			secrets: []string{"PASSW0RDSECRET"},
			ids:     []string{"get-https___user_REDACTED_h_x"},
		},
		{
			name:    "too-long",
			urls:    []any{"https://account.blob.core.windows.net/container/some/long/blob/path.txt?sv=2022-11-02&sig=LONGSECRETSIG0123"},
			secrets: []string{"LONGSECRETSIG0123"},
			errs:    []string{"characters; Azure Batch allows at most 64"},
		},
		{
			name:    "same-but-for-signature",
			urls:    []any{"http://h/a?sig=FIRSTSECRET1", "http://h/a?sig=SECONDSECRET2"},
			secrets: []string{"FIRSTSECRET1", "SECONDSECRET2"},
			errs:    []string{`both give task id "get-http___h_a_sig_REDACTED"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, diags := Compile("spec.yaml", []byte(spec), Options{Params: map[string]any{"urls": tc.urls}})
			var text strings.Builder
			for _, d := range diags {
				text.WriteString(d.Error() + "\n" + d.Hint + "\n")
			}
			var ids []string
			if p != nil {
				for _, tk := range p.Tasks {
					ids = append(ids, tk.ID)
					text.WriteString(tk.ID + "\n")
				}
			}
			for _, s := range tc.secrets {
				if strings.Contains(text.String(), s) {
					t.Errorf("secret %s shown:\n%s", s, text.String())
				}
			}
			if len(tc.errs) == 0 && len(diags) > 0 {
				t.Fatalf("compile: %v", diags)
			}
			for _, e := range tc.errs {
				if !strings.Contains(text.String(), e) {
					t.Errorf("want an error holding %q; got:\n%s", e, text.String())
				}
			}
			if tc.ids != nil && strings.Join(ids, " ") != strings.Join(tc.ids, " ") {
				t.Errorf("ids %q, want %q", ids, tc.ids)
			}
		})
	}
}
