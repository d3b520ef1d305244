package executor

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/internal/redact"
)

// The files of a run directory, .bmc/runs/<run-id>/.
const (
	ProgramFile = "program.json" // the compiled program the run executes
	MetaFile    = "run.json"     // how the run was started
	LockFile    = "lock"         // held while a bmc process drives the run
)

// ErrNoRun is wrapped by errors about a run id that names no run.
var ErrNoRun = errors.New("no such run")

// Meta is how a run was started: enough to resume it with the same
// program, storage and options.
type Meta struct {
	ID        string            `json:"id"`
	Workload  string            `json:"workload"`
	Backend   string            `json:"backend"`
	Spec      string            `json:"spec"`
	SpecDir   string            `json:"specDir"`
	Params    map[string]any    `json:"params,omitempty"`
	Created   time.Time         `json:"created"`
	Slots     int               `json:"slots"`
	KeepGoing bool              `json:"keepGoing,omitempty"`
	Only      []string          `json:"only,omitempty"`
	Storage   string            `json:"storage"`
	Packages  []string          `json:"packages,omitempty"`
	Extra     map[string]string `json:"extra,omitempty"`
	// KeepWorkdirs says the working directories of succeeded tasks are
	// kept (--keep-workdirs): a resume keeps them too.
	KeepWorkdirs bool `json:"keepWorkdirs,omitempty"`
	// Logs is the --logs prefix the run was started with, if any: a
	// resume uploads its tasks' logs there too.
	Logs string `json:"logs,omitempty"`
	// Redacted says that secrets in the program or the params (SAS
	// signatures in URLs, account keys) were left out of the run
	// directory: a resume must get them again from the spec and --set.
	Redacted bool `json:"redacted,omitempty"`
	// SecretParams are params left out of Params (kept as REDACTED)
	// because their values are secrets the program's text alone does not
	// show (Program.SecretParams): a resume needs them again with --set.
	SecretParams []string `json:"secretParams,omitempty"`
}

// NewRunID returns <workload>-<yymmddhhmmss>-<random>: sortable by time, at
// most 64 characters (a valid Batch job id; workload names are at most
// 48), with as many random characters (2 to 6) as that leaves room for.
// Callers still draw again if the id is taken.
func NewRunID(workload string, now time.Time) string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	n := min(6, 64-len(workload)-14)
	n = max(n, 2)
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%36]
	}
	return fmt.Sprintf("%s-%s-%s", workload, now.UTC().Format("060102150405"), b)
}

// RunsDir is where runs live under a state directory.
func RunsDir(state string) string { return filepath.Join(state, "runs") }

// CreateRun makes the run directory and writes its program and meta
// data, leaving the run's lock free: CreateRunLocked for a run to drive.
func CreateRun(state string, meta Meta, prog *compiler.Program) (string, error) {
	dir, unlock, err := CreateRunLocked(state, meta, prog)
	if err != nil {
		return "", err
	}
	unlock()
	return dir, nil
}

