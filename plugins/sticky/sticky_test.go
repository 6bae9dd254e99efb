package sticky

import (
	"context"
	"testing"

	"github.com/herald-lb/herald/framework"
)

func TestScore(t *testing.T) {
	tests := []struct {
		name       string
		announcers []string
		node       string
		want       int64
	}{
		{name: "current announcer", announcers: []string{"n1"}, node: "n1", want: 100},
		{name: "one of several BGP announcers", announcers: []string{"n1", "n2"}, node: "n2", want: 100},
		{name: "other node", announcers: []string{"n1"}, node: "n3", want: 0},
		{name: "nobody announces", node: "n1", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, st := (&Plugin{}).Score(context.Background(), nil, &framework.Unit{AnnouncingNodes: tt.announcers}, &framework.NodeInfo{Name: tt.node})
			if !st.IsSuccess() || s != tt.want {
				t.Fatalf("Score = %d (%v), want %d", s, st.Code(), tt.want)
			}
		})
	}
}
