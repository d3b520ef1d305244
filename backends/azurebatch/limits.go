package azurebatch

// Batch's limits, checked before anything is submitted, and the summary of
// what a run will create, for bmc plan.

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/planner"
)

// Limits Batch sets.
const (
	MaxIDLength          = 64
	MaxSlotsPerNode      = 256
	MaxPoolPackages      = 10
	MaxCollectionBody    = maxCollectionBody
	maxSlotsPerCoreRatio = 4
)

// validID reports whether id is a valid Batch pool, job or task id: 1-64
// letters, digits, '_' and '-'. (A regexp would say the same, at the cost
// of compiling 64 copies of the character class at every bmc start.)
func validID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// vmCores are the cores of a few common VM sizes, for the slots check;
// sizes not listed are checked against 256 only.
var vmCores = map[string]int{
	"standard_a1_v2": 1, "standard_a2_v2": 2, "standard_a4_v2": 4, "standard_a8_v2": 8,
	"standard_d2s_v3": 2, "standard_d4s_v3": 4, "standard_d8s_v3": 8, "standard_d16s_v3": 16, "standard_d32s_v3": 32,
	"standard_d2_v3": 2, "standard_d4_v3": 4, "standard_d8_v3": 8, "standard_d16_v3": 16,
	"standard_d2s_v5": 2, "standard_d4s_v5": 4, "standard_d8s_v5": 8, "standard_d16s_v5": 16, "standard_d32s_v5": 32, "standard_d64s_v5": 64,
	"standard_d2ds_v5": 2, "standard_d4ds_v5": 4, "standard_d8ds_v5": 8, "standard_d16ds_v5": 16,
	"standard_d2as_v5": 2, "standard_d4as_v5": 4, "standard_d8as_v5": 8, "standard_d16as_v5": 16,
	"standard_e2s_v5": 2, "standard_e4s_v5": 4, "standard_e8s_v5": 8, "standard_e16s_v5": 16, "standard_e32s_v5": 32,
	"standard_f2s_v2": 2, "standard_f4s_v2": 4, "standard_f8s_v2": 8, "standard_f16s_v2": 16, "standard_f32s_v2": 32, "standard_f72s_v2": 72,
	"standard_hb120rs_v3": 120, "standard_nc6s_v3": 6, "standard_nc24s_v3": 24,
}

// VMCores is the number of cores of a VM size bmc knows, or 0.
func VMCores(vmSize string) int { return vmCores[strings.ToLower(vmSize)] }

// CheckOptions say how the run will be submitted.
type CheckOptions struct {
	// JobManager: the finalize step runs on the pool, taking a slot.
	JobManager bool
	// DependencyChars is the dependency list limit; zero for Batch's.
	DependencyChars int
	// ResourceFilesChars is the limit on a task's resourceFiles list;
	// zero for Batch's.
	ResourceFilesChars int
	// SpecDir is the spec's directory, against which local inputs are
	// looked at to count the resource files they take; empty to count
	// one each.
	SpecDir string
}

