// Package engine is orchestro's access to the Docker engine and the identity
// of what it creates there: the Engine interface (the SDK calls orchestro
// makes) and its Docker implementation, NewDockerEngine; the io.orchestro.*
// labels and the names of networks, containers and volumes; and the config
// hashes that tell an up-to-date container from an outdated one.
//
// Every object carries the labels, so the whole state of a project can be
// rebuilt from label-filtered queries against the engine.
//
// It sits at the bottom of the runtime: it may import the Docker SDK, the
// standard library and package cellspec, and no other orchestro package.
// The in-memory fake for tests is in package enginetest.
package engine
