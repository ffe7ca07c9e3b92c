// Package image builds and finds the images orchestro runs: service images
// from a Dockerfile (EnsureDockerfile, BuildDockerfile) or from a Go main
// package compiled locally into a FROM scratch image (BuildGo), the gateway
// image packed from the orchestro binary itself (Gateway), and images used
// as they are, pulled when missing (Ensure). Every image it builds for a
// service or the gateway is tagged with a hash of what it is built from (a
// Dockerfile build's context as the engine is sent it, its Dockerfile,
// arguments and target; a Go build's binary), so an unchanged image is not
// built again and a changed one gets a new tag. Every image it builds
// carries the io.orchestro.managed label.
//
// Only the command line builds images; a gateway never links this package.
// It may import package engine, package cellspec, the Docker SDK and the
// standard library.
package image
