package azurebatch

// Command lines. Batch does not run a task's commandLine in a shell: on
// Linux the node agent splits it into argv itself and executes argv[0]
// directly, with no variable expansion, globbing or redirection (hence the
// docs' advice to use /bin/sh -c for those). How exactly the agent splits
// is not documented. The assumption here is that it tokenizes like a POSIX
// shell without expansions (as Python's shlex.split in POSIX mode does):
// blanks separate words, single quotes keep everything literally, double
// quotes group, and a backslash escapes the next character outside single
// quotes. SplitCommandLine implements that reading.
//
// CommandLine writes only bare words of characters no such tokenizer
// treats specially, and single-quoted words with ' written as '\''. On that
// subset POSIX sh, bash, shlex and SplitCommandLine all agree, so the argv
// survives whichever of them the agent really is, and the same line can be
// pasted into a shell to reproduce a task by hand.

import (
	"errors"
	"strings"
)

// CommandLine quotes argv into a commandLine whose tokenization gives argv
// back. An empty argv gives "". Arguments must not contain NUL bytes, which
// no process argument can hold.
func CommandLine(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i == 0 && strings.Contains(a, "=") {
			// A shell would read a bare NAME=value first word as an
			// assignment; quoted, it is a command name.
			b.WriteString(forceQuote(a))
			continue
		}
		b.WriteString(quoteArg(a))
	}
	return b.String()
}

// ScriptCommandLine runs a bash script the way the local backend does:
// bash -euo pipefail -c script name, where name becomes $0 (bmc passes the
// task id). bash is named by absolute path since nothing searches PATH for
// the agent's argv[0] on bmc's behalf.
func ScriptCommandLine(script, name string) string {
	return CommandLine([]string{"/bin/bash", "-euo", "pipefail", "-c", script, name})
}

func quoteArg(s string) string {
	if s == "" {
		return "''"
	}
	if isBare(s) {
		return s
	}
	return forceQuote(s)
}

func forceQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// isBare reports whether s needs no quoting: every byte is one no shell
// treats specially anywhere in a word. '~' and '#' are left out because
// they are special at the start of a word; '=' is special only in the
// first word, which CommandLine quotes when it holds one.
func isBare(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("_-./=:,+@%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// SplitCommandLine splits a commandLine as the Batch Linux agent is assumed
// to (see the top of this file): blanks (space, tab, newline) separate
// words; '...' is literal; "..." groups, and inside it a backslash escapes
// only $ ` " \ and newline; outside quotes a backslash escapes any
// character, and backslash-newline is removed. Nothing is expanded. An
// unterminated quote or a trailing backslash is an error.
func SplitCommandLine(s string) ([]string, error) {
	var (
		args   []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t', '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case '\'':
			inWord = true
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("command line: unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				c := s[i]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
					if s[i] != '\n' {
						cur.WriteByte(s[i])
					}
					continue
				}
				cur.WriteByte(c)
			}
			if !closed {
				return nil, errors.New("command line: unterminated double quote")
			}
		case '\\':
			if i+1 == len(s) {
				return nil, errors.New("command line: trailing backslash")
			}
			i++
			if s[i] == '\n' {
				continue // a line continuation joins, it adds nothing
			}
			inWord = true
			cur.WriteByte(s[i])
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}
