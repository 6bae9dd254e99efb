package framework_test

import (
	"math"
	"slices"
	"testing"

	"github.com/herald-lb/herald/framework"
)

func TestDefaultNormalizeScore(t *testing.T) {
	tests := []struct {
		name    string
		raw     []int64
		want    []int64
		wantErr bool
	}{
		{name: "highest becomes 100, others keep their proportion rounded down", raw: []int64{3, 4, 0, 1}, want: []int64{75, 100, 0, 25}},
		{name: "all zero stays zero", raw: []int64{0, 0}, want: []int64{0, 0}},
		{name: "no overflow near MaxInt64", raw: []int64{math.MaxInt64, math.MaxInt64 / 2, 1}, want: []int64{100, 49, 0}},
		{name: "a negative score is the plugin's error", raw: []int64{5, -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list := make(framework.NodeScoreList, len(tt.raw))
			for i, v := range tt.raw {
				list[i] = framework.NodeScore{Name: string(rune('a' + i)), Score: v}
			}
			st := framework.DefaultNormalizeScore(list)
			if tt.wantErr {
				if st.Code() != framework.Error {
					t.Fatalf("status %v, want Error", st.Code())
				}
				return
			}
			got := make([]int64, len(list))
			for i, s := range list {
				got[i] = s.Score
			}
			if !st.IsSuccess() || !slices.Equal(got, tt.want) {
				t.Errorf("got %v (%v), want %v", got, st.Message(), tt.want)
			}
		})
	}
}
