package azurebatch

// Mapping a plan to Batch: the pool, the job and one task per plan task,
// plus barrier tasks where a fan-in would make a dependency list longer
// than Batch takes. Everything here is pure: storage URLs come from a
// Locator, files are staged before.

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/internal/filepattern"
	"github.com/bmc-dev/bmc/internal/redact"
	"github.com/bmc-dev/bmc/planner"
)

// MaxDependencyChars bounds the total length of a task's dependsOn ids
// (Batch answers TaskDependencyListTooLong above 64,000 characters). Each
// id counts one more than its length, to leave room for however the
// service counts separators.
const MaxDependencyChars = 64_000

// MaxResourceFilesChars bounds the size of a task's resourceFiles list.
// Batch refuses a task whose list is larger with RequestEntityTooLarge;
// its spec says only that there is a maximum size, the service's own
// message names the number: "Total size of resourceFiles cannot be more
// than 32768 characters". bmc counts the characters of the list's JSON,
// which is at least what the service counts, whichever way it does.
const MaxResourceFilesChars = 32_768

// Metadata names bmc sets on a job.
const (
	MetaRunID     = "bmc.runId"
	MetaWorkload  = "bmc.workload"
	MetaSpecHash  = "bmc.specHash"
	MetaSubmitted = "bmc.submitted" // set last, when every task is added
	MetaStaging   = "bmc.staging"
)

// Values of MetaSubmitted.
const (
	SubmittedAll       = "all"
	SubmittedCancelled = "cancelled"
)

// FinalizeTaskID is the id of the job manager task that runs the finalize
// step on the pool; the compiler keeps it free of user tasks.
const FinalizeTaskID = compiler.FinalizeID

// barrierPrefix starts the ids of barrier tasks.
const barrierPrefix = "bmc-barrier-"

// Locator says how a node reaches blob storage; *Storage is one.
type Locator interface {
	ContainerURL(container string, write bool) (string, *BatchNodeIdentityReference, error)
	BlobURL(container, blob string) (string, *BatchNodeIdentityReference, error)
}

// StagedFile is a local input file bmc uploaded for the nodes.
type StagedFile struct {
	// Rel is the file's slash-separated path below the input when the
	// input is a directory; empty for a single file.
	Rel  string
	Loc  blobstage.Location
	Mode os.FileMode
	// Group, for a file of a directory staged as TreeLayout places it,
	// is the prefix that holds the directory's files of this mode, each
	// at Group joined with Rel. Map brings a group with one resource
	// file, however many files it holds; a file without a group comes
	// with one of its own.
	Group blobstage.Location
}

// TreeLayout is where the files of a local directory input are staged so
// that a task brings the directory with one resource file per file mode
// (Batch's resourceFiles list is limited in size, and a resource file per
// file of a large directory is more than it takes):
//
//	<staging>tree/<tree hash>/<mode>/<rel>
//
// files are the directory's files, each Loc naming its content (as
// Storage.StageFile names it, by its SHA-256); the tree hash covers every
// file's path, mode and content, so that an unchanged directory is staged
// once, whichever run needs it, and a changed one never mixes with its
// old files. The result is files in path order, each with Loc and Group
// set; the caller uploads each file to its Loc. Files with no Rel are no
// directory's and come back unchanged.
func TreeLayout(staging blobstage.Location, files []StagedFile) []StagedFile {
	out := slices.Clone(files)
	if len(out) == 0 || slices.ContainsFunc(out, func(f StagedFile) bool { return f.Rel == "" }) {
		return out
	}
	slices.SortFunc(out, func(a, b StagedFile) int { return strings.Compare(a.Rel, b.Rel) })
	h := sha256.New()
	for _, f := range out {
		fmt.Fprintf(h, "%s\x00%s\x00%s\n", f.Rel, fileMode(f.Mode), f.Loc)
	}
	root := staging.Join("tree/" + hex.EncodeToString(h.Sum(nil)) + "/")
	for i := range out {
		out[i].Group = root.Join(fileMode(out[i].Mode) + "/")
		out[i].Loc = out[i].Group.Join(out[i].Rel)
	}
	return out
}

// StagedDirs are the empty directories of a local directory input. Blob
// storage holds files only, so no resource file brings them: the task's
// first lines make them, as the local backend's copy of the directory
// does.
type StagedDirs struct {
	// Rels are their slash-separated paths below the input, sorted:
	// only directories holding nothing, as making one makes its parents.
	Rels []string
	// List is the blob dirList wrote Rels to, for a task to read them
	// from when they are more, or odder, than its command line should
	// carry (maxInlineDirsChars).
	List blobstage.Location
}

// dirList is the content of StagedDirs.List: each path ended by a NUL
// byte, which no file name holds, as bash's read takes them with an
// empty delimiter.
func dirList(rels []string) []byte {
	var b []byte
	for _, r := range rels {
		b = append(append(b, r...), 0)
	}
	return b
}

// maxInlineDirsChars bounds the command that makes a directory input's
// empty directories when it names them itself; more come as a list the
// task reads (StagedDirs.List), so that however many there are, the
// command line grows by one line. Batch refuses a commandLine longer than
// 32,768 characters (its spec says nothing of it; the service's message,
// as users have quoted it, names the number: "Total size of commandLine
// cannot be more than 32768 characters"), and the task's own script must
// fit there too.
const maxInlineDirsChars = 2048

// emptyDirs collects the directories of a tree that hold nothing, from a
// walk of the tree that reports every entry below its root.
type emptyDirs struct {
	dirs []string
	full map[string]bool
}

// add notes an entry, by its slash-separated path below the root.
func (e *emptyDirs) add(rel string, dir bool) {
	if rel == "." || rel == "" {
		return
	}
	if e.full == nil {
		e.full = map[string]bool{}
	}
	e.full[path.Dir(rel)] = true
	if dir {
		e.dirs = append(e.dirs, rel)
	}
}

