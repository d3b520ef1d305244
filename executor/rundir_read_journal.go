package executor

// Reading a journal as a stream. The journal of a sweep of 100,000 tasks
// has some 200,000 records: held all at once, and decoded each by
// reflection, they cost seconds and hundreds of megabytes to bmc status,
// which needs each task's last state only, and to bmc logs, which needs
// one task's.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// ScanJournal calls fn with each complete record of the journal at path,
// in the order written, as ReadJournal returns them. With only set, it
// passes over the records of every task but that one: fn gets that
// task's and those of the run (no task). A torn last line is ignored;
// damage before the last line is a *CorruptJournalError, returned once
// the line after it is reached. An error from fn ends the scan and is
// returned as it is. The *Record is reused: fn must not keep it.
func ScanJournal(path, only string, fn func(*Record) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	return scanRecords(f, path, only, 64<<10, fn)
}

// scanRecords is ScanJournal on r, with a buffer of size bytes: the same
// lines as scanJournal reads, with the same faults, but passed on one at
// a time.
func scanRecords(r io.Reader, path, only string, size int, fn func(*Record) error) error {
	br := bufio.NewReaderSize(r, size)
	var (
		long []byte // a line longer than br's buffer
		line int
		bad  *CorruptJournalError
		rec  Record
	)
	for {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], b...)
			for err == bufio.ErrBufferFull {
				b, err = br.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read journal %s: %w", path, err)
		}
		if len(b) == 0 {
			return nil
		}
		line++
		if bad != nil {
			return bad
		}
		if err == io.EOF {
			return nil // no newline: a write torn by a crash
		}
		b = b[:len(b)-1]
		var lr lineRecord
		if parseRecord(b, &lr) {
			if only != "" && len(lr.task) > 0 && string(lr.task) != only {
				continue
			}
			lr.record(&rec)
		} else {
			var derr error
			if rec, derr = decodeRecord(b); derr != nil {
				bad = &CorruptJournalError{Path: path, Line: line, Err: derr}
				continue
			}
			if only != "" && rec.Task != "" && rec.Task != only {
				continue
			}
		}
		if err := fn(&rec); err != nil {
			return err
		}
	}
}

// lineRecord is a journal line read in place: its strings are slices of
// the line.
type lineRecord struct {
	time                     time.Time
	typ, task, state, reason []byte
	attempt, exitCode        int
	hasExitCode              bool
	data                     []byte
}

// parseRecord reads a journal line written as appendRecord writes one
// (and json.Marshal did before it): its fields in Record's order, no
// space, strings with nothing escaped. It reports false for any other
// line, which decodeRecord then reads: what it reads, it reads as
// decodeRecord would, so that the two give the same Record.
func parseRecord(b []byte, lr *lineRecord) bool {
	rest, ok := bytes.CutPrefix(b, []byte(`{"t":`))
	if !ok {
		return false
	}
	var s, t []byte
	if t, rest, ok = plainString(rest); !ok {
		return false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"type":`)); !ok {
		return false
	}
	if lr.typ, rest, ok = plainString(rest); !ok || len(lr.typ) <= 2 {
		return false // no type: decodeRecord says what is wrong
	}
	lr.typ = lr.typ[1 : len(lr.typ)-1]
	if r, ok := bytes.CutPrefix(rest, []byte(`,"task":`)); ok {
		if s, rest, ok = plainString(r); !ok {
			return false
		}
		lr.task = s[1 : len(s)-1]
	}
	if r, ok := bytes.CutPrefix(rest, []byte(`,"attempt":`)); ok {
		if lr.attempt, rest, ok = plainInt(r); !ok {
			return false
		}
	}
	if r, ok := bytes.CutPrefix(rest, []byte(`,"state":`)); ok {
		if s, rest, ok = plainString(r); !ok {
			return false
		}
		lr.state = s[1 : len(s)-1]
	}
	if r, ok := bytes.CutPrefix(rest, []byte(`,"exitCode":`)); ok {
		if lr.exitCode, rest, ok = plainInt(r); !ok {
			return false
		}
		lr.hasExitCode = true
	}
	if r, ok := bytes.CutPrefix(rest, []byte(`,"reason":`)); ok {
		if s, rest, ok = plainString(r); !ok {
			return false
		}
		lr.reason = s[1 : len(s)-1]
	}
	if r, ok := bytes.CutPrefix(rest, []byte(`,"data":`)); ok {
		// The data goes to the end of the record. The decoder would keep
		// it without the spaces around it, which bmc never writes.
		if len(r) < 2 || r[len(r)-1] != '}' {
			return false
		}
		d := r[:len(r)-1]
		if isSpace(d[0]) || isSpace(d[len(d)-1]) || !json.Valid(d) {
			return false
		}
		lr.data, rest = d, r[len(r)-1:]
	}
	if len(rest) != 1 || rest[0] != '}' {
		return false
	}
	// The time last, as time.Time decodes it from JSON: a line that is
	// not of this form costs no parse.
	return lr.time.UnmarshalJSON(t) == nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// plainString reads a JSON string with nothing escaped and nothing but
// printable ASCII in it, returning it with its quotes.
func plainString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, b, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[:i+1], b[i+1:], true
		case c < 0x20 || c == '\\' || c >= 0x7f:
			return nil, b, false
		}
	}
	return nil, b, false
}

// plainInt reads an integer written as strconv writes one.
func plainInt(b []byte) (n int, rest []byte, ok bool) {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	digits := b[start:i]
	if len(digits) == 0 || len(digits) > 18 || len(digits) > 1 && digits[0] == '0' || i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, b, false
	}
	if start == 1 && digits[0] == '0' {
		return 0, b, false // -0: left to the decoder
	}
	n, err := strconv.Atoi(string(b[:i]))
	if err != nil {
		return 0, b, false
	}
	return n, b[i:], true
}

// record fills rec from the line, allocating only what rec keeps: the
// record types and task states bmc writes are shared strings.
func (lr *lineRecord) record(rec *Record) {
	*rec = Record{Time: lr.time, Type: known(lr.typ), Attempt: lr.attempt}
	rec.Task = string(lr.task)
	rec.State = known(lr.state)
	if lr.hasExitCode {
		code := lr.exitCode
		rec.ExitCode = &code
	}
	rec.Reason = string(lr.reason)
	if lr.data != nil {
		rec.Data = bytes.Clone(lr.data)
	}
}

// known is s as a string, without allocating when it is one of the
// record types or task states bmc writes.
func known(s []byte) string {
	switch string(s) {
	case RecordTaskStarted:
		return RecordTaskStarted
	case RecordTaskFinished:
		return RecordTaskFinished
	case RecordTaskSkipped:
		return RecordTaskSkipped
	case RecordRunStarted:
		return RecordRunStarted
	case RecordRunFinished:
		return RecordRunFinished
	case string(Succeeded):
		return string(Succeeded)
	case string(Failed):
		return string(Failed)
	case string(Skipped):
		return string(Skipped)
	case string(Canceled):
		return string(Canceled)
	}
	return string(s)
}
