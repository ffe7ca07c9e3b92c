// Package gateway is a cell's gateway, the process `orchestro gateway`
// runs in the cell's gateway container.
//
// The data plane (package proxy) routes requests to the cell's replicas,
// with the access log and request metrics fed from request records off the
// request path. The controller owns the cell's replicas: it observes them
// by label (observe.go), plans with a pure function of the desired
// services, the observed replicas, the crash backoff and the time (plan.go),
// and executes the plan (execute.go); health results, engine events and the
// autoscaler (once a second) wake it up. The crash backoff is a pure
// function too (backoff.go): the executor and the observer only feed it
// failures, exits and failed starts alike, and before a replica that exited
// is removed the end of its output is kept for status and `logs`
// (exited.go). A rolling restart names the replicas it replaces by
// container ID (restart.go), never by creation time. Operations carry a
// typed kind and cause, which decide the event that reports them. A gateway that restarts adopts the replicas it finds,
// and its runtime overrides from its state file (statefile.go). The admin API
// (package admin) exposes status, events, scale, restart and spec updates.
//
// On a swarm (api.GatewaySpec.FindsByDNS) Swarm owns the replicas, and a
// DNS source takes the controller's place behind the same interface
// (source): it looks each service's DNS name up every second, health-checks
// the replicas it finds and hands them to the proxy; the egress proxies
// follow the names of the used cells' gateway tasks the same way
// (dnssource.go).
//
// The project keeper (RunKeeper) is the same binary in another mode: it
// restarts gateways that were stopped without being removed, since Docker
// disables a container's restart policy on `docker kill`.
//
// It may import packages engine (engine access and identity), api (the
// spec the command line hands it), admin, proxy, health and autoscale,
// package cellspec, the Docker SDK and the standard library. It never
// imports package image or the command line's backend (package runtime): a
// gateway builds no image and drives no other cell. Parts that make only a
// few engine calls declare an interface of just those (KeeperEngine, and
// the exec calls of health checks); the controller takes engine.Engine.
package gateway
