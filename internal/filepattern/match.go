package filepattern

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// This file implements Azure Batch's outputFile filePattern rules so that
// the local backend and the emulator collect exactly the files a Batch node
// would. doublestar is close but not the same: it treats `\` as an escape
// and `{a,b}` as alternation, and its `*` matches names starting with a dot,
// none of which Batch does on Linux.
//
// The rules, per segment (only `/` separates segments):
//   - `*` matches any run of characters, `?` any one character;
//   - `[abc]`, `[a-c]` match one listed character, `[!abc]` one that is not
//     listed; `]` first in a class is a member; a class holding a single
//     character is how wildcards are escaped (`abc[*]` matches "abc*");
//   - a segment that is exactly `**` matches any number of directories,
//     including none; a trailing `**` matches every file below;
//   - a name starting with `.` is matched only by a segment that starts
//     with a literal `.` (`*` skips .git, `.*` does not), and `**` does not
//     descend into such directories.

// Match returns the regular files under dir that pattern matches, as
// slash-separated paths relative to dir, sorted. pattern is relative to
// dir; an absolute pattern, one that escapes dir with "..", and a malformed
// class such as "[a" are errors. A pattern matching nothing returns no
// paths and no error.
//
// Only the directories the pattern can reach are read: literal segments
// are looked up directly and the walk starts at BaseDir. A symbolic link
// to a directory is followed only if it resolves inside dir, and never
// into a directory already being walked, so links cannot leak files from
// elsewhere or loop. A symbolic link to a regular file matches like the
// file if it resolves inside dir, and is left out otherwise.
func Match(dir, pattern string) ([]string, error) {
	segs, err := parsePattern(pattern)
	if err != nil {
		return nil, err
	}
	if segs[len(segs)-1].globstar {
		segs = append(segs, segment{toks: []token{{kind: tokStar}}})
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("match %q in %s: %w", pattern, dir, err)
	}
	if root, err = filepath.Abs(root); err != nil {
		return nil, fmt.Errorf("match %q in %s: %w", pattern, dir, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("match %q in %s: %w", pattern, dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("match %q in %s: not a directory", pattern, dir)
	}
	m := &matcher{root: root, active: map[fileID]int{}}
	m.active[idOf(fi)]++
	if err := m.walk(root, "", segs); err != nil {
		return nil, fmt.Errorf("match %q in %s: %w", pattern, dir, err)
	}
	slices.Sort(m.out)
	// Several `**` can reach one file along different splits of its path.
	return slices.Compact(m.out), nil
}

// HasWildcard reports whether pattern can match more than one name, that
// is whether it holds `*`, `?` or a class other than a one-character
// escape. A malformed pattern counts as wildcard if it holds `*`, `?` or
// `[` at all.
func HasWildcard(pattern string) bool {
	segs, err := parsePattern(pattern)
	if err != nil {
		return strings.ContainsAny(pattern, "*?[")
	}
	for _, s := range segs {
		if !s.isLiteral() {
			return true
		}
	}
	return false
}

// BaseDir returns the leading directories of pattern that hold no
// wildcard, unescaped and slash-separated, as a path relative to the
// pattern's dir: "out/**/*.bam" → "out", "*.txt" → "", "a/b.txt" → "a",
// "a[*]/*" → "a*". The last segment is never part of it, wildcard or not,
// since it names files. Upload keeps each file's path relative to BaseDir.
// The result is meaningful only for patterns Match accepts.
func BaseDir(pattern string) string {
	segs, err := parsePattern(pattern)
	if err != nil {
		return ""
	}
	var base []string
	for _, s := range segs[:len(segs)-1] {
		if !s.isLiteral() {
			break
		}
		base = append(base, s.literal())
	}
	return strings.Join(base, "/")
}

type tokKind uint8

const (
	tokLit   tokKind = iota // one given character
	tokAny                  // ?
	tokStar                 // *
	tokClass                // [...]
)

type token struct {
	kind   tokKind
	r      rune        // tokLit
	negate bool        // tokClass
	ranges []runeRange // tokClass
}

type runeRange struct{ lo, hi rune }

// segment is one slash-separated component of a pattern.
type segment struct {
	globstar bool // exactly "**"
	toks     []token
}

func (s segment) isLiteral() bool {
	if s.globstar {
		return false
	}
	for _, t := range s.toks {
		if t.kind != tokLit {
			return false
		}
	}
	return true
}

// Literal returns the path a pattern without wildcards (HasWildcard
// false) matches: its escapes undone, "report[*].csv" → "report*.csv".
// For another pattern, or a malformed one, it returns pattern as it is.
func Literal(pattern string) string {
	segs, err := parsePattern(pattern)
	if err != nil {
		return pattern
	}
	parts := make([]string, len(segs))
	for i, s := range segs {
		if !s.isLiteral() {
			return pattern
		}
		parts[i] = s.literal()
	}
	return strings.Join(parts, "/")
}

// literal returns the name a literal segment matches.
func (s segment) literal() string {
	var b strings.Builder
	for _, t := range s.toks {
		b.WriteRune(t.r)
	}
	return b.String()
}

// match reports whether name, one path component, matches s.
func (s segment) match(name string) bool {
	if strings.HasPrefix(name, ".") && (len(s.toks) == 0 || s.toks[0].kind != tokLit || s.toks[0].r != '.') {
		return false
	}
	rs := []rune(name)
	// Greedy matching with backtracking to the last star: with only one
	// kind of star per segment this is linear in practice and never
	// exponential.
	ti, ni := 0, 0
	starT, starN := -1, 0
	for ni < len(rs) {
		if ti < len(s.toks) {
			t := s.toks[ti]
			if t.kind == tokStar {
				starT, starN = ti, ni
				ti++
				continue
			}
			if t.matches(rs[ni]) {
				ti++
				ni++
				continue
			}
		}
		if starT < 0 {
			return false
		}
		starN++
		ti, ni = starT+1, starN
	}
	for ti < len(s.toks) && s.toks[ti].kind == tokStar {
		ti++
	}
	return ti == len(s.toks)
}

func (t token) matches(r rune) bool {
	switch t.kind {
	case tokLit:
		return t.r == r
	case tokAny:
		return true
	case tokClass:
		in := false
		for _, rr := range t.ranges {
			if rr.lo <= r && r <= rr.hi {
				in = true
				break
			}
		}
		return in != t.negate
	}
	return false
}

// parsePattern validates pattern and splits it into segments. Empty and
// "." segments are dropped and ".." is resolved lexically, as Batch
// resolves paths relative to the working directory.
func parsePattern(pattern string) ([]segment, error) {
	if pattern == "" {
		return nil, errors.New("empty file pattern")
	}
	if strings.HasPrefix(pattern, "/") {
		return nil, fmt.Errorf("file pattern %q is absolute; it must be relative to the directory", pattern)
	}
	clean := path.Clean(pattern)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return nil, fmt.Errorf("file pattern %q escapes the directory with ..", pattern)
	}
	if clean == "." {
		return nil, fmt.Errorf("file pattern %q names the directory itself, not files in it", pattern)
	}
	var segs []segment
	for part := range strings.SplitSeq(clean, "/") {
		s, err := parseSegment(part)
		if err != nil {
			return nil, fmt.Errorf("file pattern %q: %w", pattern, err)
		}
		if s.isLiteral() && (s.literal() == "." || s.literal() == "..") {
			// Only reachable by escaping, as in "[.][.]"; Clean has
			// already removed the plain forms.
			return nil, fmt.Errorf("file pattern %q: segment %q names . or ..", pattern, part)
		}
		// "**/**" means no more than "**".
		if s.globstar && len(segs) > 0 && segs[len(segs)-1].globstar {
			continue
		}
		segs = append(segs, s)
	}
	return segs, nil
}

func parseSegment(part string) (segment, error) {
	if part == "**" {
		return segment{globstar: true}, nil
	}
	rs := []rune(part)
	var toks []token
	for i := 0; i < len(rs); i++ {
		switch rs[i] {
		case '*':
			// Within a segment, runs of stars (including "**" beside other
			// characters) mean the same as one.
			if len(toks) == 0 || toks[len(toks)-1].kind != tokStar {
				toks = append(toks, token{kind: tokStar})
			}
		case '?':
			toks = append(toks, token{kind: tokAny})
		case '[':
			t, next, err := parseClass(rs, i)
			if err != nil {
				return segment{}, fmt.Errorf("segment %q: %w", part, err)
			}
			toks = append(toks, t)
			i = next - 1
		default:
			toks = append(toks, token{kind: tokLit, r: rs[i]})
		}
	}
	return segment{toks: toks}, nil
}

// parseClass parses the class starting at rs[start] == '[' and returns it
// with the index just past its ']'. A class of one character that is not
// negated is returned as a literal: that is the escape syntax.
func parseClass(rs []rune, start int) (token, int, error) {
	t := token{kind: tokClass}
	i := start + 1
	if i < len(rs) && rs[i] == '!' {
		t.negate = true
		i++
	}
	for first := true; ; first = false {
		if i >= len(rs) {
			return token{}, 0, errors.New("unterminated [")
		}
		lo := rs[i]
		if lo == ']' && !first {
			i++
			break
		}
		hi := lo
		i++
		if i+1 < len(rs) && rs[i] == '-' && rs[i+1] != ']' {
			hi = rs[i+1]
			i += 2
			if hi < lo {
				return token{}, 0, fmt.Errorf("invalid range %c-%c", lo, hi)
			}
		}
		t.ranges = append(t.ranges, runeRange{lo, hi})
	}
	if !t.negate && len(t.ranges) == 1 && t.ranges[0].lo == t.ranges[0].hi {
		return token{kind: tokLit, r: t.ranges[0].lo}, i, nil
	}
	return t, i, nil
}

// fileID identifies a directory independently of the path that reached it.
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(st.Dev), uint64(st.Ino)}
	}
	return fileID{}
}

