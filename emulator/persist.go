package emulator

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Persistence (--data DIR). The state lives in DIR/state.jsonl, a journal
// of records, one JSON object a line: the full current form of a pool, job
// or task each time it changes, and deletions. Changes made while the lock
// is held are coalesced and written when it is released, before the
// request that made them is answered, so an acknowledged request survives
// the emulator being killed (the data is in the operating system's hands;
// it is not fsynced, which only a machine crash would need). On start the
// journal is replayed and rewritten compactly (to a temporary file, synced,
// then renamed over it), and it is compacted again whenever it has grown
// well beyond the live state.
//
// Tasks that were running when the emulator stopped are requeued: back to
// active, their retry count untouched, as Batch does with the tasks of a
// node that failed ("retries due to recovery operations are independent of
// and are not counted against the maxTaskRetryCount"). Jobs that were
// terminating complete, and deletions in progress finish.

const journalName = "state.jsonl"

type recKind string

const (
	recPool       recKind = "pool"
	recJob        recKind = "job"
	recTask       recKind = "task"
	recDeletePool recKind = "deletePool"
	recDeleteJob  recKind = "deleteJob"
	recDeleteTask recKind = "deleteTask"
)

type record struct {
	Kind  recKind    `json:"kind"`
	Pool  *savedPool `json:"pool,omitempty"`
	Job   *savedJob  `json:"job,omitempty"`
	Task  *savedTask `json:"task,omitempty"`
	JobID string     `json:"jobId,omitempty"`
	ID    string     `json:"id,omitempty"`
}

type savedPool struct {
	Wire    Pool   `json:"wire"`
	Seq     int64  `json:"seq"`
	AutoJob string `json:"autoJob,omitempty"`
}

type savedJob struct {
	Wire Job   `json:"wire"`
	Seq  int64 `json:"seq"`
}

type savedTask struct {
	Wire       Task  `json:"wire"`
	Seq        int64 `json:"seq"`
	JobManager bool  `json:"jobManager,omitempty"`
	DepOK      *bool `json:"depOK,omitempty"`
}

type pendingRec struct {
	kind  recKind
	pool  *pool
	job   *job
	task  *task
	id    string
	jobID string
}

type journal struct {
	path    string
	f       *os.File
	w       *bufio.Writer
	records int // written since the last compaction
	live    int // entities in the last compaction
	failed  bool
}

func (s *Server) markPool(p *pool) {
	if s.journal != nil && !p.mark {
		p.mark = true
		s.pending = append(s.pending, pendingRec{kind: recPool, pool: p})
	}
}

func (s *Server) markJob(j *job) {
	if s.journal != nil && !j.mark {
		j.mark = true
		s.pending = append(s.pending, pendingRec{kind: recJob, job: j})
	}
}

func (s *Server) markTask(t *task) {
	if s.journal != nil && !t.mark {
		t.mark = true
		s.pending = append(s.pending, pendingRec{kind: recTask, task: t})
	}
}

func (s *Server) journalDelete(kind recKind, id, jobID string) {
	if s.journal != nil {
		s.pending = append(s.pending, pendingRec{kind: kind, id: id, jobID: jobID})
	}
}

func savePool(p *pool) *savedPool { return &savedPool{Wire: p.wire, Seq: p.seq, AutoJob: p.autoJob} }
func saveJob(j *job) *savedJob    { return &savedJob{Wire: j.wire, Seq: j.seq} }
func saveTask(t *task) *savedTask {
	return &savedTask{Wire: t.wire, Seq: t.seq, JobManager: t.jm, DepOK: t.depOK}
}

