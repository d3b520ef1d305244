package schema

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestFormat(t *testing.T) {
	src := []byte("a: 1\r\nb:\tx ${{ y }}\nc: 3")
	d := &Diagnostic{Pos: Pos{File: "s.yaml", Line: 2, Col: 7}, Path: "b", Msg: "unknown name y",
		Hint: "did you mean z?", Related: []Pos{{File: "s.yaml", Line: 1, Col: 1}}}
	want := "s.yaml:2:7: b: unknown name y\n" +
		"    b: x ${{ y }}\n" +
		"          ^\n" +
		"    did you mean z?\n" +
		"    see s.yaml:1:1\n"
	if got := d.Format(src); got != want {
		t.Errorf("Format:\n%s\nwant:\n%s", got, want)
	}
	lines := NewSourceLines(src)
	if got := d.FormatLines(lines); got != want {
		t.Errorf("FormatLines:\n%s\nwant:\n%s", got, want)
	}
	for _, tc := range []struct {
		pos  Pos
		want string
	}{
		{Pos{File: "s.yaml", Line: 1, Col: 4}, "s.yaml:1:4: m\n    a: 1\n       ^\n"}, // the \r is not shown
		{Pos{File: "s.yaml", Line: 3, Col: 1}, "s.yaml:3:1: m\n    c: 3\n    ^\n"},    // no line end
		{Pos{File: "s.yaml", Line: 4, Col: 1}, "s.yaml:4:1: m\n"},                     // past the end
		{Pos{File: "s.yaml"}, "s.yaml: m\n"},                                          // no line
	} {
		if got := (&Diagnostic{Pos: tc.pos, Msg: "m"}).FormatLines(lines); got != tc.want {
			t.Errorf("FormatLines at %v = %q, want %q", tc.pos, got, tc.want)
		}
	}
}

// manyLines is a spec of n lines, with a diagnostic on line at.
func manyLines(n, at int) ([]byte, *Diagnostic) {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "k%d: v\n", i)
	}
	return []byte(b.String()), &Diagnostic{Pos: Pos{File: "s.yaml", Line: at, Col: 1}, Msg: "m"}
}

// TestFormatLinesReadsTheFileOnce checks that formatting one more
// diagnostic of a file costs the same whatever the file's length: the
// lines are indexed once, not read again for each diagnostic (with tens
// of thousands of errors, that made the report take many seconds).
// Indexing 200,000 lines again would take some 40 allocations; a few
// are allowed for the race detector, under which sync.Pool (used by fmt)
// drops items at random.
func TestFormatLinesReadsTheFileOnce(t *testing.T) {
	allocs := func(n int) float64 {
		src, d := manyLines(n, 7)
		lines := NewSourceLines(src)
		return testing.AllocsPerRun(20, func() { d.FormatLines(lines) })
	}
	if small, large := allocs(10), allocs(200_000); large > small+5 {
		t.Errorf("formatting a diagnostic allocates %v times in a 10-line file, %v in a 200,000-line one", small, large)
	}
}

// BenchmarkFormatLines formats diagnostics on the last line of files of
// growing length: the time per diagnostic should not grow with it.
func BenchmarkFormatLines(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("lines=%d", n), func(b *testing.B) {
			src, d := manyLines(n, n)
			lines := NewSourceLines(src)
			for b.Loop() {
				d.FormatLines(lines)
			}
		})
	}
}

// TestSortReportsAProblemOnce checks which of two reports of one problem,
// the schema's and the compiler's, Sort keeps.
func TestSortReportsAProblemOnce(t *testing.T) {
	at := func(line, col int) Pos { return Pos{File: "s.yaml", Line: line, Col: col} }
	ds := Diagnostics{
		// A param declared as a scalar has no default: not "required" too.
		{Pos: at(6, 6), Path: "params.y", Msg: "expected map, got int 3", from: checkKind},
		{Pos: at(6, 3), Path: "params.y", Msg: `param "y" is required`},
		// A task id both refuse: the compiler's says more.
		{Pos: at(8, 9), Path: "tasks[0].id", Msg: `invalid value "b c"`, from: checkValue},
		{Pos: at(8, 9), Path: "tasks[0].id", Msg: `task id "b c": expected 1-64 letters, digits, _ and -`},
		// Elsewhere in the same value, it is another problem.
		{Pos: at(9, 9), Path: "tasks[1].id", Msg: `invalid value "b c${{ x }}"`, from: checkValue},
		{Pos: at(9, 12), Path: "tasks[1].id", Msg: "unknown name x"},
		// Another field, another file: kept.
		{Pos: at(10, 5), Path: "params.z", Msg: `param "z" is required`},
		{Pos: Pos{File: "t.yaml", Line: 6, Col: 3}, Path: "params.y", Msg: `param "y" is required`},
		// Errors with no path (the YAML's) are never dropped.
		{Pos: at(1, 1), Msg: "a spec file holds one document; found another here"},
		{Pos: at(1, 1), Msg: "expected map, got list", from: checkKind},
	}
	ds.Sort()
	var got []string
	for _, d := range ds {
		got = append(got, d.Error())
	}
	want := []string{
		"s.yaml:1:1: a spec file holds one document; found another here",
		"s.yaml:1:1: expected map, got list",
		"s.yaml:6:6: params.y: expected map, got int 3",
		`s.yaml:8:9: tasks[0].id: task id "b c": expected 1-64 letters, digits, _ and -`,
		`s.yaml:9:9: tasks[1].id: invalid value "b c${{ x }}"`,
		"s.yaml:9:12: tasks[1].id: unknown name x",
		`s.yaml:10:5: params.z: param "z" is required`,
		`t.yaml:6:3: params.y: param "y" is required`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sorted (-want +got):\n%s", diff)
	}
}

