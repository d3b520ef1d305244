package planner

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/google/go-cmp/cmp"
)

func compile(t *testing.T, src string) *compiler.Program {
	t.Helper()
	p, diags := compiler.Compile("spec.yaml", []byte(src), compiler.Options{})
	if len(diags) > 0 {
		t.Fatalf("compile: %v", diags)
	}
	return p
}

// index maps task ids to their index in the program.
func index(t *testing.T, p *compiler.Program) map[string]int32 {
	t.Helper()
	m := make(map[string]int32, len(p.Tasks))
	for i, tk := range p.Tasks {
		m[tk.ID] = int32(i)
	}
	return m
}

func ids(p *compiler.Program, idx []int32) []string {
	var out []string
	for _, i := range idx {
		out = append(out, p.Tasks[i].ID)
	}
	slices.Sort(out)
	return out
}

// chainSpec: a three-task chain a→b→c, an independent root x, and y
// joining a and x.
const chainSpec = `apiVersion: bmc/v1
kind: Workload
name: chain
tasks:
  - {id: x, run: "true"}
  - {id: y, run: "true", dependsOn: [a, x]}
  - {id: a, run: "true"}
  - {id: b, run: "true", dependsOn: [a]}
  - {id: c, run: "true", dependsOn: [b]}
`

// fanSpec: prep fans out to a three-member matrix group, merge fans in on
// the group, publish follows merge.
const fanSpec = `apiVersion: bmc/v1
kind: Workload
name: fan
params:
  s: {default: [s1, s2, s3]}
tasks:
  - {id: prep, run: "true"}
  - id: work
    matrix: {s: "${{ params.s }}"}
    dependsOn: [prep]
    run: echo ${{ matrix.s }}
  - {id: merge, run: "true", dependsOn: [work]}
  - {id: publish, run: "true", dependsOn: [merge]}
  - {id: side, run: "true"}
`

