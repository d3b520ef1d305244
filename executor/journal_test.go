package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func intPtr(i int) *int { return &i }

func journalPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), JournalFile)
}

func mustOpen(t testing.TB, path string) *Journal {
	t.Helper()
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatalf("OpenJournal: %v", err)
	}
	return j
}

func mustAppend(t testing.TB, j *Journal, rec Record) {
	t.Helper()
	if err := j.Append(rec); err != nil {
		t.Fatalf("Append(%+v): %v", rec, err)
	}
}

func mustClose(t testing.TB, j *Journal) {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func mustRead(t testing.TB, path string) []Record {
	t.Helper()
	recs, err := ReadJournal(path)
	if err != nil {
		t.Fatalf("ReadJournal: %v", err)
	}
	return recs
}

// rec returns a small valid record; n makes it distinguishable.
func rec(n int) Record {
	return Record{
		Time: time.Date(2026, 1, 2, 3, 4, 5, n, time.UTC),
		Type: RecordTaskStarted,
		Task: "t" + strconv.Itoa(n),
	}
}

func recordLine(t testing.TB, r Record) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJournalRoundTrip(t *testing.T) {
	path := journalPath(t)
	want := []Record{
		{Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), Type: RecordRunStarted, Data: json.RawMessage(`{"runId":"r1","backend":"local"}`)},
		{Time: time.Date(2026, 3, 1, 10, 0, 1, 0, time.UTC), Type: RecordTaskStarted, Task: "align-s1", Attempt: 1},
		{Time: time.Date(2026, 3, 1, 10, 0, 2, 0, time.UTC), Type: RecordTaskFinished, Task: "align-s1", Attempt: 1, State: "succeeded", ExitCode: intPtr(0)},
		{Time: time.Date(2026, 3, 1, 10, 0, 3, 0, time.UTC), Type: RecordTaskFinished, Task: "merge", Attempt: 3, State: "failed", ExitCode: intPtr(137), Reason: "killed: timeout 2h\nafter \"retry\""},
		{Time: time.Date(2026, 3, 1, 10, 0, 4, 0, time.UTC), Type: RecordTaskSkipped, Task: "report", Reason: "merge failed"},
		{Time: time.Date(2026, 3, 1, 10, 0, 5, 0, time.UTC), Type: RecordRunFinished, State: "failed"},
	}
	j := mustOpen(t, path)
	for _, r := range want {
		mustAppend(t, j, r)
	}
	mustClose(t, j)

	got := mustRead(t, path)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}

	// One record per line, newline-terminated, so the file is readable
	// with ordinary line tools even when a reason contains newlines.
	lines := strings.Split(readFile(t, path), "\n")
	if len(lines) != len(want)+1 || lines[len(lines)-1] != "" {
		t.Fatalf("file has %d newline-separated parts, want %d lines and a final newline", len(lines), len(want))
	}
	// An exit code of 0 is information, not an absent value.
	if !strings.Contains(lines[2], `"exitCode":0`) {
		t.Errorf("line 3 = %s, want exitCode 0 kept", lines[2])
	}
	if strings.Contains(lines[1], "exitCode") || strings.Contains(lines[1], "reason") {
		t.Errorf("line 2 = %s, want empty optional fields omitted", lines[1])
	}
}

