// The run journal: an append-only JSON-lines file in the run directory that
// records what a run did. Resume and status read it back, so every record
// is on disk before Append returns, and a crash mid-write leaves at most one
// torn line at the end, which is ignored on read and cut off on reopen.

package executor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// JournalFile is the journal's file name inside a run directory.
const JournalFile = "journal.jsonl"

// Record types written by the run loop.
const (
	RecordRunStarted       = "run-started"
	RecordTaskStarted      = "task-started"
	RecordTaskFinished     = "task-finished"
	RecordTaskSkipped      = "task-skipped"
	RecordFinalizeFinished = "finalize-finished"
	RecordCallback         = "callback"
	RecordRunFinished      = "run-finished"
)

// Record is one line of the journal. Readers ignore fields they do not
// know, so fields may be added (omitempty) without breaking old journals.
type Record struct {
	Time     time.Time `json:"t"`
	Type     string    `json:"type"`
	Task     string    `json:"task,omitempty"`
	Attempt  int       `json:"attempt,omitempty"`
	State    string    `json:"state,omitempty"`
	ExitCode *int      `json:"exitCode,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	// Retry marks a failed attempt after which the task runs again: it
	// waits for its next attempt, pending, rather than having failed.
	Retry bool            `json:"retry,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// ErrJournalClosed is returned by Append after Close.
var ErrJournalClosed = errors.New("journal closed")

// CorruptJournalError reports a damaged record that is not the journal's
// last line. A damaged last line is a write torn by a crash and is ignored;
// anything earlier had been acknowledged as durable, so losing it silently
// would make resume redo or skip work on a false picture of the run.
type CorruptJournalError struct {
	Path string
	Line int // 1-based
	Err  error
}

func (e *CorruptJournalError) Error() string {
	return fmt.Sprintf("journal %s:%d: %v", e.Path, e.Line, e.Err)
}

func (e *CorruptJournalError) Unwrap() error { return e.Err }

// Journal appends records to a journal file. It is safe for concurrent use.
//
// Appends are group-committed: a single writer goroutine takes every record
// queued since its last commit, writes them with one write and one fsync,
// then releases all their callers. Under concurrency the cost of an fsync is
// shared by the whole batch instead of paid per record.
type Journal struct {
	path string
	f    *os.File
	now  func() time.Time
	sync func(*os.File) error
	// enqueued, if set, runs after a record has been queued; tests use it
	// to know that a batch is complete without guessing at timing.
	enqueued func()

	syncs atomic.Int64

	mu       sync.Mutex
	cur      *journalBatch // records waiting for the writer; nil if none
	unsynced bool          // AppendAsync wrote records not yet fsync'd
	held     []byte        // records kept by Hold, not yet written
	err      error         // sticky: set by the first failed write or fsync
	closed   bool
	kick     chan struct{} // capacity 1; closed by Close

	stopped  chan struct{} // closed when the writer goroutine has exited
	closeErr error
}

type journalBatch struct {
	buf     []byte
	durable bool          // a caller waits for durability: fsync before done
	done    chan struct{} // closed once buf is durable or has failed
	err     error         // valid after done is closed
}

type journalOptions struct {
	now      func() time.Time
	sync     func(*os.File) error
	enqueued func()
}

// OpenJournal opens the journal at path for appending, creating it if it
// does not exist. A torn last line left by a crash is truncated away first,
// so that new records do not end up glued to the fragment. A journal that is
// damaged before its last line is not opened: a *CorruptJournalError says
// where.
func OpenJournal(path string) (*Journal, error) {
	return openJournal(path, journalOptions{})
}

func openJournal(path string, o journalOptions) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if err := repairTail(f, path); err != nil {
		f.Close()
		return nil, err
	}
	j := &Journal{
		path:     path,
		f:        f,
		now:      o.now,
		sync:     o.sync,
		enqueued: o.enqueued,
		kick:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
	}
	if j.now == nil {
		j.now = time.Now
	}
	if j.sync == nil {
		j.sync = (*os.File).Sync
	}
	go j.run()
	return j, nil
}

