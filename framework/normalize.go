package framework

import (
	"fmt"
	"math/bits"
)

// DefaultNormalizeScore scales scores so the highest becomes MaxNodeScore and the others keep
// their proportion, rounded down: the NormalizeScore of a plugin whose raw score is a count or
// a sum. All zeros stay zeros. A negative score is an Error: it means the plugin is wrong,
// and scaling it would hide that.
func DefaultNormalizeScore(scores NodeScoreList) *Status {
	var highest int64
	for _, s := range scores {
		if s.Score < 0 {
			return AsStatus(fmt.Errorf("negative score %d for node %q", s.Score, s.Name))
		}
		highest = max(highest, s.Score)
	}
	if highest == 0 {
		return nil
	}
	for i := range scores {
		// In 128 bits: a raw score may be any int64, and score×100 must not overflow. The
		// quotient fits because score ≤ highest.
		hi, lo := bits.Mul64(uint64(scores[i].Score), uint64(MaxNodeScore))
		q, _ := bits.Div64(hi, lo, uint64(highest))
		scores[i].Score = int64(q)
	}
	return nil
}
