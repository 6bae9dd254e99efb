package bgp

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// hclogHandler forwards GoBGP's slog records to the announcer's hclog logger (so they reach the
// host), and remembers the last failed connection attempt per peer for status: GoBGP reports
// those only in its debug log.
type hclogHandler struct {
	log   hclog.Logger
	dials *dialErrors
	attrs []slog.Attr
}

type dialErrors struct {
	mu   sync.Mutex
	last map[string]string // peer address → error text
}

func (d *dialErrors) get(addr string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last[addr]
}

func (d *dialErrors) set(addr, msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.last[addr] = msg
}

func (h *hclogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *hclogHandler) Handle(_ context.Context, r slog.Record) error {
	var args []any
	var key, errText string
	collect := func(a slog.Attr) bool {
		switch a.Key {
		case "Key":
			key = a.Value.String()
		case "Error":
			errText = a.Value.String()
		}
		// Defensive: never forward anything that looks like a password.
		if strings.Contains(strings.ToLower(a.Key), "password") {
			return true
		}
		args = append(args, a.Key, a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		collect(a)
	}
	r.Attrs(collect)
	if key != "" && r.Message == "failed to connect" {
		h.dials.set(key, errText)
	}
	switch {
	case r.Level >= slog.LevelError:
		h.log.Error(r.Message, args...)
	case r.Level >= slog.LevelWarn:
		h.log.Warn(r.Message, args...)
	case r.Level >= slog.LevelInfo:
		h.log.Debug(r.Message, args...)
	default:
		h.log.Trace(r.Message, args...)
	}
	return nil
}

func (h *hclogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &hclogHandler{log: h.log, dials: h.dials, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *hclogHandler) WithGroup(string) slog.Handler { return h }
