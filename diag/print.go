package diag

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report in its stable JSON form (docs/diag.md).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as readable tables: the findings with their fixes, then the
// inventory of pools, Services and nodes.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "Herald diagnosis, namespace %s: health score %d/100 (%d critical, %d warning, %d info)\n\n",
		r.Namespace, r.Score, r.Summary.Critical, r.Summary.Warning, r.Summary.Info)
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "No findings.")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "#\tSEVERITY\tCHECK\tOBJECT\tMESSAGE")
		for i, f := range r.Findings {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, strings.ToUpper(string(f.Severity)), f.Check, f.Object, f.Message)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w, "\nFixes:")
		for i, f := range r.Findings {
			fmt.Fprintf(w, "  %d. %s\n", i+1, f.Fix)
		}
	}
	r.writeInventory(w)
	return nil
}

func (r *Report) writeInventory(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPOOL\tSIZE\tUSED\tFREE\tSTATE\tADVERTISEMENTS")
	for _, p := range r.Pools {
		state := "ok"
		switch {
		case !p.Usable:
			state = "unusable"
		case p.Exhausted:
			state = "exhausted"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", p.Name, p.Size, p.Used, p.Free, state, dash(strings.Join(p.Advertisements, ",")))
	}
	fmt.Fprintln(tw, "\nSERVICE\tCLASS\tIPS\tPOOL\tPOLICY\tENDPOINTS\tANNOUNCED BY")
	for _, s := range r.Services {
		ips := strings.Join(s.IPs, ",")
		if s.Pending {
			ips = "<pending>"
		}
		class := s.Class
		if !s.Owned {
			class += " (not Herald's)"
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Namespace, s.Name, dash(class), ips, dash(s.Pool), s.ExternalTrafficPolicy, s.ServingEndpoints, dash(strings.Join(s.Announcers, ",")))
	}
	fmt.Fprintln(tw, "\nNODE\tREADY\tEXCLUDED\tSPEAKER\tHEARTBEAT\tINTERFACES")
	for _, n := range r.Nodes {
		sp := dash(n.SpeakerPod)
		if n.SpeakerPod != "" && !n.SpeakerReady {
			sp += " (not ready)"
		}
		hb := n.Heartbeat
		if n.Draining {
			hb += ", draining"
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\t%s\n", n.Name, dash(n.Ready), n.Excluded, sp, hb, dash(strings.Join(n.Interfaces, ",")))
	}
	_ = tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
