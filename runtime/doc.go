// Package runtime is the command line's backend for the local Docker
// engine. Its Client builds the images (package image), creates the
// networks, volumes, gateway containers and the keeper, and hands each
// gateway its cell spec (Up); it removes a project (Down); it reads a
// project's status and events from the gateways' admin APIs and its logs
// from the engine; and it asks gateways to scale or restart services
// (Status, Events, Logs, Scale, Restart).
// Each gateway owns its cell's replicas: the Client never changes one,
// except that Down removes what the gateways left behind.
//
// It is the top of the runtime and only the orchestro command links it. It
// may import packages engine, image, api and admin, package cellspec, the
// Docker SDK and the standard library; no other runtime package imports
// it. The cell gateway itself is package gateway.
package runtime
