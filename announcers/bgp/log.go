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
	// notification is the last NOTIFICATION sent to or received from each peer.
	notification map[string]string
}

func (d *dialErrors) setNotification(addr, msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.notification == nil {
		d.notification = map[string]string{}
	}
	d.notification[addr] = msg
}

func (d *dialErrors) getNotification(addr string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.notification[addr]
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
	var code, subcode int64
	collect := func(a slog.Attr) bool {
		switch a.Key {
		case "Key":
			key = a.Value.String()
		case "Error":
			errText = a.Value.String()
		case "Code":
			code = a.Value.Int64()
		case "Subcode":
			subcode = a.Value.Int64()
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
	if key != "" {
		switch r.Message {
		case "failed to connect":
			h.dials.set(key, errText)
		case "sent notification", "received notification":
			// GoBGP may refuse an OPEN (e.g. a bad peer AS) without an FSM transition that
			// carries the reason, so take it from here.
			h.dials.setNotification(key, r.Message+": "+notificationText(uint8(code), uint8(subcode)))
		}
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