// Check holds a program against Batch's limits: ids, the pool's slots per
// node, application packages per pool, the size of each task in an
// add-collection body and of its resourceFiles list, the slot the job
// manager task takes, and containers: tasks in containers and tasks on
// the host cannot share a pool, and on a pool with containers bmc's own
// tasks (barriers, the job manager task) need an image with /bin/bash.
func Check(prog *compiler.Program, opt CheckOptions) []planner.Check {
	var out []planner.Check
	add := func(sev planner.Severity, task, format string, args ...any) {
		out = append(out, planner.Check{Severity: sev, Task: task, Message: fmt.Sprintf(format, args...)})
	}
	p := prog.Pool
	if p == nil || p.ID == "" {
		add(planner.Error, "", "the azurebatch backend needs a pool: give the spec a pool block, or --pool")
		return out
	}
	if !validID(p.ID) {
		add(planner.Error, "", "pool id %q: Batch ids are 1-64 letters, digits, '-' and '_'", p.ID)
	}
	if p.VMSize != "" && (p.Image == nil || p.NodeAgentSKU == "") {
		add(planner.Warning, "", "pool %s: no image or nodeAgentSku to create it from: it must exist already", p.ID)
	}
	limit := MaxSlotsPerNode
	if c := VMCores(p.VMSize); c > 0 {
		limit = min(maxSlotsPerCoreRatio*c, MaxSlotsPerNode)
	}
	if p.SlotsPerNode > limit {
		how := ""
		if c := VMCores(p.VMSize); c > 0 {
			how = fmt.Sprintf(": 4 × %d cores of %s", c, p.VMSize)
		}
		add(planner.Error, "", "pool %s: slotsPerNode %d is more than Batch allows (%d%s)", p.ID, p.SlotsPerNode, limit, how)
	}
	if n := len(prog.Packages); n > MaxPoolPackages {
		add(planner.Error, "", "%d application packages: a Batch pool takes at most %d", n, MaxPoolPackages)
	}
	var timedRetried []string
	for _, t := range prog.Tasks {
		if !validID(t.ID) {
			add(planner.Error, t.ID, "task id: Batch ids are 1-64 letters, digits, '-' and '_'")
		}
		if usesAttempt(&t) {
			add(planner.Warning, t.ID, "uses its attempt number (${{ task.attempt }} or BMC_TASK_ATTEMPT): Batch writes a task once for all its attempts, so ${{ task.attempt }} is 1 on every attempt there (outputs named by it overwrite each other), and BMC_TASK_ATTEMPT is not set (under set -u, a script that reads it fails)")
		}
		if t.Timeout > 0 && t.Retries > 0 {
			timedRetried = append(timedRetried, t.ID)
		}
	}
	// One warning for them all: defaults give every task of a sweep both.
	if n := len(timedRetried); n > 0 {
		const why = "on Batch an attempt that times out is the last, as Batch marks a task completed when its maxWallClockTime runs out (the local backend retries it)"
		if n == 1 {
			add(planner.Warning, timedRetried[0], "has timeout and retries: %s", why)
		} else {
			add(planner.Warning, "", "%d tasks (%s) have timeout and retries: %s", n, idList(timedRetried, 3), why)
		}
	}
	// A pool block with a vmSize describes the pool bmc creates when it
	// does not exist; without one it names a pool whose size is its own.
	switch fixed := p.Autoscale == nil; {
	case fixed && p.VMSize != "" && p.Dedicated+p.Spot == 0:
		add(planner.Error, "", "pool %s: 0 dedicated and 0 spot nodes, and no autoscale: created from the spec, the pool would never run a task (give it nodes or autoscale, or leave out vmSize to use a pool that exists as it is)", p.ID)
	case fixed && opt.JobManager && (p.Dedicated+p.Spot)*p.SlotsPerNode == 1:
		add(planner.Error, "", "pool %s has 1 task slot; the finalize step on the pool takes one for the whole run, leaving none for the tasks (use --finalize-on client, or a bigger pool)", p.ID)
	case fixed && opt.JobManager && p.Dedicated+p.Spot == 1:
		// The one node keeps a slot for the finalize step all run long: a
		// task that needs every slot of a node would wait for ever.
		for _, t := range prog.Tasks {
			if t.Slots >= p.SlotsPerNode && t.Slots > 1 {
				add(planner.Error, t.ID, "takes %d slots, every slot of pool %s's one node, where the finalize step on the pool keeps one for the whole run: the task would never start (use --finalize-on client, or a pool of more nodes)", t.Slots, p.ID)
			}
		}
	}
	if err := MixedContainers(prog); err != nil {
		add(planner.Error, "", "%v", err)
	}
	// Every task must fit an add-collection request on its own, and its
	// resource files Batch's limit on them.
	plan := planner.New(prog, Capabilities(p), nil)
	steps := stagedSteps(prog, opt.JobManager)
	for _, b := range backslashNames(steps, opt.SpecDir) {
		add(planner.Error, "", "input %s holds %s: a file name with a backslash cannot be brought to a Batch node, which reads it as a directory separator (rename it)", b[0], b[1])
	}
	staged, dirs := fakeStagedOf(steps, opt.SpecDir)
	run := &executor.RunInfo{ID: strings.Repeat("r", MaxIDLength), Workload: prog.Name}
	mopt := MapOptions{Staged: staged, Dirs: dirs, DependencyChars: opt.DependencyChars, ResourceFilesChars: opt.ResourceFilesChars}
	if opt.JobManager {
		jm, err := sizeJobManager(plan, run, mopt)
		if err != nil {
			add(planner.Error, FinalizeTaskID, "%v", err)
			return out
		}
		mopt.JobManager = jm
	}
	m, large, err := mapRun(plan, run, sizeLocator{}, mopt)
	if err != nil {
		add(planner.Error, "", "%v", err)
		return out
	}
	if opt.JobManager && UsesContainers(prog) && scriptImage(m.Tasks) == "" {
		add(planner.Error, "", "%v", errNoScriptImage)
	}
	// One error per input that makes tasks too large (and one for tasks
	// with too many inputs): the members of a sweep share their inputs.
	var byInput []string
	tooLarge := map[string][]*ResourceFilesError{}
	for _, e := range large {
		if e.Task == FinalizeTaskID {
			// At the step's input that brings the most of the list.
			out = append(out, planner.Check{Severity: planner.Error, Task: FinalizeTaskID, Input: e.most + 1, Message: "on the pool, " + e.jobManager()})
			continue
		}
		if tooLarge[e.Input] == nil {
			byInput = append(byInput, e.Input)
		}
		tooLarge[e.Input] = append(tooLarge[e.Input], e)
	}
	for _, in := range byInput {
		es := tooLarge[in]
		if len(es) == 1 {
			add(planner.Error, es[0].Task, "%s", strings.TrimPrefix(es[0].Error(), "task "+es[0].Task+": "))
			continue
		}
		ids := make([]string, len(es))
		most := es[0]
		for i, e := range es {
			ids[i] = e.Task
			if e.Chars > most.Chars {
				most = e
			}
		}
		add(planner.Error, "", "%d tasks (%s): their resource files come to up to %d characters (%s's %d), more than the %d Batch takes (it would refuse them with RequestEntityTooLarge); %s: %s",
			len(es), idList(ids, 3), most.Chars, most.Task, most.Files, most.Limit, most.source(), fewerInputs)
	}
	for _, t := range m.Tasks {
		b, err := marshal(t)
		if err != nil {
			add(planner.Error, t.ID, "%v", err)
			continue
		}
		if len(b)+collectionOverhead >= maxCollectionBody {
			add(planner.Error, t.ID, "the task's definition is %d bytes; an add-task-collection request must stay under %d (fewer inputs, or a shorter script staged as an input)", len(b), maxCollectionBody)
		}
	}
	return out
}

