// Package plugins assembles Herald's in-tree plugins: the registry the speaker and `herald
// explain` build profiles from, and the plugin set of the default profile.
package plugins

import (
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/plugins/advertisement"
	"github.com/herald-lb/herald/plugins/excludelb"
	"github.com/herald-lb/herald/plugins/interfaces"
	"github.com/herald-lb/herald/plugins/localendpoints"
	"github.com/herald-lb/herald/plugins/nodepreference"
	"github.com/herald-lb/herald/plugins/nodeready"
	"github.com/herald-lb/herald/plugins/spread"
	"github.com/herald-lb/herald/plugins/sticky"
)

// DefaultProfileName is the name of the profile DefaultProfile describes.
const DefaultProfileName = "default"

// NewInTreeRegistry returns a registry of every in-tree plugin. The Announce bind plugin is
// not in it: it needs the speaker's announcer manager and is registered by the speaker.
func NewInTreeRegistry() framework.Registry {
	return framework.Registry{
		nodeready.Name:      {Factory: nodeready.New, NewArgs: nodeready.NewArgs},
		excludelb.Name:      {Factory: excludelb.New, NewArgs: excludelb.NewArgs},
		advertisement.Name:  {Factory: advertisement.New},
		interfaces.Name:     {Factory: interfaces.New, NewArgs: interfaces.NewArgs},
		localendpoints.Name: {Factory: localendpoints.New},
		nodepreference.Name: {Factory: nodepreference.New, NewArgs: nodepreference.NewArgs},
		spread.Name:         {Factory: spread.New},
		sticky.Name:         {Factory: sticky.New},
	}
}

// Default score weights. Spread dominates: its 0..100 rendezvous score times 100 leaves room
// below one Spread step (100) for the others, so they settle Spread's ties instead of
// overriding it. NodePreference shares the top weight because preferences the operator wrote
// are meant to win; without preferences it scores every node 0 and changes nothing.
// LocalEndpoints (only for Local Services) and Sticky are light: with weight 1 each adds at
// most 100, one Spread step, which keeps the rendezvous property (a joining node takes about
// its share, a leaving node moves only its own IPs) while the current announcer keeps a
// near-tie.
const (
	DefaultSpreadWeight         = 100
	DefaultNodePreferenceWeight = 100
	DefaultLocalEndpointsWeight = 1
	DefaultStickyWeight         = 1
)

// DefaultProfile returns the default profile's plugins, in the order they run, without args
// (each plugin defaults its own) and without bind plugins (the speaker appends its Announce
// plugin). The configuration package uses it for profiles that enable no plugins of their own.
func DefaultProfile() framework.ProfileSpec {
	return framework.ProfileSpec{
		Name:      DefaultProfileName,
		PreFilter: []string{advertisement.Name, interfaces.Name, localendpoints.Name},
		Filter:    []string{nodeready.Name, excludelb.Name, advertisement.Name, interfaces.Name, localendpoints.Name},
		Score: []framework.WeightedPlugin{
			{Name: nodepreference.Name, Weight: DefaultNodePreferenceWeight},
			{Name: localendpoints.Name, Weight: DefaultLocalEndpointsWeight},
			{Name: spread.Name, Weight: DefaultSpreadWeight},
			{Name: sticky.Name, Weight: DefaultStickyWeight},
		},
	}
}
