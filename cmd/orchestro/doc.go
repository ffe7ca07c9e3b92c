// Command orchestro runs microservice cells on the local Docker engine:
// every service's replicas behind one gateway per cell, with load
// balancing, health checks, retries, self-healing and autoscaling.
//
// main only builds the root command with a signal-aware context and maps
// the returned error to the exit code; everything else is in package cli.
// The end-to-end tests beside it drive the built binary against the real
// engine.
package main