// repairTail truncates anything after the last complete record.
func repairTail(f *os.File, path string) error {
	_, good, err := scanJournal(f, path, false)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	if st.Size() == good {
		return nil
	}
	if err := f.Truncate(good); err != nil {
		return fmt.Errorf("open journal %s: truncate torn tail: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("open journal %s: truncate torn tail: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	// Windows cannot open a directory for syncing; its metadata updates
	// are not ordered the same way anyway.
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Path returns the journal's file path.
func (j *Journal) Path() string { return j.path }

// Syncs returns how many fsyncs the journal has issued for appended
// records. Compared with the number of records it shows how well group
// commit is batching.
func (j *Journal) Syncs() int64 { return j.syncs.Load() }

// Append writes rec to the journal and returns once it is durable. A zero
// rec.Time is set to the current time. After a failed write or fsync every
// later Append fails too: the file may then end in a partial record, and
// on Linux a failed fsync can drop dirty pages, so a retry that "succeeds"
// would prove nothing. Reopening the journal repairs the tail.
func (j *Journal) Append(rec Record) error {
	b, err := j.enqueue(rec, modeDurable)
	if err != nil {
		return err
	}
	<-b.done
	return b.err
}

// AppendAsync writes rec to the journal and returns without waiting for
// it to be durable: the write reaches the file at once, so a killed bmc
// loses nothing, and an fsync follows within asyncSyncDelay. The executor
// journals task outcomes this way so that neither an fsync nor a wake-up
// of the writer goroutine holds up the next task: a record lost to a
// machine crash before its fsync only means that task runs again on
// resume, never that a task recorded as succeeded is lost. The error is
// that of an earlier failed write or fsync, if any.
func (j *Journal) AppendAsync(rec Record) error {
	_, err := j.enqueue(rec, modeAsync)
	return err
}

// Hold keeps rec in memory until the next Flush, or the next append of
// any other kind, which writes held records first. The executor holds the
// records of one turn of its loop and flushes them with one write before
// it waits; a bmc killed within the turn loses them, as it would lose a
// record it was about to write anyway.
func (j *Journal) Hold(rec Record) error {
	_, err := j.enqueue(rec, modeHold)
	return err
}

// Flush writes the held records, as AppendAsync does.
func (j *Journal) Flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.held) == 0 || j.closed {
		return j.err
	}
	return j.writeLocked(nil)
}

type appendMode int

const (
	modeDurable appendMode = iota
	modeAsync
	modeHold
)

func (j *Journal) enqueue(rec Record, mode appendMode) (*journalBatch, error) {
	if rec.Type == "" {
		return nil, errors.New("journal append: record has no type")
	}
	if rec.Time.IsZero() {
		rec.Time = j.now().UTC()
	}
	line, err := appendRecord(make([]byte, 0, 160), &rec)
	if err != nil {
		return nil, fmt.Errorf("journal append %s: %w", rec.Type, err)
	}
	line = append(line, '\n')

	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil, ErrJournalClosed
	}
	if j.err != nil {
		err := j.err
		j.mu.Unlock()
		return nil, err
	}
	var b *journalBatch
	switch {
	case mode == modeHold:
		j.held = append(j.held, line...)
	case mode == modeDurable || j.cur != nil:
		// Through the writer, which commits durable records in groups. An
		// async record joins a batch already waiting, to stay in order.
		b = j.cur
		if b == nil {
			b = &journalBatch{done: make(chan struct{})}
			j.cur = b
		}
		b.buf = append(append(b.buf, j.held...), line...)
		j.held = j.held[:0]
		b.durable = b.durable || mode == modeDurable
		j.wake()
	default:
		if err := j.writeLocked(line); err != nil {
			j.mu.Unlock()
			return nil, err
		}
	}
	j.mu.Unlock()

	if j.enqueued != nil {
		j.enqueued()
	}
	return b, nil
}

