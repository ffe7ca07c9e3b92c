// Package runtime runs cells on a Docker engine: it builds images, creates
// networks and gateway containers, and, inside each gateway, reconciles the
// cell's replicas (observe → pure plan → execute).
//
// Every object carries the io.orchestro.* labels, so the whole state of a
// project can be rebuilt from label-filtered queries against the engine.
package runtime
