// Package arch holds no code: its test keeps the module's import direction, the rule that
// plugins depend on the framework and only the wiring depends on the plugins (cmd/... and the
// in-tree registry, plugins/registry.go), so the path of an IP from the informers to the
// announcers never climbs back up into a plugin package.
package arch