// idList names the first n ids, and how many more there are.
func idList(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:n], ", "), len(ids)-n)
}

// attemptExpr is ${{ task.attempt }}, however spaced.
var attemptExpr = regexp.MustCompile(`\$\{\{\s*task\.attempt\s*\}\}`)

// usesAttempt reports whether t uses its attempt number: the expression
// anywhere it may stand (the script, arguments, environment, inputs and
// outputs, where a name made of it keeps each attempt's upload apart),
// or the variable BMC_TASK_ATTEMPT in the script, arguments or
// environment.
func usesAttempt(t *compiler.Task) bool {
	texts := []string{t.Run}
	texts = append(texts, t.Command...)
	for _, v := range t.Env {
		texts = append(texts, v)
	}
	for _, s := range texts {
		if attemptExpr.MatchString(s) || strings.Contains(s, "BMC_TASK_ATTEMPT") {
			return true
		}
	}
	for _, in := range t.Inputs {
		if attemptExpr.MatchString(in.From) || attemptExpr.MatchString(in.Path) {
			return true
		}
	}
	for _, o := range t.Outputs {
		if attemptExpr.MatchString(o.Pattern) || attemptExpr.MatchString(o.To) {
			return true
		}
	}
	return false
}

// sizeLocator gives URLs as long as real SAS URLs, for size estimates.
type sizeLocator struct{}

