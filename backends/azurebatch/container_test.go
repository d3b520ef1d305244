package azurebatch

// Batch runs a task in a container exactly when its pool has a container
// configuration: every task of such a pool, barriers and the job manager
// task included, needs containerSettings, and no task of another pool may
// have them.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

const (
	shellImage = "example.io/tools:1"
	argvImage  = "example.io/distroless:1"
)

// boxed puts every task of prog in image.
func boxed(prog *compiler.Program, image string) *compiler.Program {
	for i := range prog.Tasks {
		prog.Tasks[i].Container = &compiler.Container{Image: image}
	}
	return prog
}

// TestCheckContainers: plan checks refuse what Batch would fail on the
// node: tasks on the host beside tasks in containers, and barriers or a
// finalize step on the pool with no image known to have /bin/bash.
func TestCheckContainers(t *testing.T) {
	task := func(id, image string, argv bool) compiler.Task {
		tk := compiler.Task{ID: id, Run: "true", Slots: 1}
		if argv {
			tk.Run, tk.Command = "", []string{"tool", "x"}
		}
		if image != "" {
			tk.Container = &compiler.Container{Image: image}
		}
		return tk
	}
	for _, c := range []struct {
		name  string
		tasks []compiler.Task
		opt   CheckOptions
		want  string // a fragment of the one error; "" for none
	}{
		{"none", []compiler.Task{task("a", "", false), task("b", "", true)}, CheckOptions{JobManager: true}, ""},
		{"all", []compiler.Task{task("a", shellImage, false), task("b", argvImage, true)}, CheckOptions{JobManager: true}, ""},
		{"one on the host", []compiler.Task{task("a", shellImage, false), task("b", "", true), task("c", shellImage, false)}, CheckOptions{},
			"task b runs on the host, beside tasks in containers (a, c): "},
		{"some on the host", []compiler.Task{task("a", "", false), task("b", "", true), task("c", "", false), task("d", "", false), task("e", shellImage, false)}, CheckOptions{},
			"4 tasks (a, b, c and 1 more) run on the host, beside tasks in containers (e): "},
		{"no shell, finalize here", []compiler.Task{task("a", argvImage, true)}, CheckOptions{}, ""},
		{"no shell, finalize on the pool", []compiler.Task{task("a", argvImage, true)}, CheckOptions{JobManager: true},
			"the finalize step on the pool runs in a container of the image of a task that runs a script"},
	} {
		t.Run(c.name, func(t *testing.T) {
			errs := checksOf(planner.Error, Check(checkProgram(c.tasks...), c.opt))
			switch {
			case c.want == "" && len(errs) > 0:
				t.Errorf("errors %+v", errs)
			case c.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Message, c.want)):
				t.Errorf("errors %+v, want one with %q", errs, c.want)
			}
		})
	}

	// Barriers, too, run in a container with /bin/bash.
	prog := boxed(fanIn(40), argvImage)
	for i := range prog.Tasks {
		prog.Tasks[i].Run, prog.Tasks[i].Command = "", []string{"tool"}
	}
	errs := checksOf(planner.Error, Check(prog, CheckOptions{DependencyChars: 100}))
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "barrier") {
		t.Errorf("errors %+v, want one about barriers", errs)
	}
}

// TestMapContainerPool: on a pool with containers, the barriers and the
// job manager task run in the image of a task that runs a script, with a
// command that needs nothing but /bin/bash; the pool bmc creates has a
// container configuration even when no image is known before the run.
func TestMapContainerPool(t *testing.T) {
	spec := loadSpec(t)
	prog := boxed(fanIn(40), shellImage)
	prog.Tasks[0].Container.Image = argvImage
	prog.Tasks[0].Run, prog.Tasks[0].Command = "", []string{"tool"}
	prog.Pool = checkProgram().Pool
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "fan-run", Workload: prog.Name}
	jm := &BatchJobManagerTask{ID: FinalizeTaskID, CommandLine: ScriptCommandLine("exec ./bmc finalize --watch", FinalizeTaskID)}
	m, err := Map(plan, run, fakeLocator{}, MapOptions{DependencyChars: 100, JobManager: jm})
	if err != nil {
		t.Fatal(err)
	}
	if m.Barriers == 0 {
		t.Fatal("no barriers: the test needs some")
	}
	for _, tk := range m.Tasks {
		cs := tk.ContainerSettings
		switch {
		case cs == nil:
			t.Errorf("task %s has no containerSettings", tk.ID)
		case IsBarrier(tk.ID) && (cs.ImageName != shellImage || tk.CommandLine != "/bin/bash -c true"):
			t.Errorf("barrier %s: image %s, command line %q", tk.ID, cs.ImageName, tk.CommandLine)
		}
		b, err := marshal(tk)
		if err != nil {
			t.Fatal(err)
		}
		spec.mustValidate(t, "BatchTaskCreateOptions", b, true)
	}
	if cs := m.Job.JobManagerTask.ContainerSettings; cs == nil || cs.ImageName != shellImage {
		t.Errorf("job manager task containerSettings %+v", cs)
	}
	b, err := marshal(m.Job)
	if err != nil {
		t.Fatal(err)
	}
	spec.mustValidate(t, "BatchJobCreateOptions", b, true)

	// Images known only when the run starts are not prefetched, but the
	// pool still runs containers.
	prog = boxed(checkProgram(compiler.Task{ID: "a", Run: "true", Slots: 1}), "example.io/tools:${{ run.id }}")
	po, err := PoolOptions(prog, "")
	if err != nil {
		t.Fatal(err)
	}
	if cc := po.VirtualMachineConfiguration.ContainerConfiguration; cc == nil || cc.Type != ContainerTypeDockerCompatible || len(cc.ContainerImageNames) != 0 {
		t.Errorf("container configuration %+v", cc)
	}

	// Tasks on the host beside tasks in containers are refused.
	prog = fanIn(3)
	prog.Tasks[1].Container = &compiler.Container{Image: shellImage}
	if _, err := Map(planner.New(prog, Capabilities(prog.Pool), nil), run, fakeLocator{}, MapOptions{}); err == nil || !strings.Contains(err.Error(), "beside tasks in containers") {
		t.Errorf("mixed: %v", err)
	}
}