type matcher struct {
	root string // absolute, symlinks resolved
	// active counts the directories on the current descent path. `**`
	// does not enter one of them again: through a link that would loop
	// forever. Other segments may, as the pattern bounds their depth.
	active map[fileID]int
	out    []string
}

// walk matches segs against the entries of the directory abs, which is rel
// (slash-separated, "" for the root) relative to the root.
func (m *matcher) walk(abs, rel string, segs []segment) error {
	seg, rest := segs[0], segs[1:]
	switch {
	case seg.globstar:
		if err := m.walk(abs, rel, rest); err != nil {
			return err
		}
		entries, err := readDir(abs)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if err := m.visitDir(abs, rel, e.Name(), segs, true); err != nil {
				return err
			}
		}
	case seg.isLiteral():
		// Looked up directly: no need to list a directory for one name.
		return m.visit(abs, rel, seg.literal(), rest)
	default:
		entries, err := readDir(abs)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if seg.match(e.Name()) {
				if err := m.visit(abs, rel, e.Name(), rest); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// visit handles the entry name of directory abs: with no segments left it
// is a candidate file, otherwise a directory to descend into.
func (m *matcher) visit(abs, rel, name string, rest []segment) error {
	if len(rest) > 0 {
		return m.visitDir(abs, rel, name, rest, false)
	}
	p := filepath.Join(abs, name)
	fi, err := os.Stat(p)
	if err != nil {
		if ignorable(err) {
			return nil // gone, or a dangling link: nothing to collect
		}
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	if lfi, err := os.Lstat(p); err == nil && lfi.Mode()&fs.ModeSymlink != 0 && !m.inside(p) {
		// A link out of dir: what it names is not the task's to give
		// (another task's files, bmc's own /proc/self/environ).
		return nil
	}
	m.out = append(m.out, path.Join(rel, name))
	return nil
}

// inside reports whether the link p resolves inside the root.
func (m *matcher) inside(p string) bool {
	target, err := filepath.EvalSymlinks(p)
	return err == nil && (target == m.root || strings.HasPrefix(target, m.root+string(filepath.Separator)))
}

// visitDir descends into the entry name of directory abs if it is a
// directory the walk may enter; globstar tells that `**` is doing so.
func (m *matcher) visitDir(abs, rel, name string, segs []segment, globstar bool) error {
	p := filepath.Join(abs, name)
	lfi, err := os.Lstat(p)
	if err != nil {
		if ignorable(err) {
			return nil
		}
		return err
	}
	fi := lfi
	if lfi.Mode()&fs.ModeSymlink != 0 {
		// Stat first: it reports dangling links and link loops as errors
		// we can recognise, which EvalSymlinks does not.
		if fi, err = os.Stat(p); err != nil {
			if ignorable(err) {
				return nil
			}
			return err
		}
		if !fi.IsDir() {
			return nil
		}
		if !m.inside(p) {
			return nil // outside dir: never followed
		}
	}
	if !fi.IsDir() {
		return nil
	}
	id := idOf(fi)
	if globstar && m.active[id] > 0 {
		return nil // a link back to a directory being walked: a loop
	}
	m.active[id]++
	defer func() { m.active[id]-- }()
	return m.walk(p, path.Join(rel, name), segs)
}

func readDir(abs string) ([]fs.DirEntry, error) {
	entries, err := os.ReadDir(abs)
	if err != nil && ignorable(err) {
		return nil, nil
	}
	return entries, err
}

// ignorable reports errors that mean "nothing here" rather than a failure:
// a path that vanished or runs through a file.
func ignorable(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ELOOP)
}

// Check reports whether pattern is well formed, with the error Match
// would give for it: a spec's outputs are checked before any task runs.
func Check(pattern string) error {
	_, err := parsePattern(pattern)
	return err
}
