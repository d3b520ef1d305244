package azurebatch

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/planner"
)

// fakeLocator gives SAS-like URLs (or identity references) without an
// account.
type fakeLocator struct{ identity string }

func (f fakeLocator) ref() *BatchNodeIdentityReference {
	if f.identity == "" {
		return nil
	}
	return &BatchNodeIdentityReference{ResourceID: f.identity}
}

func (f fakeLocator) q(perm string) string {
	if f.identity != "" {
		return ""
	}
	return "?sv=2025-01-05&sp=" + perm + "&sig=SECRET"
}

func (f fakeLocator) ContainerURL(c string, write bool) (string, *BatchNodeIdentityReference, error) {
	p := "rl"
	if write {
		p = "racwl"
	}
	return "https://acct.blob.core.windows.net/" + c + f.q(p), f.ref(), nil
}

func (f fakeLocator) BlobURL(c, b string) (string, *BatchNodeIdentityReference, error) {
	return "https://acct.blob.core.windows.net/" + c + "/" + escapeBlob(b) + f.q("r"), f.ref(), nil
}

func compile(t testing.TB, src string, params map[string]any) *compiler.Program {
	t.Helper()
	p, diags := compiler.Compile("test.yaml", []byte(src), compiler.Options{Params: params})
	if err := diags.Err(); err != nil {
		t.Fatal(err)
	}
	return p
}

const mapSpec = `apiVersion: bmc/v1
kind: Workload
name: maps
labels: {team: t1}
pool:
  id: p1
  vmSize: Standard_D4s_v5
  image: {publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}
  nodeAgentSku: batch.node.ubuntu 24.04
  nodes: {dedicated: 1, spot: 2}
  slotsPerNode: 4
  startTask: {run: "apt-get install -y x", elevated: true}
packages:
  - {name: tool, version: 1.0.0}
defaults:
  env: {LC_ALL: C}
tasks:
  - id: script
    run: echo "$X" > out.txt
    env: {X: "${{ run.id }}"}
    retries: 2
    timeout: 90m
    slots: 2
    inputs:
      - {from: "az://raw/a.fq", path: in.fq}
      - {from: "az://raw/dir/", path: reads}
      - {from: "https://example.org/x.txt?token=1", path: x.txt}
      - {from: data/f.txt, path: f.txt}
    outputs:
      - {path: out.txt, to: "az://res/${{ run.id }}/out.txt"}
      - {path: "logs/**/*.log", to: "az://res/${{ run.id }}/logs/", when: always}
      - {path: err.txt, to: "az://res/${{ run.id }}/debug/", when: failure}
    packages: [tool]
    container: {image: "myacr.azurecr.io/tool:1"}
  - id: argv
    dependsOn: [script]
    command: [tool, --name, "it's", "a b"]
    container: {image: "myacr.azurecr.io/tool:1", options: "--rm"}
  - id: wrapped
    dependsOn: [argv]
    inputs:
      - {from: "az://raw/", path: all}
    command: [cat, all/a.fq]
    container: {image: "myacr.azurecr.io/tool:1"}
`

func mapOne(t *testing.T, src string, loc Locator, opt MapOptions) (*planner.Plan, *Mapping) {
	t.Helper()
	prog := compile(t, src, nil)
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "maps-261128000000-abc", Workload: prog.Name, Storage: "https://acct.blob.core.windows.net"}
	m, err := Map(plan, run, loc, opt)
	if err != nil {
		t.Fatal(err)
	}
	return plan, m
}

func staged() map[string][]StagedFile {
	return map[string][]StagedFile{"data/f.txt": {{Loc: blobstage.Location{Container: "bmc-staging", Path: "sha256/abc"}, Mode: 0o644}}}
}