// commitLocked writes the changes made since the last commit.
func (s *Server) commitLocked() {
	jl := s.journal
	if jl == nil {
		clear(s.pending)
		s.pending = s.pending[:0]
		return
	}
	for _, p := range s.pending {
		var rec record
		switch p.kind {
		case recPool:
			p.pool.mark = false
			if s.pools[p.pool.key] != p.pool {
				continue
			}
			rec = record{Kind: recPool, Pool: savePool(p.pool)}
		case recJob:
			p.job.mark = false
			if s.jobs[p.job.key] != p.job {
				continue
			}
			rec = record{Kind: recJob, Job: saveJob(p.job)}
		case recTask:
			p.task.mark = false
			if p.task.gone {
				continue
			}
			rec = record{Kind: recTask, JobID: p.task.job.wire.ID, Task: saveTask(p.task)}
		default:
			rec = record{Kind: p.kind, ID: p.id, JobID: p.jobID}
		}
		s.writeRecord(rec)
	}
	clear(s.pending)
	s.pending = s.pending[:0]
	if err := jl.w.Flush(); err != nil {
		s.journalFailed(err)
	}
	if jl.records > max(50_000, 4*jl.live) {
		if err := s.compactLocked(); err != nil {
			s.journalFailed(err)
		}
	}
}

func (s *Server) writeRecord(rec record) {
	b, err := json.Marshal(rec)
	if err != nil {
		s.journalFailed(err)
		return
	}
	b = append(b, '\n')
	if _, err := s.journal.w.Write(b); err != nil {
		s.journalFailed(err)
	}
	s.journal.records++
}

func (s *Server) journalFailed(err error) {
	if !s.journal.failed {
		s.journal.failed = true
		s.log.Error("emulator: cannot write its state; changes may be lost on restart", "path", s.journal.path, "err", err)
	}
}

func (j *journal) close() error {
	err := j.w.Flush()
	if e := j.f.Sync(); err == nil {
		err = e
	}
	if e := j.f.Close(); err == nil {
		err = e
	}
	return err
}

