package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/bmc-dev/bmc/schema"
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
		if strings.TrimSpace(v) == "" {
			out[k] = "" // name= gives the empty string, not YAML's null
			continue
		}
		// Read as the spec's values are: an integer beyond 64 bits, .inf
		// and .nan are refused by the compiler, at the spec's param.
		val, err := schema.ParseValue([]byte(v))
		if err != nil {
			msg, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
			return nil, usagef("--set %s: value is not valid YAML: %s", k, msg)
		}
		val, err = normalize(val)
		if err != nil {
			return nil, usagef("--set %s: %v", k, err)
		}
		out[k] = val
	}
	return out, nil
}

// normalize turns decoded YAML into the compiler's value types. A null
// is refused: a param has a value (--set name= gives the empty string).
func normalize(v any) (any, error) {
	switch v := v.(type) {
	case nil:
		return nil, errors.New(`null is not a param value; give --set NAME= for the empty string`)
	case int:
		return int64(v), nil
	case int64, float64, bool, string, *big.Int, json.Number:
		return v, nil
	case []byte:
		return string(v), nil
	case []any:
		for i := range v {
			n, err := normalize(v[i])
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			v[i] = n
		}
		return v, nil
	case map[string]any:
		for k := range v {
			n, err := normalize(v[k])
			if err != nil {
				return nil, fmt.Errorf("key %s: %w", k, err)
			}
			v[k] = n
		}
		return v, nil
	}
	return fmt.Sprint(v), nil
}
