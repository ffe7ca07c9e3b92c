// Package cellspec loads, interpolates, defaults and validates cell files,
// project files and compose files, flows included: it compiles a flow's
// ${{ expressions }} once, when the spec is loaded. It is pure: no Docker,
// no printing.
//
// Every problem found is reported at once, each with the file, line and
// column it came from and the field path it concerns.
package cellspec
