package filepattern

import (
	"os"
	"slices"
	"strings"
)

// Expand expands the task's environment variables in pattern, as Batch
// does before matching an output's filePattern: $NAME and ${NAME}, and
// %NAME% (Batch's Windows form, which the Batch emulator accepts too).
// A name vars does not hold is left in the pattern, written ${NAME}, and
// a $ that starts no name stays as it is. Both the local backend and the
// emulator expand this way, so that a pattern collects the same files on
// either.
func Expand(pattern string, vars map[string]string) string {
	s := os.Expand(pattern, func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return "${" + k + "}"
	})
	if !strings.Contains(s, "%") {
		return s
	}
	// In the order of the names: a value that holds another's %NAME%
	// must not expand one way or the other by chance.
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s = strings.ReplaceAll(s, "%"+k+"%", vars[k])
	}
	return s
}

// Vars is a process environment, a list of "k=v" where a later setting
// wins, as the map Expand takes.
func Vars(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