func TestLevelsPrioritiesCriticalPath(t *testing.T) {
	tests := []struct {
		name     string
		spec     string
		levels   []int
		priority map[string]int32
		level    map[string]int32
		critical []string
	}{
		{
			name:     "chain",
			spec:     chainSpec,
			levels:   []int{2, 2, 1},
			priority: map[string]int32{"a": 3, "b": 2, "c": 1, "x": 2, "y": 1},
			level:    map[string]int32{"a": 0, "b": 1, "c": 2, "x": 0, "y": 1},
			critical: []string{"a", "b", "c", compiler.FinalizeID},
		},
		{
			name:   "fan",
			spec:   fanSpec,
			levels: []int{2, 3, 1, 1},
			priority: map[string]int32{
				"prep": 4, "work-s1": 3, "work-s2": 3, "work-s3": 3, "merge": 2, "publish": 1, "side": 1,
			},
			level: map[string]int32{
				"prep": 0, "work-s1": 1, "work-s2": 1, "work-s3": 1, "merge": 2, "publish": 3, "side": 0,
			},
			// Ties between the members are broken by program order.
			critical: []string{"prep", "work-s1", "merge", "publish", compiler.FinalizeID},
		},
		{
			name: "longest chain wins over the first root",
			spec: `apiVersion: bmc/v1
kind: Workload
name: roots
tasks:
  - {id: a-short, run: "true"}
  - {id: z-long1, run: "true"}
  - {id: z-long2, run: "true", dependsOn: [z-long1]}
  - {id: z-long3, run: "true", dependsOn: [z-long2]}
  - {id: a-short2, run: "true", dependsOn: [a-short]}
`,
			levels:   []int{2, 2, 1},
			priority: map[string]int32{"a-short": 2, "a-short2": 1, "z-long1": 3, "z-long2": 2, "z-long3": 1},
			level:    map[string]int32{"a-short": 0, "a-short2": 1, "z-long1": 0, "z-long2": 1, "z-long3": 2},
			critical: []string{"z-long1", "z-long2", "z-long3", compiler.FinalizeID},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog := compile(t, tt.spec)
			p := New(prog, Capabilities{Name: "local", Slots: 4}, nil)
			if diff := cmp.Diff(tt.levels, p.Levels); diff != "" {
				t.Errorf("Levels (-want +got):\n%s", diff)
			}
			gotPrio, gotLevel := map[string]int32{}, map[string]int32{}
			for i, tk := range prog.Tasks {
				gotPrio[tk.ID] = p.Graph.Priority[i]
				gotLevel[tk.ID] = p.Graph.Level[i]
			}
			if diff := cmp.Diff(tt.priority, gotPrio); diff != "" {
				t.Errorf("Priority (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.level, gotLevel); diff != "" {
				t.Errorf("Level (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.critical, p.CriticalPath); diff != "" {
				t.Errorf("CriticalPath (-want +got):\n%s", diff)
			}
			if p.Tasks != len(prog.Tasks) || p.ToRun != len(prog.Tasks) || len(p.Skip) != 0 {
				t.Errorf("Tasks=%d ToRun=%d Skip=%v, want %d, %d, none", p.Tasks, p.ToRun, p.Skip, len(prog.Tasks), len(prog.Tasks))
			}
			// Priority is one more than the best dependent's, wherever
			// the edge comes from: the invariant the scheduler relies on.
			for i := range prog.Tasks {
				want := int32(1)
				for _, d := range p.Graph.Dependents[i] {
					want = max(want, p.Graph.Priority[d]+1)
				}
				if gi := p.Graph.Group[i]; gi >= 0 {
					for _, d := range p.Graph.GroupDependents[gi] {
						want = max(want, p.Graph.Priority[d]+1)
					}
				}
				if p.Graph.Priority[i] != want {
					t.Errorf("%s: priority %d, want %d", prog.Tasks[i].ID, p.Graph.Priority[i], want)
				}
			}
		})
	}
}

// TestGroupEdges checks that a fan-in on a matrix group is one group edge,
// not an edge per member.
func TestGroupEdges(t *testing.T) {
	prog := compile(t, fanSpec)
	p := New(prog, Capabilities{Name: "local"}, nil)
	g, idx := p.Graph, index(t, prog)

	if diff := cmp.Diff([]GroupInfo{{ID: "work", Members: 3}}, p.Groups); diff != "" {
		t.Errorf("Groups (-want +got):\n%s", diff)
	}
	if len(g.Members) != 1 {
		t.Fatalf("%d groups, want 1", len(g.Members))
	}
	if got := ids(prog, g.Members[0]); !slices.Equal(got, []string{"work-s1", "work-s2", "work-s3"}) {
		t.Errorf("members %v", got)
	}
	merge := idx["merge"]
	if len(g.Deps[merge]) != 0 {
		t.Errorf("merge has task edges %v; want only the group edge", ids(prog, g.Deps[merge]))
	}
	if !slices.Equal(g.GroupDeps[merge], []int32{0}) {
		t.Errorf("merge GroupDeps = %v, want [0]", g.GroupDeps[merge])
	}
	if got := ids(prog, g.GroupDependents[0]); !slices.Equal(got, []string{"merge"}) {
		t.Errorf("GroupDependents = %v, want [merge]", got)
	}
	for _, m := range []string{"work-s1", "work-s2", "work-s3"} {
		i := idx[m]
		if g.Group[i] != 0 {
			t.Errorf("%s: Group = %d, want 0", m, g.Group[i])
		}
		if len(g.Dependents[i]) != 0 {
			t.Errorf("%s has per-member dependents %v", m, ids(prog, g.Dependents[i]))
		}
		if got := ids(prog, g.Deps[i]); !slices.Equal(got, []string{"prep"}) {
			t.Errorf("%s deps = %v, want [prep]", m, got)
		}
	}
	if got := ids(prog, g.Dependents[idx["prep"]]); !slices.Equal(got, []string{"work-s1", "work-s2", "work-s3"}) {
		t.Errorf("prep dependents = %v", got)
	}
	for _, id := range []string{"prep", "merge", "publish", "side"} {
		if g.Group[idx[id]] != -1 {
			t.Errorf("%s: Group = %d, want -1", id, g.Group[idx[id]])
		}
	}
	// The edge count grows with the members, not members × dependents.
	edges := 0
	for i := range prog.Tasks {
		edges += len(g.Deps[i]) + len(g.GroupDeps[i])
	}
	if edges != 5 { // 3 × prep, 1 group edge, publish→merge
		t.Errorf("%d edges, want 5", edges)
	}
}

func TestResumeSkipsDone(t *testing.T) {
	prog := compile(t, chainSpec)
	idx := index(t, prog)
	p := New(prog, Capabilities{Name: "local"}, map[string]bool{"a": true, "x": true, "unknown": true})
	if p.ToRun != 3 {
		t.Errorf("ToRun = %d, want 3", p.ToRun)
	}
	skip := slices.Clone(p.Skip)
	slices.Sort(skip)
	if !slices.Equal(skip, []string{"a", "x"}) {
		t.Errorf("Skip = %v, want [a x]", p.Skip)
	}
	for id, i := range idx {
		if want := id == "a" || id == "x"; p.Done[i] != want {
			t.Errorf("Done[%s] = %v, want %v", id, p.Done[i], want)
		}
	}
	// Done tasks still count towards the plan's shape.
	if p.Tasks != 5 || !slices.Equal(p.Levels, []int{2, 2, 1}) {
		t.Errorf("Tasks=%d Levels=%v", p.Tasks, p.Levels)
	}
}

func TestOnly(t *testing.T) {
	prog := compile(t, fanSpec)
	before := len(prog.Tasks)
	taskIDs := func(p *compiler.Program) []string {
		var out []string
		for _, tk := range p.Tasks {
			out = append(out, tk.ID)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		names  []string
		tasks  []string
		groups []compiler.Group
	}{
		{[]string{"merge"}, []string{"merge", "prep", "work-s1", "work-s2", "work-s3"}, []compiler.Group{{ID: "work", Members: []string{"work-s1", "work-s2", "work-s3"}}}},
		{[]string{"publish"}, []string{"merge", "prep", "publish", "work-s1", "work-s2", "work-s3"}, []compiler.Group{{ID: "work", Members: []string{"work-s1", "work-s2", "work-s3"}}}},
		{[]string{"work"}, []string{"prep", "work-s1", "work-s2", "work-s3"}, []compiler.Group{{ID: "work", Members: []string{"work-s1", "work-s2", "work-s3"}}}},
		{[]string{"work-s2"}, []string{"prep", "work-s2"}, []compiler.Group{{ID: "work", Members: []string{"work-s2"}}}},
		{[]string{"side", "prep"}, []string{"prep", "side"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.names, ","), func(t *testing.T) {
			out, err := Only(prog, tt.names)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.tasks, taskIDs(out)); diff != "" {
				t.Errorf("tasks (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.groups, out.Groups); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
			if out.Finalize.ID != compiler.FinalizeID {
				t.Errorf("finalize dropped: %+v", out.Finalize)
			}
			// The narrowed program still plans: every kept dependency
			// resolves and the group edge survives.
			p := New(out, Capabilities{Name: "local"}, nil)
			if p.Tasks != len(tt.tasks) {
				t.Errorf("plan has %d tasks, want %d", p.Tasks, len(tt.tasks))
			}
			for i, tk := range out.Tasks {
				if len(p.Graph.Deps[i]) != len(tk.DependsOn) || len(p.Graph.GroupDeps[i]) != len(tk.DependsOnGroups) {
					t.Errorf("%s: edges %v/%v, want %v/%v", tk.ID, p.Graph.Deps[i], p.Graph.GroupDeps[i], tk.DependsOn, tk.DependsOnGroups)
				}
			}
		})
	}
	if len(prog.Tasks) != before || len(prog.Groups) != 1 {
		t.Errorf("Only changed its input: %d tasks, %d groups", len(prog.Tasks), len(prog.Groups))
	}

	t.Run("unknown", func(t *testing.T) {
		_, err := Only(prog, []string{"wor"})
		if err == nil {
			t.Fatal("Only(wor) succeeded")
		}
		for _, want := range []string{"--only wor", "no task or matrix group", "similar: work-s1, work-s2, work-s3"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		_, err = Only(prog, []string{"nothing-like-it"})
		if err == nil || strings.Contains(err.Error(), "similar") {
			t.Errorf("Only(nothing-like-it) = %v, want an error without suggestions", err)
		}
	})
}

const checkSpec = `apiVersion: bmc/v1
kind: Workload
name: checks
packages:
  - {name: aligner, version: 2.1.0}
  - {name: Tools}
tasks:
  - {id: wide, run: "true", slots: 4}
  - {id: narrow, run: "true"}
  - id: boxed
    run: "true"
    container: {image: myacr.azurecr.io/aligner:2.1}
  - id: boxed2
    run: "true"
    container: {image: myacr.azurecr.io/aligner:2.1}
  - {id: align, run: "true", packages: [aligner]}
  - {id: tools, run: "true", packages: [Tools]}
`

func TestChecks(t *testing.T) {
	prog := compile(t, checkSpec)
	all := map[string][]string{"aligner": {"2.1.0"}, "tools": {""}}
	tests := []struct {
		name string
		caps Capabilities
		want []Check
	}{
		{
			name: "everything fits",
			caps: Capabilities{Name: "big", Slots: 8, Containers: true, Packages: true, AvailablePackages: all},
		},
		{
			name: "slots over capacity",
			caps: Capabilities{Name: "local", Slots: 2, Containers: true, Packages: true, AvailablePackages: all},
			want: []Check{{Severity: Error, Task: "wide", Message: "task takes 4 slots; the local backend has 2 (--slots 4 or more runs it)"}},
		},
		{
			name: "max task slots wins over slots",
			caps: Capabilities{Name: "batch", Slots: 2, MaxTaskSlots: 4, Containers: true, Packages: true, AvailablePackages: all},
		},
		{
			name: "max task slots too small",
			caps: Capabilities{Name: "batch", Slots: 16, MaxTaskSlots: 3, Containers: true, Packages: true, AvailablePackages: all},
			want: []Check{{Severity: Error, Task: "wide", Message: "task takes 4 slots; the batch backend has 3"}},
		},
		{
			name: "unknown slots",
			caps: Capabilities{Name: "batch", Containers: true, Packages: true, AvailablePackages: all},
		},
		{
			name: "containers on a backend without them",
			caps: Capabilities{Name: "local", Slots: 8, Packages: true, AvailablePackages: all},
			want: []Check{{Severity: Warning, Task: "", Message: "2 task(s) name a container; the local backend runs them on the host"}},
		},
		{
			name: "missing packages",
			caps: Capabilities{Name: "local", Slots: 8, Containers: true, Packages: true, AvailablePackages: map[string][]string{}},
			want: []Check{
				{Severity: Error, Task: "", Message: "package Tools is not available on the local backend: give it with --package Tools=DIR"},
				{Severity: Error, Task: "", Message: "package aligner@2.1.0 is not available on the local backend: give it with --package aligner@2.1.0=DIR"},
			},
		},
		{
			name: "wrong version",
			caps: Capabilities{Name: "local", Slots: 8, Containers: true, Packages: true, AvailablePackages: map[string][]string{"aligner": {"1.0"}, "tools": {"3"}}},
			want: []Check{{Severity: Error, Task: "", Message: "package aligner@2.1.0 is not available on the local backend: give it with --package aligner@2.1.0=DIR"}},
		},
		{
			name: "a version-less package serves any version",
			caps: Capabilities{Name: "local", Slots: 8, Containers: true, Packages: true, AvailablePackages: map[string][]string{"aligner": {""}, "tools": {""}}},
		},
		{
			name: "backend that resolves packages itself",
			caps: Capabilities{Name: "batch", Slots: 8, Containers: true, Packages: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(prog, tt.caps, nil)
			if diff := cmp.Diff(tt.want, p.Checks); diff != "" {
				t.Errorf("Checks (-want +got):\n%s", diff)
			}
			var errs []Check
			for _, c := range tt.want {
				if c.Severity == Error {
					errs = append(errs, c)
				}
			}
			if diff := cmp.Diff(errs, p.Errors()); diff != "" {
				t.Errorf("Errors (-want +got):\n%s", diff)
			}
		})
	}
}

// Outputs every member of a matrix group uploads to one place are warned
// of; those that name the member or the task, patterns with wildcards,
// single-member groups and plain tasks are not.
func TestWarnings(t *testing.T) {
	// The compiler finds the hazards; the plan shows them, with their
	// places, as warnings.
	prog := compile(t, `apiVersion: bmc/v1
kind: Workload
name: shared
tasks:
  - id: pair
    matrix: {s: [a, b]}
    run: echo hi > out.txt
    outputs:
      - {path: out.txt, to: "az://res/pair/out.txt"}
      - {path: out.txt, to: "az://res/${{ matrix.s }}.txt"}
`)
	want := []Check{{Severity: Warning, Task: "", Message: "every member of matrix task pair uploads out.txt to az://res/pair/out.txt: " +
		"those that write it overwrite each other's (name the member in to, with ${{ matrix.s }} or ${{ task.id }}, unless that is meant)",
		File: "spec.yaml", Line: 9, Col: 29}}
	p := New(prog, Capabilities{Name: "local", Slots: 2}, nil)
	if diff := cmp.Diff(want, p.Checks); diff != "" {
		t.Errorf("Checks (-want +got):\n%s", diff)
	}
	if len(p.Errors()) != 0 {
		t.Errorf("Errors: %v, want none: a shared output is only a warning", p.Errors())
	}
}

// TestChecksPoolSlotsLocal: on the local backend, a task wider than a
// node of the spec's pool runs, with a warning that Batch never would.
func TestChecksPoolSlotsLocal(t *testing.T) {
	prog := compile(t, `apiVersion: bmc/v1
kind: Workload
name: w
pool: {id: p, slotsPerNode: 2}
tasks:
  - {id: wide, run: "true", slots: 3}
  - {id: fits, run: "true", slots: 2}
`)
	got := check(prog, Capabilities{Name: "local", Slots: 4})
	want := []Check{{Severity: Warning, Task: "wide", Message: "task takes 3 slots, more than the 2 of a node of pool p (slotsPerNode): on Azure Batch it would never start"}}
	if !slices.Equal(got, want) {
		t.Errorf("checks %+v, want %+v", got, want)
	}
	// Batch checks the same as an error, once.
	got = check(prog, Capabilities{Name: "azurebatch", NativeDependencies: true, MaxTaskSlots: 2})
	if len(got) != 1 || got[0].Severity != Error || got[0].Task != "wide" {
		t.Errorf("batch checks %+v", got)
	}
}

// TestLocate: checks about a task are placed at the task's id in the
// spec, also after --only; a program read back from JSON has no places.
func TestLocate(t *testing.T) {
	prog := compile(t, `apiVersion: bmc/v1
kind: Workload
name: w
tasks:
  - {id: a, run: "true"}
  - id: wide
    matrix: {i: [1, 2]}
    run: "true"
    slots: 3
`)
	p := New(prog, Capabilities{Name: "local", Slots: 2}, nil)
	p.Locate()
	var got []string
	for _, c := range p.Checks {
		got = append(got, c.Pos()+" "+c.Task)
	}
	want := []string{"spec.yaml:6:9 wide-1", "spec.yaml:6:9 wide-2"}
	if !slices.Equal(got, want) {
		t.Errorf("checks at %q, want %q", got, want)
	}
	only, err := Only(prog, []string{"wide-2"})
	if err != nil {
		t.Fatal(err)
	}
	p = New(only, Capabilities{Name: "local", Slots: 2}, nil)
	p.Locate()
	if len(p.Checks) != 1 || p.Checks[0].Pos() != "spec.yaml:6:9" {
		t.Errorf("after --only: %+v", p.Checks)
	}
	b, err := json.Marshal(prog)
	if err != nil {
		t.Fatal(err)
	}
	var back compiler.Program
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	p = New(&back, Capabilities{Name: "local", Slots: 2}, nil)
	p.Locate()
	if len(p.Checks) != 2 || p.Checks[0].Pos() != "" {
		t.Errorf("read back: %+v", p.Checks)
	}
}

// TestLocatePool: a check of the spec's pool is placed at the pool.
func TestLocatePool(t *testing.T) {
	prog := compile(t, `apiVersion: bmc/v1
kind: Workload
name: w
pool:
  id: p
  slotsPerNode: 2
tasks:
  - {id: a, run: "true"}
`)
	p := New(prog, Capabilities{Name: "local", Slots: 2}, nil)
	p.Checks = append(p.Checks, Check{Severity: Error, Message: "pool p: slotsPerNode 2 is more than Batch allows"}, Check{Severity: Error, Message: "pool q: other"})
	p.Locate()
	if got := p.Checks[0].Pos(); got != "spec.yaml:5:3" {
		t.Errorf("pool check at %q, want spec.yaml:5:3", got)
	}
	if got := p.Checks[1].Pos(); got != "" {
		t.Errorf("a check of another pool placed at %q", got)
	}
}