// writeLocked writes the held records and line at once, or queues them
// behind a batch waiting for the writer; the caller holds j.mu.
func (j *Journal) writeLocked(line []byte) error {
	buf := line
	if len(j.held) > 0 {
		buf = append(j.held, line...)
		j.held = nil
	}
	if j.cur != nil {
		j.cur.buf = append(j.cur.buf, buf...)
		j.wake()
		return nil
	}
	if err := j.commit(buf); err != nil {
		j.err = err
		return err
	}
	// The writer needs to hear of unsynced records only once per fsync,
	// to arm its timer.
	if !j.unsynced {
		j.unsynced = true
		j.wake()
	}
	return nil
}

// wake tells the writer goroutine there is work; the caller holds j.mu.
func (j *Journal) wake() {
	select {
	case j.kick <- struct{}{}:
	default: // the writer has already been woken and will see it
	}
}

// asyncSyncDelay bounds how long a record appended with AppendAsync stays
// written but not yet fsync'd. Its write reaches the file at once, so a
// killed bmc loses nothing; only a machine crash within this window can.
// Syncing every short task's record at once would instead make each
// fsync's journal commit stall the next task's file system work.
const asyncSyncDelay = 200 * time.Millisecond

// run is the writer goroutine: it commits the batches of durable records
// and fsyncs what AppendAsync wrote. It exits after Close, once the last
// queued batch has been committed.
func (j *Journal) run() {
	defer close(j.stopped)
	var (
		timer *time.Timer
		due   <-chan time.Time
	)
	dirSynced := false
	// syncNow fsyncs everything written so far. Records written while it
	// runs mark the journal unsynced again.
	syncNow := func() error {
		due = nil
		if timer != nil {
			timer.Stop()
		}
		j.mu.Lock()
		j.unsynced = false
		j.mu.Unlock()
		j.syncs.Add(1)
		if err := j.sync(j.f); err != nil {
			return fmt.Errorf("journal %s: fsync: %w", j.path, err)
		}
		// The file's directory entry must be durable too, or a freshly
		// created journal can vanish in a crash together with every record
		// in it. Synced here, with the first records, rather than on open:
		// nothing is durable before then anyway, and a run need not wait
		// for it to start its first tasks.
		if !dirSynced {
			if err := syncDir(filepath.Dir(j.path)); err != nil {
				return fmt.Errorf("journal %s: sync directory: %w", j.path, err)
			}
			dirSynced = true
		}
		return nil
	}
	fail := func(err error) {
		j.mu.Lock()
		if j.err == nil {
			j.err = err
		}
		j.mu.Unlock()
	}
	for {
		var open bool
		select {
		case _, open = <-j.kick:
		case <-due:
			if err := syncNow(); err != nil {
				fail(err)
			}
			continue
		}
		// Let appenders that are already runnable queue their records
		// first, so they join this commit instead of waiting a whole
		// fsync for the next one. It costs a scheduler yield, not a sleep.
		runtime.Gosched()
		j.mu.Lock()
		b := j.cur
		j.cur = nil
		err := j.err
		if b != nil && err == nil {
			// Written under the lock, so that records appended meanwhile
			// by AppendAsync land after it.
			err = j.commit(b.buf)
			if err != nil {
				j.err = err
			}
		}
		unsynced := j.unsynced
		j.mu.Unlock()
		// On Close, whatever is written but not yet synced is synced now.
		pending := unsynced || due != nil
		if err == nil && (b != nil && b.durable || !open && pending) {
			err = syncNow()
			if err != nil {
				fail(err)
			}
		} else if err == nil && unsynced && due == nil {
			if timer == nil {
				timer = time.NewTimer(asyncSyncDelay)
			} else {
				timer.Reset(asyncSyncDelay)
			}
			due = timer.C
		}
		if b != nil {
			b.err = err
			close(b.done)
		}
		if !open {
			return
		}
	}
}

// commit writes buf at the end of the journal; the caller holds j.mu.
func (j *Journal) commit(buf []byte) error {
	if _, err := j.f.Write(buf); err != nil {
		return fmt.Errorf("journal %s: write: %w", j.path, err)
	}
	return nil
}

