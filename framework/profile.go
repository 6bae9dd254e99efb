package framework

import (
	"github.com/go-logr/logr"
)

// WeightedPlugin is a score plugin with the weight its normalized score is multiplied by.
type WeightedPlugin struct {
	Name   string
	Weight int64
}

// ProfileSpec is a profile as the runtime needs it: which plugins run at which extension
// point, in order, and their decoded args. The configuration package converts its
// (defaulted, validated) profiles into this type, which keeps framework free of config.
type ProfileSpec struct {
	Name      string
	PreFilter []string
	Filter    []string
	Score     []WeightedPlugin
	Bind      []string
	// Args holds each plugin's args by plugin name; plugins without an entry get nil.
	Args map[string]PluginArgs
}

// NewHandle returns the Handle the plugins of a profile get.
func NewHandle(logger logr.Logger) Handle { return handle{logger: logger} }

type handle struct{ logger logr.Logger }

func (h handle) Logger() logr.Logger { return h.logger }

// namedHandle is the handle one plugin gets: its logger carries the plugin's name, so every
// line a plugin logs says which plugin said it without the plugin naming itself.
type namedHandle struct {
	Handle
	name string
}

func (h namedHandle) Logger() logr.Logger { return h.Handle.Logger().WithName(h.name) }

// contextDone reports without blocking whether ctx is done. Checking the Done channel is
// cheaper than ctx.Err(), which takes a lock, and runs once per node.
func contextDone(done <-chan struct{}) bool {
	if done == nil {
		return false
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}