// TestEmulatorContainerRun runs a fan-in whose tasks are all in
// containers, behind barriers, on a pool bmc creates: the emulator, as
// Batch, fails any task whose containerSettings do not go with the pool.
func TestEmulatorContainerRun(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	prog := boxed(fanIn(30), shellImage)
	prog.Name = "boxed"
	prog.Pool = &compiler.Pool{ID: "boxes", VMSize: "Standard_D4s_v5", SlotsPerNode: 4, Dedicated: 2,
		Image: &compiler.Image{Publisher: "canonical", Offer: "ubuntu-24_04-lts", SKU: "server"}, NodeAgentSKU: "batch.node.ubuntu 24.04"}
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "boxed-run", Workload: prog.Name}
	var stats SubmitStats
	be := NewBackend(BackendOptions{Client: e.c, DependencyChars: 100, OnSubmitted: func(s SubmitStats) { stats = s }})
	// A barrier Batch fails leaves its dependents waiting for ever: the
	// run is given a bound, and the tasks Batch failed are named.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	o, err := executor.RunNative(ctx, plan, be, run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond})
	for tk, lerr := range e.c.ListTasks(t.Context(), run.ID, ListOptions{Filter: "state eq 'completed'"}) {
		if lerr != nil {
			t.Fatal(lerr)
		}
		if ei := tk.ExecutionInfo; ei != nil && ei.FailureInfo != nil {
			t.Errorf("Batch failed %s: %s: %s", tk.ID, ei.FailureInfo.Code, ei.FailureInfo.Message)
		}
	}
	if err != nil {
		t.Fatalf("the run did not end: %v", err)
	}
	if stats.Barriers == 0 {
		t.Fatal("no barriers: the test needs some")
	}
	for i, tk := range o.Tasks {
		if tk.State != executor.Succeeded {
			t.Errorf("%s: %s %s", prog.Tasks[i].ID, tk.State, tk.Reason)
		}
	}
}

// TestEnsurePoolContainers: a pool that exists must have a container
// configuration exactly when the run's tasks run in containers.
func TestEnsurePoolContainers(t *testing.T) {
	e := newEmu(t, emulator.Options{Instant: true})
	e.pool(t, "plain", 1, 4)
	ctx := t.Context()
	err := e.c.CreatePool(ctx, BatchPoolCreateOptions{
		ID: "boxes", VMSize: "Standard_D4s_v5",
		VirtualMachineConfiguration: &VirtualMachineConfiguration{
			ImageReference:         BatchVMImageReference{Publisher: "canonical", Offer: "ubuntu-24_04-lts", SKU: "server", Version: "latest"},
			NodeAgentSKUID:         "batch.node.ubuntu 24.04",
			ContainerConfiguration: &BatchContainerConfiguration{Type: ContainerTypeDockerCompatible}},
		TargetDedicatedNodes: Ptr(int32(1)), TaskSlotsPerNode: Ptr(int32(4)),
	})
	if err != nil {
		t.Fatal(err)
	}
	be := NewBackend(BackendOptions{Client: e.c})
	prog := func(pool string, image string) *compiler.Program {
		p := checkProgram(compiler.Task{ID: "a", Run: "true", Slots: 1}, compiler.Task{ID: "b", Run: "true", Slots: 1})
		p.Pool = &compiler.Pool{ID: pool}
		if image != "" {
			boxed(p, image)
		}
		return p
	}
	for _, c := range []struct {
		pool, image string
		want        string // a fragment of the error; "" for none
	}{
		{"plain", "", ""},
		{"boxes", shellImage, ""},
		{"plain", shellImage, "pool plain exists with containerConfiguration none, but the spec asks for one (tasks a, b run in containers)"},
		{"boxes", "", "pool boxes exists with containerConfiguration dockerCompatible, but the spec asks for none"},
	} {
		err := be.EnsurePool(ctx, prog(c.pool, c.image))
		var pm *PoolMismatchError
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s, image %q: %v", c.pool, c.image, err)
		case c.want != "" && (!errorsAs(err, &pm) || pm.Field != "containerConfiguration" || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s, image %q: %v, want an error with %q", c.pool, c.image, err, c.want)
		}
	}
}
