package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestResendHintNamesSecrets: the hint for sending an undelivered callback
// again gives --set for each secret the run did not keep, and works as
// given.
func TestResendHintNamesSecrets(t *testing.T) {
	f := newCallbackFixture(t)
	f.hook.answer(http.StatusBadRequest)
	withPassword := strings.Replace(f.hook.srv.URL, "http://", "http://user:pw0secret@", 1)
	args := []string{"run", "--state-dir", f.state, "--progress", "plain", "--set", "hook=" + withPassword, f.spec}
	code, _, stderr := bmcRun(t, args...)
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	id := f.runID(t)
	want := "bmc resume " + id + " --set hook=… --state-dir " + f.state + " sends it again"
	if !strings.Contains(stderr, want) || strings.Contains(stderr, "pw0secret") {
		t.Fatalf("stderr lacks %q, or shows the password:\n%s", want, stderr)
	}
	f.hook.answer(http.StatusOK)
	code, _, stderr = bmcRun(t, "resume", id, "--set", "hook="+withPassword, "--state-dir", f.state)
	if code != 0 || len(f.hook.received()) != 2 {
		t.Fatalf("resume as hinted: exit %d, %d callbacks\n%s", code, len(f.hook.received()), stderr)
	}
}