// Close waits for queued records to be committed and closes the file.
// Appends racing with Close either complete durably or return
// ErrJournalClosed. Close may be called more than once.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		<-j.stopped
		return j.closeErr
	}
	var flushErr error
	if len(j.held) > 0 && j.err == nil {
		flushErr = j.writeLocked(nil)
	}
	j.closed = true
	close(j.kick)
	j.mu.Unlock()

	<-j.stopped
	if err := j.f.Close(); err != nil {
		j.closeErr = fmt.Errorf("close journal: %w", err)
	}
	if flushErr != nil {
		j.closeErr = flushErr
	}
	return j.closeErr
}

// ReadJournal returns every complete record in the journal at path, in the
// order written. A torn last line is ignored; damage before the last line
// is a *CorruptJournalError.
func ReadJournal(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	recs, _, err := scanJournal(f, path, true)
	return recs, err
}

// scanJournal decodes records from r and returns them (when keep is set)
// with the byte offset just past the last good one. A line without a
// trailing newline, or an undecodable last line, is a torn write and is
// left out; an undecodable line followed by anything is corruption.
func scanJournal(r io.Reader, path string, keep bool) ([]Record, int64, error) {
	br := bufio.NewReader(r)
	var (
		recs []Record
		good int64
		line int
		bad  *CorruptJournalError
	)
	for {
		b, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, 0, fmt.Errorf("read journal %s: %w", path, err)
		}
		if len(b) == 0 {
			break
		}
		line++
		if bad != nil {
			return nil, 0, bad
		}
		if err == io.EOF {
			break // no newline: a write torn by a crash
		}
		rec, derr := decodeRecord(b[:len(b)-1])
		if derr != nil {
			bad = &CorruptJournalError{Path: path, Line: line, Err: derr}
			continue
		}
		if keep {
			recs = append(recs, rec)
		}
		good += int64(len(b))
	}
	return recs, good, nil
}

func decodeRecord(b []byte) (Record, error) {
	var rec Record
	// Unmarshal accepts "null" into a struct without complaint, and the
	// zero bytes a crashed filesystem can leave are not JSON at all.
	if len(b) == 0 || b[0] != '{' {
		return rec, fmt.Errorf("invalid record: not a JSON object: %q", truncateBytes(b, 40))
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("invalid record: %w", err)
	}
	if rec.Type == "" {
		return rec, errors.New("invalid record: no type")
	}
	return rec, nil
}

func truncateBytes(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append(bytes.Clone(b[:n]), "..."...)
}

// appendRecord appends r as JSON, the same bytes json.Marshal gives for
// the records bmc writes. Written out by hand because the executor writes
// two records per task, and reflection made encoding them a measurable
// part of the cost of a short task.
func appendRecord(b []byte, r *Record) ([]byte, error) {
	b = append(b, `{"t":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","type":`...)
	b = appendString(b, r.Type)
	if r.Task != "" {
		b = append(b, `,"task":`...)
		b = appendString(b, r.Task)
	}
	if r.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(r.Attempt), 10)
	}
	if r.State != "" {
		b = append(b, `,"state":`...)
		b = appendString(b, r.State)
	}
	if r.ExitCode != nil {
		b = append(b, `,"exitCode":`...)
		b = strconv.AppendInt(b, int64(*r.ExitCode), 10)
	}
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, r.Reason)
	}
	if r.Retry {
		b = append(b, `,"retry":true`...)
	}
	if len(r.Data) > 0 {
		b = append(b, `,"data":`...)
		var buf bytes.Buffer
		if err := json.Compact(&buf, r.Data); err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		b = append(b, buf.Bytes()...)
	}
	return append(b, '}'), nil
}

// appendString appends s as a JSON string, escaped as encoding/json does:
// quotes, backslashes, control characters (\n, \r, \t, \b and \f short),
// <, >, &, U+2028 and U+2029, and
// invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
