package manager

import (
	"io"
	"log"
	"strings"

	"github.com/go-logr/logr"
	"github.com/hashicorp/go-hclog"
)

// hclogr is an hclog.Logger writing into a logr.Logger, so go-plugin's own messages and the
// announcers' forwarded logs land in the speaker's structured log. Warn and Error keep their
// level (Warn as an info line with level=warn, since logr has no warn); Debug is V(4), Trace V(5).
type hclogr struct {
	l       logr.Logger
	name    string
	implied []any
}

func newHCLogr(l logr.Logger) hclog.Logger { return &hclogr{l: l} }

func (h *hclogr) Log(level hclog.Level, msg string, args ...any) {
	switch level {
	case hclog.Trace:
		h.Trace(msg, args...)
	case hclog.Debug:
		h.Debug(msg, args...)
	case hclog.Warn:
		h.Warn(msg, args...)
	case hclog.Error:
		h.Error(msg, args...)
	default:
		h.Info(msg, args...)
	}
}

func (h *hclogr) kv(args []any) []any {
	out := make([]any, 0, len(h.implied)+len(args)+2)
	if h.name != "" {
		out = append(out, "logger", h.name)
	}
	out = append(out, h.implied...)
	if len(args)%2 == 1 { // hclog tolerates a dangling value; logr would flag it
		args = append(args[:len(args)-1:len(args)-1], "extra", args[len(args)-1])
	}
	return append(out, args...)
}

func (h *hclogr) Trace(msg string, args ...any) { h.l.V(5).Info(msg, h.kv(args)...) }
func (h *hclogr) Debug(msg string, args ...any) { h.l.V(4).Info(msg, h.kv(args)...) }
func (h *hclogr) Info(msg string, args ...any)  { h.l.Info(msg, h.kv(args)...) }
func (h *hclogr) Warn(msg string, args ...any) {
	h.l.Info(msg, append(h.kv(args), "level", "warn")...)
}

// Error logs at error level; hclog passes the error as an "error" argument, logr wants it apart.
func (h *hclogr) Error(msg string, args ...any) {
	kv := h.kv(args)
	var err error
	for i := 0; i+1 < len(kv); i += 2 {
		if e, ok := kv[i+1].(error); ok && kv[i] == "error" {
			err = e
			kv = append(kv[:i:i], kv[i+2:]...)
			break
		}
	}
	h.l.Error(err, msg, kv...)
}

func (h *hclogr) IsTrace() bool { return h.l.V(5).Enabled() }
func (h *hclogr) IsDebug() bool { return h.l.V(4).Enabled() }
func (h *hclogr) IsInfo() bool  { return h.l.Enabled() }
func (h *hclogr) IsWarn() bool  { return true }
func (h *hclogr) IsError() bool { return true }

func (h *hclogr) ImpliedArgs() []any { return h.implied }

func (h *hclogr) With(args ...any) hclog.Logger {
	c := *h
	c.implied = append(append([]any{}, h.implied...), args...)
	return &c
}

func (h *hclogr) Name() string { return h.name }

func (h *hclogr) Named(name string) hclog.Logger {
	c := *h
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (h *hclogr) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	return &c
}

// SetLevel is a no-op: verbosity belongs to the host's logr sink.
func (h *hclogr) SetLevel(hclog.Level) {}

func (h *hclogr) GetLevel() hclog.Level {
	switch {
	case h.IsTrace():
		return hclog.Trace
	case h.IsDebug():
		return hclog.Debug
	}
	return hclog.Info
}

func (h *hclogr) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *hclogr) StandardWriter(*hclog.StandardLoggerOptions) io.Writer { return lineWriter{h} }

type lineWriter struct{ h *hclogr }

func (w lineWriter) Write(p []byte) (int, error) {
	w.h.Info(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