// TestMapBodies maps a spec using every feature and checks each body
// against the Batch spec, and the fields that carry meaning against what
// they must be.
func TestMapBodies(t *testing.T) {
	spec := loadSpec(t)
	jm := &BatchJobManagerTask{ID: FinalizeTaskID, CommandLine: "/bin/true", KillJobOnCompletion: Ptr(true), RunExclusive: Ptr(false),
		AuthenticationTokenSettings: &AuthenticationTokenSettings{Access: []BatchAccessScope{AccessScopeJob}}}
	_, m := mapOne(t, mapSpec, fakeLocator{}, MapOptions{Staged: staged(), Logs: "az://logs/", SpecHash: "h", JobManager: jm,
		AccountID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Batch/batchAccounts/a"})
	check := func(def string, v any) {
		t.Helper()
		b, err := marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		spec.mustValidate(t, def, b, true)
	}
	check("BatchPoolCreateOptions", m.Pool)
	check("BatchJobCreateOptions", m.Job)
	check("BatchTaskGroup", BatchTaskGroup{Value: m.Tasks})
	for _, tk := range m.Tasks {
		check("BatchTaskCreateOptions", tk)
	}

	// The pool.
	wantPool := BatchPoolCreateOptions{
		ID: "p1", VMSize: "Standard_D4s_v5",
		VirtualMachineConfiguration: &VirtualMachineConfiguration{
			ImageReference: BatchVMImageReference{Publisher: "canonical", Offer: "ubuntu-24_04-lts", SKU: "server", Version: "latest"},
			NodeAgentSKUID: "batch.node.ubuntu 24.04",
			ContainerConfiguration: &BatchContainerConfiguration{Type: ContainerTypeDockerCompatible,
				ContainerImageNames: []string{"myacr.azurecr.io/tool:1"}},
		},
		TargetDedicatedNodes: Ptr(int32(1)), TargetLowPriorityNodes: Ptr(int32(2)), TaskSlotsPerNode: Ptr(int32(4)),
		StartTask: &BatchStartTask{CommandLine: ScriptCommandLine("apt-get install -y x", "starttask"), WaitForSuccess: Ptr(true),
			UserIdentity: &UserIdentity{AutoUser: &AutoUserSpecification{Scope: AutoUserScopePool, ElevationLevel: ElevationAdmin}}},
		ApplicationPackageReferences: []BatchApplicationPackageReference{{ApplicationID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Batch/batchAccounts/a/applications/tool", Version: "1.0.0"}},
		Metadata:                     []BatchMetadataItem{{Name: "bmc.createdBy", Value: "bmc"}},
	}
	if diff := cmp.Diff(wantPool, m.Pool); diff != "" {
		t.Errorf("pool (-want +got):\n%s", diff)
	}

	// The job: dependencies on, noaction until every task is added.
	j := m.Job
	if j.ID != "maps-261128000000-abc" || j.PoolInfo.PoolID != "p1" || j.UsesTaskDependencies == nil || !*j.UsesTaskDependencies ||
		j.OnAllTasksComplete != AllTasksCompleteNoAction || j.JobManagerTask != jm {
		t.Errorf("job %+v", j)
	}
	wantMeta := []BatchMetadataItem{{MetaRunID, "maps-261128000000-abc"}, {MetaWorkload, "maps"}, {MetaSpecHash, "h"}, {"team", "t1"}}
	if diff := cmp.Diff(wantMeta, j.Metadata); diff != "" {
		t.Errorf("job metadata (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]EnvironmentSetting{{"BMC_RUN_ID", "maps-261128000000-abc"}, {"BMC_WORKLOAD", "maps"}}, j.CommonEnvironmentSettings); diff != "" {
		t.Errorf("job environment (-want +got):\n%s", diff)
	}

	if len(m.Tasks) != 3 || m.Barriers != 0 {
		t.Fatalf("%d tasks, %d barriers", len(m.Tasks), m.Barriers)
	}
	s := m.Tasks[0]
	if argv, err := SplitCommandLine(s.CommandLine); err != nil || !slices.Equal(argv[:4], []string{"/bin/bash", "-euo", "pipefail", "-c"}) || argv[len(argv)-1] != "script" {
		t.Errorf("script command line %q: %v", s.CommandLine, err)
	}
	if diff := cmp.Diff([]EnvironmentSetting{{"LC_ALL", "C"}, {"X", "maps-261128000000-abc"}}, s.EnvironmentSettings); diff != "" {
		t.Errorf("script env (-want +got):\n%s", diff)
	}
	wantFiles := []ResourceFile{
		{HTTPURL: "https://acct.blob.core.windows.net/raw/a.fq?sv=2025-01-05&sp=r&sig=SECRET", FilePath: "in.fq"},
		{StorageContainerURL: "https://acct.blob.core.windows.net/raw?sv=2025-01-05&sp=rl&sig=SECRET", BlobPrefix: "dir/", FilePath: ".bmc-in/1"},
		{HTTPURL: "https://example.org/x.txt?token=1", FilePath: "x.txt"},
		{HTTPURL: "https://acct.blob.core.windows.net/bmc-staging/sha256/abc?sv=2025-01-05&sp=r&sig=SECRET", FilePath: "f.txt", FileMode: "0644"},
	}
	if diff := cmp.Diff(wantFiles, s.ResourceFiles); diff != "" {
		t.Errorf("resource files (-want +got):\n%s", diff)
	}
	w := "https://acct.blob.core.windows.net/res?sv=2025-01-05&sp=racwl&sig=SECRET"
	out := func(pattern, path string, cond OutputFileUploadCondition) OutputFile {
		return OutputFile{FilePattern: pattern, UploadOptions: OutputFileUploadConfig{UploadCondition: cond},
			Destination: OutputFileDestination{Container: &OutputFileBlobContainerDestination{ContainerURL: w, Path: path}}}
	}
	wantOut := []OutputFile{
		out("out.txt", "maps-261128000000-abc/out.txt", UploadOnTaskSuccess),
		out("logs/**/*.log", "maps-261128000000-abc/logs", UploadOnTaskCompletion),
		out("err.txt", "maps-261128000000-abc/debug/err.txt", UploadOnTaskFailure),
		{FilePattern: "../std*.txt", UploadOptions: OutputFileUploadConfig{UploadCondition: UploadOnTaskCompletion},
			Destination: OutputFileDestination{Container: &OutputFileBlobContainerDestination{
				ContainerURL: "https://acct.blob.core.windows.net/logs?sv=2025-01-05&sp=racwl&sig=SECRET", Path: "maps-261128000000-abc/script"}}},
	}
	if diff := cmp.Diff(wantOut, s.OutputFiles); diff != "" {
		t.Errorf("output files (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&BatchTaskConstraints{MaxTaskRetryCount: Ptr(int32(2)), MaxWallClockTime: "PT1H30M"}, s.Constraints); diff != "" {
		t.Errorf("constraints (-want +got):\n%s", diff)
	}
	if s.RequiredSlots == nil || *s.RequiredSlots != 2 || s.DependsOn != nil {
		t.Errorf("slots %v, dependsOn %+v", s.RequiredSlots, s.DependsOn)
	}
	if diff := cmp.Diff([]BatchApplicationPackageReference{{ApplicationID: "tool", Version: "1.0.0"}}, s.ApplicationPackageReferences); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"logs", "res"}, m.OutputContainers); diff != "" {
		t.Errorf("output containers (-want +got):\n%s", diff)
	}

	a := m.Tasks[1]
	if argv, _ := SplitCommandLine(a.CommandLine); !slices.Equal(argv, []string{"tool", "--name", "it's", "a b"}) {
		t.Errorf("argv command line %q gives %q", a.CommandLine, argv)
	}
	if diff := cmp.Diff(&BatchTaskContainerSettings{ImageName: "myacr.azurecr.io/tool:1", ContainerRunOptions: "--rm"}, a.ContainerSettings); diff != "" {
		t.Errorf("container (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&BatchTaskDependencies{TaskIDs: []string{"script"}}, a.DependsOn); diff != "" {
		t.Errorf("dependsOn (-want +got):\n%s", diff)
	}
	// A prefix input wraps an argv in bash, which moves the files first.
	if argv, _ := SplitCommandLine(m.Tasks[2].CommandLine); len(argv) < 8 || argv[0] != "/bin/bash" || !slices.Equal(argv[len(argv)-2:], []string{"cat", "all/a.fq"}) {
		t.Errorf("wrapped command line %q", m.Tasks[2].CommandLine)
	}
}

// TestMapIdentity: with a pool identity no task definition carries a SAS;
// every storage URL names the identity instead.
func TestMapIdentity(t *testing.T) {
	const id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bmc"
	_, m := mapOne(t, mapSpec, fakeLocator{identity: id}, MapOptions{Staged: staged(), Logs: "az://logs/"})
	b, _ := json.Marshal(m.Tasks)
	if strings.Contains(string(b), "sig=") {
		t.Errorf("a task definition carries a SAS: %s", b)
	}
	for _, tk := range m.Tasks {
		for _, rf := range tk.ResourceFiles {
			if strings.Contains(rf.HTTPURL, "blob.core") || rf.StorageContainerURL != "" {
				if rf.IdentityReference == nil || rf.IdentityReference.ResourceID != id {
					t.Errorf("%s: resource file %+v has no identity", tk.ID, rf)
				}
			}
		}
		for _, of := range tk.OutputFiles {
			if of.Destination.Container.IdentityReference == nil {
				t.Errorf("%s: output %s has no identity", tk.ID, of.FilePattern)
			}
		}
	}
}

func TestOutputPath(t *testing.T) {
	for _, c := range []struct{ pattern, to, want string }{
		{"out.txt", "az://ccc/run/out.txt", "run/out.txt"},
		{"out.txt", "az://ccc/run/", "run/out.txt"},
		{"dir/out.txt", "az://ccc/run/", "run/out.txt"},
		{"out.txt", "az://ccc", "out.txt"},
		{"*.txt", "az://ccc/run/", "run"},
		{"out/**/*.bam", "az://ccc/run/s1", "run/s1"},
		{"*.txt", "az://ccc", ""},
		// The file is a*.txt: its blob is named so, as locally.
		{"a[*].txt", "az://ccc/p/", "p/a*.txt"},
		{"a[*].txt", "az://ccc/p/b.txt", "p/b.txt"},
	} {
		l, err := blobstage.ParseURL(c.to)
		if err != nil {
			t.Fatal(err)
		}
		if got := OutputPath(c.pattern, l); got != c.want {
			t.Errorf("OutputPath(%q, %q) = %q, want %q", c.pattern, c.to, got, c.want)
		}
	}
}

// TestPrefixInputLayout runs the command line of a task with a prefix
// input the way a node would: the files Batch downloads with their full
// blob names end up where the local backend puts them.
func TestPrefixInputLayout(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	src := `apiVersion: bmc/v1
kind: Workload
name: pre
pool: {id: p}
tasks:
  - id: r
    inputs:
      - {from: "az://ccc/runs/r1/", path: metrics}
      - {from: "az://ccc/", path: .}
    run: cat metrics/a.json metrics/sub/b.json > got.txt; cat runs/r1/a.json >> got.txt
  - id: missing
    inputs:
      - {from: "az://ccc/none/", path: m}
    run: "true"
`
	_, m := mapOne(t, src, fakeLocator{}, MapOptions{})
	for _, tk := range m.Tasks {
		wd := t.TempDir()
		// What Batch downloads: blobs with full names under filePath.
		for _, rf := range tk.ResourceFiles {
			if rf.BlobPrefix == "none/" {
				continue
			}
			for name, body := range map[string]string{"runs/r1/a.json": "A\n", "runs/r1/sub/b.json": "B\n", "other/x": "X\n"} {
				if !strings.HasPrefix(name, rf.BlobPrefix) {
					continue
				}
				p := filepath.Join(wd, rf.FilePath, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(body), 0o644)
			}
		}
		argv, err := SplitCommandLine(tk.CommandLine)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = wd
		out, err := cmd.CombinedOutput()
		switch tk.ID {
		case "r":
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got, _ := os.ReadFile(filepath.Join(wd, "got.txt"))
			if string(got) != "A\nB\nA\n" {
				t.Errorf("got.txt %q", got)
			}
			if _, err := os.Stat(filepath.Join(wd, prefixDir)); err == nil {
				t.Error(prefixDir + " left in the working directory")
			}
		case "missing":
			if err == nil || !strings.Contains(string(out), "az://ccc/none/: not found") {
				t.Errorf("a prefix with no blobs: %v\n%s", err, out)
			}
		}
	}
}

// fanIn is a program with a matrix group of n members and a task that
// waits for the whole group, plus one that waits for the group and a task.
func fanIn(n int) *compiler.Program {
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: "fan", Pool: &compiler.Pool{ID: "p"}}
	g := compiler.Group{ID: "work"}
	for i := range n {
		id := fmt.Sprintf("work-%d", i)
		prog.Tasks = append(prog.Tasks, compiler.Task{ID: id, Group: "work", Run: "true", Slots: 1})
		g.Members = append(g.Members, id)
	}
	prog.Tasks = append(prog.Tasks,
		compiler.Task{ID: "solo", Run: "true", Slots: 1},
		compiler.Task{ID: "gather", Run: "true", Slots: 1, DependsOnGroups: []string{"work"}},
		compiler.Task{ID: "both", Run: "true", Slots: 1, DependsOn: []string{"solo"}, DependsOnGroups: []string{"work"}},
	)
	prog.Groups = []compiler.Group{g}
	return prog
}

// checkEquivalent checks that every dependsOn list fits the limit and
// that, seen through the barriers, each task waits for exactly what the
// plan says.
func checkEquivalent(t *testing.T, plan *planner.Plan, m *Mapping, limit int) {
	t.Helper()
	byID := map[string]*BatchTaskCreateOptions{}
	for i := range m.Tasks {
		tk := &m.Tasks[i]
		byID[tk.ID] = tk
		if tk.DependsOn != nil {
			if c := depCost(tk.DependsOn.TaskIDs); c > limit {
				t.Errorf("%s: dependency list of %d characters, limit %d", tk.ID, c, limit)
			}
		}
	}
	memo := map[string][]string{}
	var expand func(id string) []string
	expand = func(id string) []string {
		if !IsBarrier(id) {
			return []string{id}
		}
		if r, ok := memo[id]; ok {
			return r
		}
		var out []string
		for _, d := range byID[id].DependsOn.TaskIDs {
			out = append(out, expand(d)...)
		}
		memo[id] = out
		return out
	}
	for i, pt := range plan.Program.Tasks {
		want := slices.Clone(pt.DependsOn)
		for _, gi := range plan.Graph.GroupDeps[i] {
			for _, mi := range plan.Graph.Members[gi] {
				want = append(want, plan.Program.Tasks[mi].ID)
			}
		}
		var got []string
		if d := byID[pt.ID].DependsOn; d != nil {
			for _, id := range d.TaskIDs {
				got = append(got, expand(id)...)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("%s waits for %d tasks through the barriers, want %d", pt.ID, len(got), len(want))
		}
	}
}

// TestBarriers100k: a task waiting for a matrix group of 100,000 members
// waits on a barrier tree whose every list fits Batch's limit, and means
// the same as the plan.
func TestBarriers100k(t *testing.T) {
	prog := fanIn(100_000)
	plan := planner.New(prog, Capabilities(nil), nil)
	m, err := Map(plan, &executor.RunInfo{ID: "fan-1", Workload: "fan"}, fakeLocator{}, MapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Barriers == 0 || m.Barriers > 40 {
		t.Errorf("%d barriers for a fan-in of 100,000", m.Barriers)
	}
	if got := len(m.Tasks) - m.Barriers; got != len(prog.Tasks) {
		t.Errorf("%d plan tasks mapped, want %d", got, len(prog.Tasks))
	}
	// One barrier tree for the group, shared by both dependents.
	g, b := m.Tasks[100_001], m.Tasks[100_002]
	if g.DependsOn == nil || len(g.DependsOn.TaskIDs) != 1 || !IsBarrier(g.DependsOn.TaskIDs[0]) ||
		!slices.Equal(b.DependsOn.TaskIDs, []string{"solo", g.DependsOn.TaskIDs[0]}) {
		t.Errorf("gather %+v, both %+v", g.DependsOn, b.DependsOn)
	}
	checkEquivalent(t, plan, m, MaxDependencyChars)
	for _, tk := range m.Tasks[len(prog.Tasks):] {
		if len(tk.ID) > 64 || !validID(tk.ID) {
			t.Errorf("barrier id %q", tk.ID)
		}
	}
}

// TestBarrierTree: with a tiny limit the barriers nest several levels
// deep, and a long list of plain dependencies gets a tree of its own.
func TestBarrierTree(t *testing.T) {
	prog := fanIn(50)
	var deps []string
	for i := range 30 {
		deps = append(deps, fmt.Sprintf("work-%d", i))
	}
	prog.Tasks = append(prog.Tasks, compiler.Task{ID: "many", Run: "true", Slots: 1, DependsOn: deps})
	plan := planner.New(prog, Capabilities(nil), nil)
	const limit = 100
	m, err := Map(plan, &executor.RunInfo{ID: "fan-1", Workload: "fan"}, fakeLocator{}, MapOptions{DependencyChars: limit})
	if err != nil {
		t.Fatal(err)
	}
	levels := map[string]bool{}
	for _, tk := range m.Tasks[len(prog.Tasks):] {
		parts := strings.Split(tk.ID, "-")
		levels[parts[len(parts)-2]] = true
	}
	if len(levels) < 3 {
		t.Errorf("barrier levels %v; want at least 3 with a limit of %d", levels, limit)
	}
	checkEquivalent(t, plan, m, limit)

	// Small fan-ins stay inline.
	m, err = Map(plan, &executor.RunInfo{ID: "fan-1", Workload: "fan"}, fakeLocator{}, MapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Barriers != 0 {
		t.Errorf("%d barriers under the real limit", m.Barriers)
	}
	checkEquivalent(t, plan, m, MaxDependencyChars)
}

func TestBarrierIDTaken(t *testing.T) {
	prog := fanIn(10)
	prog.Tasks = append(prog.Tasks, compiler.Task{ID: barrierID("g-work", 0, 0), Run: "true", Slots: 1})
	plan := planner.New(prog, Capabilities(nil), nil)
	_, err := Map(plan, &executor.RunInfo{ID: "fan-1", Workload: "fan"}, fakeLocator{}, MapOptions{DependencyChars: 20})
	if err == nil || !strings.Contains(err.Error(), "is taken") {
		t.Errorf("err = %v", err)
	}
}

func TestBarrierIDLength(t *testing.T) {
	long := strings.Repeat("g", 64)
	a, b := barrierID("g-"+long, 3, 12), barrierID("g-"+long+"x", 3, 12)
	if len(a) > 64 || a == b || !validID(a) {
		t.Errorf("%q %q", a, b)
	}
}

// The run record staged for the node holds the finalize step's secrets,
// which it needs, and no task's.
func TestNodeProgramKeepsOnlyFinalizeSecrets(t *testing.T) {
	p := compile(t, `apiVersion: bmc/v1
kind: Workload
name: w
pool: {id: p}
tasks:
  - id: a
    run: "true"
    inputs: [{from: "https://acct.example/c/a.txt?sv=1&sig=TASKSECRET", path: a.txt}]
finalize:
  run: "true"
  env: {UPLOAD: "https://acct.example/c/summary.json?sv=1&sig=STEPSECRET"}
`, nil)
	np, _ := nodeProgram(p)
	b, err := json.Marshal(np)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "TASKSECRET") || !strings.Contains(string(b), "sig=REDACTED") {
		t.Errorf("a task's signature was staged for the node: %s", b)
	}
	if !strings.Contains(string(b), "STEPSECRET") {
		t.Errorf("the finalize step lost its signature: %s", b)
	}
	if p.Tasks[0].Inputs[0].From != "https://acct.example/c/a.txt?sv=1&sig=TASKSECRET" {
		t.Errorf("the program itself was changed: %q", p.Tasks[0].Inputs[0].From)
	}
	plain := compile(t, "apiVersion: bmc/v1\nkind: Workload\nname: w\ntasks: [{id: a, run: 'true'}]\n", nil)
	if np, cb := nodeProgram(plain); np != plain || cb != nil {
		t.Error("a program without secrets was copied")
	}
}
