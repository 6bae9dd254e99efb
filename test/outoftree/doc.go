// Package outoftree shows, and tests, how a third party adds a plugin to Herald without
// forking it: the plugin lives in its own package (maintenance), and a custom binary
// (cmd/custom-herald) is app.NewHeraldCommand with app.WithPlugin, as kube-scheduler is
// extended. The tests run the custom binary's `config validate` and a scheduling cycle with
// the plugin enabled.
package outoftree