func TestJournalReopenAppends(t *testing.T) {
	path := journalPath(t)
	j := mustOpen(t, path)
	mustAppend(t, j, rec(1))
	mustAppend(t, j, rec(2))
	mustClose(t, j)

	j = mustOpen(t, path)
	mustAppend(t, j, rec(3))
	mustClose(t, j)

	if diff := cmp.Diff([]Record{rec(1), rec(2), rec(3)}, mustRead(t, path)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestJournalFillsZeroTime(t *testing.T) {
	path := journalPath(t)
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.FixedZone("X", 3600))
	j, err := openJournal(path, journalOptions{now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, Record{Type: RecordRunStarted})
	set := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	mustAppend(t, j, Record{Type: RecordRunFinished, Time: set})
	mustClose(t, j)

	got := mustRead(t, path)
	if len(got) != 2 {
		t.Fatalf("got %d records, want 2", len(got))
	}
	if !got[0].Time.Equal(at) || got[0].Time.Location() != time.UTC {
		t.Errorf("zero time filled as %v, want %v in UTC", got[0].Time, at)
	}
	if !got[1].Time.Equal(set) {
		t.Errorf("explicit time became %v, want %v", got[1].Time, set)
	}
}

func TestJournalAppendRejectsBadRecords(t *testing.T) {
	path := journalPath(t)
	j := mustOpen(t, path)
	defer mustClose(t, j)

	if err := j.Append(Record{Task: "x"}); err == nil {
		t.Error("Append without a type succeeded")
	}
	if err := j.Append(Record{Type: RecordCallback, Data: json.RawMessage(`{"open":`)}); err == nil {
		t.Error("Append with invalid Data succeeded")
	}
	// A rejected record must not poison the journal.
	mustAppend(t, j, rec(1))
	if diff := cmp.Diff([]Record{rec(1)}, mustRead(t, path)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestJournalAppendAfterClose(t *testing.T) {
	j := mustOpen(t, journalPath(t))
	mustClose(t, j)
	if err := j.Append(rec(1)); !errors.Is(err, ErrJournalClosed) {
		t.Errorf("Append after Close = %v, want ErrJournalClosed", err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// Appends racing with Close either land durably or report ErrJournalClosed;
// none is lost after claiming success.
func TestJournalCloseRacesAppend(t *testing.T) {
	path := journalPath(t)
	j := mustOpen(t, path)
	const n = 200
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := map[string]bool{}
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			r := rec(i)
			switch err := j.Append(r); {
			case err == nil:
				mu.Lock()
				ok[r.Task] = true
				mu.Unlock()
			case errors.Is(err, ErrJournalClosed):
			default:
				errs <- err
			}
		})
	}
	close(start)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Append: %v", err)
	}

	got := map[string]bool{}
	for _, r := range mustRead(t, path) {
		got[r.Task] = true
	}
	if diff := cmp.Diff(ok, got); diff != "" {
		t.Errorf("acknowledged vs stored records (-acked +stored):\n%s", diff)
	}
}

// Every Append returns only after an fsync that covered its record: the
// sync hook records which lines were on disk when each fsync completed.
func TestJournalAppendIsDurableOnReturn(t *testing.T) {
	path := journalPath(t)
	var mu sync.Mutex
	synced := map[string]bool{}
	j, err := openJournal(path, journalOptions{sync: func(f *os.File) error {
		if err := f.Sync(); err != nil {
			return err
		}
		recs, err := ReadJournal(f.Name())
		if err != nil {
			return err
		}
		mu.Lock()
		for _, r := range recs {
			synced[r.Task] = true
		}
		mu.Unlock()
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, j)

	const n = 50
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			r := rec(i)
			if err := j.Append(r); err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if !synced[r.Task] {
				errs <- fmt.Errorf("Append(%s) returned before its record was synced", r.Task)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// With the first fsync held until every appender has queued its record,
// everything queued meanwhile must go out in one more commit: at most two
// fsyncs for all records, whatever the scheduling.
func TestJournalGroupCommitBatches(t *testing.T) {
	const n = 100
	path := journalPath(t)
	var queued sync.WaitGroup
	queued.Add(n)
	firstSync := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	j, err := openJournal(path, journalOptions{
		enqueued: queued.Done,
		sync: func(f *os.File) error {
			once.Do(func() {
				close(firstSync)
				<-release
			})
			return f.Sync()
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			if err := j.Append(rec(i)); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	<-firstSync
	queued.Wait()
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	mustClose(t, j)

	if s := j.Syncs(); s < 1 || s > 2 {
		t.Errorf("Syncs() = %d for %d records, want 1 or 2", s, n)
	}
	got := mustRead(t, path)
	if len(got) != n {
		t.Fatalf("read %d records, want %d", len(got), n)
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.Task] {
			t.Errorf("record %s stored twice", r.Task)
		}
		seen[r.Task] = true
	}
}

// The same property with the real fsync and no hooks: many writers released
// at once share fsyncs.
func TestJournalConcurrentAppendsShareFsyncs(t *testing.T) {
	const n = 1000
	path := journalPath(t)
	j := mustOpen(t, path)
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			if err := j.Append(rec(i)); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	mustClose(t, j)

	if s := j.Syncs(); s >= n {
		t.Errorf("Syncs() = %d for %d concurrent records, want fewer fsyncs than records", s, n)
	} else {
		t.Logf("%d records in %d fsyncs", n, s)
	}
	if got := len(mustRead(t, path)); got != n {
		t.Errorf("read %d records, want %d", got, n)
	}
}

// After a failed fsync the journal refuses further appends instead of
// pretending later records are durable.
func TestJournalSyncFailureIsSticky(t *testing.T) {
	path := journalPath(t)
	boom := errors.New("disk on fire")
	fail := false
	var mu sync.Mutex
	j, err := openJournal(path, journalOptions{sync: func(f *os.File) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return boom
		}
		return f.Sync()
	}})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, rec(1))
	mu.Lock()
	fail = true
	mu.Unlock()
	if err := j.Append(rec(2)); !errors.Is(err, boom) {
		t.Fatalf("Append with failing fsync = %v, want %v", err, boom)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if err := j.Append(rec(3)); !errors.Is(err, boom) {
		t.Errorf("Append after a failed fsync = %v, want the sticky %v", err, boom)
	}
	if got := j.Syncs(); got != 2 {
		t.Errorf("Syncs() = %d, want 2 (no fsync after the failure)", got)
	}
	mustClose(t, j)
}

func TestJournalTornTail(t *testing.T) {
	r1, r2, r3 := recordLine(t, rec(1)), recordLine(t, rec(2)), rec(3)
	tests := []struct {
		name    string
		content string
		want    []Record
	}{
		{"empty file", "", nil},
		{"clean", r1 + r2, []Record{rec(1), rec(2)}},
		{"complete JSON without newline", r1 + strings.TrimSuffix(r2, "\n"), []Record{rec(1)}},
		{"half a record", r1 + r2[:len(r2)/2], []Record{rec(1)}},
		{"only a fragment", r1[:10], nil},
		{"single brace", r1 + "{", []Record{rec(1)}},
		{"zeros from a crashed filesystem", r1 + "\x00\x00\x00\x00", []Record{rec(1)}},
		{"zeros then newline", r1 + "\x00\x00\x00\n", []Record{rec(1)}},
		{"invalid last line with newline", r1 + r2 + `{"t":"2026-01-0` + "\n", []Record{rec(1), rec(2)}},
		{"empty last line", r1 + "\n", []Record{rec(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			writeFile(t, path, tt.content)

			if diff := cmp.Diff(tt.want, mustRead(t, path)); diff != "" {
				t.Fatalf("ReadJournal (-want +got):\n%s", diff)
			}

			// Reopening cuts the torn tail, so the next record starts on a
			// line of its own and the journal reads back cleanly.
			j := mustOpen(t, path)
			mustAppend(t, j, r3)
			mustClose(t, j)

			want := append(append([]Record(nil), tt.want...), r3)
			if diff := cmp.Diff(want, mustRead(t, path)); diff != "" {
				t.Errorf("after reopen and append (-want +got):\n%s", diff)
			}
			var clean strings.Builder
			for _, r := range want {
				clean.WriteString(recordLine(t, r))
			}
			if got := readFile(t, path); got != clean.String() {
				t.Errorf("file after repair =\n%q\nwant\n%q", got, clean.String())
			}
		})
	}
}

func TestJournalCorruptMiddle(t *testing.T) {
	r1, r2 := recordLine(t, rec(1)), recordLine(t, rec(2))
	tests := []struct {
		name     string
		content  string
		wantLine int
	}{
		{"garbage line", r1 + "not json\n" + r2, 2},
		{"torn record then more", r1 + r2[:20] + "\n" + r2, 2},
		{"null", "null\n" + r1, 1},
		{"no type", r1 + r2 + `{"t":"2026-01-02T03:04:05Z"}` + "\n" + r1, 3},
		{"empty line", r1 + "\n" + r2, 2},
		{"zeros in the middle", r1 + "\x00\x00\n" + r2, 2},
		{"bad line followed by a torn tail", r1 + "oops\n" + r2[:5], 2},
		{"wrong field type", r1 + `{"t":"2026-01-02T03:04:05Z","type":"task-started","attempt":"one"}` + "\n" + r2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			writeFile(t, path, tt.content)

			_, err := ReadJournal(path)
			var ce *CorruptJournalError
			if !errors.As(err, &ce) {
				t.Fatalf("ReadJournal error = %v, want *CorruptJournalError", err)
			}
			if ce.Line != tt.wantLine || ce.Path != path {
				t.Errorf("corruption at %s:%d, want %s:%d", ce.Path, ce.Line, path, tt.wantLine)
			}
			if want := fmt.Sprintf("%s:%d:", path, tt.wantLine); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}

			// A corrupt journal is neither opened nor modified.
			if j, err := OpenJournal(path); !errors.As(err, &ce) {
				if j != nil {
					j.Close()
				}
				t.Errorf("OpenJournal error = %v, want *CorruptJournalError", err)
			}
			if got := readFile(t, path); got != tt.content {
				t.Errorf("OpenJournal modified a corrupt journal:\n%q\nwant\n%q", got, tt.content)
			}
		})
	}
}

func TestReadJournalMissing(t *testing.T) {
	_, err := ReadJournal(filepath.Join(t.TempDir(), "nope.jsonl"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadJournal of a missing file = %v, want os.ErrNotExist", err)
	}
}

// Large Data payloads exceed bufio's default buffer and must still read.
// AppendAsync's record is in the file when it returns (a killed bmc loses
// nothing), and an fsync follows by itself, shared by the records around
// it; mixed with durable appends, records keep their order.
func TestJournalAppendAsync(t *testing.T) {
	path := journalPath(t)
	synced := make(chan struct{}, 100)
	j, err := openJournal(path, journalOptions{sync: func(f *os.File) error {
		synced <- struct{}{}
		return f.Sync()
	}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		if err := j.AppendAsync(rec(i)); err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, path); len(got) != i+1 || got[i].Task != rec(i).Task {
			t.Fatalf("after AppendAsync %d the file holds %d records", i, len(got))
		}
	}
	select {
	case <-synced:
	case <-time.After(30 * time.Second):
		t.Fatal("no fsync after AppendAsync")
	}
	if s := j.Syncs(); s >= n {
		t.Errorf("Syncs() = %d for %d async records, want them to share fsyncs", s, n)
	}

	// Concurrent writers, some durable, some not: each writer's records
	// stay in its own order.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				r := Record{Type: RecordTaskFinished, Task: fmt.Sprintf("w%d", w), Attempt: i + 1}
				var err error
				if i%7 == 0 {
					err = j.Append(r)
				} else {
					err = j.AppendAsync(r)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	mustClose(t, j)
	last := map[string]int{}
	got := mustRead(t, path)
	for _, r := range got[n:] {
		if r.Attempt != last[r.Task]+1 {
			t.Fatalf("%s: record %d after %d", r.Task, r.Attempt, last[r.Task])
		}
		last[r.Task] = r.Attempt
	}
	if len(got) != n+400 {
		t.Errorf("read %d records, want %d", len(got), n+400)
	}
}

// Held records reach the file on Flush, ahead of any later append, and on
// Close; never out of order.
func TestJournalHoldFlush(t *testing.T) {
	path := journalPath(t)
	j := mustOpen(t, path)
	for i := range 3 {
		if err := j.Hold(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustRead(t, path); len(got) != 0 {
		t.Fatalf("%d records in the file before Flush", len(got))
	}
	if err := j.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, path); len(got) != 3 {
		t.Fatalf("%d records after Flush, want 3", len(got))
	}
	mustHold := func(i int) {
		t.Helper()
		if err := j.Hold(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	mustHold(3)
	if err := j.AppendAsync(rec(4)); err != nil { // writes 3 first
		t.Fatal(err)
	}
	mustHold(5)
	mustAppend(t, j, rec(6)) // durable: 5 goes with it
	mustHold(7)
	mustClose(t, j) // 7 is not lost
	got := mustRead(t, path)
	if len(got) != 8 {
		t.Fatalf("read %d records, want 8", len(got))
	}
	for i, r := range got {
		if r.Task != rec(i).Task {
			t.Errorf("record %d is %s, want %s", i, r.Task, rec(i).Task)
		}
	}
}

func TestJournalLargeRecord(t *testing.T) {
	path := journalPath(t)
	big := json.RawMessage(`{"blob":"` + strings.Repeat("x", 1<<20) + `"}`)
	j := mustOpen(t, path)
	mustAppend(t, j, Record{Time: rec(1).Time, Type: RecordFinalizeFinished, Data: big})
	mustAppend(t, j, rec(2))
	mustClose(t, j)

	got := mustRead(t, path)
	if len(got) != 2 || string(got[0].Data) != string(big) {
		t.Fatalf("large record did not round-trip (%d records)", len(got))
	}
}

func BenchmarkJournalAppend(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			j := mustOpen(b, journalPath(b))
			r := Record{Time: time.Now().UTC(), Type: RecordTaskFinished, Task: "align-s1", Attempt: 1, State: "succeeded", ExitCode: intPtr(0)}
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range writers {
				n := b.N / writers
				if w < b.N%writers {
					n++
				}
				wg.Go(func() {
					for range n {
						if err := j.Append(r); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if s := j.Syncs(); s > 0 {
				b.ReportMetric(float64(b.N)/float64(s), "records/fsync")
			}
			mustClose(b, j)
		})
	}
}

// appendRecord must write what json.Marshal writes, byte for byte, so that
// journals read the same whichever wrote them.
func TestAppendRecordMatchesEncodingJSON(t *testing.T) {
	code, neg := 3, -1
	recs := []Record{
		{Type: RecordRunStarted},
		rec(7),
		{Time: time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC), Type: RecordTaskFinished, Task: "align-s1", Attempt: 2, State: "failed", ExitCode: &code, Reason: "exit code 3"},
		{Time: time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.FixedZone("x", 5400)), Type: RecordTaskSkipped, ExitCode: &neg},
		{Type: RecordTaskFinished, Reason: "quote \" backslash \\ tab \t nl \n cr \r ctl \x01\x1f del \x7f <a & b> \u2028\u2029 é 日本 \xff\xfe bad"},
		{Type: RecordTaskFinished, Data: json.RawMessage(`{ "outputs" : [ "az://r/x/" , "a" ] }`)},
		{Type: RecordCallback, Data: json.RawMessage(`"s"`)},
	}
	for i, r := range recs {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendRecord(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("record %d:\n got %s\nwant %s", i, got, want)
		}
	}
	if _, err := appendRecord(nil, &Record{Type: "x", Data: json.RawMessage(`{bad`)}); err == nil {
		t.Error("invalid data accepted")
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\\n<>&\u2028", "\xff", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}
