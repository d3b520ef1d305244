package schema

import (
	"fmt"
	"strings"
)

// Suggest returns the candidate closest to s by edit distance, if it is
// close enough to be a likely typo, or "".
func Suggest(s string, candidates []string) string {
	for _, c := range candidates {
		if strings.EqualFold(s, c) {
			return c
		}
	}
	best, bestD := "", len(s)/2+2
	for _, c := range candidates {
		d := distance(s, c)
		if d < bestD || d == bestD && best != "" && c < best {
			best, bestD = c, d
		}
	}
	if bestD > max(1, len(s)/3) {
		return ""
	}
	return best
}

// distance is the edit distance between a and b, counting a swap of two
// neighbouring characters as one edit (the commonest typo).
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// synonyms maps the names other tools give a field (GitHub Actions,
// GitLab CI, Argo, Compose, Kubernetes), lower-cased and without - and _,
// to bmc's field for the same thing. A hint names bmc's field only where
// the map being checked has it: "image" in a task means its container's
// image, while the pool has an image of its own.
var synonyms = map[string]string{
	"needs": "dependsOn", "dependencies": "dependsOn", "after": "dependsOn",
	"depends": "dependsOn", "deps": "dependsOn", "requires": "dependsOn",
	"retry": "retries", "maxretries": "retries", "retrycount": "retries", "retrylimit": "retries",
	"cmd": "run|command", "script": "run", "shell": "run", "args": "command", "argv": "command",
	"image":       "container.image",
	"environment": "env", "variables": "env", "envvars": "env",
	"timeoutminutes": "timeout", "timeoutseconds": "timeout", "activedeadlineseconds": "timeout",
	"name":  "id",
	"steps": "tasks", "jobs": "tasks",
	"parameters": "params",
	"strategy":   "matrix", "foreach": "matrix", "withitems": "matrix",
	"onexit":  "finalize",
	"webhook": "callback",
	"version": "apiVersion",
}

// synonym returns a hint naming bmc's field for key, another tool's
// name for it, among fields; val is the value written under key. "" if
// key is no such name, or the map has no such field.
func synonym(key string, fields map[string]*snode, val *Node) string {
	norm := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(key))
	target, ok := synonyms[norm]
	if !ok {
		return ""
	}
	has := func(f string) bool { _, ok := fields[f]; return ok }
	switch target {
	case "run|command":
		if has("run") && has("command") {
			return "did you mean run (a shell script) or command (a list: the program and its arguments)?"
		}
		return ""
	case "container.image":
		if !has("container") {
			return ""
		}
		if val != nil && val.Kind == KindString {
			return fmt.Sprintf("did you mean container: {image: %s}?", val.Str)
		}
		return "did you mean container: {image: ...}?"
	}
	if !has(target) {
		return ""
	}
	if target == "timeout" {
		return "did you mean timeout? It takes a duration such as 90s, 30m or 2h"
	}
	return "did you mean " + target + "?"
}
