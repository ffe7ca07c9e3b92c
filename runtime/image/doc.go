// Package image builds and finds the images orchestro runs: service images
// from a Dockerfile (BuildDockerfile) or from a Go main package compiled
// locally into a FROM scratch image (BuildGo), the gateway image packed from
// the orchestro binary itself (Gateway), and images used as they are,
// pulled when missing (Ensure). Images built from in-memory contexts are
// tagged with a content hash, so an unchanged image is not built again.
// Every image it builds carries the io.orchestro.managed label.
//
// Only the command line builds images; a gateway never links this package.
// It may import package engine, package cellspec, the Docker SDK and the
// standard library.
package image