// compactLocked rewrites the journal as one record per live entity,
// streamed to a temporary file that replaces the journal once it is
// complete and synced.
func (s *Server) compactLocked() error {
	path := filepath.Join(s.opt.DataDir, journalName)
	n := 0
	err := writeAtomic(path, 0o644, func(w *bufio.Writer) error {
		enc := json.NewEncoder(w)
		write := func(rec record) error {
			n++
			return enc.Encode(rec)
		}
		pools := mapValues(s.pools)
		slices.SortFunc(pools, func(a, b *pool) int { return cmp.Compare(a.seq, b.seq) })
		for _, p := range pools {
			if err := write(record{Kind: recPool, Pool: savePool(p)}); err != nil {
				return err
			}
		}
		jobs := mapValues(s.jobs)
		slices.SortFunc(jobs, func(a, b *job) int { return cmp.Compare(a.seq, b.seq) })
		for _, j := range jobs {
			if err := write(record{Kind: recJob, Job: saveJob(j)}); err != nil {
				return err
			}
			for _, t := range j.order {
				if t.gone {
					continue
				}
				if err := write(record{Kind: recTask, JobID: j.wire.ID, Task: saveTask(t)}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	failed := false
	if s.journal != nil {
		failed = s.journal.failed
		_ = s.journal.f.Close() // its records are all in the new file
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.journal = nil
		return err
	}
	s.journal = &journal{path: path, f: f, w: bufio.NewWriterSize(f, 256<<10), live: n, failed: failed}
	return nil
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// writeFileAtomic writes a file that appears whole or not at all.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, perm, func(w *bufio.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic writes path through fill: to a temporary file beside it,
// synced, then renamed over it, and the directory synced.
func writeAtomic(path string, perm os.FileMode, fill func(*bufio.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriterSize(f, 256<<10)
	err = fill(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// load replays the journal in the data directory and rebuilds the state.
func (s *Server) load() error {
	path := filepath.Join(s.opt.DataDir, journalName)
	pools := map[string]*savedPool{}
	jobs := map[string]*savedJob{}
	tasks := map[string]map[string]*savedTask{}

	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("emulator: state: %w", err)
	default:
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		line := 0
		var bad error
		for sc.Scan() {
			line++
			if bad != nil {
				// Only the last line may be torn by a crash.
				f.Close()
				return fmt.Errorf("emulator: state %s:%d: %w", path, line-1, bad)
			}
			var rec record
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				bad = err
				continue
			}
			if rec.Kind == recPool && rec.Pool == nil || rec.Kind == recJob && (rec.Job == nil || rec.Job.Wire.PoolInfo == nil) ||
				rec.Kind == recTask && rec.Task == nil {
				bad = fmt.Errorf("a %s record without its %s", rec.Kind, rec.Kind)
				continue
			}
			switch rec.Kind {
			case recPool:
				pools[lower(rec.Pool.Wire.ID)] = rec.Pool
			case recJob:
				k := lower(rec.Job.Wire.ID)
				if old := jobs[k]; old == nil || old.Seq != rec.Job.Seq {
					tasks[k] = map[string]*savedTask{}
				}
				jobs[k] = rec.Job
			case recTask:
				if m := tasks[lower(rec.JobID)]; m != nil {
					m[lower(rec.Task.Wire.ID)] = rec.Task
				}
			case recDeletePool:
				delete(pools, lower(rec.ID))
			case recDeleteJob:
				delete(jobs, lower(rec.ID))
				delete(tasks, lower(rec.ID))
			case recDeleteTask:
				if m := tasks[lower(rec.JobID)]; m != nil {
					delete(m, lower(rec.ID))
				}
			}
		}
		err := sc.Err()
		f.Close()
		if err != nil {
			return fmt.Errorf("emulator: state %s: %w", path, err)
		}
		if bad != nil {
			s.log.Warn("emulator: ignoring a torn last line in the state journal", "path", path, "line", line)
		}
	}

	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range pools {
		s.seq = max(s.seq, sp.Seq)
		if sp.Wire.State == PoolDeleting {
			continue // its deletion finishes now
		}
		p := &pool{wire: sp.Wire, key: lower(sp.Wire.ID), seq: sp.Seq, jobs: map[*job]struct{}{}, autoJob: sp.AutoJob}
		s.pools[p.key] = p
		s.sizePoolLocked(p, DeallocRequeue, now)
	}
	sjobs := mapValues(jobs)
	slices.SortFunc(sjobs, func(a, b *savedJob) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, sj := range sjobs {
		s.seq = max(s.seq, sj.Seq)
		j := newJob(sj.Wire, sj.Seq)
		j.poolKey = lower(j.wire.PoolInfo.PoolID)
		if j.wire.ExecutionInfo != nil && j.wire.PoolInfo.AutoPoolSpecification != nil {
			j.poolKey = lower(j.wire.ExecutionInfo.PoolID)
		}
		s.jobs[j.key] = j
		st := mapValues(tasks[j.key])
		slices.SortFunc(st, func(a, b *savedTask) int { return cmp.Compare(a.Seq, b.Seq) })
		var done []*task
		for _, x := range st {
			s.seq = max(s.seq, x.Seq)
			t := &task{wire: x.Wire, key: lower(x.Wire.ID), seq: x.Seq, job: j, jm: x.JobManager, depOK: x.DepOK}
			if t.wire.State == TaskRunning || t.wire.State == TaskPreparing {
				// The node it ran on is gone: requeue it, as Batch does.
				s.moveState(t, TaskActive, now)
			}
			j.addTaskIndex(t)
			j.count(t, 1)
			if t.wire.State == TaskCompleted {
				done = append(done, t)
			}
		}
		// The first task with a given number to finish decided ranges.
		slices.SortStableFunc(done, func(a, b *task) int {
			return execInfo(a).EndTime.Compare(execInfo(b).EndTime.Time)
		})
		for _, t := range done {
			if n, ok := taskInt(t.wire.ID); ok && t.depOK != nil {
				if _, seen := j.intDone[n]; !seen {
					j.intDone[n] = *t.depOK
				}
			}
		}
		for _, t := range j.order {
			if t.wire.State == TaskActive {
				s.setupDeps(j, t)
				if t.pending == 0 && !t.blocked {
					j.enqueue(t)
				}
			}
		}
		switch j.wire.State {
		case JobTerminating:
			s.settleJobLocked(j, now)
		case JobDisabling:
			s.setJobState(j, JobDisabled, now)
		case JobDeleting:
			s.removeJobLocked(j, now)
			continue
		}
		switch j.wire.State {
		case JobActive, JobDisabled, JobDisabling:
			s.bindJob(j)
			s.armJobTimer(j)
		}
	}
	if err := s.compactLocked(); err != nil {
		return fmt.Errorf("emulator: state: %w", err)
	}
	for _, j := range s.jobs {
		s.checkAllCompleteLocked(j, now)
	}
	s.commitLocked()
	return nil
}
