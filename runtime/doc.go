// Package runtime is the command line's backend for the local Docker
// engine. Its Client builds the images (package image), creates the
// networks, volumes, gateway containers and the keeper, and hands each
// gateway its cell spec (Up); it removes a project (Down); it reads a
// project's status, events and flow executions from the gateways' admin
// APIs and its logs from the engine; and it asks gateways to scale or
// restart services and to retry executions (Status, Events, Executions,
// Execution, Logs, Scale, Restart, RetryExecution).
// Each gateway owns its cell's replicas: the Client never changes one,
// except that Down removes the replicas of a gateway that drained them
// and stopped, and what the gateways left behind.
//
// Up reconciles in three parts, so that its decisions are tested without
// Docker: observeUp takes a label-filtered snapshot of the project
// (up_observe.go), planUp is a pure function from the wanted and the
// observed state to a plan of single operations whose String is one line
// each (up_plan.go), and executeUp carries the plan out and reports
// progress, deciding nothing (up_execute.go).
//
// Watch runs Up's second half (rollImages) for every rebuild. Its parts
// are split the same way: the rules of what each service's change asks
// for (watch_rules.go), a pure plan of one debounced batch of changes
// (watch_plan.go), copying files into replicas (watch_sync.go), and the
// loop that ties them to fsnotify and the engine (watch.go). Wait waits
// for services to be ready (up --wait, scale and restart --wait), and
// Exec runs a command in a replica.
//
// It is the top of the runtime and only the orchestro command links it. It
// may import packages engine, image, api and admin, package cellspec, the
// Docker SDK, fsnotify and patternmatcher (for Watch) and the standard
// library; no other runtime package imports
// it. The cell gateway itself is package gateway.
package runtime
