package compiler

import (
	"fmt"
	"strings"
)

// bigGroup is the size above which graphs draw a matrix group as one node.
const bigGroup = 20

// DOT renders the task graph in Graphviz's language. Matrix groups are
// clusters; a large group is drawn as one node with its size.
func (p *Program) DOT() string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %q {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n", p.Name)
	ids := p.graphIDs()
	for _, g := range p.Groups {
		if len(g.Members) > bigGroup {
			fmt.Fprintf(&b, "  %q [label=%q, shape=box3d];\n", "group:"+g.ID, fmt.Sprintf("%s (%d tasks)", g.ID, len(g.Members)))
			continue
		}
		fmt.Fprintf(&b, "  subgraph %q {\n    label=%q;\n", "cluster_"+g.ID, g.ID)
		for _, m := range g.Members {
			fmt.Fprintf(&b, "    %q;\n", m)
		}
		b.WriteString("  }\n")
	}
	for _, t := range p.Tasks {
		if t.Group == "" {
			fmt.Fprintf(&b, "  %q;\n", t.ID)
		}
	}
	fmt.Fprintf(&b, "  %q [shape=doubleoctagon];\n", FinalizeID)
	p.edges(ids, func(from, to string, group bool) {
		if group {
			fmt.Fprintf(&b, "  %q -> %q [style=bold];\n", from, to)
		} else {
			fmt.Fprintf(&b, "  %q -> %q;\n", from, to)
		}
	})
	b.WriteString("}\n")
	return b.String()
}

// Mermaid renders the task graph as a Mermaid flowchart. Labels are task
// and group ids, whose characters need no escaping inside quotes.
func (p *Program) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	ids := p.graphIDs()
	for _, g := range p.Groups {
		if len(g.Members) > bigGroup {
			fmt.Fprintf(&b, "  %s[[\"%s (%d tasks)\"]]\n", mermaidID("group:"+g.ID), g.ID, len(g.Members))
			continue
		}
		fmt.Fprintf(&b, "  subgraph %s [%s]\n", mermaidID("group:"+g.ID), g.ID)
		for _, m := range g.Members {
			fmt.Fprintf(&b, "    %s[\"%s\"]\n", mermaidID(m), m)
		}
		b.WriteString("  end\n")
	}
	for _, t := range p.Tasks {
		if t.Group == "" {
			fmt.Fprintf(&b, "  %s[\"%s\"]\n", mermaidID(t.ID), t.ID)
		}
	}
	fmt.Fprintf(&b, "  %s{{\"%s\"}}\n", mermaidID(FinalizeID), FinalizeID)
	p.edges(ids, func(from, to string, group bool) {
		arrow := "-->"
		if group {
			arrow = "==>"
		}
		fmt.Fprintf(&b, "  %s %s %s\n", mermaidID(from), arrow, mermaidID(to))
	})
	return b.String()
}

// mermaidEscape writes ids in the letters, digits and _ that Mermaid ids
// allow. It is injective: _ and - become two characters starting with _,
// and a _ in the output always begins such a pair.
var mermaidEscape = strings.NewReplacer("_", "__", "-", "_h")

// mermaidID gives a drawn node (a task id, "group:" and a group id, or
// finalize) its Mermaid id. Tasks, groups and finalize share one namespace
// there, so each kind has its own prefix; no task is named finalize.
func mermaidID(node string) string {
	if node == FinalizeID {
		return FinalizeID
	}
	if group, ok := strings.CutPrefix(node, "group:"); ok {
		return "g_" + mermaidEscape.Replace(group)
	}
	return "t_" + mermaidEscape.Replace(node)
}

// graphIDs maps each task to the node it is drawn as.
func (p *Program) graphIDs() map[string]string {
	ids := make(map[string]string, len(p.Tasks))
	big := map[string]bool{}
	for _, g := range p.Groups {
		big[g.ID] = len(g.Members) > bigGroup
	}
	for _, t := range p.Tasks {
		if t.Group != "" && big[t.Group] {
			ids[t.ID] = "group:" + t.Group
		} else {
			ids[t.ID] = t.ID
		}
	}
	return ids
}

// edges calls f for each drawn edge once, dependency first, ending with
// the edges into finalize from the tasks nothing depends on.
func (p *Program) edges(ids map[string]string, f func(from, to string, group bool)) {
	seen := map[[2]string]bool{}
	hasDependent := map[string]bool{}
	emit := func(from, to string, group bool) {
		if from == to || seen[[2]string{from, to}] {
			return
		}
		seen[[2]string{from, to}] = true
		hasDependent[from] = true
		f(from, to, group)
	}
	groupNode := map[string]string{}
	for _, g := range p.Groups {
		if len(g.Members) > bigGroup {
			groupNode[g.ID] = "group:" + g.ID
		}
	}
	for _, t := range p.Tasks {
		to := ids[t.ID]
		for _, d := range t.DependsOn {
			emit(ids[d], to, false)
		}
		for _, g := range t.DependsOnGroups {
			if n, ok := groupNode[g]; ok {
				emit(n, to, true)
				continue
			}
			for _, gr := range p.Groups {
				if gr.ID == g {
					for _, m := range gr.Members {
						emit(ids[m], to, true)
					}
				}
			}
		}
	}
	var leaves []string
	drawn := map[string]bool{}
	for _, t := range p.Tasks {
		id := ids[t.ID]
		if !hasDependent[id] && !drawn[id] {
			drawn[id] = true
			leaves = append(leaves, id)
		}
	}
	for _, l := range leaves {
		f(l, FinalizeID, false)
	}
}
