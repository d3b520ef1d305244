package filepattern

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/internal/testfs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestMatch(t *testing.T) {
	dir := t.TempDir()
	testfs.MkFiles(t, dir,
		"a.txt", "b.txt", "ab.txt", "c.TXT", ".hidden.txt",
		"x.bam",
		"out/1.bam", "out/2.bam", "out/.secret.bam", "out/notes.txt",
		"out/sub/3.bam", "out/sub/deep/4.bam", "out/sub/deep/4.bam.bai",
		"out/.git/config", "out/.git/x.bam",
		".cache/y.bam",
		"star*.txt", "star1.txt", "q?.txt", "qa.txt", "br[ack].txt", "brakt.txt",
		`back\slash.txt`, "{a,b}.txt",
		"dir.txt/", "empty/",
		"ü/ñ.txt", "日本/データ.csv", "with space/a b.txt",
	)

	tests := []struct {
		pattern string
		want    []string
	}{
		// Literal names.
		{"a.txt", []string{"a.txt"}},
		{"out/sub/3.bam", []string{"out/sub/3.bam"}},
		{"missing.txt", nil},
		{"dir.txt", nil}, // a directory is not a file
		{"a.txt/x", nil}, // a path through a file
		{"c.txt", nil},   // case matters
		{".hidden.txt", []string{".hidden.txt"}},
		{"ü/ñ.txt", []string{"ü/ñ.txt"}},
		{"with space/a b.txt", []string{"with space/a b.txt"}},

		// * and ? stay within a segment and skip dot names.
		{"*.txt", []string{"a.txt", "ab.txt", "b.txt", `back\slash.txt`, "br[ack].txt", "brakt.txt", "q?.txt", "qa.txt", "star*.txt", "star1.txt", "{a,b}.txt"}},
		{"?.txt", []string{"a.txt", "b.txt"}},
		{"??.txt", []string{"ab.txt", "q?.txt", "qa.txt"}},
		{"*", []string{"a.txt", "ab.txt", "b.txt", `back\slash.txt`, "br[ack].txt", "brakt.txt", "c.TXT", "q?.txt", "qa.txt", "star*.txt", "star1.txt", "x.bam", "{a,b}.txt"}},
		{"*/*.bam", []string{"out/1.bam", "out/2.bam"}},
		{"*/*/*/*.bam", []string{"out/sub/deep/4.bam"}},
		{"*.BAM", nil},
		{"?/*", []string{"ü/ñ.txt"}},
		{"日本/*.csv", []string{"日本/データ.csv"}},
		{"*本/???????", []string{"日本/データ.csv"}},
		{"out/*.bam*", []string{"out/1.bam", "out/2.bam"}},
		{"out/*/*/*.bam*", []string{"out/sub/deep/4.bam", "out/sub/deep/4.bam.bai"}},

		// Classes.
		{"[ab].txt", []string{"a.txt", "b.txt"}},
		{"[a-b]b.txt", []string{"ab.txt"}},
		{"[!a].txt", []string{"b.txt"}},
		{"[!a-z].txt", nil},
		{"out/[0-9].bam", []string{"out/1.bam", "out/2.bam"}},
		{"out/[!1].bam", []string{"out/2.bam"}},
		{"[qs]*[!1].txt", []string{"q?.txt", "qa.txt", "star*.txt"}},

		// Escaping with brackets.
		{"star[*].txt", []string{"star*.txt"}},
		{"q[?].txt", []string{"q?.txt"}},
		{"br[[]ack].txt", []string{"br[ack].txt"}},
		{"br[ack].txt", nil}, // a class: one of a, c, k
		{"br[ack]?t.txt", []string{"brakt.txt"}},
		{`back\slash.txt`, []string{`back\slash.txt`}}, // \ is an ordinary character
		{`back\*`, []string{`back\slash.txt`}},         // nor does it escape *
		{"{a,b}.txt", []string{"{a,b}.txt"}},           // no brace alternation

		// ** spans any number of directories, including none.
		{"**/*.bam", []string{"out/1.bam", "out/2.bam", "out/sub/3.bam", "out/sub/deep/4.bam", "x.bam"}},
		{"out/**/*.bam", []string{"out/1.bam", "out/2.bam", "out/sub/3.bam", "out/sub/deep/4.bam"}},
		{"out/**/deep/*.bam", []string{"out/sub/deep/4.bam"}},
		{"**/deep/**/*.bam", []string{"out/sub/deep/4.bam"}},
		{"**/**/*.bam", []string{"out/1.bam", "out/2.bam", "out/sub/3.bam", "out/sub/deep/4.bam", "x.bam"}},
		{"out/**/**/3.bam", []string{"out/sub/3.bam"}},
		{"o*t/s?b/**/[0-9].bam", []string{"out/sub/3.bam", "out/sub/deep/4.bam"}},
		{"out/**", []string{"out/1.bam", "out/2.bam", "out/notes.txt", "out/sub/3.bam", "out/sub/deep/4.bam", "out/sub/deep/4.bam.bai"}},
		{"out/sub/**", []string{"out/sub/3.bam", "out/sub/deep/4.bam", "out/sub/deep/4.bam.bai"}},
		{"out/**.bam", []string{"out/1.bam", "out/2.bam"}}, // ** beside other characters is *
		{"empty/**", nil},
		{"nowhere/**/*.bam", nil},

		// Dot names only when the pattern names the dot.
		{".*", []string{".hidden.txt"}},
		{"out/.*", []string{"out/.secret.bam"}},
		{"out/.git/*", []string{"out/.git/config", "out/.git/x.bam"}},
		{"**/.git/*.bam", []string{"out/.git/x.bam"}},
		{".cache/*.bam", []string{".cache/y.bam"}},
		{"[.]cache/*.bam", []string{".cache/y.bam"}}, // an escaped dot names it too
		{"?cache/*.bam", nil},
		{"out/[.]*", []string{"out/.secret.bam"}},
		{"out/[!x]*", []string{"out/1.bam", "out/2.bam", "out/notes.txt"}},

		// Spelling variants of the same path.
		{"./a.txt", []string{"a.txt"}},
		{"out//1.bam", []string{"out/1.bam"}},
		{"out/./sub/../1.bam", []string{"out/1.bam"}},
		{"out/sub/", nil}, // names the directory, which is not a file
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got, err := Match(dir, tt.pattern)
			if err != nil {
				t.Fatalf("Match(%q): %v", tt.pattern, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Match(%q) (-want +got):\n%s", tt.pattern, diff)
			}
		})
	}
}

