package compiler

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	mermaidDecl = regexp.MustCompile(`^ *(?:subgraph (\w+) \[(.*)\]|(\w+)(?:\["(.*)"\]|\[\["(.*)"\]\]|\{\{"(.*)"\}\}))$`)
	mermaidEdge = regexp.MustCompile(`^ *(\w+) (-->|==>) (\w+)$`)
	dotEdge     = regexp.MustCompile(`^ *"(.*)" -> "(.*)"`)
)

// mermaidGraph parses Mermaid's output into node id → label and its edges
// written with labels ("a-b --> c"). It fails the test on a node id
// declared twice, since Mermaid would merge the two into one box.
func mermaidGraph(t *testing.T, out string) (nodes map[string]string, edges []string) {
	t.Helper()
	nodes = map[string]string{}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[0] != "flowchart LR" {
		t.Fatalf("first line %q, want flowchart LR", lines[0])
	}
	for _, line := range lines[1:] {
		if m := mermaidDecl.FindStringSubmatch(line); m != nil {
			id := m[1] + m[3]
			label := m[2] + m[4] + m[5] + m[6]
			if prev, dup := nodes[id]; dup {
				t.Fatalf("node id %s is both %q and %q", id, prev, label)
			}
			nodes[id] = label
			continue
		}
		if m := mermaidEdge.FindStringSubmatch(line); m != nil {
			from, okFrom := nodes[m[1]]
			to, okTo := nodes[m[3]]
			if !okFrom || !okTo {
				t.Errorf("edge %q joins an undeclared node", line)
			}
			edges = append(edges, from+" "+m[2]+" "+to)
			continue
		}
		if strings.TrimSpace(line) != "end" {
			t.Errorf("unexpected line %q", line)
		}
	}
	return nodes, edges
}

func dotEdges(out string) []string {
	var edges []string
	for _, line := range strings.Split(out, "\n") {
		if m := dotEdge.FindStringSubmatch(line); m != nil {
			edges = append(edges, m[1]+" -> "+m[2])
		}
	}
	return edges
}

// Tasks whose ids differ only in - and _ are two nodes, with their own edges.
func TestGraphIDsDifferingInPunctuation(t *testing.T) {
	p := mustCompile(t, `apiVersion: bmc/v1
kind: Workload
name: mm
tasks:
  - id: a-b
    run: echo
  - id: a_b
    run: echo
  - id: c
    dependsOn: [a-b]
    run: echo
`, Options{})
	nodes, edges := mermaidGraph(t, p.Mermaid())
	if len(nodes) != 4 {
		t.Errorf("%d nodes, want 4: %v", len(nodes), nodes)
	}
	want := []string{"a-b --> c", "a_b --> finalize", "c --> finalize"}
	if diff := cmp.Diff(want, edges); diff != "" {
		t.Errorf("mermaid edges (-want +got):\n%s", diff)
	}
	want = []string{"a-b -> c", "a_b -> finalize", "c -> finalize"}
	if diff := cmp.Diff(want, dotEdges(p.DOT())); diff != "" {
		t.Errorf("dot edges (-want +got):\n%s", diff)
	}
}

// A task named group_x is not the matrix group x, drawn as a subgraph or,
// when it is large, as one node.
func TestGraphTaskNamedLikeGroup(t *testing.T) {
	for _, size := range []int{2, bigGroup + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			vals := make([]string, size)
			for i := range vals {
				vals[i] = fmt.Sprint("v", i)
			}
			p := mustCompile(t, fmt.Sprintf(`apiVersion: bmc/v1
kind: Workload
name: mm
tasks:
  - id: x
    matrix: {s: [%s]}
    run: echo
  - id: group_x
    dependsOn: [x]
    run: echo
`, strings.Join(vals, ", ")), Options{})
			nodes, edges := mermaidGraph(t, p.Mermaid())
			var want []string
			if size > bigGroup {
				want = append(want, fmt.Sprintf("x (%d tasks) ==> group_x", size))
			} else {
				for _, v := range vals {
					want = append(want, "x-"+v+" ==> group_x")
				}
			}
			want = append(want, "group_x --> finalize")
			if diff := cmp.Diff(want, edges); diff != "" {
				t.Errorf("mermaid edges (-want +got):\n%s", diff)
			}
			if n := len(nodes); size <= bigGroup && n != size+3 || size > bigGroup && n != 3 {
				t.Errorf("%d nodes: %v", n, nodes)
			}
		})
	}
}

// Every task, group and the finalize node gets its own Mermaid id, for all
// short ids over an alphabet of the characters an escape might confuse.
func TestMermaidIDsDistinct(t *testing.T) {
	ids := []string{"group_a", "group-a", "group", "g_a", "t_a", "n_a", "Finalize", "finalize_", "finalize-h"}
	ids = append(ids, allStrings("ah_-", 5)...)
	var p Program
	for _, id := range ids {
		// "m" is in no other id, so members are tasks of their own.
		member := id + "-m"
		p.Tasks = append(p.Tasks, Task{ID: id}, Task{ID: member, Group: id})
		p.Groups = append(p.Groups, Group{ID: id, Members: []string{member}})
	}
	big := Group{ID: "big"}
	for i := range bigGroup + 1 {
		m := fmt.Sprint("big-", i)
		p.Tasks = append(p.Tasks, Task{ID: m, Group: big.ID})
		big.Members = append(big.Members, m)
	}
	p.Groups = append(p.Groups, big)

	nodes, _ := mermaidGraph(t, p.Mermaid())
	// Tasks of the big group are drawn as the group's one node.
	if want := len(p.Tasks) - len(big.Members) + len(p.Groups) + 1; len(nodes) != want {
		t.Errorf("%d nodes, want %d", len(nodes), want)
	}
}

// allStrings lists the strings of 1 to n characters from alphabet.
func allStrings(alphabet string, n int) []string {
	var out []string
	prev := []string{""}
	for range n {
		var next []string
		for _, s := range prev {
			for _, c := range alphabet {
				next = append(next, s+string(c))
			}
		}
		out = append(out, next...)
		prev = next
	}
	return out
}
