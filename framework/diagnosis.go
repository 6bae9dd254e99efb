package framework

import (
	"fmt"
	"sort"
	"strings"
)

// Diagnosis explains one cycle: which plugin rejected each node and why, each feasible node's
// score per plugin, the selection, and a one-line summary in kube-scheduler's style. Its JSON
// field names are stable: `herald explain -o json` prints it.
type Diagnosis struct {
	Profile string `json:"profile"`
	// Unit is the unit's key ("192.0.2.10/L2"), IP and Mode its parts.
	Unit     string   `json:"unit"`
	IP       string   `json:"ip"`
	Mode     Mode     `json:"mode"`
	Services []string `json:"services,omitempty"`
	// NodeCount is the number of nodes in the snapshot; FeasibleCount of those passing every filter.
	NodeCount     int `json:"nodeCount"`
	FeasibleCount int `json:"feasibleCount"`
	// PreFilter lists the PreFilter verdicts other than Success (Skip, or a rejection of the
	// whole unit), in profile order.
	PreFilter []Verdict `json:"preFilter,omitempty"`
	// Nodes has one entry per node of the snapshot, in name order; empty when a PreFilter
	// rejected the unit or the cycle failed before the Filter stage.
	Nodes []NodeDiagnosis `json:"nodes"`
	// Selected are the chosen nodes, in name order.
	Selected []string `json:"selected"`
	// TiedNodes, in L2, counts the feasible nodes that shared the winning total when there
	// was more than one: the selection among them fell to TieBreakHash.
	TiedNodes int `json:"tiedNodes,omitempty"`
	// Bind is the verdict of the bind plugin that handled the unit, when the cycle bound.
	Bind *Verdict `json:"bind,omitempty"`
	// Error is set when the cycle was aborted; nothing is selected then.
	Error string `json:"error,omitempty"`
	// Summary is the one-line explanation (see Summary).
	Summary string `json:"summary"`
}

// Verdict is one plugin's non-success answer.
type Verdict struct {
	Plugin  string   `json:"plugin"`
	Code    string   `json:"code"`
	Reasons []string `json:"reasons,omitempty"`
	Detail  string   `json:"detail,omitempty"`
}

// NodeDiagnosis is what the cycle concluded about one node.
type NodeDiagnosis struct {
	Name     string `json:"name"`
	Feasible bool   `json:"feasible"`
	// Rejection is the first filter that rejected the node (filters after it did not run).
	Rejection *Verdict `json:"rejection,omitempty"`
	// Scores has one entry per score plugin that ran for the unit, in profile order.
	Scores []PluginScore `json:"scores,omitempty"`
	// Total is the sum of the weighted scores.
	Total    int64 `json:"total"`
	Selected bool  `json:"selected"`
}

// PluginScore is one score plugin's contribution for one node.
type PluginScore struct {
	Plugin     string `json:"plugin"`
	Raw        int64  `json:"raw"`
	Normalized int64  `json:"normalized"`
	Weight     int64  `json:"weight"`
	Weighted   int64  `json:"weighted"`
}

