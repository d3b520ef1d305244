package azurebatch

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCommandLine(t *testing.T) {
	cases := []struct {
		argv []string
		want string
	}{
		{nil, ""},
		{[]string{"aligner", "--threads", "4", "in.fq"}, "aligner --threads 4 in.fq"},
		{[]string{"echo", ""}, "echo ''"},
		{[]string{"echo", "a b"}, "echo 'a b'"},
		{[]string{"echo", "it's"}, `echo 'it'\''s'`},
		{[]string{"echo", "$HOME", "*.bam", "a;b", "a|b", "~", "#x", `"q"`, `back\slash`}, `echo '$HOME' '*.bam' 'a;b' 'a|b' '~' '#x' '"q"' 'back\slash'`},
		{[]string{"tool", "--opt=x,y:z", "a@b+c%d", "./rel/path", "-"}, "tool --opt=x,y:z a@b+c%d ./rel/path -"},
		{[]string{"FOO=bar", "x=y"}, "'FOO=bar' x=y"},
		{[]string{"printf", "line1\nline2\t"}, "printf 'line1\nline2\t'"},
	}
	for _, c := range cases {
		if got := CommandLine(c.argv); got != c.want {
			t.Errorf("CommandLine(%q) = %q, want %q", c.argv, got, c.want)
		}
	}
	if got := ScriptCommandLine("set -x\necho \"$AZ_BATCH_TASK_ID\" > out.txt", "merge"); got != `/bin/bash -euo pipefail -c 'set -x`+"\n"+`echo "$AZ_BATCH_TASK_ID" > out.txt' merge` {
		t.Errorf("ScriptCommandLine = %q", got)
	}
}

func TestSplitCommandLine(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   \t\n ", nil},
		{"a b  c", []string{"a", "b", "c"}},
		{"''", []string{""}},
		{`a''b`, []string{"ab"}},
		{`'it'\''s'`, []string{"it's"}},
		{`"a b" c`, []string{"a b", "c"}},
		{`"say \"hi\" \$x \\ \n"`, []string{`say "hi" $x \ \n`}},
		{`"$HOME"`, []string{"$HOME"}}, // nothing is expanded
		{`a\ b`, []string{"a b"}},
		{`a\'b`, []string{"a'b"}},
		{"a\\\nb", []string{"ab"}},
		{"'multi\nline'", []string{"multi\nline"}},
		{`x"y"'z'`, []string{"xyz"}},
		{`""`, []string{""}},
	}
	for _, c := range cases {
		got, err := SplitCommandLine(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("SplitCommandLine(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{`'open`, `"open`, `trailing\`, `"a\"`} {
		if got, err := SplitCommandLine(bad); err == nil {
			t.Errorf("SplitCommandLine(%q) = %q, want an error", bad, got)
		}
	}
}

var roundTripArgv = [][]string{
	{"aligner", "--threads", "4", "in.fq"},
	{"/bin/bash", "-euo", "pipefail", "-c", "for f in *.bam; do echo \"$f\"; done | sort > list.txt", "merge"},
	{"echo", "", "''", `'\''`, `\`, `\\`, `"`, "$(rm -rf /)", "`id`", "a\nb", "\t", " lead", "trail ", "ünïcødé", "\x01\x7f"},
	{"python3", "-c", `print("it's")`},
	{"x=1", "--flag=a b"},
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, argv := range roundTripArgv {
		line := CommandLine(argv)
		got, err := SplitCommandLine(line)
		if err != nil {
			t.Errorf("SplitCommandLine(CommandLine(%q) = %q): %v", argv, line, err)
			continue
		}
		if diff := cmp.Diff(argv, got); diff != "" {
			t.Errorf("round trip of %q through %q (-want +got):\n%s", argv, line, diff)
		}
	}
}

// shArgv has /bin/sh tokenize line (with no expansion happening, as the
// quoting leaves nothing to expand) and returns the words it saw.
func shArgv(t *testing.T, line string) []string {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", `printf '%s\0' `+line).Output()
	if err != nil {
		t.Fatalf("/bin/sh on %q: %v", line, err)
	}
	words := strings.Split(string(out), "\x00")
	return words[:len(words)-1]
}

// TestQuoteAgreesWithSh: a POSIX shell reads CommandLine's output as the
// same argv, so a task's command line can be pasted into a shell; and the
// assumed agent tokenizer agrees with the shell on quote-only lines.
func TestQuoteAgreesWithSh(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	for _, argv := range roundTripArgv {
		line := CommandLine(argv[1:]) // printf is the command
		if diff := cmp.Diff(argv[1:], shArgv(t, line)); diff != "" {
			t.Errorf("sh reads %q differently (-want +sh):\n%s", line, diff)
		}
	}
	for _, line := range []string{`"say \"hi\" \$x \\ \n"`, `a\ b c\'d`, `x"y"'z' "" ''`, "'multi\nline' \"tab\there\""} {
		got, err := SplitCommandLine(line)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(shArgv(t, line), got); diff != "" {
			t.Errorf("SplitCommandLine(%q) differs from sh (-sh +split):\n%s", line, diff)
		}
	}
}

// FuzzQuote: argv -> CommandLine -> SplitCommandLine gives argv back. The
// fuzzer's string is split into arguments at NUL bytes, which no argument
// can hold.
func FuzzQuote(f *testing.F) {
	for _, argv := range roundTripArgv {
		f.Add(strings.Join(argv, "\x00"))
	}
	f.Fuzz(func(t *testing.T, s string) {
		argv := strings.Split(s, "\x00")
		line := CommandLine(argv)
		got, err := SplitCommandLine(line)
		if err != nil {
			t.Fatalf("SplitCommandLine(%q): %v", line, err)
		}
		if !slices.Equal(argv, got) {
			t.Fatalf("argv %q -> %q -> %q", argv, line, got)
		}
	})
}