// TestValidateMarksItsChecks checks that the schema's diagnostics say
// which check they come from, which Sort relies on.
func TestValidateMarksItsChecks(t *testing.T) {
	src := []byte("apiVersion: bmc/v1\nkind: Workload\nname: x\nparams: {y: 3}\nlogs: http://x/\ntasks:\n  - {id: a, run: x, bogus: 1}\n")
	n, diags := Parse("s.yaml", src)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]check{}
	for _, d := range s.Validate(n) {
		got[d.Path] = d.from
	}
	want := map[string]check{"params.y": checkKind, "logs": checkValue, "tasks[0].bogus": checkOther}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("checks by path (-want +got):\n%s", diff)
	}
}

// TestFormatLongLine checks that a diagnostic on a long line (a spec
// written as JSON on one line) shows a window of the line around the
// column, marked where cut, with the caret under the character the
// column names: what validate prints grows with the number of errors,
// not with that times the line's length.
func TestFormatLongLine(t *testing.T) {
	x := strings.Repeat
	for _, tc := range []struct {
		name    string
		line    string
		col     int  // of the Z when 0
		before  bool // cut before the column
		after   bool // cut after it
		caretOn rune
	}{
		{name: "middle", line: x("a", 10_000) + "Z" + x("b", 10_000), before: true, after: true},
		{name: "start", line: "Z" + x("b", 10_000), after: true},
		{name: "near the start", line: x("a", 30) + "Z" + x("b", 10_000), after: true},
		{name: "end", line: x("a", 10_000) + "Z", before: true},
		{name: "past the end", line: x("a", 10_000), col: 10_001, before: true, caretOn: -1},
		{name: "multi-byte", line: x("é", 5_000) + "Z" + x("ü", 5_000), before: true, after: true},
		{name: "three-byte runes", line: x("日本", 3_000) + "Z" + x("語", 5_000), before: true, after: true},
		{name: "tabs", line: x("\t", 5_000) + "Z" + x("\tb", 5_000), before: true, after: true},
		{name: "just fits", line: x("a", 60) + "Z" + x("b", 59)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			col, want := tc.col, tc.caretOn
			if col == 0 {
				col, want = utf8.RuneCountInString(tc.line[:strings.IndexByte(tc.line, 'Z')])+1, 'Z'
			}
			src := "k: 1\n" + tc.line + "\nz: 2\n"
			out := (&Diagnostic{Pos: Pos{File: "s.yaml", Line: 2, Col: col}, Msg: "m"}).Format([]byte(src))
			lines := strings.Split(out, "\n")
			if len(out) > 800 {
				t.Fatalf("Format of one diagnostic on a line of %d bytes is %d bytes long", len(tc.line), len(out))
			}
			if len(lines) != 4 || lines[3] != "" || !strings.HasPrefix(lines[1], "    ") || !strings.HasPrefix(lines[2], "    ") {
				t.Fatalf("Format = %q", out)
			}
			shown, caret := []rune(lines[1][4:]), lines[2][4:]
			if strings.Trim(caret, " ") != "^" {
				t.Fatalf("caret line %q", caret)
			}
			pad := strings.IndexByte(caret, '^')
			got := rune(-1)
			if pad < len(shown) {
				got = shown[pad]
			}
			if got != want {
				t.Errorf("the caret is under %q, want %q:\n%s", got, want, out)
			}
			if cut := strings.HasPrefix(string(shown), "..."); cut != tc.before {
				t.Errorf("cut before the column: %v, want %v:\n%s", cut, tc.before, out)
			}
			if cut := strings.HasSuffix(string(shown), "..."); cut != tc.after {
				t.Errorf("cut after the column: %v, want %v:\n%s", cut, tc.after, out)
			}
		})
	}
}

// TestFormatLongLineRedacts checks that a window of a long line never
// shows part of a secret the window cuts through.
func TestFormatLongLineRedacts(t *testing.T) {
	sig := strings.Repeat("S", 300)
	for _, col := range []int{1, 4_990, 5_000, 5_100, 5_300, 5_400, 10_000} {
		line := strings.Repeat("a", 4_990) + " https://acct.blob.core.windows.net/c?sv=1&sig=" + sig + " " + strings.Repeat("b", 5_000)
		out := (&Diagnostic{Pos: Pos{File: "s.yaml", Line: 1, Col: col}, Msg: "m"}).Format([]byte(line + "\n"))
		if strings.Contains(out, "SSS") {
			t.Errorf("col %d shows the signature:\n%s", col, out)
		}
	}
}

// TestFormatLinesOnOneLongLine checks that thousands of errors on one long
// line print what they say, not the line thousands of times.
func TestFormatLinesOnOneLongLine(t *testing.T) {
	line := strings.Repeat(`{"id": "t", "run": "x", "bogus": 1}, `, 4_000)
	lines := NewSourceLines([]byte(line))
	total := 0
	for col := 1; col < len(line); col += 37 {
		total += len((&Diagnostic{Pos: Pos{File: "s.yaml", Line: 1, Col: col}, Msg: "m"}).FormatLines(lines))
	}
	if n := len(line) / 37; total > n*400 {
		t.Errorf("%d diagnostics on a line of %d bytes print %d bytes", n, len(line), total)
	}
}