const fakeSAS = "?sv=2025-01-05&st=2026-01-01T00%3A00%3A00Z&se=2026-01-03T00%3A00%3A00Z&sr=c&sp=racwl&sig=REDACTEDREDACTEDREDACTEDREDACTEDREDACTEDREDA%3D"

func (sizeLocator) ContainerURL(c string, _ bool) (string, *BatchNodeIdentityReference, error) {
	return "https://account00000000000000.blob.core.windows.net/" + c + fakeSAS, nil, nil
}

func (sizeLocator) BlobURL(c, b string) (string, *BatchNodeIdentityReference, error) {
	return "https://account00000000000000.blob.core.windows.net/" + c + "/" + escapeBlob(b) + fakeSAS, nil, nil
}

// sizeJobManager stands for the job manager task that runs the finalize
// step on the pool, for the size of its resource files: the run record,
// the step's local inputs and bmc, staged as a run stages them.
func sizeJobManager(plan *planner.Plan, run *executor.RunInfo, opt MapOptions) (*BatchJobManagerTask, error) {
	inputs, _, err := FinalizeInputs(plan, run, sizeLocator{}, opt)
	if err != nil {
		return nil, err
	}
	staging := mustLoc(DefaultStaging)
	rec := staging.Join("runs/" + run.ID + "/" + NodeConfigFile)
	recURL, _, _ := sizeLocator{}.BlobURL(rec.Container, rec.Path)
	bin := staging.Join("sha256/" + strings.Repeat("0", 64))
	binURL, _, _ := sizeLocator{}.BlobURL(bin.Container, bin.Path)
	rfs := append([]ResourceFile{{HTTPURL: recURL, FilePath: NodeConfigFile}}, inputs...)
	rfs = append(rfs, ResourceFile{HTTPURL: binURL, FilePath: "bmc", FileMode: "0755"})
	return &BatchJobManagerTask{ID: FinalizeTaskID, ResourceFiles: rfs}, nil
}

// stagedSteps are the tasks whose local inputs a run stages, with the
// finalize step when it runs on the pool (jm): there it gets them as a
// task does, while on the client it reads them where they are.
func stagedSteps(prog *compiler.Program, jm bool) []compiler.Task {
	if fin := &prog.Finalize; jm && len(fin.Inputs) > 0 {
		return append(slices.Clip(prog.Tasks), compiler.Task{ID: FinalizeTaskID, Inputs: fin.Inputs})
	}
	return prog.Tasks
}

// fakeStaged is fakeStagedOf the program's tasks.
func fakeStaged(prog *compiler.Program, specDir string) (map[string][]StagedFile, map[string]StagedDirs) {
	return fakeStagedOf(prog.Tasks, specDir)
}

// fakeStagedOf stands for the local inputs of steps as a run stages
// them, for their size in the task definitions: a file is one resource
// file; a directory found below specDir is one per file mode, and one per
// file whose path a blob name cannot carry (stageLocal), with its empty
// directories. An input not found counts as a file: the run says what is
// wrong with it.
func fakeStagedOf(steps []compiler.Task, specDir string) (map[string][]StagedFile, map[string]StagedDirs) {
	out := map[string][]StagedFile{}
	dirs := map[string]StagedDirs{}
	file := StagedFile{Loc: mustLoc(DefaultStaging + "sha256/" + strings.Repeat("0", 64)), Mode: 0o644}
	for _, t := range steps {
		for _, in := range t.Inputs {
			if in.Kind != compiler.InputFile {
				continue
			}
			if _, seen := out[in.From]; seen {
				continue
			}
			out[in.From] = []StagedFile{file}
			if specDir == "" {
				continue
			}
			src := in.From
			if !filepath.IsAbs(src) {
				src = filepath.Join(specDir, src)
			}
			if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
				continue
			}
			// One file of each mode stands for its group; a file whose
			// path a blob name cannot carry comes alone.
			var (
				tree, single []StagedFile
				empty        emptyDirs
			)
			modes := map[os.FileMode]bool{}
			filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return nil
				}
				rel, _ := filepath.Rel(src, p)
				rel = filepath.ToSlash(rel)
				empty.add(rel, d.IsDir())
				if d.IsDir() {
					return nil
				}
				fi, err := os.Stat(p)
				if err != nil {
					return nil
				}
				f := StagedFile{Rel: rel, Loc: file.Loc.Join(rel), Mode: fi.Mode()}
				switch perm := fi.Mode().Perm(); {
				case !treeName(rel):
					single = append(single, f)
				case !modes[perm]:
					modes[perm] = true
					tree = append(tree, f)
				}
				return nil
			})
			out[in.From] = append(TreeLayout(mustLoc(DefaultStaging), tree), single...)
			if rels := empty.rels(); len(rels) > 0 {
				dirs[in.From] = StagedDirs{Rels: rels, List: file.Loc}
			}
		}
	}
	return out, dirs
}

