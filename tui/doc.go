// Package tui is the `orchestro dash` dashboard: a bubbletea program that
// shows a running project's cells, services, replicas, flows, events and
// logs, and lets the user scale and restart services.
//
// It renders what it receives through Source and never calls Docker: the
// command line adapts its backend to Source. The root Model only routes
// messages; each pane is a sub-model in its own file, all styles live in
// styles.go and all key bindings in keys.go.
//
// Data arrives in four ways, all as messages: a status snapshot polled on
// a tea.Tick at the refresh interval; the latest failed flow executions of
// the cell shown, polled every few seconds of that clock and when another
// cell is shown; one execution's timeline, asked for when it is opened;
// and event and log streams fed by goroutines that the program owns and
// that end with its context.
package tui