// rels are the directories that had no entry, sorted.
func (e *emptyDirs) rels() []string {
	var out []string
	for _, d := range e.dirs {
		if !e.full[d] {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// fileMode is a resource file's fileMode for a file's permission bits.
func fileMode(m os.FileMode) string { return fmt.Sprintf("%04o", m.Perm()) }

// MapOptions are the settings a mapping needs beyond the plan.
type MapOptions struct {
	// Staged are the uploaded local inputs, by the input's from.
	Staged map[string][]StagedFile
	// Dirs are the empty directories of the local directory inputs, by
	// the input's from; an input with none need not be listed.
	Dirs map[string]StagedDirs
	// Logs is an az:// prefix every task's stdout.txt and stderr.txt go
	// to, at executor.TaskLogs, and the finalize step's when it runs on
	// the pool; empty for none.
	Logs string
	// AccountID is the ARM id of the Batch account, which pool package
	// references need; without it packages are referenced by tasks only.
	AccountID string
	// SpecHash identifies the program; it goes into the job's metadata.
	SpecHash string
	// JobManager, when set, runs the finalize step on the pool; Map
	// holds its resource files to Batch's limit as a task's, and, with
	// Logs, adds the upload of the step's logs to its output files.
	JobManager *BatchJobManagerTask
	// DependencyChars is the dependency list limit; zero means
	// MaxDependencyChars (tests make it small).
	DependencyChars int
	// ResourceFilesChars is the limit on a task's resourceFiles list;
	// zero means MaxResourceFilesChars.
	ResourceFilesChars int
}

// ResourceFilesError is a task whose resourceFiles list is larger than
// Batch takes: it would refuse the task with RequestEntityTooLarge. Task
// FinalizeTaskID is the job manager task that runs the finalize step on
// the pool, which brings the step's local inputs, and Batch would refuse
// the job it comes with.
type ResourceFilesError struct {
	Task string
	// Files and Chars are the task's resource files and the size of
	// their list; Limit is what Batch takes.
	Files, Chars, Limit int
	// Inputs counts the task's inputs (the job manager task's: the
	// step's local inputs). Input is the one that brings at least half
	// the list, in InputFiles resource files, if one does.
	Inputs     int
	Input      string
	InputFiles int
	// most is the index of the input that brings the most of the list,
	// -1 for none: where in the spec to point.
	most int
}

func (e *ResourceFilesError) Error() string {
	if e.Task == FinalizeTaskID {
		return "the finalize step: on the pool, " + e.jobManager()
	}
	return fmt.Sprintf("task %s: its %d resource files come to %d characters, more than the %d Batch takes (it would refuse the task with RequestEntityTooLarge); %s: %s",
		e.Task, e.Files, e.Chars, e.Limit, e.source(), fewerInputs)
}

// jobManager says what is wrong with the job manager task's list.
func (e *ResourceFilesError) jobManager() string {
	return fmt.Sprintf("the job manager task that runs it brings %d resource files, which come to %d characters, more than the %d Batch takes (it would refuse the job with RequestEntityTooLarge); %s: %s",
		e.Files, e.Chars, e.Limit, e.source(), fewerFinalizeInputs)
}

// source says where most of the list comes from.
func (e *ResourceFilesError) source() string {
	if e.Input == "" {
		return fmt.Sprintf("they come from %d inputs", e.Inputs)
	}
	return fmt.Sprintf("input %s brings %d of them", e.Input, e.InputFiles)
}

const fewerInputs = "use fewer inputs (the files under one az:// prefix come with one resource file)"

const fewerFinalizeInputs = "use fewer local inputs (a folder's files come with one resource file per file mode; inputs from blob storage or the web the step downloads itself, with none)"

// Mapping is what a run creates on Batch.
type Mapping struct {
	// Pool is the pool to create if it does not exist; its id is empty
	// when the spec gives no pool block to create one from.
	Pool BatchPoolCreateOptions
	Job  BatchJobCreateOptions
	// Tasks are the plan's tasks in plan order, then the barriers.
	Tasks []BatchTaskCreateOptions
	// Barriers is how many of Tasks are barriers.
	Barriers int
	// OutputContainers are the containers tasks write to, which must
	// exist before they run (a container SAS cannot create one).
	OutputContainers []string
}

// SpecHash is the SHA-256 of a program's JSON.
func SpecHash(prog *compiler.Program) string {
	b, _ := json.Marshal(prog)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Map builds the pool, job and tasks of a run. A task (or job manager
// task) Batch would refuse for the size of its resource files is an
// error, a *ResourceFilesError (the first of them): refused before
// anything is created rather than by Batch when the run is half
// submitted.
func Map(plan *planner.Plan, run *executor.RunInfo, loc Locator, opt MapOptions) (*Mapping, error) {
	if err := MixedContainers(plan.Program); err != nil {
		return nil, err
	}
	out, large, err := mapRun(plan, run, loc, opt)
	if err != nil {
		return nil, err
	}
	if len(large) > 0 {
		if len(large) > 1 {
			return nil, fmt.Errorf("%w (and %d more tasks)", large[0], len(large)-1)
		}
		return nil, large[0]
	}
	return out, nil
}

// mapRun is Map, with the tasks whose resource files are too large
// reported apart, all of them.
func mapRun(plan *planner.Plan, run *executor.RunInfo, loc Locator, opt MapOptions) (*Mapping, []*ResourceFilesError, error) {
	prog := plan.Program
	m := &mapper{plan: plan, run: run, loc: loc, opt: opt, outs: map[string]bool{}}
	if m.opt.DependencyChars <= 0 {
		m.opt.DependencyChars = MaxDependencyChars
	}
	if m.opt.ResourceFilesChars <= 0 {
		m.opt.ResourceFilesChars = MaxResourceFilesChars
	}
	out := &Mapping{}
	if prog.Pool == nil || prog.Pool.ID == "" {
		return nil, nil, fmt.Errorf("the azurebatch backend needs a pool: give the spec a pool block, or --pool")
	}
	if prog.Pool.VMSize != "" {
		var err error
		if out.Pool, err = PoolOptions(prog, opt.AccountID); err != nil {
			return nil, nil, err
		}
	}
	out.Job = m.job()
	if err := m.finalizeLogs(out.Job.JobManagerTask); err != nil {
		return nil, nil, err
	}
	m.ids = make(map[string]bool, len(prog.Tasks))
	for _, t := range prog.Tasks {
		m.ids[strings.ToLower(t.ID)] = true
	}
	out.Tasks = make([]BatchTaskCreateOptions, 0, len(prog.Tasks))
	for i := range prog.Tasks {
		bt, err := m.task(i)
		if err != nil {
			return nil, nil, err
		}
		out.Tasks = append(out.Tasks, bt)
	}
	if UsesContainers(prog) {
		if err := m.boxOwn(out); err != nil {
			return nil, nil, err
		}
	}
	if e := m.jobManagerFiles(out.Job.JobManagerTask); e != nil {
		// First: the job it comes with is created before any task.
		m.large = append([]*ResourceFilesError{e}, m.large...)
	}
	out.Tasks = append(out.Tasks, m.barriers...)
	out.Barriers = len(m.barriers)
	for c := range m.outs {
		out.OutputContainers = append(out.OutputContainers, c)
	}
	slices.Sort(out.OutputContainers)
	return out, m.large, nil
}

// UsesContainers reports whether any task of prog runs in a container:
// its pool then needs a container configuration, and every task on it
// containerSettings.
func UsesContainers(prog *compiler.Program) bool {
	return slices.ContainsFunc(prog.Tasks, func(t compiler.Task) bool { return t.Container != nil })
}

// MixedContainers is the error of a program with tasks on the host beside
// tasks in containers, which no one pool runs: Batch requires
// containerSettings of every task on a pool with a container
// configuration, and refuses them on a pool without one.
func MixedContainers(prog *compiler.Program) error {
	var boxed, host []string
	for _, t := range prog.Tasks {
		if t.Container != nil {
			boxed = append(boxed, t.ID)
		} else {
			host = append(host, t.ID)
		}
	}
	if len(boxed) == 0 || len(host) == 0 {
		return nil
	}
	what := "task " + host[0] + " runs"
	if len(host) > 1 {
		what = fmt.Sprintf("%d tasks (%s) run", len(host), idList(host, 3))
	}
	return fmt.Errorf("%s on the host, beside tasks in containers (%s): on Batch every task of a pool with a container configuration runs in a container, and no task of a pool without one does (give every task a container, or none)",
		what, idList(boxed, 3))
}

// barrierInContainer is a barrier's command line on a pool with
// containers, where /bin/true may not be in the image: true is a bash
// builtin, and bmc runs barriers only in an image its scripts run in with
// /bin/bash.
const barrierInContainer = "/bin/bash -c true"

// scriptImage is the image of a task whose command line runs /bin/bash,
// which that image must then hold: the least such by name, so that the
// mapping does not change from run to run; empty when no task in a
// container runs a script.
func scriptImage(tasks []BatchTaskCreateOptions) string {
	img := ""
	for _, t := range tasks {
		if cs := t.ContainerSettings; cs != nil && strings.HasPrefix(t.CommandLine, "/bin/bash ") && (img == "" || cs.ImageName < img) {
			img = cs.ImageName
		}
	}
	return img
}

// errNoScriptImage says why the finalize step on the pool cannot run
// there when the run's tasks are in containers.
var errNoScriptImage = errors.New("the finalize step on the pool runs in a container of the image of a task that runs a script (bmc finalize runs there through /bin/bash), and no task does: give one of them a run: script, or use --finalize-on client")

// boxOwn gives bmc's own tasks, the barriers and the job manager task,
// what a pool with containers requires of every task: containerSettings,
// here the image of one of the run's scripts. The job manager task runs
// the staged bmc, a static linux/amd64 executable that runs in any such
// image.
func (m *mapper) boxOwn(out *Mapping) error {
	img := scriptImage(out.Tasks)
	jm := out.Job.JobManagerTask
	if img == "" {
		switch {
		case len(m.barriers) > 0:
			return fmt.Errorf("the tasks run in containers, and so must bmc's %d barrier tasks (which let a task wait for more tasks than a Batch dependency list holds): they run /bin/bash in the image of a task that runs a script, and no task does (give one of them a run: script)", len(m.barriers))
		case jm != nil:
			return errNoScriptImage
		}
		return nil
	}
	for i := range m.barriers {
		m.barriers[i].CommandLine = barrierInContainer
		m.barriers[i].ContainerSettings = &BatchTaskContainerSettings{ImageName: img}
	}
	if jm != nil {
		jm.ContainerSettings = &BatchTaskContainerSettings{ImageName: img}
	}
	return nil
}

type mapper struct {
	plan     *planner.Plan
	run      *executor.RunInfo
	loc      Locator
	opt      MapOptions
	ids      map[string]bool // task ids, lower case
	barriers []BatchTaskCreateOptions
	groupBar map[string]string // group id -> its root barrier
	outs     map[string]bool
	large    []*ResourceFilesError
	// moves are the moves into place of the task being mapped.
	moves *moveChecks
}

// PoolOptions is the pool the spec's pool block describes.
func PoolOptions(prog *compiler.Program, accountID string) (BatchPoolCreateOptions, error) {
	p := prog.Pool
	if p == nil || p.ID == "" {
		return BatchPoolCreateOptions{}, fmt.Errorf("the azurebatch backend needs a pool: the spec's pool block has no id")
	}
	po := BatchPoolCreateOptions{ID: p.ID, VMSize: p.VMSize}
	if p.VMSize == "" {
		return po, fmt.Errorf("pool %s: no vmSize", p.ID)
	}
	vm := &VirtualMachineConfiguration{NodeAgentSKUID: p.NodeAgentSKU}
	if p.Image != nil {
		vm.ImageReference = BatchVMImageReference{Publisher: p.Image.Publisher, Offer: p.Image.Offer, SKU: p.Image.SKU, Version: cmp.Or(p.Image.Version, "latest")}
	}
	// Images known only when the run starts are not prefetched: Batch
	// pulls them when a task needs them. The pool runs containers all the
	// same.
	var images []string
	for _, t := range prog.Tasks {
		if t.Container != nil && !slices.Contains(images, t.Container.Image) && !strings.Contains(t.Container.Image, "${{") {
			images = append(images, t.Container.Image)
		}
	}
	if UsesContainers(prog) {
		slices.Sort(images)
		vm.ContainerConfiguration = &BatchContainerConfiguration{Type: ContainerTypeDockerCompatible, ContainerImageNames: images}
	}
	po.VirtualMachineConfiguration = vm
	if a := p.Autoscale; a != nil {
		po.EnableAutoScale = Ptr(true)
		po.AutoScaleFormula = a.Formula
		if a.Interval > 0 {
			po.AutoScaleEvaluationInterval = FormatDuration(a.Interval.D())
		}
	} else {
		po.TargetDedicatedNodes = Ptr(int32(p.Dedicated))
		po.TargetLowPriorityNodes = Ptr(int32(p.Spot))
	}
	if p.SlotsPerNode > 0 {
		po.TaskSlotsPerNode = Ptr(int32(p.SlotsPerNode))
	}
	if st := p.StartTask; st != nil && st.Run != "" {
		bst := &BatchStartTask{CommandLine: ScriptCommandLine(st.Run, "starttask"), EnvironmentSettings: envSettings(st.Env), WaitForSuccess: Ptr(st.WaitForSuccess)}
		if st.Elevated {
			bst.UserIdentity = &UserIdentity{AutoUser: &AutoUserSpecification{Scope: AutoUserScopePool, ElevationLevel: ElevationAdmin}}
		}
		po.StartTask = bst
	}
	if accountID != "" {
		for _, pk := range prog.Packages {
			po.ApplicationPackageReferences = append(po.ApplicationPackageReferences,
				BatchApplicationPackageReference{ApplicationID: strings.TrimSuffix(accountID, "/") + "/applications/" + pk.Name, Version: pk.Version})
		}
	}
	po.Metadata = []BatchMetadataItem{{Name: "bmc.createdBy", Value: "bmc"}}
	return po, nil
}

func (m *mapper) job() BatchJobCreateOptions {
	prog := m.plan.Program
	meta := []BatchMetadataItem{
		{Name: MetaRunID, Value: m.run.ID},
		{Name: MetaWorkload, Value: prog.Name},
		{Name: MetaSpecHash, Value: m.opt.SpecHash},
	}
	keys := make([]string, 0, len(prog.Labels))
	for k := range prog.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		meta = append(meta, BatchMetadataItem{Name: k, Value: prog.Labels[k]})
	}
	j := BatchJobCreateOptions{
		ID:                   m.run.ID,
		DisplayName:          prog.Name,
		UsesTaskDependencies: Ptr(true),
		PoolInfo:             BatchPoolInfo{PoolID: prog.Pool.ID},
		OnAllTasksComplete:   AllTasksCompleteNoAction,
		Constraints:          &BatchJobConstraints{MaxTaskRetryCount: Ptr(int32(0))},
		CommonEnvironmentSettings: []EnvironmentSetting{
			{Name: "BMC_RUN_ID", Value: m.run.ID},
			{Name: "BMC_WORKLOAD", Value: m.run.Workload},
		},
		Metadata:       meta,
		JobManagerTask: m.opt.JobManager,
	}
	return j
}

func envSettings(env map[string]string) []EnvironmentSetting {
	if len(env) == 0 {
		return nil
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]EnvironmentSetting, len(keys))
	for i, k := range keys {
		out[i] = EnvironmentSetting{Name: k, Value: env[k]}
	}
	return out
}

// task maps plan task i. ${{ task.attempt }} is 1: Batch writes a task's
// definition once for all its attempts and does not tell it which one it
// is on.
func (m *mapper) task(i int) (BatchTaskCreateOptions, error) {
	t := executor.FillTask(&m.plan.Program.Tasks[i], m.run, 1)
	bt := BatchTaskCreateOptions{ID: t.ID, EnvironmentSettings: envSettings(t.Env)}
	var (
		prologue []string
		// The input that brings the most of the resource files.
		most                string
		mostFiles, mostSize int
	)
	m.moves = newMoveChecks(t.Inputs)
	m.moves.kept = true
	for k, in := range t.Inputs {
		rfs, pro, err := m.input(t.ID, k, in)
		if err != nil {
			return bt, err
		}
		m.moves.landed(k, rfs)
		if n := resourceFilesChars(rfs); n > mostSize {
			most, mostFiles, mostSize = inputName(in), len(rfs), n
		}
		bt.ResourceFiles = append(bt.ResourceFiles, rfs...)
		if pro != "" {
			prologue = append(prologue, pro)
		}
	}
	if n := resourceFilesChars(bt.ResourceFiles); n > m.opt.ResourceFilesChars {
		e := &ResourceFilesError{Task: t.ID, Files: len(bt.ResourceFiles), Chars: n, Limit: m.opt.ResourceFilesChars, Inputs: len(t.Inputs), most: -1}
		if 2*mostSize >= n {
			e.Input, e.InputFiles = most, mostFiles
		}
		m.large = append(m.large, e)
	}
	if head, tail := m.moves.script(); head != "" {
		prologue = append(append([]string{head}, prologue...), tail)
	}
	// An argv in a container runs in bash only when its inputs need
	// moving into place: its image need not have bash otherwise, and its
	// files, which land in place, are what an attempt before left them.
	if t.Container == nil || t.Run != "" || len(prologue) > 0 {
		if pre, kept := m.moves.restore(bt.ResourceFiles); pre != "" {
			if t.Run != "" {
				// A script that succeeds is not run again: what it kept
				// goes then, rather than stay as long as Batch keeps
				// the task's directory. An argv is exec'd, and its stay.
				pre = "trap '[ $? -ne 0 ] || rm -rf -- " + kept + "' EXIT\n" + pre
			}
			prologue = append([]string{pre}, prologue...)
		}
	}
	switch {
	case t.Run != "" && len(prologue) > 0:
		bt.CommandLine = ScriptCommandLine(strings.Join(prologue, "\n")+"\n"+t.Run, t.ID)
	case t.Run != "":
		bt.CommandLine = ScriptCommandLine(t.Run, t.ID)
	case len(prologue) > 0:
		bt.CommandLine = CommandLine(append([]string{"/bin/bash", "-euo", "pipefail", "-c", strings.Join(prologue, "\n") + "\nexec \"$@\"", t.ID}, t.Command...))
	default:
		bt.CommandLine = CommandLine(t.Command)
	}
	for _, o := range t.Outputs {
		of, err := m.output(t.ID, o)
		if err != nil {
			return bt, err
		}
		bt.OutputFiles = append(bt.OutputFiles, of)
	}
	if m.opt.Logs != "" {
		of, err := m.logs(t.ID, "../std*.txt")
		if err != nil {
			return bt, err
		}
		bt.OutputFiles = append(bt.OutputFiles, of)
	}
	var c BatchTaskConstraints
	if t.Retries > 0 {
		c.MaxTaskRetryCount = Ptr(int32(t.Retries))
	}
	if t.Timeout > 0 {
		c.MaxWallClockTime = FormatDuration(t.Timeout.D())
	}
	if c != (BatchTaskConstraints{}) {
		bt.Constraints = &c
	}
	if t.Slots > 1 {
		bt.RequiredSlots = Ptr(int32(t.Slots))
	}
	for _, p := range t.Packages {
		bt.ApplicationPackageReferences = append(bt.ApplicationPackageReferences, BatchApplicationPackageReference{ApplicationID: p.Name, Version: p.Version})
	}
	if ct := t.Container; ct != nil {
		bt.ContainerSettings = &BatchTaskContainerSettings{ImageName: ct.Image, ContainerRunOptions: ct.Options}
	}
	deps, err := m.dependsOn(i)
	if err != nil {
		return bt, err
	}
	if len(deps) > 0 {
		bt.DependsOn = &BatchTaskDependencies{TaskIDs: deps}
	}
	return bt, nil
}

// prefixDir is where prefix inputs land before the task's own command
// moves them into place.
const prefixDir = ".bmc-in"

// keptDownloads and keptFiles are where a task keeps, beside its working
// directory in the task directory, what Batch downloaded for it (restore):
// prefixDir as it came, and the files that landed in place.
const (
	keptDownloads = `"$AZ_BATCH_TASK_DIR"/` + prefixDir
	keptFiles     = `"$AZ_BATCH_TASK_DIR"/.bmc-files`
)

// taskDirSet makes sure of AZ_BATCH_TASK_DIR, which Batch sets, where a
// command line runs without it: the working directory's parent, as
// Batch lays a task out.
const taskDirSet = `: "${AZ_BATCH_TASK_DIR:=$PWD/..}"`

// InputNotFoundExit is the exit code of a task one of whose blob prefix
// inputs has no blobs. Batch downloads nothing for such a prefix rather
// than failing the task; the task's first lines find the input missing,
// say so on stderr and exit with this code, for the client to report the
// input error rather than an exit code. They exit with it too when an
// input would replace a file another input put in place (moveChecks).
const InputNotFoundExit = 86

// InputNotFoundPrefix starts the stderr line of a task exiting with
// InputNotFoundExit; the rest of the line is the reason.
const InputNotFoundPrefix = "bmc: "

// input maps one input to resource files. A blob prefix comes down with
// full blob names, as Batch downloads it; the task first moves the files
// below the prefix to the input's path, which is where the local backend
// puts them, so that one script runs the same on both.
func (m *mapper) input(task string, k int, in compiler.Input) ([]ResourceFile, string, error) {
	fail := func(err error) ([]ResourceFile, string, error) {
		return nil, "", fmt.Errorf("task %s: input %s: %w", task, inputName(in), err)
	}
	switch in.Kind {
	case compiler.InputHTTP:
		return []ResourceFile{{HTTPURL: in.From, FilePath: in.Path}}, "", nil
	case compiler.InputBlob:
		l, err := blobstage.ParseURL(in.From)
		if err != nil {
			return fail(err)
		}
		u, ref, err := m.loc.BlobURL(l.Container, l.Path)
		if err != nil {
			return fail(err)
		}
		return []ResourceFile{{HTTPURL: u, FilePath: in.Path, IdentityReference: ref}}, "", nil
	case compiler.InputBlobPrefix:
		l, err := blobstage.ParseURL(in.From)
		if err != nil {
			return fail(err)
		}
		u, ref, err := m.loc.ContainerURL(l.Container, false)
		if err != nil {
			return fail(err)
		}
		tmp := prefixDir + "/" + strconv.Itoa(k)
		rf := ResourceFile{StorageContainerURL: u, BlobPrefix: l.Path, FilePath: tmp, IdentityReference: ref}
		return []ResourceFile{rf}, m.moves.moveIn(k, tmp, l.Path, in.Path, "input "+in.From+": not found (no blobs under the prefix)"), nil
	case compiler.InputFile:
		files, ok := m.opt.Staged[in.From]
		if !ok {
			return fail(fmt.Errorf("the file was not staged"))
		}
		rfs, pro, err := m.local(k, in, files, m.opt.Dirs[in.From])
		if err != nil {
			return fail(err)
		}
		return rfs, pro, nil
	}
	return fail(fmt.Errorf("unknown input kind %q", in.Kind))
}

// local maps a staged local input: a file, or each file of a directory,
// with a resource file of its own; each group of a directory staged as
// TreeLayout places it with one resource file that brings the group's
// blobs, full names and all, below the prefix directory, from where the
// task's first lines move them to the input's path, as for a blob prefix.
// Either way each file lands at the input's path joined with its path in
// the directory, with its mode, where the local backend puts it. The
// directory's empty directories, which no blob brings, the task's first
// lines make.
func (m *mapper) local(k int, in compiler.Input, files []StagedFile, dirs StagedDirs) ([]ResourceFile, string, error) {
	var (
		out    []ResourceFile
		pro    []string
		groups = map[blobstage.Location]os.FileMode{}
	)
	for _, f := range files {
		if f.Group == (blobstage.Location{}) {
			u, ref, err := m.loc.BlobURL(f.Loc.Container, f.Loc.Path)
			if err != nil {
				return nil, "", err
			}
			p := in.Path
			if f.Rel != "" {
				p = path.Join(in.Path, f.Rel)
			}
			out = append(out, ResourceFile{HTTPURL: u, FilePath: p, FileMode: fileMode(f.Mode), IdentityReference: ref})
			continue
		}
		// A group's prefix must select its files and nothing else.
		if f.Rel == "" || !strings.HasSuffix(f.Group.Path, "/") || f.Loc != f.Group.Join(f.Rel) {
			return nil, "", fmt.Errorf("%s is staged at %s, not below its group %s", f.Rel, f.Loc, f.Group)
		}
		if mode, ok := groups[f.Group]; ok {
			if mode.Perm() != f.Mode.Perm() {
				return nil, "", fmt.Errorf("%s has mode %s, the other files of its group %s", f.Rel, fileMode(f.Mode), fileMode(mode))
			}
			continue
		}
		groups[f.Group] = f.Mode
		u, ref, err := m.loc.ContainerURL(f.Group.Container, false)
		if err != nil {
			return nil, "", err
		}
		tmp := prefixDir + "/" + strconv.Itoa(k)
		out = append(out, ResourceFile{StorageContainerURL: u, BlobPrefix: f.Group.Path, FilePath: tmp, FileMode: fileMode(f.Mode), IdentityReference: ref})
		pro = append(pro, m.moves.moveIn(k, tmp, f.Group.Path, in.Path, "input "+in.From+": its staged files are not at "+f.Group.String()))
	}
	if len(files) == 0 {
		// An empty directory: the local backend makes it.
		pro = append(pro, "mkdir -p -- "+shQuote(in.Path))
	}
	if len(dirs.Rels) > 0 {
		rf, script, err := m.makeDirs(k, in.Path, dirs)
		if err != nil {
			return nil, "", err
		}
		if rf != nil {
			out = append(out, *rf)
		}
		pro = append(pro, script)
	}
	return out, strings.Join(pro, "\n"), nil
}

// makeDirs is the script that makes an input's empty directories below
// dst. It names them when that takes at most maxInlineDirsChars of valid
// UTF-8 (a commandLine is JSON text, which carries nothing else);
// otherwise it reads them from their list, which the resource file it
// returns brings below the prefix directory.
func (m *mapper) makeDirs(k int, dst string, dirs StagedDirs) (*ResourceFile, string, error) {
	var b strings.Builder
	b.WriteString("mkdir -p --")
	for _, rel := range dirs.Rels {
		b.WriteString(" " + shQuote(path.Join(dst, rel)))
		if b.Len() > maxInlineDirsChars {
			break
		}
	}
	if line := b.String(); b.Len() <= maxInlineDirsChars && utf8.ValidString(line) {
		return nil, line, nil
	}
	if dirs.List == (blobstage.Location{}) {
		return nil, "", fmt.Errorf("its %d empty directories are too many, or too oddly named, for the command line, and their list was not staged", len(dirs.Rels))
	}
	u, ref, err := m.loc.BlobURL(dirs.List.Container, dirs.List.Path)
	if err != nil {
		return nil, "", err
	}
	list := prefixDir + "/" + strconv.Itoa(k) + ".dirs"
	rf := &ResourceFile{HTTPURL: u, FilePath: list, IdentityReference: ref}
	script := fmt.Sprintf("while IFS= read -r -d '' bmc_dir; do mkdir -p -- %s/\"$bmc_dir\"; done < %s\nunset bmc_dir", shQuote(dst), m.moves.word(list))
	return rf, script, nil
}

// moveChecks are the checks of a task's moves into place. Batch
// downloads every resource file before the task's first lines move
// prefixes and folders into place, so a move that copied over what it
// found would decide, whatever the inputs' order, which input's file the
// task reads. A move to where another input lands (at its path, above or
// below it) looks first at what it would replace, and fails the task
// with InputNotFoundExit as the local backend fails the attempt, naming
// the file and both inputs, the later in the spec's order as the one
// that replaced it. Moves that land apart from every other input are
// not checked, which would cost a walk of their files.
type moveChecks struct {
	inputs []compiler.Input
	paths  []string // each input's path, cleaned
	moves  []checkedMove
	direct []landedFile
	// kept is set when the task keeps what Batch downloaded for it
	// outside its working directory, to stage every attempt's inputs
	// from (restore).
	kept bool
}

// checkedMove is a move of input k's files from src, where a resource
// file brought them, to dst.
type checkedMove struct {
	k        int
	src, dst string
}

// landedFile is a file a resource file of input k brought to its path.
type landedFile struct {
	k    int
	path string
}

func newMoveChecks(inputs []compiler.Input) *moveChecks {
	c := &moveChecks{inputs: inputs, paths: make([]string, len(inputs))}
	for k, in := range inputs {
		c.paths[k] = path.Clean(in.Path)
	}
	return c
}

// overlap reports whether one of two paths is the other or below it.
func overlap(a, b string) bool {
	return a == b || a == "." || b == "." || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// moveIn is the script that moves the files a container resource file of
// input k brought to tmp, below the blob prefix, to dst, and fails the
// task with InputNotFoundExit, saying missing, when there are none.
func (c *moveChecks) moveIn(k int, tmp, prefix, dst, missing string) string {
	src := tmp
	if dir := strings.TrimSuffix(prefix, "/"); dir != "" {
		src += "/" + dir
	}
	script := fmt.Sprintf("if [ ! -d %s ]; then echo %s >&2; exit %d; fi\n", c.word(src), shQuote(InputNotFoundPrefix+missing), InputNotFoundExit)
	if c.overlapsOther(k) {
		c.moves = append(c.moves, checkedMove{k: k, src: src, dst: c.paths[k]})
		script += fmt.Sprintf("bmc_check %d %s %s\n", k, c.word(src), shQuote(c.paths[k]))
	}
	cp := "cp -a"
	if c.kept {
		cp = "cp -af" // over what an attempt before left (restore)
	}
	return script + fmt.Sprintf("mkdir -p -- %[1]s\n%[3]s -- %[2]s/. %[1]s/", shQuote(dst), c.word(src), cp)
}

// word is the shell word for p, a path below the working directory
// where a resource file lands: one below prefixDir is, for a task that
// keeps its downloads, where restore kept it.
func (c *moveChecks) word(p string) string {
	if rest, ok := strings.CutPrefix(p, prefixDir+"/"); ok && c != nil && c.kept {
		return keptDownloads + "/" + shQuote(rest)
	}
	return shQuote(p)
}

// restore is what a task's first lines do before they move its inputs
// into place, so that every attempt starts with its inputs as the local
// backend stages them. Batch downloads a task's resource files once per
// node: a retry on the same node, and a recovery retry after a reboot
// (which comes even with maxTaskRetryCount 0), finds the working
// directory as the attempt before left it, its inputs deleted or changed
// and prefixDir gone. So the first attempt on a node keeps what Batch
// brought in the task directory, beside the working directory, where
// outputs are not looked for: prefixDir as it came (moved, which costs
// nothing), and the files that landed in place, moved aside once all
// are (a retry finds them all or none). Every attempt then copies them
// back, each such file to its path anew, and the moves copy from the
// kept prefixDir over what they find (cp -f: an input may be
// read-only). A file an input brings has its content and mode again;
// what an attempt wrote beside the inputs stays, as Batch leaves it.
//
// Copies, not hard links, as the local backend copies an input into
// place for each attempt: a link shares its file with the kept one, and
// an attempt that wrote an input in place (a redirection, an append, a
// database opened for writing, a chmod) would change what the next
// attempt gets, which is what this is for. A copy costs the inputs'
// size again in disk and the time to write it (as on the local
// backend); cp clones the blocks instead where the file system can
// (coreutils 9 on XFS or btrfs), and a run: script that succeeds removes
// the kept ones. rfs are the task's resource files; kept names, as shell
// words, the directories that keep them.
func (c *moveChecks) restore(rfs []ResourceFile) (script, kept string) {
	lines, dirs := []string{taskDirSet}, []string(nil)
	if slices.ContainsFunc(rfs, func(rf ResourceFile) bool { return underPrefixDir(path.Clean(rf.FilePath)) }) {
		// Downloaded again (on another node, or Batch brought them
		// again): those replace the kept ones.
		lines = append(lines, fmt.Sprintf("if [ -e %[1]s ]; then rm -rf -- %[2]s; mv -- %[1]s %[2]s; fi", prefixDir, keptDownloads))
		dirs = append(dirs, keptDownloads)
	}
	var files []string
	for _, d := range c.direct {
		if q := shQuote(d.path); !slices.Contains(files, q) {
			files = append(files, q)
		}
	}
	if len(files) > 0 {
		list := strings.Join(files, " ")
		lines = append(lines,
			fmt.Sprintf("if [ ! -d %[1]s ]; then (mkdir -p -- %[1]s.part\n"+
				"for f in %[2]s; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then case $f in */*) mkdir -p -- %[1]s.part/\"${f%%/*}\";; esac; mv -- \"$f\" %[1]s.part/\"$f\"; fi; done)\n"+
				"mv -- %[1]s.part %[1]s; fi", keptFiles, list),
			fmt.Sprintf("(for f in %[1]s; do rm -rf -- \"$f\"; case $f in */*) mkdir -p -- \"${f%%/*}\";; esac; cp -a -- %[2]s/\"$f\" \"$f\"; done)", list, keptFiles))
		dirs = append(dirs, keptFiles)
	}
	if len(dirs) == 0 {
		return "", ""
	}
	return strings.Join(lines, "\n"), strings.Join(dirs, " ")
}

// underPrefixDir reports whether a resource file's cleaned path is
// prefixDir or below it.
func underPrefixDir(p string) bool { return p == prefixDir || strings.HasPrefix(p, prefixDir+"/") }

// overlapsOther reports whether input k lands where another input does.
func (c *moveChecks) overlapsOther(k int) bool {
	for j, p := range c.paths {
		if j != k && overlap(p, c.paths[k]) {
			return true
		}
	}
	return false
}

// landed notes the files input k's resource files bring to their place
// themselves, not below prefixDir for a move.
func (c *moveChecks) landed(k int, rfs []ResourceFile) {
	for _, rf := range rfs {
		if p := path.Clean(rf.FilePath); !underPrefixDir(p) {
			c.direct = append(c.direct, landedFile{k: k, path: p})
		}
	}
}

// script is what the checked moves need: head, the shell functions they
// call, and tail, which removes them before the task's own command.
// bmc_owner says which input put a file in place, when a move finds one
// there: a resource file that brought it there, or an earlier move,
// whose files are still below its src until the prologue ends.
func (c *moveChecks) script() (head, tail string) {
	if len(c.moves) == 0 {
		return "", ""
	}
	named := map[int]bool{}
	var b strings.Builder
	b.WriteString("bmc_owner() {\n")
	first := true
	for _, d := range c.direct {
		if !slices.ContainsFunc(c.moves, func(mv checkedMove) bool { return overlap(mv.dst, d.path) }) {
			continue
		}
		if first {
			b.WriteString("case $2 in\n")
			first = false
		}
		fmt.Fprintf(&b, "%s) echo %d; return;;\n", shQuote(d.path), d.k)
		named[d.k] = true
	}
	if !first {
		b.WriteString("esac\n")
	}
	for _, mv := range c.moves {
		fmt.Fprintf(&b, "bmc_moved %d %s %s \"$@\" && return\n", mv.k, c.word(mv.src), shQuote(mv.dst))
		named[mv.k] = true
	}
	b.WriteString("return 1\n}\n")
	b.WriteString(moveCheckFuncs)
	b.WriteString("bmc_inputs=(")
	for k, in := range c.inputs {
		if named[k] {
			fmt.Fprintf(&b, " [%d]=%s", k, shQuote(redact.String(inputName(in))))
		}
	}
	b.WriteString(" )")
	return b.String(), "unset -f bmc_owner bmc_moved bmc_check bmc_clash\nunset bmc_inputs"
}

// moveCheckFuncs are the shell functions of moveChecks that do not
// depend on the task.
//
// bmc_moved J SRC DST K T prints J when move J, made before input K's,
// put T in place. bmc_check K SRC DST looks at what moving input K's
// files from SRC to DST would replace, or put a file below when it is not
// a directory. bmc_clash K T fails the task when another input put T
// there, saying which inputs clash as the local backend says it; what no
// input put there is an earlier attempt's (Batch runs an attempt again in
// the working directory the one before left), and is replaced as it
// always was.
var moveCheckFuncs = `bmc_moved() {
local r
[ "$4" -gt "$1" ] || return 1
if [ "$3" = . ]; then r=$5; else case $5 in "$3"/*) r=${5#"$3"/};; *) return 1;; esac; fi
[ -e "$2/$r" ] || [ -L "$2/$r" ] || return 1
echo "$1"
}
bmc_check() {
local f t d
while IFS= read -r -d '' f; do
t=${f#"$2"/}
[ "$3" = . ] || t=$3/$t
if [ -e "$t" ] || [ -L "$t" ]; then bmc_clash "$1" "$t"; fi
d=$t
while [ "${d%/*}" != "$d" ]; do
d=${d%/*}
if [ -d "$d" ]; then break; fi
if [ -e "$d" ] || [ -L "$d" ]; then bmc_clash "$1" "$d"; fi
done
done < <(find "$2" ! -type d -print0)
}
bmc_clash() {
local j a=$1 b
j=$(bmc_owner "$1" "$2") || return 0
b=$j
if [ "$j" -gt "$1" ]; then a=$j b=$1; fi
printf 'bmc: input %s replaced %s, which input %s put there: each file needs a path of its own\n' "${bmc_inputs[$a]}" "$2" "${bmc_inputs[$b]}" >&2
exit ` + strconv.Itoa(InputNotFoundExit) + `
}
`

// resourceFilesChars is the size of a resourceFiles list as Batch limits
// it, or more: the characters of its JSON.
func resourceFilesChars(rfs []ResourceFile) int {
	if len(rfs) == 0 {
		return 0
	}
	b, err := marshal(rfs)
	if err != nil {
		return math.MaxInt
	}
	return utf8.RuneCount(b)
}

func inputName(in compiler.Input) string {
	if in.Kind == compiler.InputHTTP {
		if i := strings.IndexAny(in.From, "?#"); i >= 0 {
			return in.From[:i]
		}
	}
	return in.From
}

// shQuote quotes s for bash.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Conditions maps a spec's when to Batch's upload condition.
func Condition(w compiler.When) OutputFileUploadCondition {
	switch w {
	case compiler.WhenFailure:
		return UploadOnTaskFailure
	case compiler.WhenAlways:
		return UploadOnTaskCompletion
	}
	return UploadOnTaskSuccess
}

// output maps one output. The blob names follow the local backend's: a
// single file to a prefix keeps its base name below it; files a wildcard
// matches keep their path below the pattern's leading directories, which
// is how Batch names files below a destination path.
func (m *mapper) output(task string, o compiler.Output) (OutputFile, error) {
	l, err := blobstage.ParseURL(o.To)
	if err != nil {
		return OutputFile{}, fmt.Errorf("task %s: output %s: %w", task, o.Pattern, err)
	}
	return m.outputTo(task, o.Pattern, l, Condition(o.When))
}

func (m *mapper) outputTo(task, pattern string, l blobstage.Location, cond OutputFileUploadCondition) (OutputFile, error) {
	u, ref, err := m.loc.ContainerURL(l.Container, true)
	if err != nil {
		return OutputFile{}, fmt.Errorf("task %s: output %s: %w", task, pattern, err)
	}
	m.outs[l.Container] = true
	return OutputFile{
		FilePattern:   pattern,
		Destination:   OutputFileDestination{Container: &OutputFileBlobContainerDestination{ContainerURL: u, Path: OutputPath(pattern, l), IdentityReference: ref}},
		UploadOptions: OutputFileUploadConfig{UploadCondition: cond},
	}, nil
}

// OutputPath is the destination path of an output: the blob's name for a
// single file, the virtual directory for files a wildcard matches.
func OutputPath(pattern string, l blobstage.Location) string {
	if !filepattern.HasWildcard(pattern) {
		if l.IsPrefix() {
			// The file's name, not the pattern's: report[*].csv is
			// report*.csv, as the local backend names it.
			return l.Path + path.Base(filepattern.Literal(pattern))
		}
		return l.Path
	}
	return strings.TrimSuffix(l.Path, "/")
}

// logs is the output file that uploads what pattern matches (a task's
// stdout.txt and stderr.txt) to the task's place under the logs prefix,
// whatever the task's outcome.
func (m *mapper) logs(task, pattern string) (OutputFile, error) {
	l, err := blobstage.ParseURL(executor.TaskLogs(m.opt.Logs, m.run, task))
	if err != nil {
		return OutputFile{}, fmt.Errorf("logs: %w", err)
	}
	return m.outputTo(task, pattern, l, UploadOnTaskCompletion)
}

// finalizeLogs has the job manager task upload the finalize step's
// stdout.txt and stderr.txt with the tasks' logs, under the finalize id as
// the local backend puts them. The step writes them in the job manager
// task's directory (NodeStepLog), beside its working directory; Batch
// uploads them when the task ends, after the step.
func (m *mapper) finalizeLogs(jm *BatchJobManagerTask) error {
	if m.opt.Logs == "" || jm == nil {
		return nil
	}
	of, err := m.logs(FinalizeTaskID, "../"+NodeStepLog("std*"))
	if err != nil {
		return err
	}
	jm.OutputFiles = append(jm.OutputFiles, of)
	return nil
}

// ---- dependencies ----

func depCost(ids []string) int {
	n := 0
	for _, id := range ids {
		n += len(id) + 1
	}
	return n
}

// dependsOn is task i's dependency list: its tasks and its groups'
// members, with the largest groups replaced by a barrier task while the
// list is too long, and the tasks themselves behind a barrier tree if
// they alone are.
func (m *mapper) dependsOn(i int) ([]string, error) {
	t := &m.plan.Program.Tasks[i]
	g := m.plan.Graph
	limit := m.opt.DependencyChars
	type grp struct {
		id      string
		members []string
		cost    int
	}
	var groups []grp
	total := depCost(t.DependsOn)
	for _, gi := range g.GroupDeps[i] {
		gr := grp{id: m.plan.Program.Groups[gi].ID}
		for _, mi := range g.Members[gi] {
			gr.members = append(gr.members, m.plan.Program.Tasks[mi].ID)
		}
		gr.cost = depCost(gr.members)
		total += gr.cost
		groups = append(groups, gr)
	}
	direct := t.DependsOn
	if total > limit {
		order := make([]int, len(groups))
		for k := range order {
			order[k] = k
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(groups[b].cost, groups[a].cost) })
		for _, k := range order {
			if total <= limit {
				break
			}
			root, err := m.groupBarrier(groups[k].id, groups[k].members)
			if err != nil {
				return nil, err
			}
			total += depCost([]string{root}) - groups[k].cost
			groups[k].members, groups[k].cost = []string{root}, depCost([]string{root})
		}
		if total > limit {
			root, err := m.barrierTree("t-"+t.ID, direct)
			if err != nil {
				return nil, err
			}
			direct = []string{root}
		}
	}
	out := slices.Clone(direct)
	for _, gr := range groups {
		out = append(out, gr.members...)
	}
	return out, nil
}

func (m *mapper) groupBarrier(group string, members []string) (string, error) {
	if r, ok := m.groupBar[group]; ok {
		return r, nil
	}
	r, err := m.barrierTree("g-"+group, members)
	if err != nil {
		return "", err
	}
	if m.groupBar == nil {
		m.groupBar = map[string]string{}
	}
	m.groupBar[group] = r
	return r, nil
}

// barrierTree adds no-op tasks that wait for ids in chunks that fit a
// dependency list, then for those barriers in chunks, and so on up to one
// root, whose id it returns.
func (m *mapper) barrierTree(base string, ids []string) (string, error) {
	limit := m.opt.DependencyChars
	for level := 0; ; level++ {
		var (
			next  []string
			chunk []string
			size  int
		)
		flush := func() error {
			id := barrierID(base, level, len(next))
			if m.ids[strings.ToLower(id)] {
				return fmt.Errorf("task id %s is taken: bmc needs it for a barrier task", id)
			}
			m.ids[strings.ToLower(id)] = true
			m.barriers = append(m.barriers, BatchTaskCreateOptions{
				ID: id, CommandLine: "/bin/true",
				DependsOn: &BatchTaskDependencies{TaskIDs: chunk},
			})
			next = append(next, id)
			chunk, size = nil, 0
			return nil
		}
		for _, id := range ids {
			c := len(id) + 1
			if len(chunk) > 0 && size+c > limit {
				if err := flush(); err != nil {
					return "", err
				}
			}
			chunk = append(chunk, id)
			size += c
		}
		if len(chunk) > 0 {
			if err := flush(); err != nil {
				return "", err
			}
		}
		if len(next) == 1 {
			return next[0], nil
		}
		if len(next) >= len(ids) {
			return "", fmt.Errorf("a dependency list of %d characters cannot hold two barrier ids", limit)
		}
		ids = next
	}
}

// barrierID names a barrier: bmc-barrier-<base>-<level>-<n>, within 64
// characters (a long base is cut and given a hash, to stay unique).
func barrierID(base string, level, n int) string {
	suffix := fmt.Sprintf("-%d-%d", level, n)
	room := 64 - len(barrierPrefix) - len(suffix)
	if len(base) > room {
		h := sha256.Sum256([]byte(base))
		tag := hex.EncodeToString(h[:4])
		base = base[:room-len(tag)-1] + "-" + tag
	}
	return barrierPrefix + base + suffix
}

// IsBarrier reports whether a task id is one of bmc's barriers.
func IsBarrier(id string) bool { return strings.HasPrefix(id, barrierPrefix) }

// ---- the finalize step's inputs, on the pool ----

// FinalizeInputs maps the finalize step's spec-relative inputs, staged
// as a task's are, to resource files of the job manager task, which
// Batch brings to the step's directory (NodeStepDir) as the task starts:
// they are bmc's own uploads, there before the run. setup is what the
// step's first lines must do, in its directory, before its own command
// (move a folder's files into place, make its empty directories), as a
// task's do; "" when nothing.
//
// The step's other inputs, az:// and https://, the node stages itself
// when the step runs (nodeStep): the tasks may write them during the
// run, and a resource file Batch cannot download fails the job manager
// task, and with it the finalize step and the callback.
func FinalizeInputs(plan *planner.Plan, run *executor.RunInfo, loc Locator, opt MapOptions) (rfs []ResourceFile, setup string, err error) {
	per, setup, err := finalizeInputs(plan, run, loc, opt)
	for _, files := range per {
		rfs = append(rfs, files...)
	}
	return rfs, setup, err
}

// finalizeInputs is FinalizeInputs with the resource files of each of
// the step's inputs apart, nil for those that bring none.
func finalizeInputs(plan *planner.Plan, run *executor.RunInfo, loc Locator, opt MapOptions) (per [][]ResourceFile, setup string, err error) {
	fin := &plan.Program.Finalize
	if len(fin.Inputs) == 0 {
		return nil, "", nil
	}
	m := &mapper{plan: plan, run: run, loc: loc, opt: opt, outs: map[string]bool{}}
	t := executor.FillTask(&compiler.Task{ID: FinalizeTaskID, Inputs: fin.Inputs}, run, 1)
	m.moves = newMoveChecks(t.Inputs)
	per = make([][]ResourceFile, len(t.Inputs))
	var prologue []string
	for k, in := range t.Inputs {
		if in.Kind != compiler.InputFile {
			continue
		}
		files, pro, err := m.input(FinalizeTaskID, k, in)
		if err != nil {
			return nil, "", err
		}
		m.moves.landed(k, files)
		for _, f := range files {
			f.FilePath = NodeStepDir + "/" + f.FilePath
			per[k] = append(per[k], f)
		}
		if pro != "" {
			prologue = append(prologue, pro)
		}
	}
	if len(prologue) > 0 {
		if head, tail := m.moves.script(); head != "" {
			prologue = append(append([]string{head}, prologue...), tail)
		}
		prologue = append(prologue, "rm -rf -- "+shQuote(prefixDir))
	}
	return per, strings.Join(prologue, "\n"), nil
}

// jobManagerFiles is the error of a job manager task whose resource
// files are more than Batch takes, nil when they are not: the step's
// local inputs ride on it (FinalizeInputs), with bmc's own files.
func (m *mapper) jobManagerFiles(jm *BatchJobManagerTask) *ResourceFilesError {
	if jm == nil {
		return nil
	}
	n := resourceFilesChars(jm.ResourceFiles)
	if n <= m.opt.ResourceFilesChars {
		return nil
	}
	e := &ResourceFilesError{Task: FinalizeTaskID, Files: len(jm.ResourceFiles), Chars: n, Limit: m.opt.ResourceFilesChars, most: -1}
	// Which input brings the most, mapped again on its own: the list
	// does not say where each file comes from.
	per, _, err := finalizeInputs(m.plan, m.run, m.loc, m.opt)
	if err != nil {
		return e
	}
	mostSize := 0
	for k, files := range per {
		in := m.plan.Program.Finalize.Inputs[k]
		if in.Kind == compiler.InputFile {
			e.Inputs++
		}
		if size := resourceFilesChars(files); size > mostSize {
			e.most, mostSize = k, size
		}
	}
	if e.most >= 0 && 2*mostSize >= n {
		e.Input, e.InputFiles = inputName(m.plan.Program.Finalize.Inputs[e.most]), len(per[e.most])
	}
	return e
}

// ---- the finalize step's outputs, on the pool ----

// FinalizeOutputPattern is the filePattern of the job manager task's
// output file for output k of the finalize step, whose path is pattern:
// the node sets the output's files aside below NodeUploadDir/<k>/, and
// Batch uploads what this matches there when the task ends.
//
// Batch expands the variables of a filePattern in the environment of the
// task it belongs to, here the job manager task, not the step's (whose
// working directory and env are its own). The node expands a pattern
// with variables in the step's environment, as Batch and the local
// backend expand a task's, and this names what it set aside with none:
// a single file by a name of its own (the destination path names the
// blob), the files a wildcard matches by the pattern's part from its
// first wildcard on, each variable a '*', below which the node puts each
// file at its path below the expanded pattern's leading folders, where
// Batch names a task's files from. The node makes sure the two agree
// (nodeStep.setAside).
func FinalizeOutputPattern(k int, pattern string) string {
	dir := NodeUploadDir + "/" + strconv.Itoa(k) + "/"
	switch {
	case !hasVars(pattern):
		return dir + pattern
	case !filepattern.HasWildcard(pattern):
		return dir + nodeUploadFile
	}
	return dir + wildcardPart(pattern)
}

// nodeUploadFile is the name the node gives the file of a finalize
// output without wildcards whose path has variables.
const nodeUploadFile = "file"

// varMark stands for a variable in a pattern, where hasVars and
// wildcardPart look for them.
const varMark = "\x00"

// percentVar is a variable in Batch's Windows form, %NAME%, which the
// emulator and filepattern.Expand accept too.
var percentVar = regexp.MustCompile(`%[A-Za-z_][A-Za-z0-9_]*%`)

// withVars is s with each variable reference replaced by with: $NAME and
// ${NAME} as os.Expand, and so filepattern.Expand, reads them, and
// %NAME%.
func withVars(s, with string) string {
	s = os.Expand(s, func(string) string { return with })
	return percentVar.ReplaceAllLiteralString(s, with)
}

// hasVars reports whether a pattern names a variable.
func hasVars(pattern string) bool { return strings.Contains(withVars(pattern, varMark), varMark) }

// wildcardPart is a wildcard pattern from its first segment with a
// wildcard on, each variable a '*' (a run of them, one, so that none
// makes a segment "**").
func wildcardPart(pattern string) string {
	segs := strings.Split(path.Clean(pattern), "/")
	if base := filepattern.BaseDir(pattern); base != "" {
		segs = segs[strings.Count(base, "/")+1:]
	}
	for i, s := range segs {
		if m := withVars(s, varMark); strings.Contains(m, varMark) {
			segs[i] = starRun.ReplaceAllLiteralString(strings.ReplaceAll(m, varMark, "*"), "*")
		}
	}
	return strings.Join(segs, "/")
}

var starRun = regexp.MustCompile(`\*{2,}`)
