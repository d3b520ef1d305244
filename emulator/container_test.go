package emulator

import "testing"

// TestContainerSettingsRule: a task (job manager task included) must have
// containerSettings exactly when its pool has a containerConfiguration.
// Batch takes such a task and fails it on the node, with a user error
// and no exit code, and does not retry it.
func TestContainerSettingsRule(t *testing.T) {
	e := newEnv(t, Options{})
	e.pool("plain", 1, 4)
	boxed := poolBody("boxed", 1, 4)
	boxed["virtualMachineConfiguration"].(map[string]any)["containerConfiguration"] = map[string]any{
		"type": "dockerCompatible", "containerImageNames": []string{"example.io/tool:1"}}
	e.c.must(201, "POST", "/pools", boxed)
	box := map[string]any{"containerSettings": map[string]any{"imageName": "example.io/tool:1"}}
	retried := map[string]any{"constraints": map[string]any{"maxTaskRetryCount": 2}}
	with := func(a, b map[string]any) map[string]any {
		out := map[string]any{}
		for _, m := range []map[string]any{a, b} {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	jm := func(extra map[string]any) map[string]any {
		return map[string]any{"jobManagerTask": with(map[string]any{"id": "jm", "commandLine": "true", "killJobOnCompletion": false, "runExclusive": false}, extra)}
	}
	e.job("on-plain", "plain", jm(box))
	e.addTasks("on-plain", taskBody("host", "true", nil), taskBody("in-box", "true", with(box, retried)))
	e.job("on-boxed", "boxed", jm(nil))
	e.addTasks("on-boxed", taskBody("host", "true", retried), taskBody("in-box", "true", box))

	for _, c := range []struct {
		job, task string
		code      string // "" for success
	}{
		{"on-plain", "host", ""},
		{"on-plain", "in-box", "ContainerSettingsNotSupported"},
		{"on-plain", "jm", "ContainerSettingsNotSupported"},
		{"on-boxed", "host", "ContainerTaskSettingsNotFound"},
		{"on-boxed", "in-box", ""},
		{"on-boxed", "jm", "ContainerTaskSettingsNotFound"},
	} {
		tk := e.waitTask(c.job, c.task, TaskCompleted)
		ei := tk.ExecutionInfo
		fi := ei.FailureInfo
		switch {
		case c.code == "" && ei.Result != ResultSuccess:
			t.Errorf("%s/%s: %+v %+v", c.job, c.task, ei, fi)
		case c.code != "" && (fi == nil || fi.Code != c.code || fi.Category != UserError || ei.ExitCode != nil || ei.RetryCount != 0):
			t.Errorf("%s/%s: %+v %+v, want a user error %s, not retried", c.job, c.task, ei, fi, c.code)
		}
	}
}
