package schema

import (
	"math/rand"
	"strings"
	"testing"
)

// TestYamlfixQuotedTabsAgree: for documents with tabs inside
// double-quoted values, in block and flow collections and over several
// lines, the positioned parser's tree (positions, values and positions
// inside values) is the tree yaml/v3 reads, which counts them right.
func TestYamlfixQuotedTabsAgree(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	pieces := []string{"\t", "\t", " ", "x", "yz", "\\\"", "\\t", "\\\\", "${{ a }}", "é"}
	quoted := func() string {
		var b strings.Builder
		b.WriteByte('"')
		for range rng.Intn(6) + 1 {
			b.WriteString(pieces[rng.Intn(len(pieces))])
		}
		if rng.Intn(4) == 0 {
			b.WriteString("\n  ")
			for range rng.Intn(3) + 1 {
				b.WriteString(pieces[rng.Intn(len(pieces))])
			}
		}
		b.WriteByte('"')
		return b.String()
	}
	compared := 0
	for range 3000 {
		var b strings.Builder
		for k := range rng.Intn(4) + 1 {
			key := string(rune('a' + k))
			switch rng.Intn(3) {
			case 0:
				b.WriteString(key + ": " + quoted() + "\n")
			case 1:
				b.WriteString(key + ": [" + quoted() + ", p, " + quoted() + "]\n")
			default:
				b.WriteString(key + ":\n  - " + quoted() + "\n  - {q: " + quoted() + ", r: s}\n")
			}
		}
		src := []byte(b.String())
		fast, ok := parseFastTabs("s.yaml", src, true)
		if !ok {
			continue
		}
		slow, diags := parsePositioned("s.yaml", src)
		if len(diags) > 0 {
			continue // a document the positioned parser refuses goes to yaml/v3
		}
		tabValues(slow, src)
		if d := sameTree(fast, slow, "$"); d != "" {
			t.Fatalf("trees differ at %s\nsource:\n%s", d, src)
		}
		compared++
	}
	if compared < 1000 {
		t.Errorf("only %d documents compared", compared)
	}
}