// Diagnosis expands the cycle's record. It is built on request so a speaker that only acts on
// the selection does not pay for one object per node per cycle.
func (r *Result) Diagnosis() *Diagnosis {
	rec := r.rec
	if rec == nil {
		return nil
	}
	u := rec.unit
	d := &Diagnosis{
		Profile:   rec.profile,
		Unit:      u.Key(),
		IP:        u.IP.String(),
		Mode:      u.Mode,
		NodeCount: len(rec.nodes),
		Nodes:     []NodeDiagnosis{},
		Selected:  []string{},
	}
	for _, s := range u.Services {
		d.Services = append(d.Services, s.Key.String())
	}
	for _, ps := range rec.preFilter {
		d.PreFilter = append(d.PreFilter, verdictOf(ps.plugin, ps.status))
	}
	if rec.err != nil {
		d.Error = rec.err.Error()
	}
	if rec.filterRan && rec.err == nil {
		d.FeasibleCount = len(rec.feasible)
		d.Nodes = make([]NodeDiagnosis, len(rec.nodes))
		for i, n := range rec.nodes {
			d.Nodes[i].Name = n.Name
			if by := rec.rejectBy[i]; by >= 0 {
				v := verdictOf(rec.filterName[by], rec.rejectStatus[i])
				d.Nodes[i].Rejection = &v
			}
		}
		nf := len(rec.feasible)
		for j, i := range rec.feasible {
			nd := &d.Nodes[i]
			nd.Feasible = true
			if !rec.scored {
				continue
			}
			for k, name := range rec.scoreNames {
				if rec.skipScore[k] {
					continue
				}
				norm := rec.norm[k*nf+j]
				nd.Scores = append(nd.Scores, PluginScore{
					Plugin:     name,
					Raw:        rec.raw[k*nf+j],
					Normalized: norm,
					Weight:     rec.weights[k],
					Weighted:   norm * rec.weights[k],
				})
			}
			nd.Total = rec.totals[j]
		}
		for _, j := range rec.selected {
			i := rec.feasible[j]
			d.Nodes[i].Selected = true
			d.Selected = append(d.Selected, rec.nodes[i].Name)
		}
		if u.Mode == ModeL2 && len(rec.selected) == 1 {
			best := rec.totals[rec.selected[0]]
			tied := 0
			for _, t := range rec.totals {
				if t == best {
					tied++
				}
			}
			if tied > 1 {
				d.TiedNodes = tied
			}
		}
	}
	if rec.bind != nil {
		v := verdictOf(rec.bind.plugin, rec.bind.status)
		d.Bind = &v
	}
	d.Summary = d.summary(rec)
	return d
}

func verdictOf(plugin string, st *Status) Verdict {
	return Verdict{Plugin: plugin, Code: st.Code().String(), Reasons: st.Reasons(), Detail: st.Detail()}
}

// reasonCount is one rejection reason and how many nodes gave it.
type reasonCount struct {
	reason string
	count  int
}

// summary renders the one-line explanation:
//
//	0/13 nodes can announce 192.0.2.10: 4 node(s) not ready, 9 node(s) have no local endpoint
//	3/13 nodes can announce 192.0.2.10: 10 node(s) not ready; selected node-2
//
// Reasons are counted once per node, sorted by count (most first) then text. A PreFilter
// rejection counts for every node.
func (d *Diagnosis) summary(rec *cycleRecord) string {
	if d.Error != "" {
		return fmt.Sprintf("cannot schedule %s: %s", d.IP, d.Error)
	}
	var counts []reasonCount
	add := func(reason string, n int) {
		for i := range counts {
			if counts[i].reason == reason {
				counts[i].count += n
				return
			}
		}
		counts = append(counts, reasonCount{reason, n})
	}
	if rec.rejected != nil {
		for _, r := range uniqueReasons(rec.rejected.status) {
			add(r, len(rec.nodes))
		}
	}
	for i, nd := range d.Nodes {
		if nd.Rejection != nil {
			for _, r := range uniqueReasons(rec.rejectStatus[i]) {
				add(r, 1)
			}
		}
	}
	sort.Slice(counts, func(i, j int) bool {
		if counts[i].count != counts[j].count {
			return counts[i].count > counts[j].count
		}
		return counts[i].reason < counts[j].reason
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d nodes can announce %s", d.FeasibleCount, d.NodeCount, d.IP)
	for i, c := range counts {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s", c.count, c.reason)
	}
	if len(d.Selected) > 0 {
		b.WriteString("; selected ")
		b.WriteString(strings.Join(d.Selected, ", "))
	}
	return b.String()
}

// uniqueReasons returns a rejection's reasons without repeats, or its code when it gave none,
// so every rejected node is counted.
func uniqueReasons(st *Status) []string {
	rs := st.Reasons()
	if len(rs) == 0 {
		return []string{"node(s) rejected (" + st.Code().String() + ")"}
	}
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		dup := false
		for _, o := range out {
			dup = dup || o == r
		}
		if !dup {
			out = append(out, r)
		}
	}
	return out
}

// String returns the summary line.
func (d *Diagnosis) String() string { return d.Summary }
