package main

import (
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"
)

// setFlag collects --set name=value; values are parsed as YAML so lists and
// numbers keep their types (--set samples='[a, b]' --set threads=8).
type setFlag struct{ values []string }

func addSetFlag(cmd *cobra.Command, f *setFlag) {
	cmd.Flags().StringArrayVar(&f.values, "set", nil, "set a param: name=value (the value is YAML: 8, [a, b], text)")
}

func (f *setFlag) params() (map[string]any, error) {
	if len(f.values) == 0 {
		return nil, nil
	}
	out := map[string]any{}
	for _, kv := range f.values {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usagef("--set %q: expected name=value", kv)
		}
		var val any
		if err := yaml.Unmarshal([]byte(v), &val); err != nil {
			return nil, usagef("--set %s: value is not valid YAML: %v", k, err)
		}
		out[k] = normalize(val)
	}
	return out, nil
}

// normalize turns decoded YAML into the compiler's value types.
func normalize(v any) any {
	switch v := v.(type) {
	case int:
		return int64(v)
	case uint64:
		return int64(v)
	case int64, float64, bool, string, nil:
		return v
	case []any:
		for i := range v {
			v[i] = normalize(v[i])
		}
		return v
	case map[string]any:
		for k := range v {
			v[k] = normalize(v[k])
		}
		return v
	}
	return fmt.Sprint(v)
}