// backslashNames finds, in the local folders steps read, the files whose
// names hold a backslash, which staging refuses: each as the input and
// the file's path in it. Only the first few of an input are told.
func backslashNames(steps []compiler.Task, specDir string) [][2]string {
	var out [][2]string
	seen := map[string]bool{}
	for _, t := range steps {
		for _, in := range t.Inputs {
			if in.Kind != compiler.InputFile || seen[in.From] || specDir == "" {
				continue
			}
			seen[in.From] = true
			src := in.From
			if !filepath.IsAbs(src) {
				src = filepath.Join(specDir, src)
			}
			n := 0
			filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
				if err != nil || !strings.Contains(d.Name(), `\`) {
					return nil
				}
				if n++; n > 3 {
					return filepath.SkipAll
				}
				rel, _ := filepath.Rel(src, p)
				out = append(out, [2]string{in.From, filepath.ToSlash(rel)})
				return nil
			})
		}
	}
	return out
}

// Summary is what a run creates on Batch, for bmc plan.
type Summary struct {
	Pool       BatchPoolCreateOptions `json:"pool"`
	PoolReused string                 `json:"poolReuse"`
	Tasks      int                    `json:"tasks"`
	Barriers   int                    `json:"barrierTasks"`
	Finalize   string                 `json:"finalize"`
	// Requests is how many add-collection requests the tasks take, at
	// least.
	Requests int `json:"addCollectionRequests"`
	// LargestTask is the size of the largest task definition, in bytes.
	LargestTask int `json:"largestTaskBytes"`
}

// Describe says what a run of prog will create.
func Describe(prog *compiler.Program, opt CheckOptions) (*Summary, error) {
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	staged, dirs := fakeStaged(prog, opt.SpecDir)
	m, err := Map(plan, &executor.RunInfo{ID: prog.Name + "-000000000000-xxxxxx", Workload: prog.Name}, sizeLocator{},
		MapOptions{Staged: staged, Dirs: dirs, DependencyChars: opt.DependencyChars})
	if err != nil {
		return nil, err
	}
	s := &Summary{Pool: m.Pool, Tasks: len(m.Tasks) - m.Barriers, Barriers: m.Barriers,
		PoolReused: "used if it exists with the same vmSize and taskSlotsPerNode; created otherwise"}
	s.Finalize = "on the client that runs bmc"
	if opt.JobManager {
		s.Finalize = "on the pool, as the job manager task " + FinalizeTaskID + " (bmc finalize --watch)"
	}
	a := &adder{c: &Client{maxCollectionBody: maxCollectionBody}, enc: make([][]byte, len(m.Tasks))}
	for i, t := range m.Tasks {
		b, err := marshal(t)
		if err != nil {
			return nil, err
		}
		a.enc[i] = b
		s.LargestTask = max(s.LargestTask, len(b))
	}
	s.Requests = len(a.plan())
	return s, nil
}

func mustLoc(s string) blobstage.Location {
	l, err := blobstage.ParseURL(s)
	if err != nil {
		panic(err)
	}
	return l
}