// CreateRunLocked makes the run directory, takes its lock, and only then
// writes its program and meta data: a run can be found (FindRun lists
// only directories with their meta data) once its creator holds the
// lock, so no bmc cancel or resume takes it for an interrupted run before
// it starts. The meta data is written whole or not at all, and a run
// that cannot be written is removed: no half-made run is left behind.
func CreateRunLocked(state string, meta Meta, prog *compiler.Program) (dir string, unlock func(), err error) {
	// No secret is kept with the run: they stay in this process's memory.
	// The program is written compact: indenting it would take longer than
	// encoding it, at every start (bmc compile shows it indented). It and
	// the meta data are encoded before the directory is made, so that
	// what cannot be encoded leaves no empty run behind.
	secret := prog.SecretParams()
	b, redacted, err := prog.RedactedJSONOf(secret, false)
	if err != nil {
		return "", nil, fmt.Errorf("write program: %w", err)
	}
	meta = withoutSecretParams(meta, secret)
	mb, mredacted, err := redact.JSON(meta, true)
	if err == nil && (redacted || mredacted) {
		meta.Redacted = true
		mb, _, err = redact.JSON(meta, true)
	}
	if err != nil {
		return "", nil, fmt.Errorf("write run meta data: %w", err)
	}
	dir = filepath.Join(RunsDir(state), meta.ID)
	if err := EnsureStateDir(state); err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(RunsDir(state), 0o755); err != nil {
		return "", nil, fmt.Errorf("create run directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("create run directory: %w", err)
	}
	unlock, err = Lock(dir)
	if err == nil {
		err = writeRunFiles(dir, b, mb)
	}
	if err != nil {
		if unlock != nil {
			unlock()
		}
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, unlock, nil
}

// writeRunFile writes a run directory's files; tests replace it.
var writeRunFile = os.WriteFile

// withoutSecretParams returns meta with the params whose values bmc
// keeps nowhere (secret, the program's SecretParams) left out, and named
// in SecretParams.
func withoutSecretParams(meta Meta, secret []string) Meta {
	secret = paramsIn(meta, secret)
	if len(secret) == 0 {
		return meta
	}
	meta.Params = maps.Clone(meta.Params)
	for _, k := range secret {
		meta.Params[k] = redact.Marker
	}
	meta.SecretParams, meta.Redacted = secret, true
	return meta
}

// SecretParamsOf names, sorted, the params a run was started with whose
// values its directory does not keep (Program.SecretParams).
func SecretParamsOf(meta Meta, prog *compiler.Program) []string {
	return paramsIn(meta, prog.SecretParams())
}

// paramsIn is the names of secret a run was started with.
func paramsIn(meta Meta, secret []string) []string {
	var in []string
	for _, k := range secret {
		if _, ok := meta.Params[k]; ok {
			in = append(in, k)
		}
	}
	return in
}

// writeRunFiles writes a new run's program and then its meta data, which
// makes the run visible: under a temporary name first, so that a run is
// never seen with its meta data cut short (a disk that filled).
func writeRunFiles(dir string, program, meta []byte) error {
	if err := writeRunFile(filepath.Join(dir, ProgramFile), program, 0o644); err != nil {
		return fmt.Errorf("write program: %w", err)
	}
	tmp := filepath.Join(dir, MetaFile+".tmp")
	if err := writeRunFile(tmp, meta, 0o644); err != nil {
		return fmt.Errorf("write run meta data: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, MetaFile)); err != nil {
		return fmt.Errorf("write run meta data: %w", err)
	}
	return nil
}

// FindRun resolves a run id, a unique prefix of one, or "latest" to a run
// directory.
func FindRun(state, id string) (string, error) {
	ids, err := ListRunIDs(state)
	if err != nil {
		return "", err
	}
	if id == "latest" || id == "last" {
		if len(ids) == 0 {
			return "", fmt.Errorf("%w: there are no runs in %s", ErrNoRun, RunsDir(state))
		}
		latest, latestT := "", time.Time{}
		for _, r := range ids {
			if m, err := ReadMeta(filepath.Join(RunsDir(state), r)); err == nil && !m.Created.Before(latestT) {
				latest, latestT = r, m.Created
			}
		}
		if latest == "" {
			latest = ids[len(ids)-1]
		}
		return filepath.Join(RunsDir(state), latest), nil
	}
	var matches []string
	for _, r := range ids {
		if r == id {
			return filepath.Join(RunsDir(state), r), nil
		}
		if strings.HasPrefix(r, id) {
			matches = append(matches, r)
		}
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("%w %q in %s (see bmc runs)", ErrNoRun, id, RunsDir(state))
	case 1:
		return filepath.Join(RunsDir(state), matches[0]), nil
	}
	return "", fmt.Errorf("run id %q is ambiguous: %s", id, strings.Join(matches, ", "))
}

// ListRunIDs lists the runs in a state directory, sorted by id.
func ListRunIDs(state string) ([]string, error) {
	ents, err := os.ReadDir(RunsDir(state))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(RunsDir(state), e.Name(), MetaFile)); err == nil {
				ids = append(ids, e.Name())
			}
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// ReadMeta reads a run's meta data.
func ReadMeta(dir string) (Meta, error) {
	var m Meta
	path := filepath.Join(dir, MetaFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := decodeNumbers(b, &m); err != nil {
		return m, fmt.Errorf("read %s: %w", path, err)
	}
	return m, nil
}

// decodeNumbers decodes JSON with its numbers kept as written
// (json.Number), as the compiler keeps them: a param of 1.10 read back is
// 1.10, not 1.1, so that the run's program compiles again the same.
func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("invalid character after top-level value")
	}
	return nil
}

// ReadProgram reads the program a run executes.
func ReadProgram(dir string) (*compiler.Program, error) {
	b, err := os.ReadFile(filepath.Join(dir, ProgramFile))
	if err != nil {
		return nil, err
	}
	var p compiler.Program
	if err := decodeNumbers(b, &p); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, ProgramFile), err)
	}
	return &p, nil
}

