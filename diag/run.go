package diag

import (
	"fmt"
	"sort"
	"time"

	"github.com/herald-lb/herald/framework"
)

// check is one named check: it reads the index and returns its findings.
type check struct {
	// name groups the check IDs the function can produce (documented in docs/diag.md).
	name string
	run  func(*index) []Finding
}

// checks run in this order; their findings are then sorted by severity.
var checks = []check{
	{"gather", checkGather},
	{"crd", checkCRDs},
	{"controller", checkController},
	{"speaker", checkSpeakers},
	{"pod", checkPodHealth},
	{"node", checkNodes},
	{"pool", checkPools},
	{"advertisement", checkAdvertisements},
	{"config", checkIgnoredConfig},
	{"bgp", checkBGP},
	{"speaker-config", checkSpeakerConfig},
	{"service", checkServices},
	{"l2status", checkL2Statuses},
	{"conflict", checkConflicts},
}

// Weights of the health score: each finding takes this many points off 100.
const (
	penaltyCritical = 20
	penaltyWarning  = 5
	penaltyInfo     = 1
	// maxScoreWithCritical caps the score while a critical finding exists, so one critical
	// problem never reads as "mostly healthy".
	maxScoreWithCritical = 50
)

// Score is the health score of a set of findings: 100 minus 20 per critical, 5 per warning
// and 1 per info finding, at least 0, and at most 50 when any finding is critical.
func Score(s Summary) int {
	score := 100 - penaltyCritical*s.Critical - penaltyWarning*s.Warning - penaltyInfo*s.Info
	if s.Critical > 0 && score > maxScoreWithCritical {
		score = maxScoreWithCritical
	}
	if score < 0 {
		score = 0
	}
	return score
}

// Run checks the cluster and returns the report. It only reads c.
func Run(c *Cluster) *Report {
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	if c.ConfigNamespace == "" {
		c.ConfigNamespace = c.Namespace
	}
	x := newIndex(c)
	r := &Report{APIVersion: APIVersion, Namespace: c.Namespace, ConfigNamespace: c.ConfigNamespace, Findings: []Finding{}}
	for _, ch := range checks {
		r.Checks = append(r.Checks, ch.name)
		r.Findings = append(r.Findings, ch.run(x)...)
	}
	sortFindings(r.Findings)
	for _, f := range r.Findings {
		switch f.Severity {
		case Critical:
			r.Summary.Critical++
		case Warning:
			r.Summary.Warning++
		default:
			r.Summary.Info++
		}
	}
	r.Score = Score(r.Summary)
	r.CRDs = append([]CRDState{}, c.CRDs...)
	r.Pools = x.poolUsage()
	r.Services = x.serviceStates()
	r.Nodes = x.nodeStates()
	return r
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity.rank() != b.Severity.rank() {
			return a.Severity.rank() < b.Severity.rank()
		}
		if a.Check != b.Check {
			return a.Check < b.Check
		}
		return a.Object.String() < b.Object.String()
	})
}

func finding(id string, sev Severity, obj ObjectRef, fix string, format string, args ...any) Finding {
	return Finding{Check: id, Severity: sev, Object: obj, Message: fmt.Sprintf(format, args...), Fix: fix}
}

func coversPool(a *framework.Advertisement, p *poolInfo) bool {
	return a.Covers(&framework.Unit{Mode: a.Mode, Pool: p.name, PoolLabels: p.labels})
}

func secondsDuration(s int32) time.Duration { return time.Duration(s) * time.Second }

// HasCritical reports whether the report has a critical finding.
func (r *Report) HasCritical() bool { return r.Summary.Critical > 0 }