func TestMatchErrors(t *testing.T) {
	dir := t.TempDir()
	testfs.MkFiles(t, dir, "a.txt", "file")
	tests := []struct {
		dir, pattern, want string
	}{
		{dir, "", "empty"},
		{dir, "/etc/passwd", "absolute"},
		{dir, "/", "absolute"},
		{dir, "..", "escapes"},
		{dir, "../x/*.txt", "escapes"},
		{dir, "a/../../x", "escapes"},
		{dir, ".", "directory itself"},
		{dir, "./", "directory itself"},
		{dir, "a/..", "directory itself"},
		{dir, "[a.txt", "unterminated ["},
		{dir, "x[/]y", "unterminated ["},
		{dir, "[]", "unterminated ["},
		{dir, "[!]", "unterminated ["},
		{dir, "[z-a].txt", "invalid range"},
		{dir, "[.][.]/x", "names . or .."},
		{filepath.Join(dir, "nope"), "*.txt", "no such file"},
		{filepath.Join(dir, "file"), "*.txt", "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got, err := Match(tt.dir, tt.pattern)
			if err == nil {
				t.Fatalf("Match(%q) = %q, want an error", tt.pattern, got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestMatchSymlinks(t *testing.T) {
	outside := t.TempDir()
	testfs.MkFiles(t, outside, "leak.bam", "secret.txt")
	dir := t.TempDir()
	testfs.MkFiles(t, dir, "a.txt", "out/1.bam", "out/sub/2.bam")
	testfs.Symlink(t, "out", filepath.Join(dir, "in-link"))                              // directory inside dir
	testfs.Symlink(t, outside, filepath.Join(dir, "out-link"))                           // directory outside dir
	testfs.Symlink(t, "..", filepath.Join(dir, "out", "sub", "up"))                      // loop back to out
	testfs.Symlink(t, dir, filepath.Join(dir, "out", "root"))                            // loop back to the root, by absolute path
	testfs.Symlink(t, "a.txt", filepath.Join(dir, "file-link.txt"))                      // file inside
	testfs.Symlink(t, filepath.Join(outside, "secret.txt"), filepath.Join(dir, "o.txt")) // file outside
	testfs.Symlink(t, "nowhere.txt", filepath.Join(dir, "dangling.txt"))
	testfs.Symlink(t, "self", filepath.Join(dir, "self"))

	tests := []struct {
		pattern string
		want    []string
	}{
		{"in-link/*.bam", []string{"in-link/1.bam"}},
		{"in-link/**/*.bam", []string{"in-link/1.bam", "in-link/sub/2.bam"}},
		{"out-link/*.bam", nil},
		{"out-link/**", nil},
		// Each directory is entered once per path that reaches it and never
		// again below itself, so the links cannot loop.
		{"**/*.bam", []string{"in-link/1.bam", "in-link/sub/2.bam", "out/1.bam", "out/sub/2.bam"}},
		{"out/sub/up/*.bam", []string{"out/sub/up/1.bam"}},
		{"out/sub/up/sub/*.bam", []string{"out/sub/up/sub/2.bam"}}, // bounded by the pattern
		{"out/sub/up/**", []string{"out/sub/up/1.bam"}},
		{"out/root/out/*.bam", []string{"out/root/out/1.bam"}},
		// A link to a file outside dir is left out: a task could name
		// any file bmc can read.
		{"*.txt", []string{"a.txt", "file-link.txt"}},
		{"o.txt", nil},
		{"self/*", nil},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got, err := Match(dir, tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Match(%q) (-want +got):\n%s", tt.pattern, diff)
			}
		})
	}

	t.Run("dir given through a link", func(t *testing.T) {
		link := filepath.Join(t.TempDir(), "wd")
		testfs.Symlink(t, dir, link)
		got, err := Match(link, "in-link/*.bam")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"in-link/1.bam"}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// TestMatchReadsOnlyReachableDirs uses a directory that cannot be listed:
// reading it is an error, so a pattern that does not need it must not
// touch it.
func TestMatchReadsOnlyReachableDirs(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("permissions do not stop root from listing a directory")
	}
	dir := t.TempDir()
	testfs.MkFiles(t, dir, "out/1.bam", "locked/x/2.bam", "a/locked/3.bam")
	for _, p := range []string{"locked", "a/locked"} {
		p := filepath.Join(dir, p)
		if err := os.Chmod(p, 0o311); err != nil { // traversable, not listable
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(p, 0o755) })
	}
	for _, tt := range []struct {
		pattern string
		want    []string
		wantErr bool
	}{
		{"out/*.bam", []string{"out/1.bam"}, false},
		{"out/**/*.bam", []string{"out/1.bam"}, false},
		{"locked/x/2.bam", []string{"locked/x/2.bam"}, false}, // looked up, not listed
		{"locked/x/*.bam", []string{"locked/x/2.bam"}, false},
		{"a/locked/3.bam", []string{"a/locked/3.bam"}, false},
		{"locked/*/2.bam", nil, true},
		{"**/*.bam", nil, true},
	} {
		t.Run(tt.pattern, func(t *testing.T) {
			got, err := Match(dir, tt.pattern)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Match(%q) = %q, %v; want error %v", tt.pattern, got, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSegmentMatch(t *testing.T) {
	tests := []struct {
		seg, name string
		want      bool
	}{
		{"*", "abc", true},
		{"*", ".abc", false},
		{".*", ".abc", true},
		{".*", "..", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbY", false},
		{"a*b", "ab", true},
		{"*a", "baa", true},
		{"*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"?", "ü", true},
		{"??", "ü", false},
		{"?", "", false},
		{"[!a-c]", "d", true},
		{"[!a-c]", "b", false},
		{"[]a]", "]", true},
		{"[]a]", "a", true},
		{"[!]]", "]", false},
		{"[!]]", "x", true},
		{"[a-]", "-", true},
		{"[a-]", "b", false},
		{"[-a]", "-", true},
		{"[α-ω]", "λ", true},
		{"[α-ω]", "z", false},
		{"x[*]", "x*", true},
		{"x[*]", "xy", false},
		{"[?]", "?", true},
		{"[!.]*", ".x", false}, // a class never names the leading dot
		{"?x", ".x", false},
	}
	for _, tt := range tests {
		t.Run(tt.seg+" "+tt.name, func(t *testing.T) {
			s, err := parseSegment(tt.seg)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.match(tt.name); got != tt.want {
				t.Errorf("%q matches %q = %v, want %v", tt.seg, tt.name, got, tt.want)
			}
		})
	}
}

func TestBaseDirAndHasWildcard(t *testing.T) {
	tests := []struct {
		pattern  string
		base     string
		wildcard bool
	}{
		{"out/**/*.bam", "out", true},
		{"*.txt", "", true},
		{"a/b.txt", "a", false},
		{"b.txt", "", false},
		{"a/b/c/d.txt", "a/b/c", false},
		{"a/b*/c/d.txt", "a", true},
		{"a/b/?", "a/b", true},
		{"a/[xy]/c", "a", true},
		{"**", "", true},
		{"out/**", "out", true},
		{"a[*]/x*.txt", "a*", true},
		{"a[*]/x[?].txt", "a*", false}, // escapes only
		{"dir/[[]x]", "dir", false},
		{"./out/./sub/*.bam", "out/sub", true},
		{"out//x/../y/f", "out/y", false},
		{"ü ber/日本/*.csv", "ü ber/日本", true},
		{`back\slash/*`, `back\slash`, true},
		{"[a", "", true}, // malformed: treated as a wildcard
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			if got := BaseDir(tt.pattern); got != tt.base {
				t.Errorf("BaseDir(%q) = %q, want %q", tt.pattern, got, tt.base)
			}
			if got := HasWildcard(tt.pattern); got != tt.wildcard {
				t.Errorf("HasWildcard(%q) = %v, want %v", tt.pattern, got, tt.wildcard)
			}
		})
	}
}

// TestBaseDirPrefixesMatches checks the property Upload relies on: every
// path Match returns lies under BaseDir.
func TestBaseDirPrefixesMatches(t *testing.T) {
	dir := t.TempDir()
	testfs.MkFiles(t, dir, "a*/x1.txt", "out/sub/1.bam", "out/2.bam", "top.bam", "ü/ñ.txt")
	for _, pattern := range []string{"a[*]/x*.txt", "out/**/*.bam", "./out/sub/*", "**/*", "ü/*", "out/2.bam"} {
		got, err := Match(dir, pattern)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			t.Errorf("Match(%q) found nothing; the fixture is wrong", pattern)
		}
		base := BaseDir(pattern)
		for _, p := range got {
			if base != "" && !strings.HasPrefix(p, base+"/") {
				t.Errorf("Match(%q) returned %q, outside BaseDir %q", pattern, p, base)
			}
		}
	}
}

func TestLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"report[*].csv": "report*.csv",
		"a/b.txt":       "a/b.txt",
		"we[*]rd/f[?]":  "we*rd/f?",
		"*.txt":         "*.txt", // not a literal: as given
		"[a":            "[a",
	} {
		if got := Literal(in); got != want {
			t.Errorf("Literal(%q) = %q, want %q", in, got, want)
		}
	}
}