// Lock takes the run's lock, so that one bmc process at a time drives it.
// The lock file holds the process id, for bmc cancel; the kernel drops the
// lock when the process dies, even by kill -9.
func Lock(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock run: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		pid, _ := LockHolder(dir)
		return nil, fmt.Errorf("run %s is in progress (bmc process %d)", filepath.Base(dir), pid)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		f.Truncate(0)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// LockHolder returns the id of the process driving the run, if any.
func LockHolder(dir string) (pid int, held bool) {
	f, err := os.Open(filepath.Join(dir, LockFile))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0, false
	}
	b := make([]byte, 32)
	n, _ := f.Read(b)
	pid, _ = strconv.Atoi(strings.TrimSpace(string(b[:n])))
	return pid, true
}

// TaskState is a task's state as the journal tells it.
type TaskState struct {
	ID       string    `json:"id"`
	State    State     `json:"state"`
	Attempts int       `json:"attempts"`
	ExitCode *int      `json:"exitCode,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Outputs  []string  `json:"outputs,omitempty"`
	Start    time.Time `json:"start,omitzero"`
	End      time.Time `json:"end,omitzero"`
	// LastStart is when the task's last attempt started, and End is when
	// it ended; Start is when the first attempt started, maybe in an
	// earlier session of the run.
	LastStart time.Time `json:"lastStart,omitzero"`
	// Interrupted says the task was running when the bmc process driving
	// the run went away without ending it.
	Interrupted bool `json:"interrupted,omitempty"`
}

// RunState is a run as its journal tells it.
type RunState struct {
	Tasks    map[string]*TaskState `json:"-"`
	Started  time.Time             `json:"started,omitzero"`
	Finished time.Time             `json:"finished,omitzero"`
	// Status: running, succeeded, failed, cancelled, or interrupted (no
	// bmc process drives it and it did not finish).
	Status   string          `json:"status"`
	Finalize *TaskState      `json:"finalize,omitempty"`
	Callback *CallbackResult `json:"callback,omitempty"`
	// Sessions is how many times the run was started or resumed.
	Sessions int `json:"sessions"`
	// finalizeEnded: the last session journaled the finalize step's end.
	finalizeEnded bool
	// finalizeStart: when the finalize step of the last finalize-finished
	// record started, as its data tells.
	finalizeStart time.Time
	// tasks: how many tasks the last run-started record says the run
	// has, if it says (hasTasks).
	tasks    int
	hasTasks bool
	// waits are the tasks pending because their attempt Attempts failed
	// and they run again, with why that attempt failed.
	waits map[string]string
}

// TaskCount is how many tasks the run has, as the journal's last
// run-started record says: its program's, which then need not be read
// to count them. ok is false when the journal does not say.
func (s *RunState) TaskCount() (n int, ok bool) { return s.tasks, s.hasTasks }

// FinalizeStart is when the finalize step the journal last tells of
// started, as its record's data says; zero if it does not say. LoadState
// leaves Finalize.Start zero: bmc status shows this.
func (s *RunState) FinalizeStart() time.Time { return s.finalizeStart }

// Done returns the tasks that succeeded.
func (s *RunState) Done() map[string]bool {
	done := map[string]bool{}
	for id, t := range s.Tasks {
		if t.State == Succeeded {
			done[id] = true
		}
	}
	return done
}

// LoadState reads a run's journal.
func LoadState(dir string) (*RunState, error) {
	return loadState(dir, "")
}

// LoadTaskState is LoadState for one task: Tasks has that task only (if
// the journal names it), and the records of the others are passed over,
// which on a sweep is most of the journal. What it tells of the run
// (Status, Started, Finished, Sessions) is as LoadState tells it, but not
// Finalize and Callback, which the others' records make stale: nil,
// unless task is the finalize step, for which the whole state is read.
func LoadTaskState(dir, task string) (*RunState, error) {
	if task == compiler.FinalizeID {
		return LoadState(dir)
	}
	st, err := loadState(dir, task)
	if err != nil {
		return nil, err
	}
	st.Finalize, st.Callback, st.finalizeStart = nil, nil, time.Time{}
	return st, nil
}

// loadState reads a run's journal, only one task's records when only is
// set: the journal is read as a stream, never held whole.
func loadState(dir, only string) (*RunState, error) {
	st := &RunState{Tasks: map[string]*TaskState{}, Status: "interrupted"}
	task := func(id string) *TaskState {
		t := st.Tasks[id]
		if t == nil {
			t = &TaskState{ID: id, State: Pending}
			st.Tasks[id] = t
		}
		return t
	}
	// A finalize step and a callback tell of the tasks' outcomes as they
	// were: once a task runs again (a later session), what they told is
	// no longer the run's, and a resume or a cancel must do them again,
	// even if the session that ran the task did not get as far.
	stale := func() { st.Finalize, st.Callback = nil, nil }
	err := ScanJournal(filepath.Join(dir, JournalFile), only, func(r *Record) error {
		switch r.Type {
		case RecordRunStarted:
			st.Sessions++
			if st.Started.IsZero() {
				st.Started = r.Time
			}
			st.Status, st.Finished, st.finalizeEnded = "interrupted", time.Time{}, false
			var d struct {
				Tasks *int `json:"tasks"`
			}
			st.tasks, st.hasTasks = 0, false
			if len(r.Data) > 0 && json.Unmarshal(r.Data, &d) == nil && d.Tasks != nil && *d.Tasks >= 0 {
				st.tasks, st.hasTasks = *d.Tasks, true
			}
			// A new session runs again what did not succeed: until it
			// does, that is pending, not as the last session left it.
			// What the last finalize step and callback told of them is
			// then no longer the run's outcome either.
			for _, t := range st.Tasks {
				if t.State != Succeeded {
					t.State, t.ExitCode, t.Reason, t.End, t.Interrupted = Pending, nil, "", time.Time{}, false
					delete(st.waits, t.ID)
					stale()
				}
			}
		case RecordTaskStarted:
			t := task(r.Task)
			if t.State == Succeeded {
				return nil
			}
			stale()
			t.State, t.Attempts = Running, max(t.Attempts, r.Attempt)
			t.ExitCode, t.Reason, t.End = nil, "", time.Time{} // the attempt before's
			delete(st.waits, t.ID)
			if t.Start.IsZero() {
				t.Start = r.Time
			}
			t.LastStart = r.Time
		case RecordTaskFinished, RecordTaskSkipped:
			t := task(r.Task)
			if t.State == Succeeded {
				return nil // a succeeded task is never run again
			}
			stale()
			t.State, t.ExitCode, t.Reason, t.End = State(r.State), r.ExitCode, r.Reason, r.Time
			delete(st.waits, t.ID)
			if r.Attempt > t.Attempts {
				t.Attempts = r.Attempt
			}
			if r.Retry && t.State == Failed {
				// The attempt failed and the task runs again: it waits.
				t.State = Pending
				if st.waits == nil {
					st.waits = map[string]string{}
				}
				st.waits[t.ID] = r.Reason
				t.Reason = waitReason(r.Attempt, r.Reason)
			}
			var d struct{ Outputs []string }
			if len(r.Data) > 0 && json.Unmarshal(r.Data, &d) == nil {
				// A location two attempts wrote (a when: failure output
				// of a task retried) is listed once, as in the summary.
				for _, loc := range d.Outputs {
					if !slices.Contains(t.Outputs, loc) {
						t.Outputs = append(t.Outputs, loc)
					}
				}
			}
		case RecordFinalizeFinished:
			st.Finalize = &TaskState{ID: compiler.FinalizeID, State: State(r.State), Attempts: 1, ExitCode: r.ExitCode, Reason: r.Reason, End: r.Time}
			st.finalizeEnded = true
			// Its outputs are listed, as in the run summary and the
			// callback: bmc status is where one finds them to remove them.
			var d FinalizeData
			if len(r.Data) > 0 && json.Unmarshal(r.Data, &d) == nil {
				st.finalizeStart, st.Finalize.Outputs = d.Start, d.Outputs
			} else {
				st.finalizeStart = time.Time{}
			}
		case RecordCallback:
			var cr CallbackResult
			if json.Unmarshal(r.Data, &cr) == nil {
				st.Callback = &cr
			}
		case RecordRunFinished:
			st.Status, st.Finished = r.State, r.Time
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// A task journaled as running by a process that is gone was
	// interrupted with it.
	if _, held := LockHolder(dir); held {
		if st.Finished.IsZero() {
			st.Status = "running"
		}
	} else {
		st.Interrupt()
	}
	return st, nil
}

// waitReason is the reason of a task pending because its attempt n
// failed, for why: said only when the backend told it (Batch does not).
func waitReason(n int, why string) string {
	if !toldWhy(why) {
		return fmt.Sprintf("attempt %d failed; runs again", n)
	}
	return fmt.Sprintf("attempt %d failed (%s); runs again", n, why)
}

// waiting reports whether task is pending because its last attempt
// failed and it runs again, and why that attempt failed.
func (s *RunState) waiting(task string) (why string, ok bool) {
	why, ok = s.waits[task]
	return why, ok
}

// Interrupt makes st what a run no process drives is: not journaled as
// finished, it is interrupted, and its tasks journaled as running were
// interrupted with it. LoadState does so for a run whose lock no one
// holds; a process that has just locked a run to drive it, and reads its
// state, does so itself.
func (st *RunState) Interrupt() {
	if st.Finished.IsZero() {
		st.Status = "interrupted"
	}
	for _, t := range st.Tasks {
		if t.State == Running {
			t.State, t.Reason, t.Interrupted = Canceled, interruptedReason, true
		}
	}
}

// interruptedReason is the reason of a task interrupted with the bmc
// process that drove its run.
const interruptedReason = "interrupted: bmc stopped while it ran"

// Standing is task t as one looking at its run sees it. A task
// interrupted with the bmc process that drove the run is cancelled in the
// state LoadState reads, which is what bmc cancel makes of it; but
// nothing cancelled it: it is running while a process of it still runs
// (stillRuns), and pending otherwise, for bmc resume runs it again. Any
// other task stands as the journal tells.
func (t TaskState) Standing(stillRuns bool) TaskState {
	switch {
	case !t.Interrupted:
	case stillRuns:
		t.State = Running
	default:
		t.State, t.Reason = Pending, interruptedReason+"; runs again on resume"
	}
	return t
}

// WasRunning reports whether a task (or the finalize step) may have been
// running when the bmc process driving the run went away: a task
// journaled as started and not ended, or, in a run not journaled as
// finished, a finalize step whose end its last session did not journal.
func (s *RunState) WasRunning(task string) bool {
	if task == compiler.FinalizeID {
		return !s.finalizeEnded && s.Finished.IsZero()
	}
	t := s.Tasks[task]
	return t != nil && t.Interrupted
}
